package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// countMembers returns how many members every metric key holds on one
// server, by key.
func countMembers(t testing.TB, addr string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rc := directClient(t, addr)
	out := map[string]int64{}
	iter := rc.Scan(ctx, 0, "2026-*", 1000).Iterator()
	for iter.Next(ctx) {
		n, err := rc.ZCard(ctx, iter.Val()).Result()
		require.NoError(t, err)
		out[iter.Val()] = n
	}
	require.NoError(t, iter.Err())
	return out
}

func TestRecorderConcurrentWritersLoseNothing(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	r := newRecorder(t, c, metrics.RecorderOptions{BatchSize: 700})
	base := time.Date(2026, 11, 25, 23, 50, 0, 0, time.UTC) // the points cross midnight

	const writers, perWriter = 16, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				host := fmt.Sprintf("web%d.sfo", w)
				metricName := fmt.Sprintf("m%d", i%10)
				if err := r.Add(context.Background(), host, metricName, base.Add(time.Duration(i)*time.Second), float64(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, r.Flush(context.Background()))
	st := r.Stats()
	assert.Equal(t, int64(writers*perWriter), st.Added)
	assert.Equal(t, st.Added, st.Written)
	assert.Zero(t, st.Failed)
	assert.Zero(t, st.Buffered)

	total := int64(0)
	keys := 0
	for _, s := range servers {
		for key, n := range countMembers(t, s.Addr()) {
			total += n
			keys++
			assert.Equal(t, s.Addr(), mustServer(t, c, key), "key %s is on the server the ring names", key)
		}
	}
	assert.Equal(t, int64(writers*perWriter), total, "every acknowledged point can be read back")
	assert.Equal(t, writers*10*2, keys, "one key per host, metric and day")

	// Every key is journalled on its server.
	for _, s := range servers {
		rc := directClient(t, s.Addr())
		for key := range countMembers(t, s.Addr()) {
			_, err := rc.ZScore(context.Background(), "journal", key).Result()
			require.NoError(t, err, "journal entry of %s", key)
		}
	}
}

// Many goroutines add points to many series, into a buffer far smaller
// than what they add, while Stats is read and the Recorder closes under
// them. Every Add that returned nil is stored, every other returned
// ErrClosed, and the buffer never held more than MaxBuffered, small or
// larger.
func TestRecorderClosesUnderManyWriters(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	for round, maxBuffered := range []int64{64, 20000} {
		t.Run(fmt.Sprintf("MaxBuffered=%d", maxBuffered), func(t *testing.T) {
			// One flush at a time whatever the CPUs, as on the machines
			// that run the suite.
			r := newRecorder(t, c, metrics.RecorderOptions{MaxBuffered: int(maxBuffered), MaxFlushes: 1, BatchSize: int(maxBuffered / 4)})
			day := time.Date(2026, 11, 25+round, 0, 0, 0, 0, time.UTC)

			const writers, most = 32, 20000
			var acked [writers]int64
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range most {
						err := r.Add(context.Background(), fmt.Sprintf("web%d", w), fmt.Sprintf("m%d", i%7), day.Add(time.Duration(i)*time.Second), float64(i))
						if err != nil {
							assert.ErrorIs(t, err, federated.ErrClosed, "writer %d, point %d", w, i)
							return
						}
						acked[w]++
					}
				})
			}
			stop := make(chan struct{})
			var sampler sync.WaitGroup
			peak := int64(0)
			stopSampler := sync.OnceFunc(func() {
				close(stop)
				sampler.Wait()
			})
			defer stopSampler() // also when the test fails before
			sampler.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if b := r.Stats().Buffered; b > peak {
						peak = b
					}
				}
			})
			require.Eventually(t, func() bool { return r.Stats().Added >= writers*most/16 }, 30*time.Second, time.Millisecond)
			closed := make(chan error, 1)
			go func() { closed <- r.Close() }()
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Close still waits after 10s")
			}
			wg.Wait()
			stopSampler()

			var sum int64
			for _, n := range acked {
				sum += n
			}
			st := r.Stats()
			assert.Equal(t, sum, st.Added, "points accepted")
			assert.Equal(t, sum, st.Written, "points written")
			assert.Zero(t, st.Buffered)
			assert.LessOrEqual(t, peak, maxBuffered, "points buffered or in flushes at most")
			var stored int64
			for _, s := range servers {
				for key, n := range countMembers(t, s.Addr()) {
					if strings.HasPrefix(key, day.Format("2006-01-02")) {
						stored += n
					}
				}
			}
			assert.Equal(t, sum, stored, "every acknowledged point is stored, and no other")
		})
	}
}

