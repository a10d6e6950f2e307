// Package torture_test is a soak test of the whole system: a Recorder
// writing at a steady rate into four replica groups of two redis-server
// processes, one syncer per simulated host replicating them, and a seeded
// random schedule of faults (SIGKILL with an empty restart, SIGSTOP and
// SIGCONT, blackholes, connection resets, one-way cuts, latency, syncer
// restarts, writers cut off from a whole group) on the writers' and the
// syncers' network paths. At the end every fault is healed and the test
// checks that no acknowledged point was lost.
//
// Running it:
//
//	go test -race -count=1 ./torture/                          # about 60 s of load
//	go test -race -count=1 -short ./torture/                   # 10 s of load
//	go test -race -count=1 -timeout 30m ./torture/ -torture.duration=10m
//	REDFED_TORTURE_DURATION=10m go test -race -count=1 -timeout 30m ./torture/
//	go test -race -count=1 ./torture/ -torture.seed=42         # replay a schedule
//	go test -race -count=1 ./torture/ -torture.rate=20000      # points per second
//
// -torture.duration wins over $REDFED_TORTURE_DURATION, which wins over
// -short. The seed is printed at the start and again, with the faults
// injected, on failure. A seed replays the same faults (kind, server,
// duration, in order); their timing is the machine's.
//
// The tested promise: while at most one server of each replica group is
// faulty at a time, every point whose write was acknowledged is, once the
// faults heal and the syncers catch up, on every server of its group.
// SIGKILL is the one fault that destroys data (no persistence), so the
// test kills a server only the way an operator can without losing an
// acknowledged point: it fences the writers off the server, waits until
// the server's peer holds everything the server holds, then kills it,
// current or standby alike. A point acknowledged by a server that dies
// before the syncer copied it is lost by design; RELIABILITY.md says so.
// Writers cut off from both servers of a group is not a faulty server: the
// group's writes fail, fast, and the test adds them again.
package torture_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/faultproxy"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

var (
	durationFlag = flag.Duration("torture.duration", 0,
		"how long the torture test keeps load and faults going (default 60s, or $"+durationEnv+", or 10s with -short)")
	seedFlag = flag.Uint64("torture.seed", 0, "seed of the torture test's fault schedule; 0 takes one from the clock")
	rateFlag = flag.Int("torture.rate", 5000, "points per second the torture test's writers add")
)

const (
	durationEnv     = "REDFED_TORTURE_DURATION"
	defaultDuration = 60 * time.Second
	shortDuration   = 10 * time.Second

	hosts  = 2 // simulated hosts a and b
	groups = 4 // processes per host; process i of a and of b form node redis_<i+1>

	seriesHosts   = 150
	seriesMetrics = 20
	numSeries     = seriesHosts * seriesMetrics
	writers       = 4
	flushEvery    = 200 * time.Millisecond
	maxBacklog    = 2 * time.Second // a writer held up longer sheds the rest

	commandTimeout = time.Second
	// settleTimeout bounds each wait: replication before a kill, the last
	// flushes, convergence.
	settleTimeout = 60 * time.Second
)

func TestMain(m *testing.M) {
	redis.SetLogger(discard{}) // go-redis logs every failed dial; faults make many
	goleak.VerifyTestMain(m)
}

type discard struct{}

func (discard) Printf(context.Context, string, ...any) {}

// settings are the knobs of a run.
type settings struct {
	duration time.Duration
	seed     uint64
	rate     int
}

func settingsOf(t *testing.T) settings {
	t.Helper()
	s := settings{duration: defaultDuration, seed: *seedFlag, rate: *rateFlag}
	switch env := os.Getenv(durationEnv); {
	case *durationFlag > 0:
		s.duration = *durationFlag
	case env != "":
		d, err := time.ParseDuration(env)
		if err != nil || d <= 0 {
			t.Fatalf("$%s=%q: want a positive Go duration such as 10m", durationEnv, env)
		}
		s.duration = d
	case testing.Short():
		s.duration = shortDuration
	}
	if s.seed == 0 {
		s.seed = uint64(time.Now().UnixNano())
	}
	if s.rate <= 0 {
		t.Fatalf("-torture.rate=%d: want at least 1 point per second", s.rate)
	}
	if dl, ok := t.Deadline(); ok {
		if need := s.duration + 3*settleTimeout; time.Until(dl) < need {
			t.Fatalf("a %v run needs a -timeout of at least %v", s.duration, need.Round(time.Minute)+time.Minute)
		}
	}
	return s
}

