// Package demo runs the whole system on one machine: a federation of its
// own servers laid out as two hosts of four processes (four replica groups
// of two), simulated metrics from fake hosts written through a Recorder,
// syncers replicating each group, a server killed and brought back, and a
// check that every replica agrees.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

// Options tune the demo. The zero value of every field means its default.
type Options struct {
	Hosts      int           // fake hosts writing metrics; default 50
	Interval   time.Duration // between two points of a series; default 500ms
	Backfill   time.Duration // history written at the start; default 30m
	InProcess  bool          // use in-process servers even if redis-server is installed
	Out        io.Writer     // progress lines; default io.Discard
	SettleTime time.Duration // how long to wait for the replicas to agree; default 20s
}

func (o Options) withDefaults() Options {
	if o.Hosts <= 0 {
		o.Hosts = 50
	}
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.Backfill <= 0 {
		o.Backfill = 30 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.SettleTime <= 0 {
		o.SettleTime = 20 * time.Second
	}
	return o
}

// metricNames are the metrics every fake host reports.
var metricNames = []string{"cpu.user", "cpu.system", "load.1", "mem.used.pct", "net.rx.mbps", "net.tx.mbps", "disk.io.ops", "req.latency.p99.ms"}

// Demo is a running demo federation. Close stops everything it started.
type Demo struct {
	opts    Options
	fleet   fleet
	client  *federated.Client
	store   *metrics.Store
	syncers []*syncer.Syncer
	rec     *metrics.Recorder
	series  []*series // every fake host's metrics; the writer owns them once backfill is done

	cancel context.CancelFunc
	wg     sync.WaitGroup
	pause  sync.Mutex // held by the writer around a round of points; the script holds it to pause writes

	mu        sync.Mutex // guards the fields below
	lastCheck metrics.CheckReport
	checkedAt time.Time
	checked   bool
}

// Start starts the servers, the client, a syncer per simulated host, and
// the writers of the fake hosts' metrics, after writing their history.
func Start(ctx context.Context, opts Options) (*Demo, error) {
	opts = opts.withDefaults()
	f, err := startFleet(8, opts.InProcess)
	if err != nil {
		return nil, err
	}
	d := &Demo{opts: opts, fleet: f}
	if err := d.start(ctx); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Demo) start(ctx context.Context) error {
	addrs := d.fleet.Addrs()
	d.printf("started 8 %s: 2 simulated hosts × 4 processes, 4 replica groups of 2\n", d.fleet.Mode())
	nodes := make(map[string]federated.Node)
	for i := range 4 {
		nodes[fmt.Sprintf("redis_%d", i+1)] = federated.Node{Addresses: []string{addrs[i], addrs[i+4]}}
	}
	c, err := federated.New(federated.Config{Nodes: nodes, Options: federated.Options{
		CommandTimeout:    time.Second,
		BaseRetryInterval: 200 * time.Millisecond,
		MaxRetryInterval:  2 * time.Second,
		Logger:            slog.New(slog.DiscardHandler),
	}})
	if err != nil {
		return err
	}
	d.client = c
	if d.store, err = metrics.New(c); err != nil {
		return err
	}
	// One syncer per simulated host, as each host runs its own daemon.
	for _, local := range [][]string{addrs[:4], addrs[4:]} {
		s, err := syncer.NewFromClient(c, local, syncer.Options{AntiEntropyInterval: 5 * time.Second})
		if err != nil {
			return err
		}
		d.syncers = append(d.syncers, s)
	}
	if d.rec, err = d.store.NewRecorder(metrics.RecorderOptions{}); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	for _, s := range d.syncers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			_ = s.Run(runCtx)
		}()
	}
	if err := d.backfill(ctx); err != nil {
		return err
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.write(runCtx)
	}()
	return nil
}

// series is one fake host's metric and its random walk.
type series struct {
	host, metric string
	value, scale float64
}

