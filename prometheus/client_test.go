package redfedprom_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	redfedprom "github.com/redfed/federated/prometheus"
)

// The client collector across a failover and a recovery: up and current
// follow the servers, downs and takeovers count, and the latency of what
// the restarted server runs is still observed, by its new client.
func TestClientCollector(t *testing.T) {
	servers := redistest.StartN(t, 2)
	addrs := redistest.Addrs(servers)
	c, err := federated.New(federated.Config{
		Nodes: map[string]federated.Node{"group": {Addresses: addrs}},
		Options: federated.Options{
			CommandTimeout:    time.Second,
			BaseRetryInterval: 50 * time.Millisecond,
			MaxRetryInterval:  200 * time.Millisecond,
			Logger:            slog.New(slog.DiscardHandler),
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(redfedprom.NewClientCollector(c)))
	ctx := context.Background()

	first, err := c.NodeToServer("group")
	require.NoError(t, err)
	other := addrs[0]
	if other == first {
		other = addrs[1]
	}
	firstServer := servers[0]
	if servers[1].Addr() == first {
		firstServer = servers[1]
	}
	for range 10 {
		require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	}
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "k")
		p.Get(ctx, "missing")
		return nil
	})
	require.ErrorIs(t, err, redis.Nil)
	// go-redis's HELLO on each new connection is a command too.
	assert.GreaterOrEqual(t, calls(t, reg, first, "command"), uint64(10))
	assert.Equal(t, uint64(1), calls(t, reg, first, "pipeline"))
	assert.Equal(t, 1.0, value(t, reg, "redfed_client_server_up", first))
	assert.Equal(t, 1.0, value(t, reg, "redfed_client_server_current", first))

	require.NoError(t, firstServer.Kill())
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err(), "the group's other server takes it")
	assert.Equal(t, 0.0, value(t, reg, "redfed_client_server_up", first))
	assert.Equal(t, 1.0, value(t, reg, "redfed_client_server_downs_total", first))
	assert.Equal(t, 1.0, value(t, reg, "redfed_client_server_takeovers_total", other))
	assert.Equal(t, 1.0, value(t, reg, "redfed_client_server_current", other))
	assert.Positive(t, value(t, reg, "redfed_client_server_down_since_timestamp_seconds", first))
	assert.Equal(t, 1.0, value(t, reg, "redfed_client_call_errors_total", first), "the failed SET")

	require.NoError(t, firstServer.Restart())
	require.Eventually(t, func() bool { return c.IsServerUp(first) }, 10*time.Second, 10*time.Millisecond)
	_, err = c.NextServer("group") // back to the restarted server
	require.NoError(t, err)
	before := calls(t, reg, first, "command")
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	assert.Greater(t, calls(t, reg, first, "command"), before, "the restarted server's new client is observed")

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// family returns the metrics of a name whose server label is server.
func family(t *testing.T, reg *prometheus.Registry, name, server string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "server" && l.GetValue() == server {
					out = append(out, m)
				}
			}
		}
	}
	return out
}

