// Package torture_test is a soak test of the whole system under the
// conditions of a real fleet: four replica groups of two redis-server
// processes, one syncer per simulated host replicating them (passes only,
// no periodic anti-entropy), and a seeded random schedule of faults:
// SIGKILL with an empty restart, SIGSTOP and SIGCONT, blackholes,
// connection resets, one-way cuts, latency, syncer restarts, writers cut
// off from a whole group, and the writers' current server refusing writes
// (OOM, READONLY, BUSY, and LOADING after a restart from a snapshot), on
// the writers' and the syncers' network paths.
//
// The writers are of three kinds, writing the same keys:
//   - four goroutines adding points to one Recorder, flushed every 200ms,
//     with clocks that disagree: one 5 seconds behind the others, one that
//     steps back 10 seconds a third of the way in;
//   - four goroutines sharing another Recorder, each writing batches of its
//     own points with Write and writing a batch again until Write returns
//     nil;
//   - a writer that journals as the Perl module does, with its own clock in
//     whole seconds.
//
// At the end every fault is healed and the test checks that no
// acknowledged point was lost and that the passes alone made every
// replica equal: anti-entropy, run once at the end, must repair nothing.
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
// the SyncedTo of the peer's link from it is past the fence, checks that
// the peer then holds everything the server holds, and kills it, current
// or standby alike. A point acknowledged by a server that dies before the
// syncer copied it is lost by design; RELIABILITY.md says so.
// Writers cut off from both servers of a group is not a faulty server: the
// group's writes fail, fast, and the test adds them again.
package torture_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redfed/federated/metrics"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
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
	repaired                int64 // keys repaired by anti-entropy at the end
	passErrors              int64
	batchAcked, perlAcked   int64 // points of the batchers and of the Perl-style writer
	batchRetries            int   // Writes made again
	perlRetries             int   // Perl-style writes made again
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
	fmt.Fprintf(&b, "other writers: %d points of the batchers' Writes (%d Writes failed and were made again), %d Perl-style (%d writes made again)\n",
		s.batchAcked, s.batchRetries, s.perlAcked, s.perlRetries)
	fmt.Fprintf(&b, "flushes: %d, %d of them with a failed write; the longest took %v\n",
		s.flushes, s.failingFlushes, s.longestFlush.Round(time.Millisecond))
	fmt.Fprintf(&b, "lost: %d acknowledged points (%d copies); %d unknown and %d misplaced members among %d read\n",
		s.lost, s.missingCopies, s.unknown, s.misplaced, s.members)
	running := "not within 10s"
	if s.syncersConverged > 0 {
		running = s.syncersConverged.Round(time.Millisecond).String()
	}
	fmt.Fprintf(&b, "converged: the running syncers in %s; after explicit anti-entropy in %v (%d keys repaired by it); %d failed syncer passes",
		running, s.converged.Round(time.Millisecond), s.repaired, s.passErrors)
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
	l := newLoad(t, f, set.rate, set.duration)
	defer l.close(t)
	shared, err := l.store.NewRecorder(metrics.RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := shared.Close(); err != nil {
			t.Errorf("closing the batchers' recorder: %v", err)
		}
	}()
	others := &extra{}
	defer func() {
		others.mu.Lock()
		defer others.mu.Unlock()
		sum.batchAcked, sum.batchRetries = int64(len(others.acked)-others.perl), others.batches
		sum.perlAcked, sum.perlRetries = int64(others.perl), others.perlErr
	}()
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
	var loops, extras sync.WaitGroup
	for w := range writers {
		loops.Go(func() { l.write(loadCtx, w) })
	}
	loops.Go(func() { ch.run(loadCtx) })
	for range batchers {
		extras.Go(func() { l.batcher(loadCtx, shared, max(set.rate/4, batchers*batchSize), others) })
	}
	extras.Go(func() { l.perlWriter(loadCtx, max(set.rate/20, 1), others) })
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
	extras.Wait() // the other writers' last points are acknowledged
	l.settleExtra(t, others)
	st := l.rec.Stats()
	if st.Buffered != 0 || st.Added != st.Written+st.Failed {
		t.Errorf("Recorder stats after the last Flush: %+v; want nothing buffered and every point added written or failed", st)
	}
	if st.Failed != l.reported.Load() {
		t.Errorf("the Recorder counts %d failed points, OnError saw %d", st.Failed, l.reported.Load())
	}
	if added, tried := l.added.Load(), len(others.tried); int64(l.ackedN) != added+int64(tried) {
		t.Errorf("acknowledged %d distinct points, want every one of the %d added and the %d the other writers tried",
			l.ackedN, added, tried)
	}

	// Convergence: the running syncers (passes, and anti-entropy every 10s),
	// then anti-entropy on demand, until Check finds no divergent key.
	checker := newClient(t, f.directCfg)
	defer checker.Close()
	checkerStore, err := metrics.New(checker)
	if err != nil {
		t.Fatal(err)
	}
	settled := time.Now()
	if waitChecked(ctx, checkerStore, 10*time.Second) {
		sum.syncersConverged = time.Since(settled)
	}
	if report, err := checkerStore.Check(ctx, metrics.CheckOptions{MaxDiffs: 5}); err == nil && !report.OK() {
		for _, g := range report.Groups {
			for _, d := range g.Diffs {
				t.Logf("before anti-entropy, %s differs: %v; %s", d.Key, d.Cards, memberDiff(ctx, f, groupOf(g.Node), d.Key))
			}
		}
	}
	for _, s := range syncers {
		repaired, err := s.antiEntropy(ctx)
		sum.repaired += repaired
		if err != nil {
			t.Errorf("anti-entropy: %v", err)
		}
	}
	if !waitChecked(ctx, checkerStore, settleTimeout) {
		report, err := checkerStore.Check(ctx, metrics.CheckOptions{MaxDiffs: 3})
		t.Fatalf("Check after anti-entropy: %d divergent keys (err %v): %+v", report.Divergent, err, report.Groups)
	}
	sum.converged = time.Since(settled)
	for _, s := range syncers {
		st := s.stats()
		for _, p := range st.Peers {
			sum.passErrors += p.Errors
		}
	}
	if sum.repaired > 0 {
		t.Errorf("anti-entropy repaired %d keys: the syncers' passes alone left replicas apart", sum.repaired)
	}

	v := verify(ctx, t, f, l)
	sum.lost, sum.missingCopies, sum.unknown, sum.misplaced, sum.members = v.lost, v.missingCopies, v.unknown, v.misplaced, v.members
	if v.lost > 0 {
		t.Errorf("lost %d acknowledged points (%d copies), for instance:\n%s", v.lost, v.missingCopies, strings.Join(v.examples, "\n"))
	}
	if v.unknown > 0 || v.misplaced > 0 {
		t.Errorf("%d members that no writer wrote, and %d on a server outside their key's group", v.unknown, v.misplaced)
	}
}
