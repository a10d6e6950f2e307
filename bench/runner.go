package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/redfed/federated/metrics"
)

// cell names one row of the report: a workload setting and a contender.
type cell struct {
	workload  string // "W1" or "W2"
	batch     int    // per batch: SETs (W1) or points (W2); 0 when the contender batches by itself
	writers   int
	contender string
	redfed    bool
}

// sample is one run of one cell.
type sample struct {
	ops       int64 // SETs or points
	elapsed   time.Duration
	mallocs   uint64        // heap allocations of the whole process during the run
	bytes     uint64        // bytes of those allocations
	clientCPU time.Duration // user and system CPU of the whole process during the run
	serverCPU time.Duration // user and system CPU of every server of the fleet during the run
	latencies []time.Duration
}

// measure times fn and counts the process's allocations and CPU time and
// the CPU time of every server of f while it runs. The heap is collected
// first, so that no run pays for its predecessor's garbage. The readings
// nest around fn, the servers' outermost: the process's CPU interval holds
// fn and no INFO call, and the servers' holds nothing but fn's commands and
// the two INFO calls' own few microseconds.
func measure(ctx context.Context, f *fleet, fn func() (int64, error)) (sample, error) {
	runtime.GC()
	var before, after runtime.MemStats
	server0, err := f.cpu(ctx, len(f.admin))
	if err != nil {
		return sample{}, err
	}
	runtime.ReadMemStats(&before)
	client0 := processCPU()
	start := time.Now()
	ops, err := fn()
	elapsed := time.Since(start)
	client1 := processCPU()
	runtime.ReadMemStats(&after)
	server1, cpuErr := f.cpu(ctx, len(f.admin))
	return sample{
		ops:       ops,
		elapsed:   elapsed,
		mallocs:   after.Mallocs - before.Mallocs,
		bytes:     after.TotalAlloc - before.TotalAlloc,
		clientCPU: client1 - client0,
		serverCPU: server1 - server0,
	}, errors.Join(err, cpuErr)
}

// job is one cell's run: run measures it, check verifies what it wrote.
type job struct {
	cell  cell
	run   func(ctx context.Context) (sample, error)
	check func(ctx context.Context) error
}

// bench runs the rounds and keeps every sample.
type bench struct {
	cfg      config
	fleet    *fleet
	clients  *clients
	progress io.Writer

	order   []cell // cells in the order of the first round's settings
	samples map[cell][]sample
}

// groups returns the jobs of one round, in groups whose order rotates from
// round to round: each W1 batch size, and each W2 writer count with every
// batch size and the Recorder.
func (b *bench) groups() [][]job {
	keys := w1Keys()
	d := newW2Data()
	cfg := b.cfg
	var groups [][]job
	for _, batch := range cfg.w1Batches {
		var g []job
		for _, ct := range b.clients.batchContenders() {
			if ct.w2Only {
				continue
			}
			g = append(g, job{
				cell: cell{workload: "W1", batch: batch, writers: 1, contender: ct.name, redfed: ct.redfed},
				run: func(ctx context.Context) (sample, error) {
					return runW1(ctx, b.fleet, ct, keys, batch, cfg.w1Ops)
				},
				check: func(ctx context.Context) error { return checkW1(ctx, b.fleet, cfg.w1Ops) },
			})
		}
		groups = append(groups, g)
	}
	checkW2Run := func(ctx context.Context) error { return checkW2(ctx, b.fleet, d, cfg.points) }
	for _, writers := range cfg.w2Writers {
		var g []job
		for _, batch := range cfg.w2Batches {
			for _, ct := range b.clients.batchContenders() {
				g = append(g, job{
					cell: cell{workload: "W2", batch: batch, writers: writers, contender: ct.name, redfed: ct.redfed},
					run: func(ctx context.Context) (sample, error) {
						return runW2(ctx, b.fleet, ct, d, cfg.points, batch, writers)
					},
					check: checkW2Run,
				})
			}
		}
		g = append(g, job{
			cell: cell{workload: "W2", writers: writers, contender: nameRecorder, redfed: true},
			run: func(ctx context.Context) (sample, error) {
				return runRecorder(ctx, b.fleet, b.clients, d, cfg.points, writers)
			},
			check: checkW2Run,
		})
		groups = append(groups, g)
	}
	return groups
}

