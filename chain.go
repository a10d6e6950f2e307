package federated

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Chain queues commands and sends them together, the Perl module's everyday
// API: Poll sends everything pending, one round trip per server with every
// server in flight at once, waits for the answers and runs the callbacks.
// Every command method returns the chain, so calls chain:
//
//	err := client.Chain().
//		Set("k1", "v1").
//		Set("k2", "v2").
//		Get("k3", func(v string, err error) { ... }).
//		Poll(ctx)
//
// Its commands are go-redis's own: the methods here make them with the
// typed go-redis API, and Cmd queues any command of that API, so that both
// styles send the same commands. Reads take a callback, which may be nil;
// every queued command is also a go-redis Cmder (Last), for those who
// prefer futures. Callbacks run in the goroutine that calls Poll or
// Flight.Wait, in queue order, and may queue more commands: Poll sends
// those too before it returns. A command that cannot be placed (its keys on
// several nodes, or none) fails with its error, delivered to its callback,
// and nothing of it is sent. Commands queued before a change of topology
// (AddNode, RemoveNode, ReplaceNode, SetNodes) are placed again when they
// are sent.
// A blocking command (BLPOP, XREAD BLOCK...) may wait at most half the
// read timeout, which go-redis applies to a pipeline's replies; one that
// waits longer is refused (send it alone, by the Client's typed method).
//
// A Chain is for one goroutine at a time and can be reused after Poll; the
// Client is for many, so give each goroutine its own Chain.
type Chain struct {
	b       *batch
	r       routing
	builder *redis.Client // makes go-redis commands and hands them to queue
}

// batch is the queue shared by a chain and its Group views.
type batch struct {
	c     *Client
	queue []queued
	spare []queued      // the previous queue's storage, reused by the next
	count map[*node]int // commands queued per node, for auto-flush
	plan  *plan         // reused by the flights that are waited for at once
	inUse bool          // plan belongs to a flight not yet recycled
	errs  []error       // errors of automatic flushes, reported by the next Poll
	// version is the topology's when the queue's first command was placed
	// (see Flight.version).
	version uint64

	// What the next command the builder makes is queued with.
	next struct {
		r   routing
		cb  any
		all bool
	}
}

// queued is one command waiting to be sent.
type queued struct {
	node *node // nil for a command that could not be placed: its error is set
	cmd  redis.Cmder
	cb   any     // nil or one of the callback types that deliver knows
	all  bool    // send to every up server of the node's group
	r    routing // how node was found, to find it again (see Flight.version)
}

// Chain returns an empty chain.
func (c *Client) Chain() *Chain {
	b := &batch{c: c, count: make(map[*node]int)}
	return &Chain{b: b, builder: newBuilder(b)}
}

// newBuilder returns a go-redis client that sends nothing: each command
// its typed API makes is queued in b.
func newBuilder(b *batch) *redis.Client {
	rc := redis.NewClient(&redis.Options{
		Addr:                     "federated.invalid:0",
		DisableIdentity:          true,
		MaxRetries:               -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	rc.AddHook(builderHook{b: b})
	return rc
}

// builderHook queues the commands of a builder instead of sending them.
type builderHook struct{ b *batch }

func (h builderHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h builderHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(_ context.Context, cmd redis.Cmder) error {
		h.b.add(cmd)
		return cmd.Err() // go-redis sets it on cmd again: a refusal stays
	}
}

func (h builderHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(_ context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.b.add(cmd)
		}
		return nil
	}
}

// Group returns a view of the chain whose commands are placed by the key
// group instead of by their keys. Commands queued through it go into the
// same queue, and Poll on either sends them all.
func (p *Chain) Group(group string) *Chain {
	return &Chain{b: p.b, r: routing{group: group, grouped: true}, builder: p.builder}
}

// Len returns the number of commands queued and not yet sent.
func (p *Chain) Len() int { return len(p.b.queue) }

// Last returns the command queued last, or nil. After Poll it holds the
// result, as a go-redis future does. Of a command sent to every server of
// a group (DoAll, or query-all), it holds the answer of the first server
// not marked down: each server's goes to the callback, and Poll's error
// names every server that failed.
func (p *Chain) Last() redis.Cmder {
	if len(p.b.queue) == 0 {
		return nil
	}
	return p.b.queue[len(p.b.queue)-1].cmd
}

// Cmd queues any command of go-redis's typed API: make calls one method of
// the Cmdable it is given (which queues the command instead of sending it),
// and cb, if not nil, receives the command after Poll:
//
//	p.Cmd(func(r redis.Cmdable) { r.ZAdd(ctx, "k", redis.Z{Score: 1, Member: "m"}) }, nil)
func (p *Chain) Cmd(make func(r redis.Cmdable), cb func(redis.Cmder)) *Chain {
	return p.with(cb, false, make)
}

// Do queues any command, name first, placed by its keys. cb, if not nil,
// receives the command after Poll.
func (p *Chain) Do(cb func(*redis.Cmd), args ...any) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { p.builder.Do(bg, args...) })
}

