package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/faultproxy"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

func TestMain(m *testing.M) {
	redis.SetLogger(discard{})
	goleak.VerifyTestMain(m)
}

type discard struct{}

func (discard) Printf(context.Context, string, ...any) {}

func quiet() federated.Options {
	return federated.Options{
		CommandTimeout:    2 * time.Second,
		BaseRetryInterval: 50 * time.Millisecond,
		MaxRetryInterval:  200 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	}
}

// groupConfig makes one replica group of the servers.
func groupConfig(servers []*redistest.Server) federated.Config {
	return federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: quiet(),
	}
}

func newClient(t testing.TB, cfg federated.Config) *federated.Client {
	t.Helper()
	c, err := federated.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startSyncer runs a syncer until the test ends (or stop is called).
func startSyncer(t *testing.T, c *federated.Client, local []string, opts syncer.Options) (s *syncer.Syncer, stop func()) {
	t.Helper()
	s, err := syncer.NewFromClient(c, local, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return s, stop
}

// direct returns a plain client of one server, one per test and address.
func direct(t testing.TB, addr string) *redis.Client {
	t.Helper()
	directMu.Lock()
	defer directMu.Unlock()
	key := t.Name() + " " + addr
	if rc, ok := directs[key]; ok {
		return rc
	}
	rc := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	directs[key] = rc
	t.Cleanup(func() {
		directMu.Lock()
		delete(directs, key)
		directMu.Unlock()
		_ = rc.Close()
	})
	return rc
}

var (
	directMu sync.Mutex
	directs  = map[string]*redis.Client{}
)

// members returns every member of every metric key on a server.
func members(t *testing.T, addr string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	rc := direct(t, addr)
	out := map[string]bool{}
	keys, err := rc.Keys(ctx, "*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		if _, _, _, err := federated.ParseMetricKey(k); err != nil {
			continue // the journal, the horizon, the cursors
		}
		ms, err := rc.ZRange(ctx, k, 0, -1).Result()
		require.NoError(t, err)
		for _, m := range ms {
			out[k+" "+m] = true
		}
	}
	return out
}

// writePoints writes n points of host, stamped now, to one server with
// Merge, as a client whose current server it is would.
func writePoints(t *testing.T, c *federated.Client, addr, host string, n int) {
	t.Helper()
	now := time.Now()
	base := float64(now.UnixMicro()) / 1e6
	var updates []journal.KeyMembers
	for i := range n {
		key, err := metricKey(now, host, fmt.Sprintf("m%d", i%5))
		require.NoError(t, err)
		ts := strconv.FormatFloat(base+float64(i)/1000, 'f', -1, 64)
		updates = append(updates, journal.KeyMembers{Key: key, Members: []string{ts + ":" + strconv.Itoa(i)}})
	}
	res, err := merge(context.Background(), c, addr, updates)
	require.NoError(t, err)
	require.Empty(t, res.Failed)
}

// converged waits until every server holds the same members, and returns
// them.
func converged(t *testing.T, servers []string, within time.Duration) map[string]bool {
	t.Helper()
	var want map[string]bool
	require.Eventually(t, func() bool {
		want = members(t, servers[0])
		for _, s := range servers[1:] {
			got := members(t, s)
			if len(got) != len(want) {
				return false
			}
			for m := range want {
				if !got[m] {
					return false
				}
			}
		}
		return true
	}, within, 20*time.Millisecond)
	return want
}

func TestReplicatesWithinASecond(t *testing.T) {
	for _, size := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d servers", size), func(t *testing.T) {
			servers := redistest.StartN(t, size)
			addrs := redistest.Addrs(servers)
			c := newClient(t, groupConfig(servers))
			startSyncer(t, c, addrs, syncer.Options{})

			for i, addr := range addrs {
				start := time.Now()
				writePoints(t, c, addr, fmt.Sprintf("writer%d", i), 100)
				all := converged(t, addrs, time.Second)
				t.Logf("points written to %s reached every server in %v", addr, time.Since(start))
				require.Len(t, all, 100*(i+1))
			}
		})
	}
}

func TestTransitiveThroughAnIntermediary(t *testing.T) {
	servers := redistest.StartN(t, 3)
	a, b, cc := servers[0].Addr(), servers[1].Addr(), servers[2].Addr()
	c := newClient(t, groupConfig(servers))
	// B pulls from A, C pulls from B: A and C never talk.
	s, _ := startSyncer(t, c, []string{b, cc}, syncer.Options{Links: map[string][]string{b: {a}, cc: {b}}})
	writePoints(t, c, a, "origin", 200)
	all := converged(t, []string{a, b, cc}, 2*time.Second)
	require.Len(t, all, 200)
	for _, p := range s.Stats().Peers {
		assert.NotEqual(t, [2]string{cc, a}, [2]string{p.Local, p.Peer}, "C must not pull from A")
	}
}

// dirty returns a server's count of changes to its data.
func dirty(t *testing.T, addr string) int64 {
	t.Helper()
	info, err := direct(t, addr).Info(context.Background(), "persistence").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "rdb_changes_since_last_save:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no rdb_changes_since_last_save in INFO")
	return 0
}

