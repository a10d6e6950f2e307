package metrics_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/faultproxy"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// hostOn returns a host whose key of metric at t goes to node.
func hostOn(t *testing.T, c *federated.Client, node, metric string, at time.Time) string {
	t.Helper()
	for i := range 10000 {
		host := fmt.Sprintf("web%d", i)
		key, err := c.MetricKey(at, host, metric)
		require.NoError(t, err)
		if c.KeyToNode(key) == node {
			return host
		}
	}
	t.Fatalf("no host maps to %s", node)
	return ""
}

// proxiedClient returns a client of one node, a redis-server behind a
// fault proxy, the proxy and the server.
func proxiedClient(t *testing.T, opts federated.Options) (*federated.Client, *faultproxy.Proxy, *redistest.Server) {
	t.Helper()
	s := redistest.StartT(t)
	p, err := faultproxy.New(s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return newClient(t, federated.Config{Nodes: map[string]federated.Node{"one": {Address: p.Addr()}}, Options: opts}), p, s
}

// Goroutines that share a Recorder each get the failures of their own
// points from Write, whatever the others do: a Write of points for a dead
// node fails, naming it, while Writes for a live node, and Flushes made at
// the same time by other goroutines, do not take its failure from it.
func TestWriteReturnsItsOwnFailures(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	r := newRecorder(t, c, metrics.RecorderOptions{})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	live, dead := hostOn(t, c, "redis_1", "cpu", at), hostOn(t, c, "redis_2", "cpu", at)
	require.NoError(t, servers[1].Kill())

	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				samples := make([]metrics.Sample, 10)
				host := live
				if w%2 == 1 {
					host = dead
				}
				for j := range samples {
					samples[j] = metrics.Sample{Host: host, Metric: "cpu", Time: at.Add(time.Duration(w*1000+i*10+j) * time.Millisecond), Value: 1}
				}
				err := r.Write(ctx, samples...)
				if host == live {
					assert.NoError(t, err, "a Write of points for the live node")
				} else {
					var se *federated.ServerError
					if assert.ErrorAs(t, err, &se, "a Write of points for the dead node") {
						assert.Equal(t, servers[1].Addr(), se.Server)
					}
				}
				// Another goroutine's Flush, reporting every failure
				// once, takes nothing from the Writes.
				_ = r.Flush(ctx)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(4*20*10), countMembers(t, servers[0].Addr())[mustKey(t, c, at, live, "cpu")])
}

// Writes share flushes: many goroutines writing at once take far fewer
// flushes than Writes.
func TestWritesShareFlushes(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	r := newRecorder(t, c, metrics.RecorderOptions{MaxFlushes: 1})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	const writers, writes = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				require.NoError(t, r.Write(context.Background(), metrics.Sample{
					Host: fmt.Sprintf("web%d", w), Metric: "cpu", Time: at.Add(time.Duration(i) * time.Second), Value: 1}))
			}
		})
	}
	wg.Wait()
	st := r.Stats()
	assert.Equal(t, int64(writers*writes), st.Written)
	assert.Less(t, st.Flushes, int64(writers*writes/2), "flushes for %d Writes", writers*writes)
	t.Logf("%d Writes in %d flushes", writers*writes, st.Flushes)
}

// A Write with a bad point writes nothing, and says which point is bad.
func TestWriteRefusesBadInputWholly(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	r := newRecorder(t, c, metrics.RecorderOptions{})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	err := r.Write(context.Background(),
		metrics.Sample{Host: "web1", Metric: "cpu", Time: at, Value: 1},
		metrics.Sample{Host: "web1:x", Metric: "cpu", Time: at, Value: 1})
	require.ErrorIs(t, err, federated.ErrBadHost)
	assert.ErrorContains(t, err, "sample 2 of 2")
	assert.Zero(t, r.Stats().Added)
	require.NoError(t, r.Flush(context.Background()))
	assert.Empty(t, countMembers(t, servers[0].Addr()))
}