func TestTorture(t *testing.T) {
	set := settingsOf(t)
	t.Logf("seed %d (replay with -torture.seed=%d): %v of load at %d points/s", set.seed, set.seed, set.duration, set.rate)
	goroutines0, heap0 := runtime.NumGoroutine(), heapAlloc()

	sum := &summary{seed: set.seed, offered: set.rate}
	func() {
		defer sum.log(t) // also when the run stops at a fatal error
		torture(t, set, sum)
	}()
	if t.Failed() {
		return
	}
	// Everything the run started is closed (the servers stop at cleanup):
	// goroutines and heap are back where they started.
	goroutines := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); goroutines > goroutines0+2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		goroutines = runtime.NumGoroutine()
	}
	heap := heapAlloc()
	t.Logf("goroutines: %d at the start, %d after closing; heap: %.1f MiB at the start, %.1f MiB after closing",
		goroutines0, goroutines, mib(heap0), mib(heap))
	if goroutines > goroutines0+2 {
		t.Errorf("goroutines: got %d after closing everything, want at most %d", goroutines, goroutines0+2)
	}
	if limit := heap0 + 8<<20; heap > limit {
		t.Errorf("heap: got %.1f MiB after closing everything, want at most %.1f MiB", mib(heap), mib(limit))
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// summary is what a run prints.
type summary struct {
	seed                    uint64
	total, loadFor          time.Duration
	offered, shed           int
	faults                  map[string]int
	acked, added, failed    int64
	retried                 int
	flushes, failingFlushes int
	longestFlush            time.Duration
	lost, missingCopies     int
	unknown, misplaced      int
	members                 int
	syncersConverged        time.Duration // 0: not within the wait
	converged               time.Duration
	repaired, aeRepaired    int64 // keys repaired by the explicit, and by the periodic, anti-entropy
	passErrors              int64
}

func (s *summary) log(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %v in all\n", s.seed, s.total.Round(time.Millisecond))
	if s.loadFor > 0 {
		fmt.Fprintf(&b, "load: %v at %d points/s offered, %.0f points/s acknowledged; %d points shed (a writer behind, or the buffer full)\n",
			s.loadFor.Round(time.Millisecond), s.offered, float64(s.acked)/s.loadFor.Seconds(), s.shed)
	}
	kinds := slices.Sorted(maps.Keys(s.faults))
	n := 0
	for _, k := range kinds {
		n += s.faults[k]
	}
	fmt.Fprintf(&b, "faults: %d\n", n)
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %-44s %d\n", k, s.faults[k])
	}
	fmt.Fprintf(&b, "points: %d acknowledged; the Recorder took %d Adds and reported %d points failed; %d Adds were retries\n",
		s.acked, s.added, s.failed, s.retried)
	fmt.Fprintf(&b, "flushes: %d, %d of them with a failed write; the longest took %v\n",
		s.flushes, s.failingFlushes, s.longestFlush.Round(time.Millisecond))
	fmt.Fprintf(&b, "lost: %d acknowledged points (%d copies); %d unknown and %d misplaced members among %d read\n",
		s.lost, s.missingCopies, s.unknown, s.misplaced, s.members)
	running := "not within 10s"
	if s.syncersConverged > 0 {
		running = s.syncersConverged.Round(time.Millisecond).String()
	}
	fmt.Fprintf(&b, "converged: the running syncers in %s; after explicit anti-entropy in %v (%d keys repaired by it, %d by the periodic runs); %d failed syncer passes",
		running, s.converged.Round(time.Millisecond), s.repaired, s.aeRepaired, s.passErrors)
	t.Log(b.String())
}

// torture runs the test and fills in its summary. Everything it started,
// the servers apart, is closed when it returns.
func torture(t *testing.T, set settings, sum *summary) {
	began := time.Now()
	defer func() { sum.total = time.Since(began) }()
	ctx := context.Background()

	f := newFleet(t)
	defer f.close(t)
	l := newLoad(t, f, set.rate)
	defer l.close(t)
	defer func() {
		st := l.rec.Stats()
		sum.acked, sum.added, sum.failed, sum.retried = int64(l.ackedN), st.Added, st.Failed, l.retried
		sum.flushes, sum.failingFlushes, sum.longestFlush, sum.shed = l.flushes, l.failingFlushes, l.longestFlush, int(l.shed.Load())
	}()
	var syncers [hosts]*hostSyncer
	for h := range hosts {
		syncers[h] = &hostSyncer{cfg: f.syncCfg, local: f.syncLocals(h)}
		if err := syncers[h].start(); err != nil {
			t.Fatalf("starting the syncer of host %c: %v", 'a'+h, err)
		}
		defer syncers[h].stop()
	}
	log := &faultLog{done: map[string]int{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (replay with -torture.seed=%d), faults injected:\n%s", set.seed, set.seed, log.history())
		}
	})
	defer func() { sum.faults = log.counts() }()

	// Load and faults for the duration, flushing all along.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	ch := newChaos(t, f, l, syncers, log, set.seed)
	var loops sync.WaitGroup
	for w := range writers {
		loops.Go(func() { l.write(loadCtx, w) })
	}
	loops.Go(func() { ch.run(loadCtx) })
	loadStart := time.Now()
	flushes, progress := time.NewTicker(flushEvery), time.NewTicker(20*time.Second)
	for time.Since(loadStart) < set.duration {
		select {
		case <-flushes.C:
			l.flush(ctx, l.rate)
		case <-progress.C:
			t.Logf("%v: %d points acknowledged, %d faults injected", time.Since(loadStart).Round(time.Second), l.ackedN, log.total())
		}
	}
	flushes.Stop()
	progress.Stop()
	stopLoad()
	loops.Wait()
	ch.wg.Wait() // every fault undoes itself
	sum.loadFor = time.Since(loadStart)
	f.healAll(t)

	// The last flushes: every point added is acknowledged in the end.
	deadline := time.Now().Add(settleTimeout)
	for l.flush(ctx, math.MaxInt); len(l.pending)+len(l.readded) > 0; l.flush(ctx, math.MaxInt) {
		if time.Now().After(deadline) {
			for _, st := range l.client.Status() {
				t.Logf("writers' view: %+v", st)
			}
			t.Fatalf("%d points still fail %v after every fault healed; the last Flush: %v", len(l.pending)+len(l.readded), settleTimeout, l.lastErr)
		}
		time.Sleep(flushEvery)
	}
	st := l.rec.Stats()
	if st.Buffered != 0 || st.Added != st.Written+st.Failed {
		t.Errorf("Recorder stats after the last Flush: %+v; want nothing buffered and every point added written or failed", st)
	}
	if st.Failed != l.reported.Load() {
		t.Errorf("the Recorder counts %d failed points, OnError saw %d", st.Failed, l.reported.Load())
	}
	if added := l.added.Load(); int64(l.ackedN) != added {
		t.Errorf("acknowledged %d distinct points, want every one of the %d added", l.ackedN, added)
	}

	// Convergence: the running syncers (passes, and anti-entropy every 10s),
	// then anti-entropy on demand, until Check finds no divergent key.
	checker := newClient(t, f.directCfg)
	defer checker.Close()
	settled := time.Now()
	if waitChecked(ctx, checker, 10*time.Second) {
		sum.syncersConverged = time.Since(settled)
	}
	for _, s := range syncers {
		repaired, err := s.antiEntropy(ctx)
		sum.repaired += repaired
		if err != nil {
			t.Errorf("anti-entropy: %v", err)
		}
	}
	if !waitChecked(ctx, checker, settleTimeout) {
		report, err := checker.Check(ctx, federated.CheckOptions{MaxDiffs: 3})
		t.Fatalf("Check after anti-entropy: %d divergent keys (err %v): %+v", report.Divergent, err, report.Groups)
	}
	sum.converged = time.Since(settled)
	for _, s := range syncers {
		st := s.stats()
		sum.aeRepaired += st.AntiEntropy.Repaired
		for _, p := range st.Peers {
			sum.passErrors += p.Errors
		}
	}
	sum.aeRepaired -= sum.repaired // the syncers count the explicit runs too

	v := verify(ctx, t, f, l)
	sum.lost, sum.missingCopies, sum.unknown, sum.misplaced, sum.members = v.lost, v.missingCopies, v.unknown, v.misplaced, v.members
	if v.lost > 0 {
		t.Errorf("lost %d acknowledged points (%d copies), for instance:\n%s", v.lost, v.missingCopies, strings.Join(v.examples, "\n"))
	}
	if v.unknown > 0 || v.misplaced > 0 {
		t.Errorf("%d members that no writer wrote, and %d on a server outside their key's group", v.unknown, v.misplaced)
	}
}