func TestIdleAfterConvergenceWritesNothing(t *testing.T) {
	servers := redistest.StartN(t, 3)
	addrs := redistest.Addrs(servers)
	c := newClient(t, groupConfig(servers))
	s, _ := startSyncer(t, c, addrs, syncer.Options{OverlapInterval: 200 * time.Millisecond})
	for i, addr := range addrs {
		writePoints(t, c, addr, fmt.Sprintf("w%d", i), 300)
	}
	converged(t, addrs, 2*time.Second)
	// Let the passes that follow the last change run, then measure.
	settled := time.Now()
	require.Eventually(t, func() bool {
		for _, p := range s.Stats().Peers {
			if !p.SyncedTo.After(settled) {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond)
	before := make([]int64, len(addrs))
	for i, addr := range addrs {
		before[i] = dirty(t, addr)
	}
	passes := func() (n int64) {
		for _, p := range s.Stats().Peers {
			n += p.Passes
		}
		return n
	}
	p0 := passes()
	require.Eventually(t, func() bool { return passes() > p0+30 }, 5*time.Second, 20*time.Millisecond)
	for i, addr := range addrs {
		assert.Equal(t, before[i], dirty(t, addr), "server %s changed while idle", addr)
	}
	t.Logf("%d idle passes wrote nothing", passes()-p0)
}

// Two syncers that pull the same peer into the same server (a deploy
// that started the new one before the old one stopped) each take the
// other's saves for what they are, not for a server that lost its data:
// they took turns pulling the peer from its first change again, about 7
// times a second, and SyncedTo went back to zero each time.
func TestTwoSyncersOfOneServer(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c, c2 := newClient(t, groupConfig(servers)), newClient(t, groupConfig(servers))
	for i := range 50 {
		writePoints(t, c, b, fmt.Sprintf("backlog%d", i), 20)
	}
	// Passes a few milliseconds apart: the two syncers' saves race.
	opts := syncer.Options{NoAntiEntropy: true, PollInterval: 2 * time.Millisecond}
	s1, _ := startSyncer(t, c, []string{a}, opts)
	converged(t, []string{a, b}, 10*time.Second)
	s2, _ := startSyncer(t, c2, []string{a}, opts)
	for range 40 {
		writePoints(t, c, b, "live", 20)
		time.Sleep(25 * time.Millisecond)
	}
	converged(t, []string{a, b}, 5*time.Second)
	p1, p2 := linkStats(t, s1, a, b), linkStats(t, s2, a, b)
	assert.Zero(t, p1.Resets+p2.Resets, "no link pulled the peer from the start again")
	assert.Positive(t, p1.Contended+p2.Contended, "the other syncer's saves are counted")
}

// scriptHook is a hook that passes each call of script, with what it
// returned, to after, and returns what after returns.
type scriptHook struct {
	script *redis.Script
	after  func(cmd redis.Cmder, err error) error
}

func (h scriptHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); len(args) > 1 && args[1] == h.script.Hash() {
			return h.after(cmd, err)
		}
		return err
	}
}

// lostSaveReplies lets the local server make the next cursor saves of a
// syncer, armed at a time, and then fails each as a reply lost on its
// way back would.
type lostSaveReplies struct{ armed atomic.Int32 }

// hook returns the hook that does it.
func (h *lostSaveReplies) hook() redis.Hook {
	return scriptHook{script: journal.SaveCursorScript, after: func(cmd redis.Cmder, err error) error {
		if err == nil && h.armed.Add(-1) >= 0 {
			err = errors.New("the reply was lost")
			cmd.SetErr(err)
		}
		return err
	}}
}

// A cursor save that the local server made but whose reply was lost is
// the link's own: it is not taken for a server that lost its data (nor
// for another syncer's), and the link goes on from it.
func TestCursorSaveWhoseReplyWasLost(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	lost := &lostSaveReplies{}
	c.AddHook(lost.hook())
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{NoAntiEntropy: true})
	writePoints(t, c, b, "first", 20)
	converged(t, []string{a, b}, 5*time.Second)
	lost.armed.Store(3)
	for i := range 5 {
		writePoints(t, c, b, fmt.Sprintf("next%d", i), 20)
		converged(t, []string{a, b}, 5*time.Second)
	}
	require.Negative(t, lost.armed.Load(), "every armed save was made and its reply lost")
	st := linkStats(t, s, a, b)
	assert.Zero(t, st.Resets, "no pull from the start again")
	assert.Zero(t, st.Contended, "no other syncer")
}

// A save's number written by hand in another form ("007") is compared as
// written: the link's saves were refused for good, each pass merging its
// first page again with the cursor held where it was.
func TestCursorSeqWrittenByHand(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{NoAntiEntropy: true})
	writePoints(t, c, b, "first", 10)
	converged(t, []string{a, b}, 5*time.Second)
	require.NoError(t, direct(t, a).HSet(context.Background(), journal.CursorKey, b+journal.SeqSuffix, "007").Err())
	before := linkStats(t, s, a, b).Cursor
	time.Sleep(10 * time.Millisecond)
	writePoints(t, c, b, "next", 10)
	converged(t, []string{a, b}, 5*time.Second)
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).Cursor > before }, 5*time.Second, 10*time.Millisecond,
		"the cursor moves past the next write: %+v", linkStats(t, s, a, b))
	assert.Zero(t, linkStats(t, s, a, b).Errors)
}

func TestRestartResumesFromCursor(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	_, stop := startSyncer(t, c, []string{b}, syncer.Options{})
	writePoints(t, c, a, "big", 2000)
	converged(t, []string{a, b}, 3*time.Second)
	stop()

	writePoints(t, c, a, "late", 50)
	s2, _ := startSyncer(t, c, []string{b}, syncer.Options{})
	converged(t, []string{a, b}, 2*time.Second)
	// The link counts a page once it has settled it, a moment after the
	// merge that made the servers equal.
	require.Eventually(t, func() bool { return s2.Stats().Peers[0].Added >= 50 }, 2*time.Second, 5*time.Millisecond)
	st := s2.Stats().Peers[0]
	t.Logf("after restart: %d keys fetched, %d members added (2,000 points before, 50 since)", st.Keys, st.Added)
	assert.Equal(t, int64(50), st.Added)
	assert.LessOrEqual(t, st.Keys, int64(10), "only the keys changed since the cursor (and the overlap) are fetched")
}