func (d *Demo) allSeries() []*series {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []*series
	for h := range d.opts.Hosts {
		host := fmt.Sprintf("%s%d.%s", []string{"web", "db", "cache", "queue"}[h%4], h+1, []string{"sfo", "iad", "ams"}[h%3])
		for i, m := range metricNames {
			scale := []float64{100, 100, 8, 100, 1000, 1000, 5000, 500}[i]
			out = append(out, &series{host: host, metric: m, scale: scale, value: scale * (0.2 + 0.5*rng.Float64())})
		}
	}
	return out
}

// step moves the walk on by dt: steps scale with the square root of dt, so
// the history's 10-second points and the live ones look alike.
func (s *series) step(rng *rand.Rand, dt time.Duration) float64 {
	s.value += s.scale * 0.03 * math.Sqrt(dt.Seconds()/10) * (rng.Float64() - 0.5)
	s.value = math.Max(0, math.Min(s.scale, s.value))
	return math.Round(s.value*100) / 100
}

// backfill writes the history of every series.
func (d *Demo) backfill(ctx context.Context) error {
	start := time.Now()
	rng := rand.New(rand.NewPCG(3, 4))
	d.series = d.allSeries()
	all := d.series
	step := 10 * time.Second
	from := start.Add(-d.opts.Backfill).Truncate(step)
	for t := from; t.Before(start); t = t.Add(step) {
		for _, s := range all {
			if err := d.rec.Add(context.Background(), s.host, s.metric, t, s.step(rng, step)); err != nil {
				return err
			}
		}
	}
	if err := d.rec.Flush(ctx); err != nil {
		return err
	}
	st := d.rec.Stats()
	d.printf("wrote %d points of history (%d hosts × %d metrics, %v) in %v\n",
		st.Written, d.opts.Hosts, len(metricNames), d.opts.Backfill, time.Since(start).Round(time.Millisecond))
	return nil
}

// write adds a point to every series every Interval until ctx ends.
func (d *Demo) write(ctx context.Context) {
	rng := rand.New(rand.NewPCG(5, 6))
	all := d.series // the walks go on from where the history ended
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.pause.Lock()
			now := time.Now()
			for _, s := range all {
				if err := d.rec.Add(context.Background(), s.host, s.metric, now, s.step(rng, d.opts.Interval)); err != nil {
					d.pause.Unlock()
					return
				}
			}
			d.pause.Unlock()
		}
	}
}

func (d *Demo) printf(format string, args ...any) { fmt.Fprintf(d.opts.Out, format, args...) }

// Client returns the demo's client.
func (d *Demo) Client() *federated.Client { return d.client }

// Store returns the metrics store of the demo's federation.
func (d *Demo) Store() *metrics.Store { return d.store }

// SyncerStats returns the stats of both syncers, their peers together.
func (d *Demo) SyncerStats() *syncer.Stats {
	var st syncer.Stats
	for _, s := range d.syncers {
		one := s.Stats()
		st.Peers = append(st.Peers, one.Peers...)
		st.AntiEntropy.Runs += one.AntiEntropy.Runs
		st.AntiEntropy.FullChecks += one.AntiEntropy.FullChecks
		st.AntiEntropy.Repaired += one.AntiEntropy.Repaired
		st.AntiEntropy.Added += one.AntiEntropy.Added
		st.AntiEntropy.Keys += one.AntiEntropy.Keys
		if one.AntiEntropy.LastRun.After(st.AntiEntropy.LastRun) {
			st.AntiEntropy.LastRun, st.AntiEntropy.LastError = one.AntiEntropy.LastRun, one.AntiEntropy.LastError
		}
	}
	return &st
}

// LastCheck returns the last check the demo ran, and when.
func (d *Demo) LastCheck() (metrics.CheckReport, time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastCheck, d.checkedAt, d.checked
}

// Close stops the writers, the recorder, the syncers, the client and the
// servers, and returns the first errors met.
func (d *Demo) Close() error {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	var errs []error
	if d.rec != nil {
		if err := d.rec.Close(); err != nil && !errors.Is(err, federated.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if d.client != nil {
		errs = append(errs, d.client.Close())
	}
	errs = append(errs, d.fleet.Close())
	return errors.Join(errs...)
}
