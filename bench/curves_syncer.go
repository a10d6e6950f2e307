package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

// idleWindow is how long the syncer's idle cost is measured, once the
// group has converged and settled: settle covers two of the syncer's
// periodic reads of the journal's overlap, the first of which after a
// catch-up reads again what the catch-up read.
const (
	idleWindow = 3 * time.Second
	settle     = 11 * time.Second
)

// syncerResult is one syncer run.
type syncerResult struct {
	rate      float64 // replicated points per second: each point once per server it reached
	cpuMicros float64 // CPU of the process and of every server of the group, per replicated point
	idleCPU   float64 // percent of one core used by the syncer and the servers while idle
}

// syncerCurves measures, for each key count, the syncer's catch-up against
// the group size: one server of a group of R holds the points, the others
// are empty, and the syncers of all R servers run until every server holds
// every point.
func syncerCurves(ctx context.Context, f *fleet, cfg curvesConfig, progress io.Writer) ([]curve, error) {
	results := make(map[[2]int][]syncerResult)
	for round := range cfg.rounds {
		for _, keys := range cfg.syncKeys {
			for i := range cfg.groupSizes {
				size := cfg.groupSizes[(i+round)%len(cfg.groupSizes)]
				res, err := syncerRun(ctx, f, size, keys, cfg.syncPoints)
				if err != nil {
					return nil, fmt.Errorf("syncer, %d servers, %d keys: %w", size, keys, err)
				}
				results[[2]int{keys, size}] = append(results[[2]int{keys, size}], res)
				fmt.Fprintf(progress, "round %d/%d  syncer %d servers %7d keys %10s points/s  %.1f CPU-µs/point  idle %.1f%% CPU\n",
					round+1, cfg.rounds, size, keys, humanRate(res.rate), res.cpuMicros, res.idleCPU)
			}
		}
	}
	var out []curve
	for _, keys := range cfg.syncKeys {
		c := curve{Name: fmt.Sprintf("%s keys", humanRate(float64(keys)))}
		for _, size := range cfg.groupSizes {
			rs := results[[2]int{keys, size}]
			var rates, cpus, idles []float64
			for _, r := range rs {
				rates, cpus, idles = append(rates, r.rate), append(cpus, r.cpuMicros), append(idles, r.idleCPU)
			}
			p := curvePoint{X: float64(size), Rounds: rates}
			p.Y, p.YMin, p.YMax = median(rates)
			p.CPUMicros, _, _ = median(cpus)
			p.IdleCPU, _, _ = median(idles)
			c.Points = append(c.Points, p)
		}
		out = append(out, c)
	}
	return out, nil
}

// syncerRun writes points over keys series to the first server of a group
// of size servers, then runs a syncer of every server of the group until
// each holds every point, and measures the time and CPU that took, then
// the CPU of idle passes.
func syncerRun(ctx context.Context, f *fleet, size, keys int, points int64) (syncerResult, error) {
	addrs := f.addrs[:size]
	if err := f.flushAll(ctx); err != nil {
		return syncerResult{}, err
	}
	quiet := federated.Options{CommandTimeout: commandTimeout, Logger: slog.New(slog.DiscardHandler)}
	if err := fill(ctx, addrs[0], quiet, keys, points); err != nil {
		return syncerResult{}, err
	}

	c, err := federated.New(federated.Config{
		Nodes: map[string]federated.Node{"group": {Addresses: addrs}}, Options: quiet})
	if err != nil {
		return syncerResult{}, err
	}
	defer c.Close()
	s, err := syncer.NewFromClient(c, addrs, syncer.Options{NoAntiEntropy: true})
	if err != nil {
		return syncerResult{}, err
	}
	want := points * int64(size-1)
	runtime.GC() // the garbage of the fill is not the syncer's
	cpu0, err := groupCPU(ctx, f, size)
	if err != nil {
		return syncerResult{}, err
	}
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	stopped := false
	defer func() {
		if !stopped {
			stop()
			<-done
		}
	}()

	// Polled every 20ms: Stats sorts every link's lag samples, and its CPU
	// is counted with the syncer's.
	for added(s) < want {
		if ctx.Err() != nil {
			return syncerResult{}, ctx.Err()
		}
		if time.Since(start) > 10*time.Minute {
			return syncerResult{}, fmt.Errorf("%d of %d points replicated after 10 minutes", added(s), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	cpu1, err := groupCPU(ctx, f, size)
	if err != nil {
		return syncerResult{}, err
	}
	// The idle cost: passes that find nothing, less what the process and
	// the servers use without a syncer over as long.
	time.Sleep(settle)
	withSyncer, err := cpuOver(ctx, f, size, idleWindow)
	if err != nil {
		return syncerResult{}, err
	}
	if got := added(s); got != want {
		return syncerResult{}, fmt.Errorf("%d points replicated, want %d", got, want)
	}
	stop()
	<-done
	stopped = true
	without, err := cpuOver(ctx, f, size, idleWindow)
	if err != nil {
		return syncerResult{}, err
	}
	return syncerResult{
		rate:      float64(want) / took.Seconds(),
		cpuMicros: (cpu1 - cpu0).Seconds() * 1e6 / float64(want),
		idleCPU:   100 * max(withSyncer-without, 0).Seconds() / idleWindow.Seconds(),
	}, nil
}

// cpuOver returns the CPU time the process and the first size servers use
// over d.
func cpuOver(ctx context.Context, f *fleet, size int, d time.Duration) (time.Duration, error) {
	before, err := groupCPU(ctx, f, size)
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	after, err := groupCPU(ctx, f, size)
	return after - before, err
}

// added returns the members the syncer's links added, all together.
func added(s *syncer.Syncer) int64 {
	var n int64
	for _, p := range s.Stats().Peers {
		n += p.Added
	}
	return n
}

// fill writes points over keys series to one server, through a Recorder
// of its own, so that the journal holds what a writer's flushes leave.
func fill(ctx context.Context, addr string, opts federated.Options, keys int, points int64) error {
	c, err := federated.New(federated.Config{
		Nodes: map[string]federated.Node{"origin": {Address: addr}}, Options: opts})
	if err != nil {
		return err
	}
	defer c.Close()
	rec, err := newRecorder(c, metrics.RecorderOptions{})
	if err != nil {
		return err
	}
	series := newSeriesSet(keys)
	for n := range points {
		if err := series.add(rec, n); err != nil {
			_ = rec.Close()
			return err
		}
	}
	if err := rec.Close(); err != nil {
		return err
	}
	if st := rec.Stats(); st.Written != points {
		return fmt.Errorf("filling %s: %d of %d points written", addr, st.Written, points)
	}
	return nil
}

// groupCPU returns the CPU time used so far by this process and by the
// first size servers of the fleet.
func groupCPU(ctx context.Context, f *fleet, size int) (time.Duration, error) {
	servers, err := f.cpu(ctx, size)
	return processCPU() + servers, err
}