// waitChecked waits until Check finds every replica group in agreement.
func waitChecked(ctx context.Context, c *federated.Client, within time.Duration) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		if report, err := c.Check(ctx, federated.CheckOptions{}); err == nil && report.OK() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// sid names a server: process group of host.
type sid struct{ host, group int }

func (s sid) String() string { return fmt.Sprintf("%c%d", 'a'+s.host, s.group) }

func (s sid) peer() sid { return sid{1 - s.host, s.group} }

func nodeName(group int) string { return "redis_" + strconv.Itoa(group+1) }

// groupOf returns the group of a node name.
func groupOf(node string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(node, "redis_"))
	return n - 1
}

// fleet is the federation under test. Every server has two proxies in front
// of it: the writers reach it through one, the syncers through the other,
// so that faults hit writes and replication apart. The test's own reads go
// straight to the servers.
type fleet struct {
	servers [hosts][groups]*redistest.Server
	wproxy  [hosts][groups]*faultproxy.Proxy
	sproxy  [hosts][groups]*faultproxy.Proxy
	direct  [hosts][groups]*redis.Client

	writerCfg, syncCfg, directCfg federated.Config
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{}
	started := redistest.StartN(t, hosts*groups)
	opts := federated.Options{
		CommandTimeout:    commandTimeout,
		BaseRetryInterval: 100 * time.Millisecond,
		MaxRetryInterval:  time.Second,
		Logger:            slog.New(slog.DiscardHandler),
	}
	f.writerCfg = federated.Config{Nodes: map[string]federated.Node{}, Options: opts}
	f.syncCfg = federated.Config{Nodes: map[string]federated.Node{}, Options: opts}
	f.directCfg = federated.Config{Nodes: map[string]federated.Node{}, Options: opts}
	for g := range groups {
		var waddrs, saddrs, daddrs []string
		for h := range hosts {
			s := started[h*groups+g]
			f.servers[h][g] = s
			for _, p := range []**faultproxy.Proxy{&f.wproxy[h][g], &f.sproxy[h][g]} {
				var err error
				if *p, err = faultproxy.New(s.Addr()); err != nil {
					f.close(t)
					t.Fatal(err)
				}
			}
			f.direct[h][g] = redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
			waddrs = append(waddrs, f.wproxy[h][g].Addr())
			saddrs = append(saddrs, f.sproxy[h][g].Addr())
			daddrs = append(daddrs, s.Addr())
		}
		f.writerCfg.Nodes[nodeName(g)] = federated.Node{Addresses: waddrs}
		f.syncCfg.Nodes[nodeName(g)] = federated.Node{Addresses: saddrs}
		f.directCfg.Nodes[nodeName(g)] = federated.Node{Addresses: daddrs}
	}
	return f
}

// syncLocals returns the syncer-side addresses of a host's servers.
func (f *fleet) syncLocals(h int) []string {
	out := make([]string, groups)
	for g := range groups {
		out[g] = f.sproxy[h][g].Addr()
	}
	return out
}

