package federated

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Pipeline queues commands and sends them together: Poll sends everything
// pending, one round trip per server with every server in flight at once,
// waits for the answers and runs the callbacks. Every command method returns
// the pipeline, so calls chain:
//
//	err := client.Pipeline().
//		Set("k1", "v1").
//		Set("k2", "v2").
//		Get("k3", func(v string, err error) { ... }).
//		Poll(ctx)
//
// Reads take a callback, which may be nil; every queued command is also a
// go-redis Cmder (Queue and Last), for those who prefer futures. Callbacks
// run in the goroutine that calls Poll or Flight.Wait, in queue order, and
// may queue more commands: Poll sends those too before it returns.
//
// A Pipeline is for one goroutine at a time and can be reused after Poll;
// the Client is for many, so give each goroutine its own Pipeline.
type Pipeline struct {
	b     *batch
	group string
}

// batch is the queue shared by a pipeline and its Group views.
type batch struct {
	c     *Client
	queue []queued
	spare []queued      // the previous queue's storage, reused by the next
	count map[*node]int // commands queued per node, for auto-flush
	plan  *plan         // reused by the flights that are waited for at once
	inUse bool          // plan belongs to a flight not yet recycled
	errs  []error       // errors of automatic flushes, reported by the next Poll
}

// queued is one command waiting to be sent.
type queued struct {
	node *node
	cmd  redis.Cmder
	cb   any  // nil or one of the callback types that deliver knows
	all  bool // send to every up server of the node's group
}

// Pipeline returns an empty pipeline.
func (c *Client) Pipeline() *Pipeline {
	return &Pipeline{b: &batch{c: c, count: make(map[*node]int)}}
}

// Group returns a view of the pipeline whose keys are placed by the key group
// instead of by themselves. Commands queued through it go into the same
// queue, and Poll on either sends them all.
func (p *Pipeline) Group(group string) *Pipeline {
	return &Pipeline{b: p.b, group: group}
}

// Len returns the number of commands queued and not yet sent.
func (p *Pipeline) Len() int { return len(p.b.queue) }

// Last returns the command queued last, or nil. After Poll it holds the
// result, as a go-redis future does.
func (p *Pipeline) Last() redis.Cmder {
	if len(p.b.queue) == 0 {
		return nil
	}
	return p.b.queue[len(p.b.queue)-1].cmd
}

// Queue queues a go-redis command built by the caller (redis.NewStringCmd
// and friends), routed by key. After Poll the command holds its result.
func (p *Pipeline) Queue(key string, cmd redis.Cmder) *Pipeline {
	return p.add(key, cmd, nil, false)
}

// Do queues any command, routed by key. args is the whole command, name
// first. cb, if not nil, receives the command after Poll.
func (p *Pipeline) Do(cb func(*redis.Cmd), key string, args ...any) *Pipeline {
	return p.add(key, redis.NewCmd(context.Background(), args...), cb, false)
}

// DoAll queues a command for every server of the key's node group (the Perl
// module's *_all calls). cb is called once per server, with the server's
// address and its answer; a server marked down is not asked, and its answer
// is its ErrServerDown.
func (p *Pipeline) DoAll(cb func(server string, cmd *redis.Cmd), key string, args ...any) *Pipeline {
	return p.add(key, redis.NewCmd(context.Background(), args...), cb, true)
}

// Set queues SET key value.
func (p *Pipeline) Set(key string, value any) *Pipeline {
	return p.add(key, redis.NewStatusCmd(context.Background(), "set", key, value), nil, false)
}

// Get queues GET key; cb receives the value, or redis.Nil for a missing key.
func (p *Pipeline) Get(key string, cb func(string, error)) *Pipeline {
	return p.add(key, redis.NewStringCmd(context.Background(), "get", key), cb, false)
}

// Del queues DEL key.
func (p *Pipeline) Del(key string) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), "del", key), nil, false)
}

// Exists queues EXISTS key; cb receives 1 or 0.
func (p *Pipeline) Exists(key string, cb func(int64, error)) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), "exists", key), cb, false)
}

// Incr queues INCR key; cb, if not nil, receives the new value.
func (p *Pipeline) Incr(key string, cb func(int64, error)) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), "incr", key), cb, false)
}

// IncrBy queues INCRBY key n; cb, if not nil, receives the new value.
func (p *Pipeline) IncrBy(key string, n int64, cb func(int64, error)) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), "incrby", key, n), cb, false)
}

