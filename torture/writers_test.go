package torture_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redfed/federated/metrics"
	"github.com/redis/go-redis/v9"
)

// Besides the load's writers, two other kinds of writer share the fleet, as
// they share a real one:
//
//   - batchers: goroutines that share one Recorder, each writing batches of
//     its own points with Write and writing a batch again until Write
//     returns nil. A point is acknowledged when its batch's Write returned
//     nil.
//   - a Perl-style writer, which journals as the Perl module does: with the
//     writer's own clock in whole seconds, ZADD journal <sec> <key> beside
//     ZADD <key> <sec> <member>, on the current server of the key's node.
//     A point is acknowledged when both commands succeeded.
//
// Both take their point ids from the load's counter, and both write every
// point they start until it is acknowledged, after the load stops too.

// extra keeps the points of the other writers: every point tried (its
// timestamp) and those acknowledged.
type extra struct {
	mu      sync.Mutex // guards the fields below
	tried   []point
	acked   []int64
	batches int // Writes that failed and were made again
	perl    int // Perl-style points acknowledged
	perlErr int // Perl-style writes that failed and were made again
}

func (e *extra) try(points ...point) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tried = append(e.tried, points...)
}

func (e *extra) ack(points ...point) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range points {
		e.acked = append(e.acked, p.id)
	}
}

const (
	batchers  = 4
	batchSize = 50
)

// batcher writes batches of points with Write, at its share of rate, until
// ctx ends, then finishes the batch it began within settleTimeout.
func (l *load) batcher(ctx context.Context, rec *metrics.Recorder, rate int, e *extra) {
	every := time.Duration(float64(time.Second) * batchSize * batchers / float64(rate))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		batch := make([]metrics.Sample, batchSize)
		points := make([]point, batchSize)
		for i := range batch {
			id, us := l.nextID.Add(1)-1, time.Now().UnixMicro()
			host, metric := seriesOf(id)
			batch[i] = metrics.Sample{Host: host, Metric: metric, Time: time.UnixMicro(us), Value: float64(id)}
			points[i] = point{id, us}
		}
		e.try(points...)
		deadline := time.Now().Add(settleTimeout)
		for {
			err := rec.Write(context.Background(), batch...)
			if err == nil {
				e.ack(points...)
				break
			}
			if time.Now().After(deadline) {
				l.t.Errorf("a batch still fails after %v: %v", settleTimeout, err)
				return
			}
			e.mu.Lock()
			e.batches++
			e.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// perlWriter writes points at rate as the Perl module does, until ctx ends,
// then writes those it could not within settleTimeout.
func (l *load) perlWriter(ctx context.Context, rate int, e *extra) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var waiting []point
	var deadline time.Time // once ctx ended
	for {
		select {
		case <-ctx.Done():
			if deadline.IsZero() {
				deadline = time.Now().Add(settleTimeout)
			}
			if len(waiting) == 0 {
				return
			}
			if time.Now().After(deadline) {
				l.t.Errorf("%d Perl-style points still fail after %v", len(waiting), settleTimeout)
				return
			}
			time.Sleep(50 * time.Millisecond)
		case <-tick.C:
			id := l.nextID.Add(1) - 1
			p := point{id, time.Now().Unix() * 1e6}
			e.try(p)
			waiting = append(waiting, p)
		}
		left := waiting[:0]
		for _, p := range waiting {
			if err := l.perlWrite(p); err != nil {
				left = append(left, p)
				continue
			}
			e.ack(p)
		}
		e.mu.Lock()
		e.perl += len(waiting) - len(left)
		e.perlErr += len(left)
		e.mu.Unlock()
		waiting = left
	}
}

// perlWrite writes one point as the Perl module does, to the current server
// of its key's node.
func (l *load) perlWrite(p point) error {
	key := l.keyOf(p)
	addr, err := l.client.NodeToServer(l.client.KeyToNode(key))
	if err != nil {
		return err
	}
	rc, err := l.client.ServerClient(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	sec := float64(time.Now().Unix()) // the writer's clock, in whole seconds
	pipe := rc.Pipeline()
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(p.micros / 1e6), Member: fmt.Sprintf("%d:%d", p.micros/1e6, p.id)})
	pipe.ZAdd(ctx, "journal", redis.Z{Score: sec, Member: key})
	_, err = pipe.Exec(ctx)
	return err
}

// settleExtra counts the other writers' points: every point tried gets its
// timestamp, every point acknowledged is acknowledged.
func (l *load) settleExtra(t *testing.T, e *extra) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.tried {
		for int(p.id) >= len(l.stamps) {
			l.stamps = append(l.stamps, 0)
			l.acked = append(l.acked, false)
		}
		l.stamps[p.id] = p.micros
	}
	for _, id := range e.acked {
		if !l.acked[id] {
			l.acked[id] = true
			l.ackedN++
		}
	}
}