// value returns the value of a gauge or counter of a server (their sum).
func value(t *testing.T, reg *prometheus.Registry, name, server string) float64 {
	var v float64
	for _, m := range family(t, reg, name, server) {
		v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return v
}

// calls returns how many calls of a kind a server's latency histogram saw.
func calls(t *testing.T, reg *prometheus.Registry, server, kind string) uint64 {
	var n uint64
	for _, m := range family(t, reg, "redfed_client_call_duration_seconds", server) {
		for _, l := range m.GetLabel() {
			if l.GetName() == "kind" && strings.EqualFold(l.GetValue(), kind) {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// A call its caller cancelled says nothing of the server: it is neither
// timed nor counted as an error of the server's connection.
func TestCancelledCallsAreNotTheServers(t *testing.T) {
	servers := redistest.StartN(t, 1)
	addr := servers[0].Addr()
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"a": {Address: addr}},
		Options: federated.Options{Logger: slog.New(slog.DiscardHandler)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	reg.MustRegister(redfedprom.NewClientCollector(c))
	require.NoError(t, c.Set(context.Background(), "k", "v", 0).Err())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Get(ctx, "k").Err(), context.Canceled)
	assert.Empty(t, family(t, reg, "redfed_client_call_errors_total", addr))
}

// The latency and errors of a server that left the federation go with it.
func TestSeriesOfARemovedServerGo(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"a": {Address: a}, "b": {Address: b}},
		Options: federated.Options{Logger: slog.New(slog.DiscardHandler)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	reg.MustRegister(redfedprom.NewClientCollector(c))
	ctx := context.Background()
	for _, addr := range []string{a, b} {
		sc, err := c.ServerClient(addr)
		require.NoError(t, err)
		require.NoError(t, sc.Ping(ctx).Err())
	}
	require.NotZero(t, calls(t, reg, b, "command"))
	require.NoError(t, c.RemoveNode("b"))
	assert.Zero(t, calls(t, reg, b, "command"), "the removed server's calls are gone")
	assert.NotZero(t, calls(t, reg, a, "command"), "the others' stay")

	// A server that joins and leaves between two scrapes (two reloads),
	// and one that leaves with a call under way, which ends after the
	// scrape: their series go too, at the next scrape.
	require.NoError(t, c.AddNode("b", federated.Node{Address: b}))
	sc, err := c.ServerClient(b)
	require.NoError(t, err)
	require.NoError(t, sc.Ping(ctx).Err())
	require.NoError(t, c.RemoveNode("b"))
	assert.Empty(t, family(t, reg, "redfed_client_call_duration_seconds", b), "a server that came and went between scrapes")

	require.NoError(t, c.AddNode("b", federated.Node{Address: b}))
	sc, err = c.ServerClient(b)
	require.NoError(t, err)
	require.NoError(t, sc.Ping(ctx).Err())
	require.NotEmpty(t, family(t, reg, "redfed_client_call_duration_seconds", b))
	require.NoError(t, servers[1].Pause())
	pinged := make(chan error)
	go func() { pinged <- sc.Ping(ctx).Err() }()
	time.Sleep(100 * time.Millisecond) // the ping waits for the stopped server
	require.NoError(t, c.RemoveNode("b"))
	assert.Empty(t, family(t, reg, "redfed_client_call_duration_seconds", b))
	require.Error(t, <-pinged, "the ping ends with the server's timeout")
	require.NoError(t, servers[1].Resume())
	for _, name := range []string{"redfed_client_call_duration_seconds", "redfed_client_call_errors_total"} {
		assert.Empty(t, family(t, reg, name, b), "%s of a call that ended after its server left", name)
	}
}

// The collectors of two clients share a registry under a label each, as
// the doc shows; registered bare, the second is refused.
func TestTwoClientsShareARegistryUnderLabels(t *testing.T) {
	servers := redistest.StartN(t, 2)
	reg, bare := prometheus.NewRegistry(), prometheus.NewRegistry()
	for i, name := range []string{"writer", "reader"} {
		c, err := federated.New(federated.Config{
			Nodes:   map[string]federated.Node{"n": {Address: servers[i].Addr()}},
			Options: federated.Options{Logger: slog.New(slog.DiscardHandler)},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		cc := redfedprom.NewClientCollector(c)
		if err := bare.Register(cc); i == 0 {
			require.NoError(t, err)
		} else {
			require.Error(t, err, "the second client's collector, bare")
		}
		require.NoError(t, prometheus.WrapRegistererWith(prometheus.Labels{"client": name}, reg).Register(cc))
		require.NoError(t, c.Set(context.Background(), "k", "v", 0).Err())
	}
	n, err := testutil.GatherAndCount(reg, "redfed_client_server_up")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "one series of each client")
}

// A closed client's collector sends no series: its servers' last state
// said them up.
func TestCollectorOfAClosedClientSendsNothing(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c, err := federated.New(federated.Config{
		Nodes:   map[string]federated.Node{"n": {Address: servers[0].Addr()}},
		Options: federated.Options{Logger: slog.New(slog.DiscardHandler)},
	})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(redfedprom.NewClientCollector(c)))
	require.NoError(t, c.Set(context.Background(), "k", "v", 0).Err())
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Positive(t, n)
	require.NoError(t, c.Close())
	n, err = testutil.GatherAndCount(reg)
	require.NoError(t, err)
	assert.Zero(t, n)
}
