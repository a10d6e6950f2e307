package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/redfed/federated"
)

// The batchers: how each library sends one writer's batch. Commands are
// queued with context.Background(); exec's ctx bounds the round trips.

// redfedBatcher chains the batch on a redfed Pipeline and sends it with
// Poll: one round trip per server, all servers at once.
type redfedBatcher struct{ p *federated.Chain }

func (c *clients) newRedfedBatcher() batcher {
	return &redfedBatcher{p: c.pipeline.Chain()}
}

func (b *redfedBatcher) set(key, value string) { b.p.Set(key, value) }

func (b *redfedBatcher) point(key, journal, member string, sec, journalScore float64) {
	b.p.ZAdd(key, redis.Z{Score: sec, Member: member}).
		ZAdd(journal, redis.Z{Score: journalScore, Member: key})
}

func (b *redfedBatcher) exec(ctx context.Context) error { return b.p.Poll(ctx) }

// ringBatcher queues the batch on a go-redis Ring pipeline, which groups
// it by shard and sends the shards from one goroutine each.
type ringBatcher struct{ pipe redis.Pipeliner }

func (c *clients) newRingBatcher() batcher {
	return &ringBatcher{pipe: c.ring.Pipeline()}
}

func (b *ringBatcher) set(key, value string) {
	b.pipe.Set(context.Background(), key, value, 0)
}

func (b *ringBatcher) point(key, journal, member string, sec, journalScore float64) {
	ctx := context.Background()
	b.pipe.ZAdd(ctx, key, redis.Z{Score: sec, Member: member})
	b.pipe.ZAdd(ctx, journal, redis.Z{Score: journalScore, Member: key})
}

func (b *ringBatcher) exec(ctx context.Context) error {
	_, err := b.pipe.Exec(ctx)
	return err
}

// rawBatcher shards the batch by hand over plain go-redis clients, one
// pipeline per server, and sends the shards at once: the best a caller can
// do with go-redis alone.
type rawBatcher struct {
	c     *clients
	pipes []redis.Pipeliner // one per server
	errs  []error           // per server, of the batch being sent
	wg    sync.WaitGroup
}

func (c *clients) newRawBatcher() batcher {
	b := &rawBatcher{c: c, errs: make([]error, len(c.raw))}
	for _, rc := range c.raw {
		b.pipes = append(b.pipes, rc.Pipeline())
	}
	return b
}

func (b *rawBatcher) set(key, value string) {
	b.pipes[b.c.shard(key)].Set(context.Background(), key, value, 0)
}

func (b *rawBatcher) point(key, journal, member string, sec, journalScore float64) {
	ctx := context.Background()
	pipe := b.pipes[b.c.shard(key)]
	pipe.ZAdd(ctx, key, redis.Z{Score: sec, Member: member})
	pipe.ZAdd(ctx, journal, redis.Z{Score: journalScore, Member: key})
}

func (b *rawBatcher) exec(ctx context.Context) error {
	inline := -1 // the last busy shard, sent from this goroutine
	for i, pipe := range b.pipes {
		if pipe.Len() == 0 {
			continue
		}
		if busy := inline; busy >= 0 {
			b.wg.Go(func() { b.execShard(ctx, busy) })
		}
		inline = i
	}
	if inline >= 0 {
		b.execShard(ctx, inline)
	}
	b.wg.Wait()
	return errJoin(b.errs)
}

func (b *rawBatcher) execShard(ctx context.Context, i int) {
	if _, err := b.pipes[i].Exec(ctx); err != nil {
		b.errs[i] = fmt.Errorf("%s: %w", b.c.addrs[i], err)
	}
}

// rueidisBatcher shards the batch by hand over rueidis clients, one per
// server, and sends each shard with DoMulti, all shards at once.
type rueidisBatcher struct {
	c    *clients
	cmds [][]rueidis.Completed // one queue per server
	errs []error               // per server, of the batch being sent
	wg   sync.WaitGroup
}

func (c *clients) newRueidisBatcher() batcher {
	return &rueidisBatcher{c: c, cmds: make([][]rueidis.Completed, len(c.rue)), errs: make([]error, len(c.rue))}
}

func (b *rueidisBatcher) set(key, value string) {
	i := b.c.shard(key)
	b.cmds[i] = append(b.cmds[i], b.c.rue[i].B().Set().Key(key).Value(value).Build())
}