// Expire queues EXPIRE key seconds.
func (p *Pipeline) Expire(key string, seconds int64) *Pipeline {
	return p.add(key, redis.NewBoolCmd(context.Background(), "expire", key, seconds), nil, false)
}

// HSet queues HSET key field value [field value ...].
func (p *Pipeline) HSet(key string, fieldValues ...any) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), append([]any{"hset", key}, fieldValues...)...), nil, false)
}

// HGet queues HGET key field.
func (p *Pipeline) HGet(key, field string, cb func(string, error)) *Pipeline {
	return p.add(key, redis.NewStringCmd(context.Background(), "hget", key, field), cb, false)
}

// HGetAll queues HGETALL key.
func (p *Pipeline) HGetAll(key string, cb func(map[string]string, error)) *Pipeline {
	return p.add(key, redis.NewMapStringStringCmd(context.Background(), "hgetall", key), cb, false)
}

// ZAdd queues ZADD key score member [score member ...].
func (p *Pipeline) ZAdd(key string, members ...redis.Z) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), zaddArgs(key, members)...), nil, false)
}

// ZCard queues ZCARD key.
func (p *Pipeline) ZCard(key string, cb func(int64, error)) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), "zcard", key), cb, false)
}

// ZRangeByScore queues ZRANGEBYSCORE key min max [LIMIT offset count].
func (p *Pipeline) ZRangeByScore(key string, opt *redis.ZRangeBy, cb func([]string, error)) *Pipeline {
	args := rangeByArgs("zrangebyscore", key, opt.Min, opt.Max, false, opt)
	return p.add(key, redis.NewStringSliceCmd(context.Background(), args...), cb, false)
}

// ZRangeByScoreWithScores queues ZRANGEBYSCORE key min max WITHSCORES.
func (p *Pipeline) ZRangeByScoreWithScores(key string, opt *redis.ZRangeBy, cb func([]redis.Z, error)) *Pipeline {
	args := rangeByArgs("zrangebyscore", key, opt.Min, opt.Max, true, opt)
	return p.add(key, redis.NewZSliceCmd(context.Background(), args...), cb, false)
}

// ZRem queues ZREM key member [member ...].
func (p *Pipeline) ZRem(key string, members ...any) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), append([]any{"zrem", key}, members...)...), nil, false)
}

// ZRemRangeByScore queues ZREMRANGEBYSCORE key min max.
func (p *Pipeline) ZRemRangeByScore(key, min, max string) *Pipeline {
	return p.add(key, redis.NewIntCmd(context.Background(), "zremrangebyscore", key, min, max), nil, false)
}

// add queues a command, and flushes the queue when a node's share of it
// reaches Options.PipelineAutoFlush.
func (p *Pipeline) add(key string, cmd redis.Cmder, cb any, all bool) *Pipeline {
	b := p.b
	n := b.c.route(p.group, key)
	b.queue = append(b.queue, queued{node: n, cmd: cmd, cb: cb, all: all || b.c.opts.QueryAll})
	if limit := b.c.opts.PipelineAutoFlush; limit > 0 {
		b.count[n]++
		if b.count[n] >= limit {
			if err := b.waitInline(b.launch(context.Background(), true)); err != nil {
				b.errs = append(b.errs, err)
			}
		}
	}
	return p
}

// Poll sends every queued command, waits for the answers (the command
// timeout bounds each round trip), runs the callbacks, and does the same for
// commands the callbacks queue, until nothing is pending. It returns the
// errors of what failed, joined: one per server that failed and one per
// command that Redis answered with an error (a missing key, redis.Nil, is
// not an error). Every callback of a failed command gets its error, never a
// made-up value.
func (p *Pipeline) Poll(ctx context.Context) error {
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
// can overlap other work with the round trips. The pipeline is empty and
// reusable as soon as Go returns; the callbacks run in Flight.Wait.
func (p *Pipeline) Go(ctx context.Context) *Flight {
	return p.b.launch(ctx, false)
}

// launch hands the queue to a new flight and starts it. With inline (a
// flight the caller waits for before queueing more), one server's round trip
// runs in the calling goroutine and the batch's plan is used, unless the
// flight whose callbacks are running holds it (an automatic flush of what
// they queue).
func (b *batch) launch(ctx context.Context, inline bool) *Flight {
	f := &Flight{c: b.c, queue: b.queue, done: make(chan struct{})}
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