func TestKilledServerComesBackEmptyAndIsRestored(t *testing.T) {
	servers := redistest.StartN(t, 2)
	addrs := redistest.Addrs(servers)
	c := newClient(t, groupConfig(servers))
	startSyncer(t, c, addrs, syncer.Options{})
	r, err := newStore(t, c).NewRecorder(metrics.RecorderOptions{BatchSize: 200, FlushInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	defer r.Close()

	first, err := c.NodeToServer("group")
	require.NoError(t, err)
	var victim *redistest.Server
	for _, s := range servers {
		if s.Addr() == first {
			victim = s
		}
	}
	base := time.Now()
	for i := range 6000 {
		if i == 3000 {
			require.NoError(t, victim.Kill())
		}
		if i == 4500 {
			require.NoError(t, victim.Restart()) // empty: no persistence
		}
		require.NoError(t, r.Add(context.Background(), fmt.Sprintf("h%d", i%30), "load", base.Add(time.Duration(i)*time.Millisecond), float64(i)))
		if i%500 == 0 {
			time.Sleep(5 * time.Millisecond) // a sustained load, not one burst
		}
	}
	require.NoError(t, r.Flush(context.Background()))
	st := r.Stats()
	require.Zero(t, st.Failed)
	// Points acknowledged by the victim before it died are gone with it;
	// every acknowledged point is on the survivor, and the syncers bring
	// the victim back to the same.
	all := converged(t, addrs, 10*time.Second)
	t.Logf("%d points acknowledged, %d on each server after the restart", st.Written, len(all))
	report, err := newStore(t, c).Check(context.Background(), metrics.CheckOptions{})
	require.NoError(t, err)
	assert.True(t, report.OK(), "check after the restore: %+v", report)
}

func TestDroppedPeriodStaysDropped(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	old := journal.KeyMembers{Key: "2026-11-20:h:cpu", Members: []string{fmt.Sprintf("%d:1", time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC).Unix())}}
	recent := journal.KeyMembers{Key: "2026-11-25:h:cpu", Members: []string{fmt.Sprintf("%d:1", time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC).Unix())}}
	for _, addr := range []string{a, b} {
		_, err := merge(ctx, c, addr, []journal.KeyMembers{old, recent})
		require.NoError(t, err)
	}
	// B is away while A drops the old days: B is a stale peer.
	require.NoError(t, servers[1].Pause())
	_, err := newStore(t, c).DropBefore(ctx, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	require.Error(t, err, "the paused server fails the drop")
	require.NoError(t, servers[1].Resume())
	require.Eventually(t, func() bool { return !c.IsServerDown(b) }, 5*time.Second, 20*time.Millisecond)

	// Only A's syncer runs: B stays stale.
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{})
	// B gets a change to its old key, so its journal names it again.
	_, err = merge(ctx, c, b, []journal.KeyMembers{{Key: old.Key, Members: []string{fmt.Sprintf("%d:2", time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC).Unix())}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, p := range s.Stats().Peers {
			if p.Local == a && p.Skipped > 0 {
				return true
			}
		}
		return false
	}, 3*time.Second, 20*time.Millisecond, "A's syncer sees the old key and skips it")
	n, err := direct(t, a).Exists(ctx, old.Key).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the dropped period did not come back to A")

	// B's own syncer gives B its group's horizon, which removes the old key
	// there too, without another DropBefore.
	startSyncer(t, c, []string{b}, syncer.Options{})
	require.Eventually(t, func() bool { return direct(t, b).Exists(ctx, old.Key).Val() == 0 }, 3*time.Second, 20*time.Millisecond,
		"B's syncer drops the old period on B")
	h, err := journal.Horizon(ctx, c, b, journal.KeysOf("journal"))
	require.NoError(t, err)
	assert.Equal(t, "2026-11-24", h)
	for _, addr := range []string{a, b} {
		n, err := direct(t, addr).Exists(ctx, old.Key).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "server %s", addr)
		n, err = direct(t, addr).Exists(ctx, recent.Key).Result()
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "server %s keeps the recent day", addr)
	}
}

func TestBadOptions(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, groupConfig(servers))
	_, err := syncer.NewFromClient(c, nil, syncer.Options{})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	_, err = syncer.NewFromClient(c, []string{"127.0.0.1:1"}, syncer.Options{})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	_, err = syncer.NewFromClient(c, []string{servers[0].Addr()}, syncer.Options{Links: map[string][]string{servers[0].Addr(): {servers[0].Addr()}}})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	_, err = syncer.NewFromClient(c, []string{servers[0].Addr()}, syncer.Options{Links: map[string][]string{servers[1].Addr(): {servers[0].Addr()}}})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)

	// Twice the same link would make two loops fight over one cursor.
	a, b := servers[0].Addr(), servers[1].Addr()
	_, err = syncer.NewFromClient(c, []string{a, a}, syncer.Options{})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.ErrorContains(t, err, "local server "+a+" named twice")
	_, err = syncer.NewFromClient(c, []string{a}, syncer.Options{Links: map[string][]string{a: {b, b}}})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.ErrorContains(t, err, "peer "+b+" of "+a+" named twice")

	// A negative option is refused, not read as the default or as "off".
	_, err = syncer.NewFromClient(c, []string{a}, syncer.Options{AntiEntropyInterval: -time.Second})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.ErrorContains(t, err, "syncer.Options.AntiEntropyInterval is negative (-1s)")
	_, err = syncer.NewFromClient(c, []string{a}, syncer.Options{Batch: -1})
	assert.ErrorContains(t, err, "syncer.Options.Batch is negative")
	// An interval below its floor (1ns, a slip of the unit) would spin.
	_, err = syncer.NewFromClient(c, []string{a}, syncer.Options{PollInterval: time.Nanosecond})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.ErrorContains(t, err, "syncer.Options.PollInterval is 1ns, below its floor of 1ms")
	_, err = syncer.NewFromClient(c, []string{a}, syncer.Options{OverlapInterval: time.Millisecond})
	assert.ErrorContains(t, err, "syncer.Options.OverlapInterval is 1ms, below its floor of 10ms")
	_, err = syncer.NewFromClient(c, []string{a}, syncer.Options{AntiEntropyFull: time.Millisecond})
	assert.ErrorContains(t, err, "syncer.Options.AntiEntropyFull is 1ms, below its floor of 100ms")
}