// healAll clears every proxy fault and makes sure every server runs.
func (f *fleet) healAll(t *testing.T) {
	t.Helper()
	for h := range hosts {
		for g := range groups {
			f.wproxy[h][g].Heal()
			f.wproxy[h][g].DropNew(false)
			f.sproxy[h][g].Heal()
			if s := f.servers[h][g]; !s.Running() {
				t.Errorf("server %s was left down by a fault", sid{h, g})
				if err := s.Restart(); err != nil {
					t.Errorf("restarting %s: %v", sid{h, g}, err)
				}
			}
		}
	}
}

func (f *fleet) close(t *testing.T) {
	for h := range hosts {
		for g := range groups {
			for _, p := range []*faultproxy.Proxy{f.wproxy[h][g], f.sproxy[h][g]} {
				if p != nil {
					if err := p.Close(); err != nil {
						t.Errorf("closing a proxy: %v", err)
					}
				}
			}
			if rc := f.direct[h][g]; rc != nil {
				_ = rc.Close()
			}
		}
	}
}

func newClient(t *testing.T, cfg federated.Config) *federated.Client {
	t.Helper()
	c, err := federated.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hostSyncer is the replication daemon of one simulated host: a Syncer of
// its four servers, with a client of its own, that a fault may restart.
type hostSyncer struct {
	cfg   federated.Config
	local []string

	mu     sync.Mutex // guards the fields below
	s      *syncer.Syncer
	cancel context.CancelFunc
	done   chan struct{}
	before syncer.Stats // counters of the syncers stopped before s
}

func (h *hostSyncer) start() error {
	s, err := syncer.New(h.cfg, h.local, syncer.Options{AntiEntropyInterval: 10 * time.Second})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	h.mu.Lock()
	h.s, h.cancel, h.done = s, cancel, done
	h.mu.Unlock()
	return nil
}

// stop ends Run, waits for it and closes the syncer's client. It does
// nothing when the syncer is stopped.
func (h *hostSyncer) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == nil {
		return
	}
	h.cancel()
	<-h.done
	st := h.s.Stats()
	h.before.AntiEntropy.Repaired += st.AntiEntropy.Repaired
	h.before.Peers = append(h.before.Peers, st.Peers...)
	_ = h.s.Close()
	h.s = nil
}

// antiEntropy runs anti-entropy, again when a run fails (a command may
// time out on a loaded machine), and returns the keys repaired.
func (h *hostSyncer) antiEntropy(ctx context.Context) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == nil {
		return 0, errors.New("the syncer is stopped")
	}
	var repaired int64
	var errs []error
	for range 3 {
		report, err := h.s.AntiEntropy(ctx)
		repaired += int64(report.Repaired)
		if err == nil {
			return repaired, nil
		}
		errs = append(errs, err)
	}
	return repaired, errors.Join(errs...)
}

// stats returns the counters of every syncer the host ran.
func (h *hostSyncer) stats() syncer.Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.before
	st.Peers = slices.Clone(st.Peers)
	if h.s != nil {
		now := h.s.Stats()
		st.AntiEntropy.Repaired += now.AntiEntropy.Repaired
		st.Peers = append(st.Peers, now.Peers...)
	}
	return st
}

// point is a point added: its id, which is also its value, so that every
// member is unique and names its point, and its timestamp.
type point struct{ id, micros int64 }

// seriesOf returns the host and metric of a point: ids go round the
// series.
func seriesOf(id int64) (host, metric string) {
	s := id % numSeries
	return fmt.Sprintf("web%03d", s/seriesMetrics), fmt.Sprintf("m%02d", s%seriesMetrics)
}

// seriesDay names a metric key: a series and a UTC day, the period of the
// default metric schema.
type seriesDay struct{ series, day int64 }

const microsPerDay = int64(24 * time.Hour / time.Microsecond)

// load is the writers' side: a Recorder fed by several goroutines at a
// fixed rate, and a flusher that keeps account of what was acknowledged.
//
// How the test knows which points were acknowledged while the writers keep
// adding during every Flush: before each Flush the flusher closes an epoch,
// taking the points logged since the previous one (it holds gate alone for
// that instant; a writer holds gate shared while it adds a point and logs
// it). A point of the epoch closed before Flush k was added after Flush k-2
// returned and before Flush k began, so the write that carried it ended
// after the one and before Flush k returned: its failure, if it failed, is
// among the errors of Flush k-1 or of Flush k. Every such error is a
// *federated.ServerError naming the node whose write failed. So a point is
// acknowledged when neither Flush names its node. Otherwise it may or may
// not be stored (a write that timed out may have run), and the flusher
// adds it again once a server of its node is up, as an application would
// retry it; a point added again after Flush k returned is answered by
// Flush k+1 alone. This errs towards retrying: a point whose own write
// succeeded beside a failed write of its node is written twice, which
// changes nothing. Dropping either Flush from the rule makes the test
// report lost points under writer-side faults, as it should. In the end
// every point added is acknowledged once.
//
// The Recorder runs with FailWhenFull, so that a writer never blocks in
// Add while it holds gate: a point refused for a full buffer is shed, and
// counted as such, the measure of back-pressure.
type load struct {
	t      *testing.T
	client *federated.Client
	rec    *federated.Recorder
	rate   int

	gate     sync.RWMutex     // shared by a writer adding and logging, alone by the flusher closing an epoch
	epochs   [writers][]point // points added in the open epoch, by writer
	nextID   atomic.Int64
	added    atomic.Int64 // points the Recorder took, retries apart
	shed     atomic.Int64 // points not added: the writer was behind, or the buffer full
	reported atomic.Int64 // failed points, as OnError saw them

	// Owned by the flusher.
	pending        []point         // failed points not added again yet
	readded        []point         // points added again after the last Flush
	prevFailed     map[string]bool // the nodes the last Flush named
	closed         int64           // points added in closed epochs, retries included
	stamps         []int64         // the timestamp of every point added, by id
	acked          []bool          // by id
	ackedN         int
	retried        int
	flushes        int
	failingFlushes int
	longestFlush   time.Duration
	lastErr        error
	nodes          map[seriesDay]string
}