// Close returns the failures of every point added before it returned: of
// those its first Flush waited for, and of a point added while that Flush
// ran (here by OnError, as it learns of the first failure), which the
// flush loop sends as it ends.
func TestRecorderCloseReturnsTheFailuresOfWhatItDrained(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var r *metrics.Recorder
	var once sync.Once
	r = newRecorder(t, c, metrics.RecorderOptions{FlushInterval: time.Hour, FailWhenFull: true,
		OnError: func(error, int) {
			once.Do(func() { assert.NoError(t, r.Add(context.Background(), "web2", "cpu", at, 2)) })
		}})
	require.NoError(t, servers[0].Kill())
	require.NoError(t, r.Add(context.Background(), "web1", "cpu", at, 1))
	err := r.Close()
	require.Error(t, err)
	assert.Equal(t, 2, strings.Count(err.Error(), "(1 points in 1 keys)"), "both points' failures: %v", err)
	assert.Equal(t, int64(2), r.Stats().Failed)
}

// A Recorder whose client closes with points in its buffer fails them,
// and its Close returns that, at once: it does not wait for a flush that
// no one will start.
func TestRecorderOfAClosedClientFailsItsPoints(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	r, err := newStore(t, c).NewRecorder(metrics.RecorderOptions{BatchSize: 1000, FlushInterval: time.Hour})
	require.NoError(t, err)
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		require.NoError(t, r.Add(context.Background(), "web1", "cpu", at.Add(time.Duration(i)*time.Second), 1))
	}
	require.NoError(t, c.Close())
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		require.ErrorIs(t, err, federated.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waits 10s after the client closed")
	}
	st := r.Stats()
	assert.Equal(t, int64(10), st.Failed)
	assert.Zero(t, st.Written)
	assert.Zero(t, st.Buffered)
	require.ErrorIs(t, r.Add(context.Background(), "web1", "cpu", at, 1), federated.ErrClosed)
}

func TestRecorderJournalUsesServerClock(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	r := newRecorder(t, c, metrics.RecorderOptions{})
	// The writer's clock is an hour ahead: its points say so, the journal
	// does not.
	skewed := time.Now().Add(time.Hour)
	require.NoError(t, r.Add(context.Background(), "web1", "cpu", skewed, 1))
	require.NoError(t, r.Flush(context.Background()))
	rc := directClient(t, servers[0].Addr())
	key, err := c.MetricKey(skewed, "web1", "cpu")
	require.NoError(t, err)
	score, err := rc.ZScore(context.Background(), "journal", key).Result()
	require.NoError(t, err)
	server := serverTime(t, rc)
	assert.InDelta(t, float64(server.UnixMicro())/1e6, score, 5, "journal score comes from the server's clock")
	assert.Greater(t, float64(skewed.Unix())-score, 3000.0)
}

// With HashTags, the Recorder places a key where Record, Range and
// KeyToNode say it is: on the node of its tag.
func TestRecorderRoutesByHashTag(t *testing.T) {
	servers := redistest.StartN(t, 3)
	opts := testOptions()
	opts.HashTags = true
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	r := newRecorder(t, c, metrics.RecorderOptions{})
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	for i := range 10 {
		require.NoError(t, r.Add(context.Background(), "web1", fmt.Sprintf("cpu{%d}", i), at, float64(i)))
	}
	require.NoError(t, r.Flush(ctx))
	for i := range 10 {
		name := fmt.Sprintf("cpu{%d}", i)
		points, err := rangeOf(ctx, newStore(t, c), "web1", name, at, at)
		require.NoError(t, err)
		assert.Len(t, points, 1, "Range finds what the Recorder wrote to %s", name)
		key, err := c.MetricKey(at, "web1", name)
		require.NoError(t, err)
		addr, err := c.NodeToServer(c.KeyToNode(key))
		require.NoError(t, err)
		assert.Equal(t, int64(1), directClient(t, addr).ZCard(ctx, key).Val(), "%s is on KeyToNode's server", key)
	}
}

func TestRecorderKilledNodeFailsOnlyItsPoints(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	var reported atomic.Int64
	r := newRecorder(t, c, metrics.RecorderOptions{
		BatchSize: 500,
		OnError:   func(_ error, points int) { reported.Add(int64(points)) },
	})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	victim := servers[0]

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				if w == 0 && i == 1500 {
					require.NoError(t, victim.Kill())
				}
				_ = r.Add(context.Background(), fmt.Sprintf("host%d", i%40), fmt.Sprintf("w%d", w), at.Add(time.Duration(i)*time.Millisecond), 1)
			}
		}()
	}
	wg.Wait()
	err := r.Flush(context.Background())
	require.ErrorIs(t, err, federated.ErrServerDown)
	assert.Contains(t, err.Error(), victim.Addr())
	assert.NotContains(t, err.Error(), servers[1].Addr())
	assert.NotContains(t, err.Error(), servers[2].Addr())

	st := r.Stats()
	assert.Equal(t, int64(8*3000), st.Added)
	assert.Equal(t, st.Added, st.Written+st.Failed, "every point is written or reported failed")
	assert.Positive(t, st.Failed)
	assert.Equal(t, st.Failed, reported.Load(), "OnError saw every failed point")

	written := int64(0)
	for _, s := range servers[1:] {
		for _, n := range countMembers(t, s.Addr()) {
			written += n
		}
	}
	require.NoError(t, victim.Restart())
	for _, n := range countMembers(t, victim.Addr()) {
		written += n // empty after the restart: no persistence
	}
	// Points acknowledged by the killed server died with it; every point
	// acknowledged by the live servers is there.
	assert.LessOrEqual(t, written, st.Written)
	live := int64(0)
	for _, s := range servers[1:] {
		for _, n := range countMembers(t, s.Addr()) {
			live += n
		}
	}
	assert.Equal(t, live, written)
}