// Close stops a running Run and waits for it; Run after Close refuses, and
// so does a second Run while one runs.
func TestCloseStopsRun(t *testing.T) {
	servers := redistest.StartN(t, 2)
	s, err := syncer.New(groupConfig(servers), redistest.Addrs(servers), syncer.Options{})
	require.NoError(t, err)
	before := goleak.IgnoreCurrent()
	returned := make(chan error, 1)
	go func() { returned <- s.Run(context.Background()) }()
	require.Eventually(t, func() bool { return s.Stats().Peers[0].Passes > 0 }, 2*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, s.Run(context.Background()), syncer.ErrRunning)

	require.NoError(t, s.Close())
	// When Close returns, none of Run's goroutines is left; only the one
	// above may still be on its way to send Run's result.
	goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/redfed/federated/syncer_test.TestCloseStopsRun.func1"))
	select {
	case err := <-returned:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	require.ErrorIs(t, s.Run(context.Background()), syncer.ErrClosed)
	require.NoError(t, s.Close(), "a second Close")
}

// A syncer whose client closes stops: Run returns federated.ErrClosed,
// with none of its goroutines left, instead of failing pass after pass.
func TestRunEndsWhenTheClientCloses(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c, err := federated.New(groupConfig(servers))
	require.NoError(t, err)
	s, err := syncer.NewFromClient(c, redistest.Addrs(servers), syncer.Options{})
	require.NoError(t, err)
	before := goleak.IgnoreCurrent()
	returned := make(chan error, 1)
	go func() { returned <- s.Run(context.Background()) }()
	require.Eventually(t, func() bool { return s.Stats().Peers[0].Passes > 0 }, 2*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Close())
	select {
	case err := <-returned:
		require.ErrorIs(t, err, federated.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Run still runs 5s after its client closed")
	}
	goleak.VerifyNone(t, before)
	require.NoError(t, s.Close())
}

// A local server that cannot take writes (it is full) fails the passes
// that merge into it, and nothing is taken as merged: once it has room,
// the syncer alone, without anti-entropy, gives it every point.
func TestFullLocalServerGetsEverythingOnceItHasRoom(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{NoAntiEntropy: true})
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).Passes > 0 }, 2*time.Second, 10*time.Millisecond)

	require.NoError(t, direct(t, a).ConfigSet(ctx, "maxmemory", "1").Err(), "a full server")
	writePoints(t, c, b, "web1", 200)
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).Errors >= 3 }, 5*time.Second, 10*time.Millisecond)
	st := linkStats(t, s, a, b)
	assert.Contains(t, st.LastError, "OOM")
	assert.WithinDuration(t, time.Now(), st.LastErrorAt, 5*time.Second, "when the last pass failed")
	assert.True(t, st.LastSuccess.Before(st.LastErrorAt), "failing: last success %v before last error %v", st.LastSuccess, st.LastErrorAt)
	assert.Empty(t, members(t, a), "the full server took nothing")

	require.NoError(t, direct(t, a).ConfigSet(ctx, "maxmemory", "0").Err())
	all := converged(t, []string{a, b}, 2*time.Second)
	require.Len(t, all, 200)
	require.Eventually(t, func() bool {
		st := linkStats(t, s, a, b)
		return st.LastSuccess.After(st.LastErrorAt)
	}, 2*time.Second, 10*time.Millisecond, "a pass succeeds once the server has room")
}

// A peer that is full is still read: reading its changes writes nothing.
func TestFullPeerIsStillPulled(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	for i := range 600 { // 3,000 keys: three pages of the journal
		writePoints(t, c, b, fmt.Sprintf("web%d", i), 5)
	}
	require.NoError(t, direct(t, b).ConfigSet(context.Background(), "maxmemory", "1").Err())
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{NoAntiEntropy: true})
	all := converged(t, []string{a, b}, 5*time.Second)
	require.Len(t, all, 3000)
	assert.Zero(t, linkStats(t, s, a, b).Errors)
}

// A member on the peer whose timestamp Redis would refuse as a score does
// not hold up its key or the link: it is left out, the rest replicates.
func TestMemberRedisWouldRefuseIsLeftOut(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	key, err := metricKey(time.Now(), "web1", "m0")
	require.NoError(t, err)
	require.NoError(t, direct(t, b).ZAdd(ctx, key, redis.Z{Score: 1, Member: "1e-400:1"}).Err())
	writePoints(t, c, b, "web1", 10)
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{NoAntiEntropy: true})
	require.Eventually(t, func() bool { return len(members(t, a)) == 10 }, 2*time.Second, 10*time.Millisecond)
	assert.Zero(t, linkStats(t, s, a, b).Errors)
	assert.False(t, members(t, a)[key+" 1e-400:1"])
}

// A key that someone made another type on the local server cannot be
// merged: it is reported and passed, and the rest replicates. So too
// where the keys are fetched in pages, each larger than the bound.
func TestWrongTypeKeyIsPassed(t *testing.T) {
	t.Run("whole", testWrongTypeKeyIsPassed)
	t.Run("in pages", func(t *testing.T) {
		syncer.SetMaxFetchMembers(t, 6)
		testWrongTypeKeyIsPassed(t)
	})
}