func newLoad(t *testing.T, f *fleet, rate int) *load {
	t.Helper()
	l := &load{t: t, client: newClient(t, f.writerCfg), rate: rate, nodes: map[seriesDay]string{}}
	rec, err := l.client.NewRecorder(federated.RecorderOptions{
		FailWhenFull: true,
		OnError:      func(_ error, points int) { l.reported.Add(int64(points)) },
	})
	if err != nil {
		_ = l.client.Close()
		t.Fatal(err)
	}
	l.rec = rec
	return l
}

func (l *load) close(t *testing.T) {
	if err := l.rec.Close(context.Background()); err != nil {
		t.Errorf("closing the recorder: %v", err)
	}
	_ = l.client.Close()
}

// write adds points at the writer's share of the rate until ctx ends. A
// writer held up longer than maxBacklog sheds what it is behind by rather
// than burst it, and a point refused for a full buffer is shed too.
func (l *load) write(ctx context.Context, w int) {
	perSecond := float64(l.rate) / writers
	maxBehind := int(perSecond * maxBacklog.Seconds())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for start, sent := time.Now(), 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int(perSecond * time.Since(start).Seconds())
		if behind := due - sent; behind > maxBehind {
			l.shed.Add(int64(behind - maxBehind))
			sent = due - maxBehind
		}
		for ; sent < due; sent++ {
			l.gate.RLock()
			id, us := l.nextID.Add(1)-1, time.Now().UnixMicro()
			host, metric := seriesOf(id)
			err := l.rec.Add(host, metric, time.UnixMicro(us), float64(id))
			if err == nil {
				l.epochs[w] = append(l.epochs[w], point{id, us})
			}
			l.gate.RUnlock()
			switch {
			case err == nil:
				l.added.Add(1)
			case errors.Is(err, federated.ErrBufferFull):
				l.shed.Add(1)
			default:
				l.t.Errorf("Add: %v", err)
				return
			}
		}
	}
}

// flush closes an epoch, flushes the Recorder, settles the points of the
// epoch and those added again after the last Flush, and adds failed points
// again, at most maxReadd, where their node has a server up.
func (l *load) flush(ctx context.Context, maxReadd int) {
	readded := l.readded
	l.readded = nil
	var epoch []point
	l.gate.Lock()
	for w := range l.epochs {
		epoch = append(epoch, l.epochs[w]...)
		l.epochs[w] = l.epochs[w][:0]
	}
	l.gate.Unlock()
	l.closed += int64(len(epoch) + len(readded))

	began := time.Now()
	err := l.rec.Flush(ctx)
	l.longestFlush = max(l.longestFlush, time.Since(began))
	l.flushes++
	// Flush's contract: every point added before it is written or failed.
	if st := l.rec.Stats(); st.Written+st.Failed < l.closed {
		l.t.Errorf("Flush returned with %d of the %d points added before it neither written nor failed",
			l.closed-st.Written-st.Failed, l.closed)
	}
	l.lastErr = err
	failed := map[string]bool{}
	if err != nil {
		l.failingFlushes++
		var unattributed []error
		attribute(err, failed, &unattributed)
		for _, e := range unattributed {
			l.t.Errorf("a Flush error names no node: %v", e)
			for g := range groups {
				failed[nodeName(g)] = true
			}
		}
	}
	l.settle(readded, failed)
	l.settle(epoch, l.prevFailed, failed)
	l.prevFailed = failed

	// Add failed points again where a server of their node is up: sending
	// the rest would only fail again.
	up := map[string]bool{}
	waiting := l.pending[:0]
	for _, p := range l.pending {
		node := l.nodeOf(p)
		ok, known := up[node]
		if !known {
			_, err := l.client.NodeToServer(node)
			ok = err == nil
			up[node] = ok
		}
		if ok && len(l.readded) < maxReadd {
			host, metric := seriesOf(p.id)
			switch err := l.rec.Add(host, metric, time.UnixMicro(p.micros), float64(p.id)); {
			case err == nil:
				l.readded = append(l.readded, p)
				continue
			case !errors.Is(err, federated.ErrBufferFull):
				l.t.Errorf("adding a failed point again: %v", err)
			}
		}
		waiting = append(waiting, p)
	}
	l.pending = waiting
	l.retried += len(l.readded)
}

