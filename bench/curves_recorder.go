package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

// seriesSet is a key universe of n series: n/metrics hosts × metrics
// metrics, keys "2026-11-25:webH.sfo:cpu.mM" as in W2.
type seriesSet struct {
	n       int64
	hosts   []string
	metrics []string
}

func newSeriesSet(n int) *seriesSet {
	m := min(20, n)
	s := &seriesSet{n: int64(n)}
	for i := range n / m {
		s.hosts = append(s.hosts, fmt.Sprintf("web%d.sfo", i))
	}
	for i := range m {
		s.metrics = append(s.metrics, fmt.Sprintf("cpu.m%d", i))
	}
	s.n = int64(len(s.hosts) * m)
	return s
}

// point returns the n-th point: the series take turns and each is sampled
// once a second, in whole seconds, as in W2.
// add adds the n-th point to a Recorder.
func (s *seriesSet) add(rec *metrics.Recorder, n int64) error {
	host, metricName, t, value := s.point(n)
	return rec.Add(context.Background(), host, metricName, t, value)
}

func (s *seriesSet) point(n int64) (host, metricName string, t time.Time, value float64) {
	k := n % s.n
	h := int64(len(s.hosts))
	return s.hosts[k%h], s.metrics[k/h], time.Unix(day.Unix()+n/s.n%86400, 0), float64(n % 1000)
}

// recorderRunner runs the Recorder curves on the first servers of a fleet,
// with one client per server count, built once and reused across rounds.
type recorderRunner struct {
	f        *fleet
	cfg      curvesConfig
	progress io.Writer
	clients  map[int]*federated.Client // by server count
}

func newRecorderRunner(f *fleet, cfg curvesConfig, progress io.Writer) *recorderRunner {
	return &recorderRunner{f: f, cfg: cfg, progress: progress, clients: make(map[int]*federated.Client)}
}

func (r *recorderRunner) close() {
	for _, c := range r.clients {
		_ = c.Close()
	}
}

