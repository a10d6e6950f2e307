package federated_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// trafficStats counts the work of the traffic goroutines.
type trafficStats struct {
	ops, errs atomic.Int64
	mu        sync.Mutex
	firstErrs []error // the first few errors, for the failure message
}

func (s *trafficStats) fail(err error) {
	s.errs.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.firstErrs) < 5 {
		s.firstErrs = append(s.firstErrs, err)
	}
}

// runTraffic sends blocking commands, pipelines, Record calls and Recorder
// points from n goroutines until stop is closed.
func runTraffic(c *federated.Client, r *metrics.Recorder, n int, stop <-chan struct{}, stats *trafficStats) *sync.WaitGroup {
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("traffic-%d-%d", g, i%50)
				var err error
				switch i % 4 {
				case 0:
					err = c.Set(ctx, k, i, 0).Err()
				case 1:
					if err = c.Get(ctx, k).Err(); errors.Is(err, redis.Nil) {
						err = nil // the server that had it may have been restarted, empty
					}
				case 2:
					p := c.Chain()
					for j := range 10 {
						p.Set(fmt.Sprintf("%s-%d", k, j), j)
					}
					err = p.Poll(ctx)
				case 3:
					err = c.Record(ctx, fmt.Sprint("host", g), "m", time.Now(), float64(i))
					if err == nil {
						err = r.Add(context.Background(), fmt.Sprint("host", g), "n", time.Now(), float64(i))
					}
				}
				if err != nil {
					stats.fail(err)
				}
				stats.ops.Add(1)
			}
		})
	}
	return &wg
}

// heapAfterGC returns the live heap once garbage is collected.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// clientConns returns the number of connections a server has, by CLIENT
// LIST from admin (its own connection included).
func clientConns(t *testing.T, admin *redis.Client) int {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	require.NoError(t, err)
	return strings.Count(strings.TrimSpace(list), "\n") + 1
}

func TestResourcesBoundedUnderFailover(t *testing.T) {
	const (
		poolSize     = 4
		handFailover = 1000
		killCycles   = 50
		workers      = 4
	)
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 500 * time.Millisecond
	opts.BaseRetryInterval = federated.MinRetryInterval
	opts.MaxRetryInterval = 20 * time.Millisecond
	opts.PoolSize = poolSize
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: opts,
	})
	r := newRecorder(t, c, metrics.RecorderOptions{FlushInterval: 20 * time.Millisecond})
	admins := make(map[string]*redis.Client, len(servers))
	for _, s := range servers {
		admins[s.Addr()] = redis.NewClient(&redis.Options{Addr: s.Addr(), PoolSize: 1, DisableIdentity: true})
		t.Cleanup(func() { _ = admins[s.Addr()].Close() })
	}

	// Warm up: both servers in use, scripts loaded, pools full; then the
	// starting level.
	var warm trafficStats
	stop := make(chan struct{})
	wg := runTraffic(c, r, workers, stop, &warm)
	time.Sleep(200 * time.Millisecond)
	cur, err := c.NodeToServer("group")
	require.NoError(t, err)
	require.NoError(t, c.MarkServerDown(cur))
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, c.MarkServerUp(cur))
	close(stop)
	wg.Wait()
	require.NoError(t, r.Flush(context.Background()))
	require.Zero(t, warm.errs.Load(), "errors while warming up: %v", warm.firstErrs)
	// A flight to both servers starts the client's senders, which it keeps
	// until Close.
	require.NoError(t, c.Chain().DoAll(nil, "EXISTS", "k").Poll(context.Background()))
	settle := opts.CommandTimeout + time.Second // old connections close after the command timeout
	time.Sleep(settle)
	startGoroutines := runtime.NumGoroutine()
	startHeap := heapAfterGC()

	// 1,000 failovers by hand while commands flow.
	var hand, kills trafficStats
	stop = make(chan struct{})
	wg = runTraffic(c, r, workers, stop, &hand)
	began := time.Now()
	for i := range handFailover {
		cur, err := c.NodeToServer("group")
		require.NoError(t, err)
		require.NoError(t, c.MarkServerDown(cur))
		next, err := c.NodeToServer("group")
		require.NoError(t, err)
		require.NotEqual(t, cur, next, "failover %d", i)
		require.NoError(t, c.MarkServerUp(cur))
		// Let commands reach the new current server before the next one.
		for ops := hand.ops.Load(); hand.ops.Load() < ops+2; {
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	handTime := time.Since(began)

	// SIGKILL and restart of the current server, while commands flow.
	stop = make(chan struct{})
	wg = runTraffic(c, r, workers, stop, &kills)
	began = time.Now()
	for i := range killCycles {
		cur, err := c.NodeToServer("group")
		require.NoError(t, err)
		s := serverByAddr(servers, cur)
		require.NoError(t, s.Kill())
		require.Eventually(t, func() bool { return c.IsServerDown(cur) }, 5*time.Second, time.Millisecond,
			"kill %d: %s found down", i, cur)
		require.NoError(t, s.Restart())
		require.Eventually(t, func() bool { return !c.IsServerDown(cur) }, 5*time.Second, time.Millisecond,
			"kill %d: %s found up", i, cur)
	}
	close(stop)
	wg.Wait()
	killTime := time.Since(began)
	flushErr := r.Flush(context.Background())

	t.Logf("%d failovers by hand in %v, %d operations, %d errors", handFailover, handTime.Round(time.Millisecond), hand.ops.Load(), hand.errs.Load())
	t.Logf("%d kill/restart cycles in %v, %d operations, %d errors: %v", killCycles, killTime.Round(time.Millisecond), kills.ops.Load(), kills.errs.Load(), kills.firstErrs)
	require.Zero(t, hand.errs.Load(), "errors while failing over by hand, the other server up: %v", hand.firstErrs)
	require.Less(t, kills.errs.Load(), kills.ops.Load()/100+1, "errors while the current server was killed, the other up: %v", kills.firstErrs)
	// The Recorder fails over too: one server of the group is up at any
	// time, and a write that failed on a connection from before a kill
	// goes out again on the new one.
	st := r.Stats()
	require.NoError(t, flushErr)
	require.Zero(t, st.Failed, "Recorder points failed")
	require.Positive(t, hand.ops.Load())
	require.Positive(t, kills.ops.Load())

	// Back to the starting level once the connections of replaced clients
	// are closed: goroutines, connections, heap.
	time.Sleep(settle)
	var goroutines, conns int
	var heap uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		goroutines, heap = runtime.NumGoroutine(), heapAfterGC()
		conns = 0
		for _, admin := range admins {
			conns = max(conns, clientConns(t, admin))
		}
		if (goroutines <= startGoroutines && heap <= startHeap+1<<20 && conns <= poolSize+2) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for addr, admin := range admins {
		t.Logf("server %s: %d connections (pool size %d, admin 1)", addr, clientConns(t, admin), poolSize)
	}
	t.Logf("goroutines %d at the start, %d at the end; heap %d KiB at the start, %d KiB at the end",
		startGoroutines, goroutines, startHeap>>10, heap>>10)
	require.LessOrEqual(t, goroutines, startGoroutines, "goroutines left behind")
	require.LessOrEqual(t, conns, poolSize+2, "connections on a server: the pool, the admin connection and a probe at most")
	require.LessOrEqual(t, heap, startHeap+1<<20, "heap grew by more than 1 MiB")
}