// settle counts each point acknowledged, unless one of the failed node sets
// names its node, in which case it is to be added again.
func (l *load) settle(points []point, failed ...map[string]bool) {
	for _, p := range points {
		for int(p.id) >= len(l.stamps) {
			l.stamps = append(l.stamps, 0)
			l.acked = append(l.acked, false)
		}
		l.stamps[p.id] = p.micros
		if slices.ContainsFunc(failed, func(nodes map[string]bool) bool { return len(nodes) > 0 && nodes[l.nodeOf(p)] }) {
			l.pending = append(l.pending, p)
			continue
		}
		if !l.acked[p.id] {
			l.acked[p.id] = true
			l.ackedN++
		}
	}
}

// keyOf returns the metric key of a point.
func (l *load) keyOf(p point) string {
	host, metric := seriesOf(p.id)
	key, err := l.client.MetricKey(time.UnixMicro(p.micros), host, metric)
	if err != nil {
		l.t.Fatalf("MetricKey: %v", err)
	}
	return key
}

// nodeOf returns the node of a point's key.
func (l *load) nodeOf(p point) string {
	sd := seriesDay{p.id % numSeries, p.micros / microsPerDay}
	node, ok := l.nodes[sd]
	if !ok {
		node = l.client.KeyToNode(l.keyOf(p))
		l.nodes[sd] = node
	}
	return node
}

// attribute collects the nodes a Flush error names, and the errors that
// name none.
func attribute(err error, nodes map[string]bool, other *[]error) {
	switch e := err.(type) {
	case *federated.ServerError:
		nodes[e.Node] = true
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			attribute(inner, nodes, other)
		}
	case interface{ Unwrap() error }:
		attribute(e.Unwrap(), nodes, other)
	default:
		*other = append(*other, err)
	}
}

// A faultKind is what a fault does to its target.
type faultKind int

const (
	killServer     faultKind = iota // fence writers off, wait for replication, SIGKILL, restart empty
	pauseServer                     // SIGSTOP, then SIGCONT
	blackholeWrite                  // the writers' proxy forwards nothing
	blackholeSync                   // the syncers' proxy forwards nothing
	cutWrite                        // the writers' connections are reset, once or a few times
	cutSync                         // the syncers' connections are reset, once or a few times
	oneWayWrite                     // one direction of the writers' proxy is cut
	oneWaySync                      // one direction of the syncers' proxy is cut
	latencyWrite                    // the writers' proxy adds latency
	latencySync                     // the syncers' proxy adds latency
	restartSyncer                   // a host's syncer stops; a new one starts on the same servers
	isolateGroup                    // both writers' proxies of a group forward nothing
	faultKinds
)

var faultNames = [faultKinds]string{
	"SIGKILL + empty restart", "SIGSTOP/SIGCONT", "blackhole, writers' proxy", "blackhole, syncers' proxy",
	"connection resets, writers' proxy", "connection resets, syncers' proxy", "one-way cut, writers' proxy",
	"one-way cut, syncers' proxy", "latency, writers' proxy", "latency, syncers' proxy", "syncer restart",
	"writers cut off from a group",
}

// faultWeights make kills and pauses, the harshest faults, the most common.
var faultWeights = [faultKinds]int{4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2}

// fault is a planned fault. Every random choice is made when it is planned,
// from the seeded generator, so that a seed replays the same faults.
type fault struct {
	kind     faultKind
	target   sid             // the server; of restartSyncer only the host counts, of isolateGroup the group
	hold     time.Duration   // how long it lasts
	cuts     []time.Duration // of cutWrite and cutSync: when, within hold, to reset
	toServer bool            // of one-way cuts: cut the client-to-server direction, else the other
	latency  time.Duration
}

func (ft fault) String() string {
	switch ft.kind {
	case restartSyncer:
		return fmt.Sprintf("%s of host %c for %v", faultNames[ft.kind], 'a'+ft.target.host, ft.hold)
	case isolateGroup:
		return fmt.Sprintf("%s %s for %v", faultNames[ft.kind], nodeName(ft.target.group), ft.hold)
	case oneWayWrite, oneWaySync:
		return fmt.Sprintf("%s (to server: %t) on %s for %v", faultNames[ft.kind], ft.toServer, ft.target, ft.hold)
	}
	return fmt.Sprintf("%s on %s for %v", faultNames[ft.kind], ft.target, ft.hold)
}

// faultLog counts and lists the faults injected.
type faultLog struct {
	mu    sync.Mutex // guards the fields below
	done  map[string]int
	lines []string
}

func (fl *faultLog) add(name, line string) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.done[name]++
	fl.lines = append(fl.lines, line)
}

func (fl *faultLog) counts() map[string]int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return maps.Clone(fl.done)
}

func (fl *faultLog) total() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return len(fl.lines)
}

func (fl *faultLog) history() string {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return strings.Join(fl.lines, "\n")
}

// chaos plans faults from a seed and injects them, each in a goroutine of
// its own, at most one at a time per replica group and per host's syncer.
type chaos struct {
	t       *testing.T
	f       *fleet
	l       *load
	syncers [hosts]*hostSyncer
	log     *faultLog
	rng     *rand.Rand // used by run alone
	began   time.Time

	groupFree [groups]chan struct{} // holds a token while the group has no fault
	hostFree  [hosts]chan struct{}  // holds a token while the host's syncer is left alone
	wg        sync.WaitGroup        // the faults under way
}