func TestRecorderReplicaGroupFailsOverWithNothingLost(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
	r := newRecorder(t, c, metrics.RecorderOptions{BatchSize: 300})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	first, err := c.NodeToServer("group")
	require.NoError(t, err)

	for i := range 6000 {
		if i == 3000 {
			require.NoError(t, r.Flush(context.Background()))
			require.NoError(t, serverByAddr(servers, first).Kill())
		}
		require.NoError(t, r.Add(context.Background(), fmt.Sprintf("h%d", i%25), "cpu", at.Add(time.Duration(i)*time.Second), float64(i)))
	}
	require.NoError(t, r.Flush(context.Background()), "a replica group fails over: no point fails")
	st := r.Stats()
	assert.Equal(t, int64(6000), st.Written)
	assert.Zero(t, st.Failed)

	survivor := otherServer(servers, first)
	total := int64(0)
	for _, n := range countMembers(t, survivor.Addr()) {
		total += n
	}
	assert.Equal(t, int64(3000), total, "the points after the kill are all on the survivor")
}

func TestRecorderBackPressure(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.CommandTimeout = 500 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	r := newRecorder(t, c, metrics.RecorderOptions{MaxBuffered: 100, BatchSize: 1000000, FlushInterval: time.Hour, FailWhenFull: true})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range 100 {
		require.NoError(t, r.Add(context.Background(), "h", "m", at.Add(time.Duration(i)*time.Second), 1))
	}
	require.ErrorIs(t, r.Add(context.Background(), "h", "m", at, 2), metrics.ErrBufferFull)
	require.NoError(t, r.Flush(context.Background()))
	require.NoError(t, r.Add(context.Background(), "h", "m", at, 2), "room again after a flush")

	// Blocking mode: Add waits for the flush loop to make room.
	b := newRecorder(t, c, metrics.RecorderOptions{MaxBuffered: 50, BatchSize: 1000000, FlushInterval: time.Hour})
	for i := range 500 {
		require.NoError(t, b.Add(context.Background(), "h2", "m", at.Add(time.Duration(i)*time.Second), 1))
	}
	require.NoError(t, b.Flush(context.Background()))
	assert.Equal(t, int64(500), b.Stats().Written)
}

// TestRecorderKeepsNoMoreBuffersThanItUses: a Recorder that takes one
// large series now and then (a backfill) among small ones keeps no more
// memory for it over time, with nothing buffered between flushes. Its
// member buffers go from series to series: it kept one more large buffer
// at each backfill, 440 KiB a round here, and the list of buffers to
// reuse held on to those it had handed out after they were let go.
func TestRecorderKeepsNoMoreBuffersThanItUses(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	r := newRecorder(t, c, metrics.RecorderOptions{FlushInterval: time.Hour})
	ctx, at := context.Background(), time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	var first int64
	for round := range 40 {
		for i := range 20000 {
			require.NoError(t, r.Add(ctx, "big", "m", at.Add(time.Duration(i)*time.Millisecond), float64(round)))
		}
		require.NoError(t, r.Flush(ctx))
		for i := range 400 + round*37%101 {
			require.NoError(t, r.Add(ctx, fmt.Sprintf("s%d", i), "m", at.Add(time.Duration(round)*time.Second), 1))
		}
		require.NoError(t, r.Flush(ctx))
		if round == 9 {
			first = heap()
		}
	}
	require.Zero(t, r.Stats().Buffered)
	growth := heap() - first
	t.Logf("live heap grew by %d KiB over 30 rounds", growth/1024)
	assert.Less(t, growth, int64(1<<20), "the Recorder kept more memory round after round")
}