func testWrongTypeKeyIsPassed(t *testing.T) {
	fedtest.SameDay(t, 30*time.Second) // the keys of several time.Now()s
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	broken, err := metricKey(time.Now(), "web1", "m0")
	require.NoError(t, err)
	require.NoError(t, direct(t, a).Set(ctx, broken, "someone's string", 0).Err())
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{NoAntiEntropy: true})

	writePoints(t, c, b, "web1", 100) // 20 points to each of m0 … m4
	require.Eventually(t, func() bool {
		for i := 1; i < 5; i++ {
			key, err := metricKey(time.Now(), "web1", fmt.Sprintf("m%d", i))
			require.NoError(t, err)
			if direct(t, a).ZCard(ctx, key).Val() != 20 {
				return false
			}
		}
		return true
	}, 2*time.Second, 10*time.Millisecond)
	// The pass reports the key once its merge is done.
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).LastError != "" }, 2*time.Second, 10*time.Millisecond)
	st := linkStats(t, s, a, b)
	assert.Contains(t, st.LastError, "WRONGTYPE")
	assert.Contains(t, st.LastError, broken)
	assert.WithinDuration(t, time.Now(), st.LastErrorAt, 5*time.Second, "when the key was reported")
	assert.Zero(t, st.Errors, "the passes went on")
	assert.Equal(t, "someone's string", direct(t, a).Get(ctx, broken).Val())
}

// A journalled key that someone made another type on the peer cannot be
// fetched: it is reported, not passed in silence, and the rest
// replicates.
func TestWrongTypeKeyOnThePeerIsReported(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	broken, err := metricKey(time.Now(), "web9", "m0")
	require.NoError(t, err)
	rb := direct(t, b)
	require.NoError(t, rb.HSet(ctx, broken, "f", "v").Err())
	require.NoError(t, rb.ZAdd(ctx, "journal", redis.Z{Score: float64(time.Now().Unix()), Member: broken}).Err())
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{NoAntiEntropy: true})
	writePoints(t, c, b, "web1", 10)
	require.Eventually(t, func() bool { return len(members(t, a)) == 10 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).LastError != "" }, 2*time.Second, 10*time.Millisecond)
	st := linkStats(t, s, a, b)
	assert.Contains(t, st.LastError, broken)
	assert.Contains(t, st.LastError, "another type")
	assert.Zero(t, st.Errors, "the passes went on")
	assert.Zero(t, direct(t, a).Exists(ctx, broken).Val())
}

func TestPartitionHealsToTheUnion(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	// The syncer reaches the servers through proxies; writers reach them
	// directly, so both sides keep taking writes while cut off.
	pa, err := faultproxy.New(a)
	require.NoError(t, err)
	defer pa.Close()
	pb, err := faultproxy.New(b)
	require.NoError(t, err)
	defer pb.Close()
	syncCfg := federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: []string{pa.Addr(), pb.Addr()}}},
		Options: quiet(),
	}
	syncCfg.Options.CommandTimeout = 300 * time.Millisecond
	sc := newClient(t, syncCfg)
	s, _ := startSyncer(t, sc, []string{pa.Addr(), pb.Addr()}, syncer.Options{})
	writers := newClient(t, groupConfig(servers))

	writePoints(t, writers, a, "before", 50)
	converged(t, []string{a, b}, 2*time.Second)

	pb.Blackhole(true)
	writePoints(t, writers, a, "side-a", 100)
	writePoints(t, writers, b, "side-b", 70)
	require.Eventually(t, func() bool { return sc.IsServerDown(pb.Addr()) }, 5*time.Second, 20*time.Millisecond,
		"the cut-off server is marked down")
	// Passes of both links fail while cut off.
	failed := linkStats(t, s, pa.Addr(), pb.Addr()).Errors
	require.Eventually(t, func() bool { return linkStats(t, s, pa.Addr(), pb.Addr()).Errors >= failed+2 }, 5*time.Second, 20*time.Millisecond)
	assert.Len(t, members(t, a), 150, "nothing crosses while cut off")
	assert.Len(t, members(t, b), 120)

	pb.Heal()
	all := converged(t, []string{a, b}, 5*time.Second)
	assert.Len(t, all, 220, "both sides end with the union")
	var errs int64
	for _, p := range s.Stats().Peers {
		errs += p.Errors
	}
	t.Logf("partition: %d failed passes while cut off, then converged", errs)
}

// A local server that restarts empty in the middle of a pass must not get
// the pass's cursor: the pass is abandoned and the peer pulled again from
// its first change, so that no key is left for anti-entropy.
func TestLocalServerRestartedDuringAPassIsPulledInFull(t *testing.T) {
	const keys = 15000
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	// The syncer reads A through 40ms of latency, so that a pass of many
	// batches takes long enough for B to restart in its middle.
	pa, err := faultproxy.New(a)
	require.NoError(t, err)
	defer pa.Close()
	pa.SetLatency(40 * time.Millisecond)
	cfg := federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: []string{pa.Addr(), b}}},
		Options: quiet(),
	}
	// Connections idle for 100ms are closed, so that the pass reaches the
	// restarted B on a new connection, without an error.
	cfg.Options.IdleTimeout = 100 * time.Millisecond
	sc := newClient(t, cfg)
	writers := newClient(t, groupConfig(servers))
	ctx := context.Background()

	updates := onePointEach(t, time.Now(), keys)
	for i := 0; i < keys; i += 100 { // many journal times, as from many flushes
		res, err := merge(ctx, writers, a, updates[i:i+100])
		require.NoError(t, err)
		require.EqualValues(t, 100, res.Added)
	}

	s, _ := startSyncer(t, sc, []string{b}, syncer.Options{NoAntiEntropy: true})
	rb := direct(t, b)
	require.Eventually(t, func() bool { return rb.DBSize(ctx).Val() >= keys/4 }, 20*time.Second, time.Millisecond)
	// Restart B while the pass waits for A, between two of its batches: the
	// pass goes on without an error from B. A's latency grows, and B is
	// restarted once the batch under way saved its cursor.
	pa.SetLatency(250 * time.Millisecond)
	saved := rb.HGet(ctx, journal.CursorKey, pa.Addr()).Val()
	require.Eventually(t, func() bool { return rb.HGet(ctx, journal.CursorKey, pa.Addr()).Val() != saved },
		10*time.Second, time.Millisecond)
	held := rb.DBSize(ctx).Val()
	require.NoError(t, servers[1].Restart()) // empty, in the middle of the pass
	pa.SetLatency(40 * time.Millisecond)
	t.Logf("B restarted holding %d of %d keys (with its journal and cursors)", held, keys)

	require.Eventually(t, func() bool { return rb.DBSize(ctx).Val() >= keys+2 }, 30*time.Second, 20*time.Millisecond,
		"B holds every key of A again (and its journal and cursors)")
	report, err := newStore(t, writers).Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.True(t, report.OK(), "divergent keys with anti-entropy off: %d", report.Divergent)
	st := s.Stats().Peers[0]
	assert.Positive(t, st.Resets, "the link noticed the restart")
	t.Logf("resets %d, passes %d, failed passes %d (%s), keys fetched %d", st.Resets, st.Passes, st.Errors, st.LastError, st.Keys)
}