func (b *rueidisBatcher) point(key, journal, member string, sec, journalScore float64) {
	i := b.c.shard(key)
	cb := b.c.rue[i].B()
	b.cmds[i] = append(b.cmds[i],
		cb.Zadd().Key(key).ScoreMember().ScoreMember(sec, member).Build(),
		cb.Zadd().Key(journal).ScoreMember().ScoreMember(journalScore, key).Build())
}

func (b *rueidisBatcher) exec(ctx context.Context) error {
	inline := -1
	for i, cmds := range b.cmds {
		if len(cmds) == 0 {
			continue
		}
		if busy := inline; busy >= 0 {
			b.wg.Go(func() { b.execShard(ctx, busy) })
		}
		inline = i
	}
	if inline >= 0 {
		b.execShard(ctx, inline)
	}
	b.wg.Wait()
	return errJoin(b.errs)
}

// execShard sends a server's queue. rueidis recycles the commands once
// DoMulti returns, so the queue is emptied whatever happened.
func (b *rueidisBatcher) execShard(ctx context.Context, i int) {
	for _, r := range b.c.rue[i].DoMulti(ctx, b.cmds[i]...) {
		if err := r.Error(); err != nil && b.errs[i] == nil {
			b.errs[i] = fmt.Errorf("%s: %w", b.c.addrs[i], err)
		}
	}
	clear(b.cmds[i])
	b.cmds[i] = b.cmds[i][:0]
}

// rueidisGroupedBatcher groups a W2 batch by key by hand, as the Recorder
// does in its script: per server, one ZADD per key with all of the key's
// points and one ZADD to the server's journal with every key the batch
// changed there, sent with DoMulti, all servers at once. The journal is the
// Recorder's, not the other peers' "journal{KEY}": a key's entry is scored
// with its last point's journal score, the client's clock. SETs are not
// grouped; they are queued as rueidisBatcher queues them.
type rueidisGroupedBatcher struct {
	send    *rueidisBatcher // queues and sends the built commands
	servers []groupedShard  // one per server, in fleet order
}

// groupedShard is one server's share of a batch, grouped by key.
type groupedShard struct {
	index  map[string]int // key → its place in series
	series []groupedSeries
}

// groupedSeries is one key's points in a batch. Its points slice is kept
// from batch to batch, so that grouping rarely allocates.
type groupedSeries struct {
	key          string
	journalScore float64
	points       []groupedPoint
}

// groupedPoint is one point of a series: its score and member.
type groupedPoint struct {
	sec    float64
	member string
}

func (c *clients) newRueidisGroupedBatcher() batcher {
	b := &rueidisGroupedBatcher{
		send:    &rueidisBatcher{c: c, cmds: make([][]rueidis.Completed, len(c.rue)), errs: make([]error, len(c.rue))},
		servers: make([]groupedShard, len(c.rue)),
	}
	for i := range b.servers {
		b.servers[i].index = make(map[string]int)
	}
	return b
}

func (b *rueidisGroupedBatcher) set(key, value string) { b.send.set(key, value) }

// point ignores the per-key journal: the batch's keys are journalled per
// server by exec.
func (b *rueidisGroupedBatcher) point(key, _, member string, sec, journalScore float64) {
	sh := &b.servers[b.send.c.shard(key)]
	i, ok := sh.index[key]
	if !ok {
		i = len(sh.series)
		if i < cap(sh.series) {
			sh.series = sh.series[:i+1]
		} else {
			sh.series = append(sh.series, groupedSeries{})
		}
		sh.series[i].key = key
		sh.index[key] = i
	}
	s := &sh.series[i]
	s.journalScore = journalScore
	s.points = append(s.points, groupedPoint{sec: sec, member: member})
}

// exec builds each server's commands, empties the groups and sends.
func (b *rueidisGroupedBatcher) exec(ctx context.Context) error {
	for i := range b.servers {
		sh := &b.servers[i]
		if len(sh.series) == 0 {
			continue
		}
		cb := b.send.c.rue[i].B()
		journal := cb.Zadd().Key(federated.DefaultJournal).ScoreMember()
		for j := range sh.series {
			s := &sh.series[j]
			zadd := cb.Zadd().Key(s.key).ScoreMember()
			for _, p := range s.points {
				zadd = zadd.ScoreMember(p.sec, p.member)
			}
			b.send.cmds[i] = append(b.send.cmds[i], zadd.Build())
			journal = journal.ScoreMember(s.journalScore, s.key)
			clear(s.points)
			s.points = s.points[:0]
		}
		b.send.cmds[i] = append(b.send.cmds[i], journal.Build())
		sh.series = sh.series[:0]
		clear(sh.index)
	}
	return b.send.exec(ctx)
}
