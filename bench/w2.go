package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

// pointNumbers hands the point numbers 0 to points-1 out to a run's
// writers, pointBlock at a time. A counter that every writer adds to at
// every point is a cache line written by every core at every point, on
// many cores a cost of the harness that the fastest contender pays most;
// 16 at a time cuts that sixteen times and spreads each writer's batch
// over the series as one at a time did (1,000 at a time would give each
// writer's batch 1,000 series of its own, and turns by the writer's
// number a fixed part of them).
type pointNumbers struct {
	next   atomic.Int64
	points int64
}

// pointBlock is how many point numbers a writer takes at once.
const pointBlock = 16

// take returns the numbers first to end-1 for a writer: none once every
// number is taken.
func (p *pointNumbers) take() (first, end int64) {
	first = p.next.Add(pointBlock) - pointBlock
	return min(first, p.points), min(first+pointBlock, p.points)
}

// recorderCallsHint sizes the buffer of the Recorder's call timings; more
// calls only cost an append that grows it.
const recorderCallsHint = 4096

// runW2 is one run of W2 for a contender that sends the batches the
// workload makes: writers goroutines take the point numbers 16 at a time
// (pointNumbers), each queueing a point and its journal entry and sending
// every batch points. A batch's latency runs from queueing its first
// point to its last answer.
func runW2(ctx context.Context, f *fleet, ct contender, d *w2Data, points int64, batch, writers int) (sample, error) {
	batchers := make([]batcher, writers)
	latencies := make([][]time.Duration, writers)
	for w := range writers {
		batchers[w] = ct.newBatcher()
		latencies[w] = make([]time.Duration, 0, points/int64(batch)+1)
	}
	nums := pointNumbers{points: points}
	s, err := measure(ctx, f, func() (int64, error) {
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				errs[w] = w2Writer(ctx, batchers[w], d, &nums, batch, &latencies[w])
			})
		}
		wg.Wait()
		return points, errors.Join(errs...)
	})
	for _, l := range latencies {
		s.latencies = append(s.latencies, l...)
	}
	return s, err
}

// w2Writer is one writer of runW2.
func w2Writer(ctx context.Context, b batcher, d *w2Data, nums *pointNumbers, batch int, latencies *[]time.Duration) error {
	var member []byte
	var start time.Time
	queued := 0
	send := func() error {
		if err := b.exec(ctx); err != nil {
			return err
		}
		*latencies = append(*latencies, time.Since(start))
		queued = 0
		return ctx.Err()
	}
	for first, end := nums.take(); first < end; first, end = nums.take() {
		for n := first; n < end; n++ {
			k, sec, value := w2Point(n)
			if queued == 0 {
				start = time.Now()
			}
			member = appendMember(member[:0], sec, value)
			b.point(d.keys[k], d.journals[k], string(member), float64(sec), journalScore())
			if queued++; queued == batch {
				if err := send(); err != nil {
					return err
				}
			}
		}
	}
	if queued > 0 {
		return send()
	}
	return nil
}

// runRecorder is one run of W2 through a redfed Recorder with its default
// options: writers goroutines Add the points, then Close flushes what is
// left, inside the timing. The Recorder batches by itself (per node and
// key; a flush starts at 20,000 points or after 100ms and, under load,
// takes up to 300,000; at most 10,000 points a script call); its
// latencies are those of its script calls, one node each.
func runRecorder(ctx context.Context, f *fleet, c *clients, d *w2Data, points int64, writers int) (sample, error) {
	r, err := newRecorder(c.recorder, metrics.RecorderOptions{})
	if err != nil {
		return sample{}, err
	}
	defer r.Close()
	c.calls.reset(recorderCallsHint)
	nums := pointNumbers{points: points}
	s, err := measure(ctx, f, func() (int64, error) {
		errs := make([]error, writers+1)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for first, end := nums.take(); first < end; first, end = nums.take() {
					if first%4096 < pointBlock && ctx.Err() != nil {
						errs[w] = ctx.Err()
						return
					}
					for n := first; n < end; n++ {
						k, sec, value := w2Point(n)
						if err := r.Add(context.Background(), d.hosts[k%w2Hosts], d.metrics[k/w2Hosts], time.Unix(sec, 0), value); err != nil {
							errs[w] = err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		errs[writers] = r.Close()
		return points, errors.Join(errs...)
	})
	s.latencies = c.calls.take()
	return s, err
}

// checkW2 verifies that a W2 run left every series on the servers with
// every point of series 0.
func checkW2(ctx context.Context, f *fleet, d *w2Data, points int64) error {
	return checkKeys(ctx, f, min(points, universe), expectedMembers(points), d.keys[0])
}

// newRecorder returns a Recorder of a client's metrics store.
func newRecorder(c *federated.Client, opts metrics.RecorderOptions) (*metrics.Recorder, error) {
	st, err := metrics.New(c)
	if err != nil {
		return nil, err
	}
	return st.NewRecorder(opts)
}