// client returns the client of the first n servers, one node each.
func (r *recorderRunner) client(n int) (*federated.Client, error) {
	if c, ok := r.clients[n]; ok {
		return c, nil
	}
	nodes := make(map[string]federated.Node, n)
	for i, addr := range r.f.addrs[:n] {
		nodes[nodeName(i)] = federated.Node{Address: addr}
	}
	c, err := federated.New(federated.Config{Nodes: nodes, Options: federated.Options{
		CommandTimeout: commandTimeout, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		return nil, err
	}
	r.clients[n] = c
	return c, nil
}

// recorderSetting is one setting of a Recorder curve.
type recorderSetting struct {
	x        float64
	servers  int
	batch    int // RecorderOptions.BatchSize; 0 for the default
	universe int
}

// recorderRun is what one Recorder run measured.
type recorderRun struct {
	rate   float64 // points per second
	allocs float64 // heap allocations of the process per point
	cut    bool    // the run stopped at cfg.maxRun, short of its points
}

// run measures one Recorder run: writers goroutines Add points until the
// run's points are in (at least twice the universe) or cfg.maxRun has
// passed, then Close flushes the rest, inside the timing. It fails if a
// point was not written.
func (r *recorderRunner) run(ctx context.Context, st recorderSetting, points int64) (recorderRun, error) {
	c, err := r.client(st.servers)
	if err != nil {
		return recorderRun{}, err
	}
	if err := r.f.flushAll(ctx); err != nil {
		return recorderRun{}, err
	}
	series := newSeriesSet(st.universe)
	points = max(points, 2*series.n)
	rec, err := newRecorder(c, metrics.RecorderOptions{BatchSize: st.batch})
	if err != nil {
		return recorderRun{}, err
	}
	var deadline time.Time
	nums := pointNumbers{points: points}
	s, err := measure(ctx, r.f, func() (int64, error) {
		deadline = time.Now().Add(r.cfg.maxRun)
		errs := make([]error, r.cfg.writers+1)
		var wg sync.WaitGroup
		for w := range r.cfg.writers {
			wg.Go(func() {
				for first, end := nums.take(); first < end; first, end = nums.take() {
					if first%4096 < pointBlock && (ctx.Err() != nil || time.Now().After(deadline)) {
						errs[w] = ctx.Err()
						return
					}
					for n := first; n < end; n++ {
						if err := series.add(rec, n); err != nil {
							errs[w] = err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		errs[r.cfg.writers] = rec.Close()
		return rec.Stats().Added, errors.Join(errs...)
	})
	if err != nil {
		return recorderRun{}, err
	}
	if st := rec.Stats(); st.Written != st.Added || st.Failed != 0 {
		return recorderRun{}, fmt.Errorf("recorder: %d points added, %d written, %d failed", st.Added, st.Written, st.Failed)
	}
	return recorderRun{rate: rate(s), allocs: float64(s.mallocs) / float64(s.ops), cut: s.ops < points}, nil
}

// curve runs every setting once a round, rotating their order, and returns
// the medians.
func (r *recorderRunner) curve(ctx context.Context, name string, settings []recorderSetting) (curve, error) {
	// A short warm-up run per setting's client: connections dialled, the
	// script loaded.
	for _, st := range settings {
		warm := st
		warm.universe = 1000
		if _, err := r.run(ctx, warm, 20000); err != nil {
			return curve{}, fmt.Errorf("%s: warming up: %w", name, err)
		}
	}
	runs := make([][]recorderRun, len(settings))
	for round := range r.cfg.rounds {
		for i := range settings {
			j := (i + round) % len(settings)
			run, err := r.run(ctx, settings[j], r.cfg.points)
			if err != nil {
				return curve{}, fmt.Errorf("%s, x=%v: %w", name, settings[j].x, err)
			}
			runs[j] = append(runs[j], run)
			cut := ""
			if run.cut {
				cut = fmt.Sprintf("  (cut short at %v)", r.cfg.maxRun)
			}
			fmt.Fprintf(r.progress, "round %d/%d  %-28s x=%-8v %10s points/s  %.2f allocs/point%s\n",
				round+1, r.cfg.rounds, name, settings[j].x, humanRate(run.rate), run.allocs, cut)
		}
	}
	c := curve{Name: name}
	for i, st := range settings {
		p := curvePoint{X: st.x}
		var allocs []float64
		for _, run := range runs[i] {
			p.Rounds = append(p.Rounds, run.rate)
			allocs = append(allocs, run.allocs)
			p.CutShort = p.CutShort || run.cut
		}
		p.Y, p.YMin, p.YMax = median(p.Rounds)
		p.AllocsPerPoint, _, _ = median(allocs)
		c.Points = append(c.Points, p)
	}
	return c, nil
}

func (r *recorderRunner) byServers(ctx context.Context) (curve, error) {
	var settings []recorderSetting
	for _, n := range r.cfg.servers {
		settings = append(settings, recorderSetting{x: float64(n), servers: n, universe: universe})
	}
	return r.curve(ctx, "servers", settings)
}

func (r *recorderRunner) byBatch(ctx context.Context) (curve, error) {
	var settings []recorderSetting
	for _, b := range r.cfg.batches {
		settings = append(settings, recorderSetting{x: float64(b), servers: 8, batch: b, universe: universe})
	}
	return r.curve(ctx, "batch size", settings)
}

func (r *recorderRunner) byUniverse(ctx context.Context) (curve, error) {
	var settings []recorderSetting
	for _, u := range r.cfg.universes {
		settings = append(settings, recorderSetting{x: float64(u), servers: 8, universe: u})
	}
	return r.curve(ctx, "key universe", settings)
}

// memory measures the heap that queued points hold, by key universe, once
// a round: a Recorder that never flushes on its own takes cfg.memPoints
// points from one writer; the live heap is read before and after, each
// after a full collection. Close then writes the points.
func (r *recorderRunner) memory(ctx context.Context) (curve, error) {
	c, err := r.client(8)
	if err != nil {
		return curve{}, err
	}
	perPoint := make([][]float64, len(r.cfg.universes))
	for round := range r.cfg.rounds {
		for i, u := range r.cfg.universes {
			b, err := r.queued(ctx, c, u)
			if err != nil {
				return curve{}, fmt.Errorf("memory, %d keys: %w", u, err)
			}
			perPoint[i] = append(perPoint[i], b)
			fmt.Fprintf(r.progress, "round %d/%d  memory  keys=%-8d %d points queued hold %.0f B/point\n",
				round+1, r.cfg.rounds, u, r.cfg.memPoints, b)
		}
	}
	out := curve{Name: "memory"}
	for i, u := range r.cfg.universes {
		p := curvePoint{X: float64(u), Rounds: perPoint[i]}
		p.Y, p.YMin, p.YMax = median(perPoint[i])
		out.Points = append(out.Points, p)
	}
	return out, nil
}

// queued returns the live heap per point of cfg.memPoints points queued
// over u series.
func (r *recorderRunner) queued(ctx context.Context, c *federated.Client, u int) (float64, error) {
	if err := r.f.flushAll(ctx); err != nil {
		return 0, err
	}
	series := newSeriesSet(u)
	n := r.cfg.memPoints
	limit := int(n) + 1
	rec, err := newRecorder(c, metrics.RecorderOptions{BatchSize: limit, MaxBuffered: limit, FlushInterval: time.Hour})
	if err != nil {
		return 0, err
	}
	before := liveHeap()
	for i := range n {
		if err := series.add(rec, i); err != nil {
			_ = rec.Close()
			return 0, err
		}
	}
	after := liveHeap()
	if err := rec.Close(); err != nil {
		return 0, err
	}
	return (float64(after) - float64(before)) / float64(n), nil
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