// DoAll queues a command for every server of its keys' node group (the
// Perl module's *_all calls). cb is called once per server, with the
// server's address and its answer; a server marked down is not asked, and
// its answer is its ErrServerDown.
func (p *Chain) DoAll(cb func(server string, cmd *redis.Cmd), args ...any) *Chain {
	return p.with(cb, true, func(r redis.Cmdable) { p.builder.Do(bg, args...) })
}

// bg is the context the builder makes commands with: Poll's is the one
// they are sent with.
var bg = context.Background()

// Set queues SET key value.
func (p *Chain) Set(key string, value any) *Chain {
	return p.with(nil, false, func(r redis.Cmdable) { r.Set(bg, key, value, 0) })
}

// Get queues GET key; cb receives the value, or redis.Nil for a missing key.
func (p *Chain) Get(key string, cb func(string, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.Get(bg, key) })
}

// Del queues DEL key.
func (p *Chain) Del(key string) *Chain {
	return p.with(nil, false, func(r redis.Cmdable) { r.Del(bg, key) })
}

// Exists queues EXISTS key; cb receives 1 or 0.
func (p *Chain) Exists(key string, cb func(int64, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.Exists(bg, key) })
}

// Incr queues INCR key; cb, if not nil, receives the new value.
func (p *Chain) Incr(key string, cb func(int64, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.Incr(bg, key) })
}

// IncrBy queues INCRBY key n; cb, if not nil, receives the new value.
func (p *Chain) IncrBy(key string, n int64, cb func(int64, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.IncrBy(bg, key, n) })
}

// Expire queues EXPIRE key seconds, go-redis's: an expiration under a
// second is one second, never 0, which would delete the key.
func (p *Chain) Expire(key string, expiration time.Duration) *Chain {
	return p.with(nil, false, func(r redis.Cmdable) { r.Expire(bg, key, expiration) })
}

// HSet queues HSET key field value [field value ...].
func (p *Chain) HSet(key string, fieldValues ...any) *Chain {
	return p.with(nil, false, func(r redis.Cmdable) { r.HSet(bg, key, fieldValues...) })
}

// HGet queues HGET key field.
func (p *Chain) HGet(key, field string, cb func(string, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.HGet(bg, key, field) })
}

// HGetAll queues HGETALL key.
func (p *Chain) HGetAll(key string, cb func(map[string]string, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.HGetAll(bg, key) })
}

// ZAdd queues ZADD key score member [score member ...].
func (p *Chain) ZAdd(key string, members ...redis.Z) *Chain {
	return p.with(nil, false, func(r redis.Cmdable) { r.ZAdd(bg, key, members...) })
}

// ZCard queues ZCARD key.
func (p *Chain) ZCard(key string, cb func(int64, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.ZCard(bg, key) })
}

// ZRangeByScore queues ZRANGEBYSCORE key min max [LIMIT offset count].
func (p *Chain) ZRangeByScore(key string, opt *redis.ZRangeBy, cb func([]string, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.ZRangeByScore(bg, key, opt) })
}

// ZRangeByScoreWithScores queues ZRANGEBYSCORE key min max WITHSCORES.
func (p *Chain) ZRangeByScoreWithScores(key string, opt *redis.ZRangeBy, cb func([]redis.Z, error)) *Chain {
	return p.with(cb, false, func(r redis.Cmdable) { r.ZRangeByScoreWithScores(bg, key, opt) })
}

// ZRem queues ZREM key member [member ...].
func (p *Chain) ZRem(key string, members ...any) *Chain {
	return p.with(nil, false, func(r redis.Cmdable) { r.ZRem(bg, key, members...) })
}

// ZRemRangeByScore queues ZREMRANGEBYSCORE key min max.
func (p *Chain) ZRemRangeByScore(key, min, max string) *Chain {
	return p.with(nil, false, func(r redis.Cmdable) { r.ZRemRangeByScore(bg, key, min, max) })
}

// with queues the command make makes with the builder, with its callback.
func (p *Chain) with(cb any, all bool, make func(r redis.Cmdable)) *Chain {
	b := p.b
	b.next.r, b.next.cb, b.next.all = p.r, cb, all
	make(p.builder)
	b.next.cb, b.next.all = nil, false
	return p
}