// Add and Write wait for room with a context: a full buffer whose flushes
// cannot end does not hold a caller past its deadline.
func TestAddWaitsForRoomUntilItsContextEnds(t *testing.T) {
	opts := testOptions()
	opts.CommandTimeout = 3 * time.Second
	c, p, _ := proxiedClient(t, opts)
	r := newRecorder(t, c, metrics.RecorderOptions{MaxBuffered: 10, BatchSize: 10, FlushInterval: time.Hour})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	require.NoError(t, r.Add(context.Background(), "web1", "cpu", at, 0)) // a first connection
	require.NoError(t, r.Flush(context.Background()))
	p.Blackhole(true)
	for i := range 10 {
		require.NoError(t, r.Add(context.Background(), "web1", "cpu", at.Add(time.Duration(i+1)*time.Second), 1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := r.Add(ctx, "web1", "cpu", at.Add(time.Hour), 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(began), time.Second)
	err = r.Write(ctx, metrics.Sample{Host: "web1", Metric: "cpu", Time: at.Add(time.Hour), Value: 1})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	p.Blackhole(false)
}

// Four goroutines share a Recorder, each writing batches of its own points
// and writing a batch again when its Write fails, while the writers' path
// to the server is cut twice for longer than the command timeout. Every
// point ends up stored: no Write returns nil for a point it lost. (With
// Add and Flush, a failure went to whichever Flush came next, and a
// goroutine could see nil for its own lost points.)
func TestSharedRecorderLosesNoAcknowledgedPoint(t *testing.T) {
	opts := testOptions()
	opts.CommandTimeout = 200 * time.Millisecond
	opts.BaseRetryInterval = 20 * time.Millisecond
	opts.MaxRetryInterval = 50 * time.Millisecond
	c, p, s := proxiedClient(t, opts)
	r := newRecorder(t, c, metrics.RecorderOptions{BatchSize: 200})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

	stop := make(chan struct{})
	var faults sync.WaitGroup
	faults.Go(func() {
		for _, cut := range []time.Duration{800 * time.Millisecond, 400 * time.Millisecond} {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			p.Blackhole(true)
			time.Sleep(cut)
			p.Blackhole(false)
		}
	})
	const writers, batches, perBatch = 4, 40, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				batch := make([]metrics.Sample, perBatch)
				for i := range batch {
					batch[i] = metrics.Sample{Host: fmt.Sprintf("web%d", w), Metric: "cpu",
						Time: at.Add(time.Duration(b*perBatch+i) * time.Second), Value: float64(i)}
				}
				for r.Write(context.Background(), batch...) != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					time.Sleep(10 * time.Millisecond) // and back off a little
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(stop)
	faults.Wait()
	t.Logf("%d Writes failed and were written again", failures)
	require.Positive(t, failures, "the cuts failed some Writes")
	counts := countMembers(t, s.Addr())
	for w := range writers {
		assert.Equal(t, int64(batches*perBatch), counts[mustKey(t, c, at, fmt.Sprintf("web%d", w), "cpu")], "points of writer %d", w)
	}
}

// While a flush is under way the buffer takes at most MaxBuffered /
// (MaxFlushes + 1) points, so that a loaded Recorder's flushes keep an
// even size; with no flush under way it takes MaxBuffered.
func TestBufferHoldsLessWhileAFlushRuns(t *testing.T) {
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c, p, _ := proxiedClient(t, opts)
	r := newRecorder(t, c, metrics.RecorderOptions{MaxBuffered: 100, MaxFlushes: 1, BatchSize: 1000000, FlushInterval: time.Hour, FailWhenFull: true})
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	n := 0
	add := func() error {
		n++
		return r.Add(ctx, "web1", "cpu", at.Add(time.Duration(n)*time.Second), 1)
	}
	require.NoError(t, add()) // a first connection
	require.NoError(t, r.Flush(ctx))

	p.Blackhole(true)
	for range 20 {
		require.NoError(t, add())
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.Flush(short), context.DeadlineExceeded, "the flush of 20 points hangs")
	for i := range 50 {
		require.NoError(t, add(), "point %d while the flush runs", i+1)
	}
	require.ErrorIs(t, add(), metrics.ErrBufferFull, "100 / (1 + 1) = 50 points while a flush runs, though the flush holds only 20")

	p.Blackhole(false)
	_ = r.Flush(ctx) // the 20 points timed out, or a retry wrote them
	require.NoError(t, r.Flush(ctx))
	for i := range 100 {
		require.NoError(t, add(), "point %d with no flush under way", i+1)
	}
	require.ErrorIs(t, add(), metrics.ErrBufferFull)
}

// A Write some of whose series fail says how many of its own points failed
// and why, series by series, and writes the rest: points of a key of
// another type and of a dropped period fail, each error final, and the
// points that another goroutine added to the same series in the same
// flush are not counted as the Write's.
func TestWriteCountsItsFailedPoints(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	sameDay(t, time.Minute)
	now := time.Now().UTC().Truncate(time.Second)
	_, err := newStore(t, c).DropBefore(ctx, now.AddDate(0, 0, -1))
	require.NoError(t, err)
	old := now.AddDate(0, 0, -3)
	badKey := mustKey(t, c, now, "bad", "m")
	direct := directClient(t, servers[0].Addr())
	require.NoError(t, direct.Set(ctx, badKey, "by hand", 0).Err())

	// Neither a timer nor a batch size flushes: the Add and the Write
	// share the Write's flush.
	r := newRecorder(t, c, metrics.RecorderOptions{BatchSize: 1 << 20, FlushInterval: time.Hour})
	for i := range 7 {
		require.NoError(t, r.Add(ctx, "bad", "m", now.Add(time.Duration(100+i)*time.Millisecond), 1))
	}
	var samples []metrics.Sample
	for i := range 50 {
		samples = append(samples, metrics.Sample{Host: "good", Metric: "m", Time: now.Add(time.Duration(i) * time.Millisecond), Value: 1})
	}
	samples = append(samples,
		metrics.Sample{Host: "bad", Metric: "m", Time: now, Value: 1},
		metrics.Sample{Host: "bad", Metric: "m", Time: now.Add(time.Millisecond), Value: 2},
		metrics.Sample{Host: "good", Metric: "m", Time: old, Value: 1},
		metrics.Sample{Host: "good", Metric: "m", Time: old.Add(time.Second), Value: 1},
		metrics.Sample{Host: "good", Metric: "m", Time: old.Add(2 * time.Second), Value: 1})
	err = r.Write(ctx, samples...)
	var we *metrics.WriteError
	require.ErrorAs(t, err, &we)
	assert.Equal(t, 55, we.Points)
	assert.Equal(t, 5, we.Failed, "failed points: got %d, want the Write's own 2 + 3", we.Failed)
	require.Len(t, we.Failures, 2)
	assert.ErrorIs(t, we.Failures[0].Err, federated.ErrWrongType)
	assert.Equal(t, 2, we.Failures[0].Points)
	assert.Equal(t, now.Format("2006-01-02"), we.Failures[0].Period)
	assert.ErrorIs(t, we.Failures[1].Err, federated.ErrPeriodDropped)
	assert.Equal(t, 3, we.Failures[1].Points)
	assert.Equal(t, old.Format("2006-01-02"), we.Failures[1].Period)
	var se *federated.ServerError
	assert.ErrorAs(t, err, &se, "each failure names its server")
	assert.ErrorIs(t, err, federated.ErrPeriodDropped)

	assert.Equal(t, int64(50), direct.ZCard(ctx, mustKey(t, c, now, "good", "m")).Val(), "the good points are written")
	st := r.Stats()
	assert.Equal(t, int64(50), st.Written)
	assert.Equal(t, int64(7+5), st.Failed, "the Recorder counts the Add's points too")
	require.ErrorIs(t, r.Flush(ctx), federated.ErrWrongType, "the Add's failure goes to Flush")
}

// With hash_tags: true, a metric key is placed whole, not by the braces of
// a Prometheus series's labels: every host's up{job="node"}, every day,
// went to one server. Reads, and a raw command on the key, find it where
// it was written.
func TestHashTagsPlaceMetricKeysWhole(t *testing.T) {
	servers := redistest.StartN(t, 8)
	opts := testOptions()
	opts.HashTags = true
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	r := newRecorder(t, c, metrics.RecorderOptions{})
	now := time.Now().Truncate(time.Second)
	var samples []metrics.Sample
	for h := range 50 {
		for _, m := range []string{`up{job="node"}`, `node_load1{job="node"}`} {
			for d := range 3 {
				samples = append(samples, metrics.Sample{Host: fmt.Sprintf("10.0.0.%d%%3A9100", h), Metric: m, Time: now.Add(-time.Duration(d) * 24 * time.Hour), Value: float64(h)})
			}
		}
	}
	require.NoError(t, r.Write(ctx, samples...))
	used := 0
	for _, s := range servers {
		if directClient(t, s.Addr()).DBSize(ctx).Val() > 0 {
			used++
		}
	}
	assert.Equal(t, len(servers), used, "the series spread over every server")

	st := newStore(t, c)
	for _, smp := range samples {
		series := metrics.Series{Host: smp.Host, Metric: smp.Metric}
		got, err := st.Range(ctx, smp.Time, smp.Time, series)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Len(t, got[0].Points, 1, "%v at %v", series, smp.Time)
		key := mustKey(t, c, smp.Time, smp.Host, smp.Metric)
		assert.EqualValues(t, 1, c.ZCard(ctx, key).Val(), "a raw command on %s", key)
		assert.Equal(t, c.KeyToNode(key), c.Group(key).Node(), "placed whole: as a group of its own name")
	}
}