func newChaos(t *testing.T, f *fleet, l *load, syncers [hosts]*hostSyncer, log *faultLog, seed uint64) *chaos {
	c := &chaos{t: t, f: f, l: l, syncers: syncers, log: log, rng: rand.New(rand.NewPCG(seed, seed>>1|1)), began: time.Now()}
	for _, tokens := range [][]chan struct{}{c.groupFree[:], c.hostFree[:]} {
		for i := range tokens {
			tokens[i] = make(chan struct{}, 1)
			tokens[i] <- struct{}{}
		}
	}
	return c
}

func (c *chaos) plan() fault {
	total := 0
	for _, w := range faultWeights {
		total += w
	}
	kind, n := faultKind(0), c.rng.IntN(total)
	for ; n >= faultWeights[kind]; kind++ {
		n -= faultWeights[kind]
	}
	ft := fault{
		kind:   kind,
		target: sid{c.rng.IntN(hosts), c.rng.IntN(groups)},
		hold:   time.Duration(500+c.rng.IntN(2500)) * time.Millisecond,
	}
	switch kind {
	case cutWrite, cutSync:
		for range 1 + c.rng.IntN(3) {
			ft.cuts = append(ft.cuts, time.Duration(c.rng.Int64N(int64(ft.hold))))
		}
		slices.Sort(ft.cuts)
	case oneWayWrite, oneWaySync:
		ft.toServer = c.rng.IntN(2) == 0
	case latencyWrite, latencySync:
		ft.latency = time.Duration(20+c.rng.IntN(180)) * time.Millisecond
	case restartSyncer:
		ft.hold = time.Duration(c.rng.IntN(1000)) * time.Millisecond
	case isolateGroup:
		// Longer than a write's two tries: a shorter blackhole only delays
		// writes, which go through when it lifts.
		ft.hold = 2*commandTimeout + time.Duration(c.rng.IntN(2000))*time.Millisecond
	}
	return ft
}

// run plans faults and starts each once its group (or host) is free, until
// ctx ends; the faults under way then undo themselves.
func (c *chaos) run(ctx context.Context) {
	for sleep(ctx, time.Duration(100+c.rng.IntN(700))*time.Millisecond) {
		ft := c.plan()
		token := c.groupFree[ft.target.group]
		if ft.kind == restartSyncer {
			token = c.hostFree[ft.target.host]
		}
		select {
		case <-ctx.Done():
			return
		case <-token:
		}
		c.wg.Go(func() {
			defer func() { token <- struct{}{} }()
			at := time.Since(c.began)
			name := c.inject(ctx, ft)
			c.log.add(name, fmt.Sprintf("%9v %s", at.Round(time.Millisecond), ft))
		})
	}
}

// inject runs one fault and undoes it, and returns the name it counts
// under.
func (c *chaos) inject(ctx context.Context, ft fault) string {
	name := faultNames[ft.kind]
	s := ft.target
	server, proxy := c.f.servers[s.host][s.group], c.f.wproxy[s.host][s.group]
	switch ft.kind {
	case blackholeSync, cutSync, oneWaySync, latencySync:
		proxy = c.f.sproxy[s.host][s.group]
	}
	switch ft.kind {
	case killServer:
		return c.kill(ctx, ft)
	case pauseServer:
		if err := server.Pause(); err != nil {
			c.t.Errorf("pause %s: %v", s, err)
			return name
		}
		sleep(ctx, ft.hold)
		if err := server.Resume(); err != nil {
			c.t.Errorf("resume %s: %v", s, err)
		}
	case blackholeWrite, blackholeSync:
		proxy.Blackhole(true)
		sleep(ctx, ft.hold)
		proxy.Heal()
	case cutWrite, cutSync:
		start := time.Now()
		for _, at := range ft.cuts {
			if !sleep(ctx, at-time.Since(start)) {
				break
			}
			proxy.CutAll()
		}
	case oneWayWrite, oneWaySync:
		proxy.CutDirection(ft.toServer, !ft.toServer)
		sleep(ctx, ft.hold)
		proxy.Heal()
		if ft.toServer {
			return name + " (to server)"
		}
		return name + " (to client)"
	case latencyWrite, latencySync:
		proxy.SetLatency(ft.latency)
		sleep(ctx, ft.hold)
		proxy.Heal()
	case isolateGroup:
		// No server is faulty, but the writers reach neither: the group's
		// writes fail (fast, once both are marked down) and are retried.
		other := c.f.wproxy[s.peer().host][s.group]
		proxy.Blackhole(true)
		other.Blackhole(true)
		sleep(ctx, ft.hold)
		proxy.Heal()
		other.Heal()
	case restartSyncer:
		h := c.syncers[s.host]
		h.stop()
		sleep(ctx, ft.hold)
		if err := h.start(); err != nil {
			c.t.Errorf("restarting the syncer of host %c: %v", 'a'+s.host, err)
		}
	}
	return name
}

