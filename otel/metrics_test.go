package redfedotel_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
)

// metering instruments each go-redis client a federated client makes with
// redisotel.InstrumentMetrics.
//
// redisotel reports a client's pool statistics from a callback that it
// unregisters only when the channel given by WithCloseChan is closed. A
// server's replaced client would otherwise go on being observed under the
// same pool.name as its fresh one, and the two be added up: the pool size
// of a server that came back up once reads twice its PoolSize. A new
// client of an address replaces the old one, so its arrival closes the old
// one's channel.
type metering struct {
	mp *sdkmetric.MeterProvider

	mu       sync.Mutex
	closeOld map[string]chan struct{} // guarded by mu; by address, the current client's
	poolSize map[string]int           // guarded by mu; by address, the current client's
	errs     []error                  // guarded by mu; what InstrumentMetrics returned
}

func (m *metering) onNewClient(addr string, rc *redis.Client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.closeOld[addr]; ok {
		close(old)
	}
	closeChan := make(chan struct{})
	m.closeOld[addr] = closeChan
	m.poolSize[addr] = rc.Options().PoolSize
	err := redisotel.InstrumentMetrics(rc, redisotel.WithMeterProvider(m.mp), redisotel.WithCloseChan(closeChan))
	if err != nil {
		m.errs = append(m.errs, fmt.Errorf("instrument %s: %w", addr, err))
	}
}

// close unregisters every client's callback and stops the goroutines that
// WithCloseChan starts.
func (m *metering) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.closeOld {
		close(ch)
	}
	clear(m.closeOld)
}

func (m *metering) pool(addr string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(m.poolSize[addr])
}

// points returns, by pool.name, the data points of the metric called name:
// the count of a histogram's, the value of a sum's (the sum of its states).
func points(t *testing.T, reader sdkmetric.Reader, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]int64{}
	add := func(attrs attribute.Set, v int64) {
		if pool, ok := attrs.Value("pool.name"); ok {
			out[pool.AsString()] += v
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, int64(p.Count))
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			default:
				t.Fatalf("metric %s: data %T, want a histogram or a sum", name, m.Data)
			}
		}
	}
	return out
}

// TestMetricsPerServerClient instruments each server's go-redis client with
// redisotel.InstrumentMetrics: commands and pools are reported under each
// server's address, and a recovered server's under its fresh client alone.
func TestMetricsPerServerClient(t *testing.T) {
	servers := redistest.StartN(t, 2)
	addrs := redistest.Addrs(servers)
	reader := sdkmetric.NewManualReader()
	m := &metering{
		mp:       sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		closeOld: map[string]chan struct{}{},
		poolSize: map[string]int{},
	}
	t.Cleanup(func() {
		m.close()
		_ = m.mp.Shutdown(context.Background())
		m.mu.Lock()
		defer m.mu.Unlock()
		assert.NoError(t, errors.Join(m.errs...), "redisotel.InstrumentMetrics of a server's go-redis client")
	})
	opts := fedtest.Options()
	opts.OnNewClient = m.onNewClient
	c := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(servers), Options: opts})
	ctx := context.Background()
	keys := []string{keyOn(c, fedtest.NodeName(1)), keyOn(c, fedtest.NodeName(2))}
	for _, k := range keys {
		require.NoError(t, c.Set(ctx, k, "v", 0).Err())
	}
	// A connection is used by the health check at New, by HELLO as it is
	// made, and by SET: at least once per server.
	used := points(t, reader, "db.client.connections.use_time")
	for _, addr := range addrs {
		assert.Positive(t, used[addr], "connection uses of %s; got %v", addr, used)
	}
	assert.Equal(t, map[string]int64{addrs[0]: m.pool(addrs[0]), addrs[1]: m.pool(addrs[1])},
		points(t, reader, "db.client.connections.max"))

	require.NoError(t, servers[0].Kill())
	require.ErrorIs(t, c.Get(ctx, keys[0]).Err(), federated.ErrServerDown)
	require.NoError(t, servers[0].Restart())
	require.Eventually(t, func() bool { return !c.IsServerDown(addrs[0]) },
		5*time.Second, 10*time.Millisecond, "the restarted server is marked up")
	before := points(t, reader, "db.client.connections.use_time")[addrs[0]]
	require.NoError(t, c.Set(ctx, keys[0], "again", 0).Err())
	assert.Greater(t, points(t, reader, "db.client.connections.use_time")[addrs[0]], before,
		"the recovered server's fresh client reports its connections' use")
	// The replaced client's callback is unregistered by a goroutine of
	// redisotel's once its channel is closed.
	want := map[string]int64{addrs[0]: m.pool(addrs[0]), addrs[1]: m.pool(addrs[1])}
	require.Eventually(t, func() bool {
		got := points(t, reader, "db.client.connections.max")
		return assert.ObjectsAreEqual(want, got)
	}, 5*time.Second, 10*time.Millisecond, "pool sizes: want %v, the replaced client's no longer added", want)
}