// A server that comes back empty has lost its horizon: its syncer gives it
// the group's, removes what was written there of the dropped periods in the
// meantime, and from then on the server refuses those periods.
func TestEmptyServerTakesItsGroupsHorizon(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 1, 0, 0, 0, time.UTC) }
	point := func(d, v int) journal.KeyMembers {
		key, err := metricKey(day(d), "h", "cpu")
		require.NoError(t, err)
		return journal.KeyMembers{Key: key, Members: []string{fmt.Sprintf("%d:%d", day(d).Unix(), v)}}
	}
	for _, addr := range []string{a, b} {
		_, err := merge(ctx, c, addr, []journal.KeyMembers{point(20, 1), point(25, 1)})
		require.NoError(t, err)
	}
	_, err := newStore(t, c).DropBefore(ctx, day(24))
	require.NoError(t, err)
	horizon, err := journal.Horizon(ctx, c, a, journal.KeysOf("journal"))
	require.NoError(t, err)
	require.Equal(t, "2026-11-24", horizon)

	require.NoError(t, servers[1].Restart())
	require.Eventually(t, func() bool {
		_, err := journal.Horizon(ctx, c, b, journal.KeysOf("journal"))
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	got, err := journal.Horizon(ctx, c, b, journal.KeysOf("journal"))
	require.NoError(t, err)
	require.Empty(t, got, "the restarted server has no horizon")
	res, err := merge(ctx, c, b, []journal.KeyMembers{point(20, 2)})
	require.NoError(t, err)
	require.EqualValues(t, 1, res.Added, "without a horizon the server takes a dropped period")

	s, _ := startSyncer(t, c, []string{a, b}, syncer.Options{})
	require.Eventually(t, func() bool {
		got, err := journal.Horizon(ctx, c, b, journal.KeysOf("journal"))
		return err == nil && got == horizon
	}, 3*time.Second, 20*time.Millisecond, "the syncer gives B its group's horizon")
	old := point(20, 3)
	assert.Zero(t, direct(t, b).Exists(ctx, old.Key).Val(), "what B took of the dropped period is removed")
	res, err = merge(ctx, c, b, []journal.KeyMembers{old})
	require.NoError(t, err)
	assert.Equal(t, []string{old.Key}, res.Dropped, "B refuses the dropped period")
	converged(t, []string{a, b}, 3*time.Second)
	assert.Zero(t, direct(t, a).Exists(ctx, old.Key).Val())
	for _, p := range s.Stats().Peers {
		assert.Zero(t, p.Errors, "%s from %s: %s", p.Local, p.Peer, p.LastError)
	}
}

// A peer whose clock stepped back journals changes before the cursor: the
// pass that reads the overlap, every 5 seconds, still finds them, also
// while other changes keep moving the cursor on.
func TestClockStepBackIsCaughtByTheOverlap(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(map[bool]string{false: "idle peer", true: "busy peer"}[busy], func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			a, b := servers[0].Addr(), servers[1].Addr()
			c := newClient(t, groupConfig(servers))
			s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
			writePoints(t, c, a, "before", 20)
			converged(t, []string{a, b}, 2*time.Second)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			if busy {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
						}
						key, _ := metricKey(time.Now(), "busy", "m")
						ts := float64(time.Now().UnixMicro()) / 1e6
						_, _ = merge(context.Background(), c, a, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%.6f:%d", ts, i)}}})
					}
				})
			}
			time.Sleep(300 * time.Millisecond) // the cursor moves on with the busy writer
			cursor := s.Stats().Peers[0].Cursor
			require.Positive(t, cursor)

			// A change journalled half a second before the cursor, as by a
			// server whose clock went back.
			ctx := context.Background()
			key, err := metricKey(time.Now(), "stepped", "cpu")
			require.NoError(t, err)
			member := fmt.Sprintf("%d:7", time.Now().Unix())
			ra := direct(t, a)
			require.NoError(t, ra.ZAdd(ctx, key, redis.Z{Score: float64(time.Now().Unix()), Member: member}).Err())
			require.NoError(t, ra.ZAdd(ctx, "journal", redis.Z{Score: cursor - 0.5, Member: key}).Err())
			rb := direct(t, b)
			require.Eventually(t, func() bool { return rb.ZScore(ctx, key, member).Err() == nil }, 8*time.Second, 10*time.Millisecond,
				"the change journalled before the cursor reached B")
			close(stop)
			wg.Wait()
			converged(t, []string{a, b}, 3*time.Second)
		})
	}
}