// run runs every round: in each, every job once, each on empty servers,
// the jobs of a group starting one place further along each round so that
// no contender always runs first or last.
func (b *bench) run(ctx context.Context) error {
	b.samples = make(map[cell][]sample)
	groups := b.groups()
	for _, g := range groups {
		for _, j := range g {
			b.order = append(b.order, j.cell)
		}
	}
	if err := b.warmUp(ctx); err != nil {
		return fmt.Errorf("warming up: %w", err)
	}
	for round := range b.cfg.rounds {
		for _, g := range groups {
			for i := range g {
				j := g[(i+round)%len(g)]
				if err := b.runJob(ctx, j); err != nil {
					return fmt.Errorf("round %d, %s: %w", round+1, describe(j.cell), err)
				}
				s := b.samples[j.cell][len(b.samples[j.cell])-1]
				fmt.Fprintf(b.progress, "round %d/%d  %-44s %10s %ss/s  server %s µs/op  client %s µs/op\n",
					round+1, b.cfg.rounds, describe(j.cell), humanRate(rate(s)), unit(j.cell.workload),
					cpuLabel(perOp(s.serverCPU, s.ops)), cpuLabel(perOp(s.clientCPU, s.ops)))
			}
		}
	}
	return nil
}

// warmUp sends every contender a little of both workloads before the
// first round, so that no measured run pays for dialling its first
// connections or for loading the Recorder's script.
func (b *bench) warmUp(ctx context.Context) error {
	keys, d := w1Keys(), newW2Data()
	for _, ct := range b.clients.batchContenders() {
		bt := ct.newBatcher()
		for k := range 100 {
			bt.set(keys[k], w1Value)
			bt.point(d.keys[k], d.journals[k], "0:0", 0, journalScore())
		}
		if err := bt.exec(ctx); err != nil {
			return fmt.Errorf("%s: %w", ct.name, err)
		}
	}
	r, err := newRecorder(b.clients.recorder, metrics.RecorderOptions{})
	if err != nil {
		return err
	}
	for k := range universe {
		if err := r.Add(context.Background(), d.hosts[k%w2Hosts], d.metrics[k/w2Hosts], day, 0); err != nil {
			_ = r.Close()
			return fmt.Errorf("%s: %w", nameRecorder, err)
		}
	}
	if err := r.Close(); err != nil {
		return fmt.Errorf("%s: %w", nameRecorder, err)
	}
	return b.fleet.flushAll(ctx)
}

func (b *bench) runJob(ctx context.Context, j job) error {
	if err := b.fleet.flushAll(ctx); err != nil {
		return err
	}
	s, err := j.run(ctx)
	if err != nil {
		return err
	}
	if err := j.check(ctx); err != nil {
		return err
	}
	b.samples[j.cell] = append(b.samples[j.cell], s)
	return nil
}

// checkKeys verifies that the servers hold at least wantKeys keys and, for
// a key, that it holds wantMembers members wherever it is.
func checkKeys(ctx context.Context, f *fleet, wantKeys, wantMembers int64, key string) error {
	n, err := f.dbSize(ctx)
	if err != nil {
		return err
	}
	if n < wantKeys {
		return fmt.Errorf("check: the servers hold %d keys, want at least %d", n, wantKeys)
	}
	if key == "" {
		return nil
	}
	m, err := f.zcard(ctx, key)
	if err != nil {
		return err
	}
	if m != wantMembers {
		return fmt.Errorf("check: %s holds %d members, want %d", key, m, wantMembers)
	}
	return nil
}

// describe names a cell for progress lines and errors.
func describe(c cell) string {
	return fmt.Sprintf("%s batch %-4s writers %-2d %s", c.workload, batchLabel(c.batch), c.writers, c.contender)
}

// batchLabel prints a batch size, "auto" for a contender that batches by
// itself.
func batchLabel(batch int) string {
	if batch == 0 {
		return "auto"
	}
	return fmt.Sprint(batch)
}

// unit names what one op of a workload is.
func unit(workload string) string {
	if workload == "W1" {
		return "SET"
	}
	return "point"
}

// rate is a sample's operations per second.
func rate(s sample) float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds()
}