// kill kills a server without losing an acknowledged point. It fences the
// writers off the server (new connections reset, open ones cut), so that
// the server acknowledges nothing more; waits until the server's peer
// holds every member the server holds; SIGKILLs it; and restarts it,
// empty, after the hold. Writers whose current server it was fail over.
func (c *chaos) kill(ctx context.Context, ft fault) string {
	s := ft.target
	server, wp := c.f.servers[s.host][s.group], c.f.wproxy[s.host][s.group]
	name := faultNames[ft.kind] + " (standby)"
	if cur, err := c.l.client.NodeToServer(nodeName(s.group)); err == nil && cur == wp.Addr() {
		name = faultNames[ft.kind] + " (current)"
	}
	wp.DropNew(true)
	wp.CutAll()
	defer wp.DropNew(false)
	switch missing, err := waitReplicated(ctx, c.f.direct[s.host][s.group], c.f.direct[s.peer().host][s.group]); {
	case ctx.Err() != nil:
		return faultNames[ft.kind] + " (not done: the run ended first)"
	case err != nil:
		c.t.Errorf("kill %s: its peer still lacks %d of its members: %v", s, missing, err)
		return faultNames[ft.kind] + " (not done)"
	}
	if err := server.Kill(); err != nil {
		c.t.Errorf("kill %s: %v", s, err)
	}
	sleep(ctx, ft.hold)
	if err := server.Restart(); err != nil {
		c.t.Errorf("restart %s: %v", s, err)
	}
	return name
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// metricMembers reads every member of every metric key of a server.
func metricMembers(ctx context.Context, rc *redis.Client) (map[string][]string, error) {
	var keys []string
	iter := rc.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if _, _, _, err := federated.ParseMetricKey(iter.Val()); err == nil {
			keys = append(keys, iter.Val()) // not the journal, the horizon or the cursors
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(keys))
	for batch := range slices.Chunk(keys, 200) {
		pipe := rc.Pipeline()
		cmds := make([]*redis.StringSliceCmd, len(batch))
		for i, k := range batch {
			cmds[i] = pipe.ZRange(ctx, k, 0, -1)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for i, k := range batch {
			out[k] = cmds[i].Val()
		}
	}
	return out, nil
}

// waitReplicated waits until to holds every member that from holds, and
// returns how many it still lacks when it gives up. It reads from once:
// fenced off the writers, from only gains what the syncers copy from to.
func waitReplicated(ctx context.Context, from, to *redis.Client) (int, error) {
	deadline := time.Now().Add(settleTimeout)
	var want map[string][]string
	var err error
	for want, err = metricMembers(ctx, from); err != nil; want, err = metricMembers(ctx, from) {
		if time.Now().After(deadline) || !sleep(ctx, 250*time.Millisecond) {
			return -1, err
		}
	}
	missing := 0
	for {
		missing = 0
		pipe := to.Pipeline()
		cmds := make(map[string]*redis.FloatSliceCmd, len(want))
		for key, members := range want {
			cmds[key] = pipe.ZMScore(ctx, key, members...)
		}
		if _, err = pipe.Exec(ctx); err == nil {
			for key, cmd := range cmds {
				// A member's score is its timestamp, never 0; 0 is "none".
				lacking := want[key][:0]
				for i, score := range cmd.Val() {
					if score == 0 {
						lacking = append(lacking, want[key][i])
					}
				}
				if want[key] = lacking; len(lacking) == 0 {
					delete(want, key)
				}
				missing += len(lacking)
			}
			if missing == 0 {
				return 0, nil
			}
		}
		if time.Now().After(deadline) {
			return missing, fmt.Errorf("not within %v (last error: %v)", settleTimeout, err)
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return missing, ctx.Err()
		}
	}
}

// verification is what the final read of every server found.
type verification struct {
	members             int // members read, all servers
	lost, missingCopies int
	unknown, misplaced  int
	examples            []string
}

// verify reads every member of every server, checks that each is a point
// the writers added, in its key, and that each acknowledged point is on
// both servers of its group.
func verify(ctx context.Context, t *testing.T, f *fleet, l *load) verification {
	t.Helper()
	seriesIndex := make(map[string]int64, numSeries)
	for s := range int64(numSeries) {
		host, metric := seriesOf(s)
		seriesIndex[host+":"+metric] = s
	}
	var v verification
	var present [hosts][groups][]bool
	for h := range hosts {
		for g := range groups {
			present[h][g] = make([]bool, len(l.stamps))
			all, err := metricMembers(ctx, f.direct[h][g])
			if err != nil {
				t.Fatalf("reading %s: %v", sid{h, g}, err)
			}
			for key, members := range all {
				period, host, metric, err := federated.ParseMetricKey(key)
				series, known := seriesIndex[host+":"+metric]
				switch {
				case err != nil || !known:
					v.unknown += len(members)
					continue
				case l.client.KeyToNode(key) != nodeName(g):
					v.misplaced += len(members)
					continue
				}
				day := period.UnixMicro() / microsPerDay
				for _, m := range members {
					v.members++
					at, value, err := federated.ParseMember(m)
					id := int64(value)
					if err != nil || float64(id) != value || id < 0 || id >= int64(len(l.stamps)) {
						v.unknown++
						continue
					}
					// The member is the point's: its series, day and time.
					if us := l.stamps[id]; us == 0 || id%numSeries != series || us/microsPerDay != day || at.UnixMicro() != us {
						v.unknown++
						continue
					}
					present[h][g][id] = true
				}
			}
		}
	}
	for id, acked := range l.acked {
		if !acked {
			continue
		}
		p := point{int64(id), l.stamps[id]}
		g, missing := groupOf(l.nodeOf(p)), 0
		for h := range hosts {
			if !present[h][g][id] {
				missing++
				if len(v.examples) < 10 {
					v.examples = append(v.examples, fmt.Sprintf("  point %d (key %s) missing on %s", id, l.keyOf(p), sid{h, g}))
				}
			}
		}
		if missing > 0 {
			v.lost++
			v.missingCopies += missing
		}
	}
	return v
}