func TestRecorderBadInputAndClose(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	for _, bad := range []metrics.RecorderOptions{{BatchSize: -1}, {FlushInterval: -time.Second}, {MaxBuffered: -5}} {
		_, err := newStore(t, c).NewRecorder(bad)
		require.ErrorIs(t, err, federated.ErrInvalidConfig, "%+v", bad)
		assert.ErrorContains(t, err, "is negative")
	}
	r, err := newStore(t, c).NewRecorder(metrics.RecorderOptions{})
	require.NoError(t, err)
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	require.ErrorIs(t, r.Add(context.Background(), "a:b", "m", at, 1), federated.ErrBadHost)
	require.ErrorIs(t, r.Add(context.Background(), "a", "", at, 1), federated.ErrBadMetric)
	require.ErrorIs(t, r.Add(context.Background(), "a", "m", at, math.NaN()), federated.ErrBadValue)
	require.NoError(t, r.Add(context.Background(), "a", "m", at, 1))
	require.NoError(t, r.Close())
	require.NoError(t, r.Close(), "Close is idempotent")
	require.ErrorIs(t, r.Add(context.Background(), "a", "m", at, 1), federated.ErrClosed)
	assert.Equal(t, int64(1), r.Stats().Written)
	assert.Equal(t, int64(1), r.Stats().Added)

	// A key that someone made a string fails alone; the rest of the batch
	// is written.
	require.NoError(t, c.Set(context.Background(), "2026-11-25:bad:m", "x", 0).Err())
	r2 := newRecorder(t, c, metrics.RecorderOptions{})
	require.NoError(t, r2.Add(context.Background(), "bad", "m", at, 1))
	require.NoError(t, r2.Add(context.Background(), "good", "m", at, 1))
	err = r2.Flush(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WRONGTYPE")
	assert.Contains(t, err.Error(), "2026-11-25:bad:m")
	assert.False(t, errors.Is(err, federated.ErrServerDown))
	assert.Equal(t, int64(1), r2.Stats().Written)
	assert.Equal(t, int64(1), r2.Stats().Failed)
	n, err := directClient(t, servers[0].Addr()).ZCard(context.Background(), "2026-11-25:good:m").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

// A key that fails in a node's second script call of a flush fails alone,
// flush after flush: the calls of a node share one batch, and each call's
// failures are read out before the next is built.
func TestRecorderKeyFailsInALaterCall(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	require.NoError(t, c.Set(ctx, "2026-11-25:bad:m", "x", 0).Err())
	r := newRecorder(t, c, metrics.RecorderOptions{BatchSize: 1 << 20, FlushInterval: time.Hour})
	for round := range 2 {
		day := at.Add(time.Duration(round) * time.Hour)
		for i := range 10000 { // a script call's worth
			require.NoError(t, r.Add(ctx, "big", "m", day.Add(time.Duration(i)*time.Millisecond), 1))
		}
		require.NoError(t, r.Add(ctx, "bad", "m", day, 1))
		require.NoError(t, r.Add(ctx, "good", "m", day, 1))
		err := r.Flush(ctx)
		require.Error(t, err, "round %d", round+1)
		assert.Contains(t, err.Error(), "WRONGTYPE")
		assert.Contains(t, err.Error(), "2026-11-25:bad:m")
		assert.NotContains(t, err.Error(), "2026-11-25:good:m")
	}
	st := r.Stats()
	assert.Equal(t, int64(2*10001), st.Written)
	assert.Equal(t, int64(2), st.Failed)
	direct := directClient(t, servers[0].Addr())
	assert.Equal(t, int64(20000), direct.ZCard(ctx, "2026-11-25:big:m").Val())
	assert.Equal(t, int64(2), direct.ZCard(ctx, "2026-11-25:good:m").Val())
}

// Adding a point to a series the Recorder knows allocates nothing, and
// neither does routing a key: the cost of a point is an append under a
// mutex.
func TestHotPathsDoNotAllocate(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	// No flush during the measurement: the flush loop's work would count.
	r := newRecorder(t, c, metrics.RecorderOptions{BatchSize: 1 << 20, MaxBuffered: 1 << 20, FlushInterval: time.Hour})
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	// Grow the series' buffer once; a flush keeps its storage for the next.
	for i := range 3000 {
		require.NoError(t, r.Add(context.Background(), "web1.sfo", "cpu.user", base.Add(time.Duration(i)*time.Second), float64(i)))
	}
	require.NoError(t, r.Flush(context.Background()))

	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		_ = r.Add(context.Background(), "web1.sfo", "cpu.user", base.Add(time.Duration(i)*time.Second), float64(i))
	})
	assert.Zero(t, allocs, "allocations per Recorder.Add")
	key := "2026-11-25:web1.sfo:cpu.user"
	allocs = testing.AllocsPerRun(1000, func() { _ = c.KeyToNode(key) })
	assert.Zero(t, allocs, "allocations per KeyToNode")
	require.NoError(t, r.Flush(context.Background()))
	assert.EqualValues(t, 3000+1001, r.Stats().Written)
}