// onePointEach returns the updates of n keys (hosts h0, h1... of metric
// m) of one point each, stamped with now's second.
func onePointEach(t *testing.T, now time.Time, n int) []journal.KeyMembers {
	t.Helper()
	ts := strconv.FormatInt(now.Unix(), 10)
	updates := make([]journal.KeyMembers, n)
	for i := range updates {
		key, err := metricKey(now, fmt.Sprintf("h%d", i), "m")
		require.NoError(t, err)
		updates[i] = journal.KeyMembers{Key: key, Members: []string{ts + ":1"}}
	}
	return updates
}

// linkStats returns the stats of the link of local pulling from peer.
func linkStats(t testing.TB, s *syncer.Syncer, local, peer string) syncer.PeerStats {
	t.Helper()
	for _, p := range s.Stats().Peers {
		if p.Local == local && p.Peer == peer {
			return p
		}
	}
	t.Fatalf("no link of %s pulling from %s", local, peer)
	return syncer.PeerStats{}
}

// warmPair starts two servers A and B that pull from each other, with
// anti-entropy off, and runs a first round of points written to A through
// both links. That round runs while the links start: a merge before A's
// link gave A its epoch cannot be told from B's own change, so tests of
// echoes begin after it.
func warmPair(t *testing.T, points int) (a, b string, c *federated.Client, s *syncer.Syncer) {
	t.Helper()
	servers := redistest.StartN(t, 2)
	a, b = servers[0].Addr(), servers[1].Addr()
	c = newClient(t, groupConfig(servers))
	s, _ = startSyncer(t, c, []string{a, b}, syncer.Options{NoAntiEntropy: true})
	writePoints(t, c, a, "warm", points)
	converged(t, []string{a, b}, 2*time.Second)
	require.Eventually(t, func() bool { return linkStats(t, s, b, a).Passes > 2 && linkStats(t, s, a, b).Passes > 2 },
		3*time.Second, 10*time.Millisecond)
	return a, b, c, s
}

// What B merged from A is not fetched back by A: A's link sees the keys in
// B's journal as echoes and skips them. Changes made on B itself, also to
// keys merged from A, still reach A.
func TestEchoesAreNotFetchedBack(t *testing.T) {
	a, b, c, s := warmPair(t, 200)
	before := linkStats(t, s, a, b)

	writePoints(t, c, a, "origin", 200) // 5 keys
	converged(t, []string{a, b}, 2*time.Second)
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).Echoes >= before.Echoes+5 }, 3*time.Second, 10*time.Millisecond,
		"A sees B's merges of its own keys as echoes")
	assert.Equal(t, before.Keys, linkStats(t, s, a, b).Keys, "A fetched nothing back from B")

	// Writes on B, to the same keys: not echoes; they reach A.
	writePoints(t, c, b, "origin", 50)
	all := converged(t, []string{a, b}, 2*time.Second)
	assert.Len(t, all, 450)
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).Keys >= before.Keys+5 }, 3*time.Second, 10*time.Millisecond,
		"A fetched B's own changes")
}

// A key written on B and, before A's syncer pulled that, changed on B by a
// merge from A is not an echo: B holds something A lacks.
func TestMergeAfterAnUnpulledChangeIsNotAnEcho(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	key, err := metricKey(time.Now(), "both", "cpu")
	require.NoError(t, err)
	now := time.Now().Unix()
	_, err = merge(ctx, c, a, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:1", now)}}})
	require.NoError(t, err)
	_, err = merge(ctx, c, b, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:2", now+1)}}})
	require.NoError(t, err)

	// A's syncer runs (A has an epoch) but cannot reach B yet; B's syncer
	// merges A's point into the key that holds B's own.
	pb, err := faultproxy.New(b)
	require.NoError(t, err)
	defer pb.Close()
	pb.Blackhole(true)
	cfgA := federated.Config{Nodes: map[string]federated.Node{"group": {Addresses: []string{a, pb.Addr()}}}, Options: quiet()}
	cfgA.Options.CommandTimeout = 200 * time.Millisecond
	sa, _ := startSyncer(t, newClient(t, cfgA), []string{a}, syncer.Options{NoAntiEntropy: true})
	require.Eventually(t, func() bool { return direct(t, a).HExists(ctx, journal.CursorKey, "@epoch").Val() }, 3*time.Second, 10*time.Millisecond)
	sb, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	require.Eventually(t, func() bool { return linkStats(t, sb, b, a).Added == 1 }, 3*time.Second, 10*time.Millisecond)

	pb.Heal()
	all := converged(t, []string{a, b}, 5*time.Second)
	assert.Len(t, all, 2, "A has B's point too")
	assert.Zero(t, linkStats(t, sa, a, pb.Addr()).Echoes)

	// Again once A's syncer has pulled B: B's own change, then a merge from
	// A into the same key, before A pulls again.
	require.Eventually(t, func() bool { return linkStats(t, sa, a, pb.Addr()).Keys >= 1 }, 3*time.Second, 10*time.Millisecond)
	pb.Blackhole(true)
	_, err = merge(ctx, c, b, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:4", now+3)}}})
	require.NoError(t, err)
	_, err = merge(ctx, c, a, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:5", now+4)}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return linkStats(t, sb, b, a).Added == 2 }, 3*time.Second, 10*time.Millisecond)
	pb.Heal()
	all = converged(t, []string{a, b}, 5*time.Second)
	assert.Len(t, all, 4, "A has B's second point too")
}

// After writers fail over from A to B, B's own changes to keys that were
// echoes reach A, and only the keys changed are fetched.
func TestFailoverAfterEchoesReplicatesTheNewPoints(t *testing.T) {
	a, b, c, s := warmPair(t, 5)
	writePoints(t, c, a, "h", 500) // 100 points a key
	converged(t, []string{a, b}, 2*time.Second)
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).Echoes >= 5 }, 3*time.Second, 10*time.Millisecond)
	before := linkStats(t, s, a, b)

	time.Sleep(10 * time.Millisecond) // the next points are stamped later
	writePoints(t, c, b, "h", 10)
	all := converged(t, []string{a, b}, 2*time.Second)
	assert.Len(t, all, 515)
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).Added == before.Added+10 }, 3*time.Second, 10*time.Millisecond)
	assert.LessOrEqual(t, linkStats(t, s, a, b).Keys-before.Keys, int64(5), "only the changed keys are fetched")
}

