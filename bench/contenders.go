package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/redfed/federated"
)

// Contender names, as the report prints them.
const (
	nameRedfedPipeline = "redfed Pipeline"
	nameRecorder       = "redfed Recorder"
	nameRing           = "go-redis Ring"
	nameRaw            = "go-redis sharded"
	nameRueidis        = "rueidis sharded"
	nameRueidisGrouped = "rueidis grouped"
)

// commandTimeout bounds every call of every contender: long enough that a
// loaded 2-core machine never trips it, so no contender fails over or
// retries in the middle of a run.
const commandTimeout = 10 * time.Second

// batcher is one writer's queue of commands for one contender. set and
// point queue commands; exec sends everything queued and waits for every
// answer. A batcher is used by one goroutine.
type batcher interface {
	// set queues SET key value (W1).
	set(key, value string)
	// point queues ZADD key sec member and ZADD journal journalScore key
	// (W2): a point and its journal entry.
	point(key, journal, member string, sec, journalScore float64)
	exec(ctx context.Context) error
}

// contender is a client library set up on the fleet.
type contender struct {
	name   string
	redfed bool // one of ours: compared with the best peer
	w2Only bool // left out of W1; its batcher's set serves the warm-up only
	// newBatcher returns a writer's batcher; nil for the Recorder, which
	// batches by itself.
	newBatcher func() batcher
}

// clients holds every contender's clients, built once and shared by every
// run, so that runs after the first start with warm connections.
type clients struct {
	addrs    []string          // the fleet's servers
	pipeline *federated.Client // the redfed Pipeline's, and the router of the hand-sharded peers
	recorder *federated.Client // the Recorder's, timing its script calls
	calls    *callTimer
	ring     *redis.Ring
	raw      []*redis.Client  // one per server, in fleet order
	rue      []rueidis.Client // one per server, in fleet order
	shardOf  map[string]int   // node name → index of its server in fleet order
}

// nodeName names the node of the i-th server, as the tests do.
func nodeName(i int) string { return "redis_" + strconv.Itoa(i+1) }

// newClients connects every contender to addrs. On error it closes what it
// built.
func newClients(addrs []string) (_ *clients, err error) {
	c := &clients{addrs: addrs, calls: &callTimer{}, shardOf: make(map[string]int)}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	nodes := make(map[string]federated.Node)
	ringAddrs := make(map[string]string)
	for i, addr := range addrs {
		nodes[nodeName(i)] = federated.Node{Address: addr}
		ringAddrs[nodeName(i)] = addr
	}
	// HashTags routes "journal{KEY}" with KEY; keys without braces hash
	// whole, as with the option off.
	opts := federated.Options{CommandTimeout: commandTimeout, HashTags: true, Logger: slog.New(slog.DiscardHandler)}
	if c.pipeline, err = federated.New(federated.Config{Nodes: nodes, Options: opts}); err != nil {
		return nil, err
	}
	opts.Hooks = []redis.Hook{c.calls}
	if c.recorder, err = federated.New(federated.Config{Nodes: nodes, Options: opts}); err != nil {
		return nil, err
	}
	for _, name := range c.pipeline.Nodes() {
		addr, err := c.pipeline.NodeToServer(name)
		if err != nil {
			return nil, err
		}
		c.shardOf[name] = slices.Index(addrs, addr)
	}

	c.ring = redis.NewRing(&redis.RingOptions{Addrs: ringAddrs, DisableIdentity: true,
		ReadTimeout: commandTimeout, WriteTimeout: commandTimeout})
	for _, addr := range addrs {
		c.raw = append(c.raw, redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true,
			ReadTimeout: commandTimeout, WriteTimeout: commandTimeout}))
		// Auto-pipelining is rueidis's default and stays on; no client-side
		// cache, which this workload would not use.
		rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr},
			ForceSingleClient: true, DisableCache: true, ConnWriteTimeout: commandTimeout})
		if err != nil {
			return nil, fmt.Errorf("rueidis on %s: %w", addr, err)
		}
		c.rue = append(c.rue, rc)
	}
	return c, nil
}

// close closes every client.
func (c *clients) close() {
	for _, fc := range []*federated.Client{c.pipeline, c.recorder} {
		if fc != nil {
			_ = fc.Close()
		}
	}
	if c.ring != nil {
		_ = c.ring.Close()
	}
	for _, rc := range c.raw {
		_ = rc.Close()
	}
	for _, rc := range c.rue {
		rc.Close()
	}
}

// shard returns the index of the server that redfed places key on: the
// hand-sharded peers use redfed's own ring, so every contender but the
// Ring puts each key on the same server.
func (c *clients) shard(key string) int {
	return c.shardOf[c.pipeline.KeyToNode(key)]
}

// batchContenders are the contenders that send the batches the workload
// makes, in the order of the first round: every W1 contender, and every
// W2 contender but the Recorder, which batches by itself.
func (c *clients) batchContenders() []contender {
	return []contender{
		{name: nameRedfedPipeline, redfed: true, newBatcher: c.newRedfedBatcher},
		{name: nameRing, newBatcher: c.newRingBatcher},
		{name: nameRaw, newBatcher: c.newRawBatcher},
		{name: nameRueidis, newBatcher: c.newRueidisBatcher},
		{name: nameRueidisGrouped, w2Only: true, newBatcher: c.newRueidisGroupedBatcher},
	}
}

// callTimer is a go-redis hook that times the Recorder's script calls
// (EVALSHA, and EVAL when the script is not cached yet).
type callTimer struct {
	mu    sync.Mutex // guards calls
	calls []time.Duration
}

var _ redis.Hook = (*callTimer)(nil)

// reset empties the timings and sizes the buffer, so that recording
// rarely allocates during a run.
func (t *callTimer) reset(capacity int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cap(t.calls) < capacity {
		t.calls = make([]time.Duration, 0, capacity)
	}
	t.calls = t.calls[:0]
}

// take returns a copy of the timings recorded since reset.
func (t *callTimer) take() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.calls)
}

func (t *callTimer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (t *callTimer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name != "evalsha" && name != "eval" {
			return next(ctx, cmd)
		}
		start := time.Now()
		err := next(ctx, cmd)
		d := time.Since(start)
		t.mu.Lock()
		t.calls = append(t.calls, d)
		t.mu.Unlock()
		return err
	}
}

func (t *callTimer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// errJoin joins the errors of a batch's shards, nil when all are nil.
func errJoin(errs []error) error {
	err := errors.Join(errs...)
	clear(errs)
	return err
}