// add places and queues a command the builder made, and flushes the queue
// when a node's share of it reaches Options.PipelineAutoFlush.
func (b *batch) add(cmd redis.Cmder) {
	c := b.c
	if len(b.queue) == 0 {
		b.version = c.topo.Load().version
	}
	q := queued{cmd: cmd, cb: b.next.cb, all: b.next.all || c.queryAll.Load(), r: b.next.r}
	t, ok := c.placeCmd(bg, b.next.r, cmd)
	switch {
	case !ok:
	case t.broadcast:
		cmd.SetErr(fmt.Errorf("%w: %s in a chain", ErrKeyless, cmdName(cmd)))
	default:
		q.node = t.node
	}
	b.queue = append(b.queue, q)
	if limit := c.opts.PipelineAutoFlush; limit > 0 && q.node != nil {
		b.count[q.node]++
		if b.count[q.node] >= limit {
			if err := b.waitInline(b.launch(bg, true)); err != nil {
				b.errs = append(b.errs, err)
			}
		}
	}
}

// Poll sends every queued command, waits for the answers (the command
// timeout bounds each round trip), runs the callbacks, and does the same for
// commands the callbacks queue, until nothing is pending. It returns the
// errors of what failed, joined: one per server that failed, one per
// command that Redis answered with an error (a missing key, redis.Nil, is
// not an error), and one for all the commands that ctx ended before their
// answers. Every callback of a failed command gets its error, never a
// made-up value.
func (p *Chain) Poll(ctx context.Context) error {
	b := p.b
	errs := b.errs
	b.errs = nil
	for len(b.queue) > 0 {
		if err := b.waitInline(b.launch(ctx, true)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Go starts sending every queued command and returns at once, so the caller
// can overlap other work with the round trips. The chain is empty and
// reusable as soon as Go returns; the callbacks run in Flight.Wait.
func (p *Chain) Go(ctx context.Context) *Flight {
	return p.b.launch(ctx, false)
}

// launch hands the queue to a new flight and starts it. With inline (a
// flight the caller waits for before queueing more), one server's round trip
// runs in the calling goroutine and the batch's plan is used, unless the
// flight whose callbacks are running holds it (an automatic flush of what
// they queue).
func (b *batch) launch(ctx context.Context, inline bool) *Flight {
	f := &Flight{c: b.c, queue: b.queue, version: b.version, done: make(chan struct{})}
	b.queue, b.spare = b.spare, nil
	clear(b.count)
	var pl *plan
	switch {
	case !inline || b.inUse:
		pl = newPlan()
	case b.plan == nil:
		b.plan = newPlan()
		fallthrough
	default:
		pl = b.plan
		b.inUse, f.ownsPlan = true, true
	}
	f.start(ctx, pl, inline)
	return f
}

// waitInline waits for an inline flight and recycles it, also when a
// callback panics.
func (b *batch) waitInline(f *Flight) error {
	defer b.recycle(f)
	return f.Wait()
}

// recycle keeps the storage of a waited-for inline flight for the next one,
// dropping its references to commands and callbacks.
func (b *batch) recycle(f *Flight) {
	clear(f.queue)
	b.spare = f.queue[:0]
	if f.ownsPlan {
		b.plan.reset()
		b.inUse = false
	}
}

// deliver runs a callback with the result of its command. A typed nil
// callback is skipped like a nil one.
func deliver(cb any, server string, cmd redis.Cmder) {
	switch f := cb.(type) {
	case nil:
	case func(*redis.Cmd):
		if f != nil {
			f(cmd.(*redis.Cmd))
		}
	case func(string, *redis.Cmd):
		if f != nil {
			f(server, cmd.(*redis.Cmd))
		}
	case func(string, error):
		if f == nil {
			return
		}
		switch c := cmd.(type) {
		case *redis.StringCmd:
			f(c.Result())
		case *redis.StatusCmd:
			f(c.Result())
		}
	case func(int64, error):
		if f != nil {
			f(cmd.(*redis.IntCmd).Result())
		}
	case func(bool, error):
		if f != nil {
			f(cmd.(*redis.BoolCmd).Result())
		}
	case func(redis.Cmder):
		if f != nil {
			f(cmd)
		}
	case func([]string, error):
		if f != nil {
			f(cmd.(*redis.StringSliceCmd).Result())
		}
	case func([]redis.Z, error):
		if f != nil {
			f(cmd.(*redis.ZSliceCmd).Result())
		}
	case func(map[string]string, error):
		if f != nil {
			f(cmd.(*redis.MapStringStringCmd).Result())
		}
	default:
		panic(fmt.Sprintf("federated: unexpected callback type %T", cb))
	}
}