// commandCalls returns how many times a server ran a command, scripts'
// calls included.
func commandCalls(t *testing.T, addr, command string) int64 {
	t.Helper()
	info, err := direct(t, addr).Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	return redistest.ParseCommandStats(info)[command].Calls
}

// One write journals thousands of keys at one time. The syncer gets
// through them, and once it has, its idle passes read the journal after
// them instead of reading them all again.
func TestIdlePassesDoNotReadABigBlockAgain(t *testing.T) {
	const keys = 12000 // more than the pages of the overlap read
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	_, err := merge(context.Background(), c, a, onePointEach(t, time.Now(), keys)) // one script call: one journal time
	require.NoError(t, err)

	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	rb := direct(t, b)
	require.Eventually(t, func() bool { return rb.DBSize(context.Background()).Val() >= keys+2 }, 10*time.Second, 20*time.Millisecond)
	// Past the first complete read of the overlap too.
	done := time.Now()
	require.Eventually(t, func() bool { return linkStats(t, s, b, a).SyncedTo.After(done) }, 10*time.Second, 20*time.Millisecond)
	before, passes := commandCalls(t, a, "zrangebyscore"), linkStats(t, s, b, a).Passes
	require.Eventually(t, func() bool { return linkStats(t, s, b, a).Passes >= passes+20 }, 5*time.Second, 10*time.Millisecond)
	reads := commandCalls(t, a, "zrangebyscore") - before
	idle := linkStats(t, s, b, a).Passes - passes
	t.Logf("%d journal reads in %d idle passes", reads, idle)
	assert.LessOrEqual(t, reads, idle+int64(keys/1000), "an idle pass reads the journal once")
}

// metricKey returns the daily key of a host's metric.
func metricKey(t time.Time, host, metricName string) (string, error) {
	return metric.Key(metric.Day, t, host, metricName)
}

// Helpers shared with other packages' tests.
var (
	merge    = fedtest.Merge
	newStore = fedtest.NewStore
)

// A server restored from a snapshot keeps its epoch and its cursors, but
// has lost the points writers gave it after the snapshot, which its peer
// holds and had marked as the server's own: the server's syncer must not
// skip them as echoes of its own writes. It fetches them back, so that a
// later, separate loss of the peer loses nothing acknowledged. The same
// with the syncer restarted beside the server, with no memory of the
// cursors it saved; and with the snapshot loaded in place, in the same
// run of the server (DEBUG RELOAD; a backup restored into a running
// server does the same), which keeps the origin token the peer's marks
// name unless the link that finds the loss writes a new one.
func TestServerRestoredFromASnapshotGetsBackWhatItLost(t *testing.T) {
	for _, mode := range []string{"restarted", "restarted with its syncer", "reloaded in place"} {
		restarted := mode == "restarted with its syncer"
		t.Run(mode, func(t *testing.T) {
			servers := redistest.StartN(t, 2, redistest.Options{Args: []string{"--enable-debug-command", "yes"}})
			addrs := redistest.Addrs(servers)
			c := newClient(t, groupConfig(servers))
			s, stop := startSyncer(t, c, addrs, syncer.Options{NoAntiEntropy: true})
			ctx := context.Background()
			cur, err := c.NodeToServer("group")
			require.NoError(t, err)
			a, b := fedtest.ServerByAddr(servers, cur), fedtest.OtherServer(servers, cur)
			r, err := newStore(t, c).NewRecorder(metrics.RecorderOptions{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })
			base, n := time.Now(), 0
			add := func(points int) {
				for range points {
					require.NoError(t, r.Add(ctx, fmt.Sprintf("h%d", n%10), "cpu", base.Add(time.Duration(n)*time.Millisecond), float64(n)))
					n++
				}
				require.NoError(t, r.Flush(ctx))
			}
			echoes := func() int64 { return linkStats(t, s, a.Addr(), b.Addr()).Echoes }
			// Each link has loaded its cursor, and so written its server's
			// origin token, which the other's merges mark: B's merges of
			// A's points are then echoes for A from the first.
			require.Eventually(t, func() bool {
				return linkStats(t, s, a.Addr(), b.Addr()).Passes > 0 && linkStats(t, s, b.Addr(), a.Addr()).Passes > 0
			}, 5*time.Second, 5*time.Millisecond)
			add(200)
			converged(t, addrs, 5*time.Second)
			require.NoError(t, direct(t, a.Addr()).Save(ctx).Err())
			before := echoes()
			add(200) // acknowledged by A after its snapshot
			all := converged(t, addrs, 5*time.Second)
			require.Len(t, all, 400)
			require.Eventually(t, func() bool { return echoes() >= before+10 }, 5*time.Second, 10*time.Millisecond,
				"A's link took B's merges of the 10 keys for echoes")

			if restarted {
				stop()
			}
			if mode == "reloaded in place" {
				require.NoError(t, direct(t, a.Addr()).Do(ctx, "DEBUG", "RELOAD", "NOSAVE").Err())
			} else {
				require.NoError(t, a.Restart())
			}
			if restarted {
				// (With the syncer running, it may fill A again first.)
				require.Len(t, members(t, a.Addr()), 200, "A lost what it took after the snapshot")
				startSyncer(t, c, addrs, syncer.Options{NoAntiEntropy: true})
			}
			assert.Equal(t, all, converged(t, addrs, 10*time.Second), "A got back what it lost")

			require.NoError(t, b.Restart()) // B comes back empty
			assert.Equal(t, all, converged(t, addrs, 10*time.Second), "nothing acknowledged is lost")
		})
	}
}
