package dashboard

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

func TestMain(m *testing.M) {
	// go-redis logs failed dials to stderr; the tests kill servers.
	redis.SetLogger(discardLogger{})
	goleak.VerifyTestMain(m)
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// testPassword protects the test servers; no output may show it.
const testPassword = "pw-Never-Shown-9d2f"

// Names that are markup: the dashboard must show them as text.
const (
	xssMetric = `<script>alert(1)</script>`
	xssHost   = `"><img src=x onerror=alert(2)>`
)

// series is one series of the test data.
type series struct {
	host, metric string
	points       []metrics.Point
}

// fixture is a federation of real redis-servers holding the test data.
type fixture struct {
	servers []*redistest.Server
	client  *federated.Client
	base    time.Time // the test data's "now", whole seconds
	data    []series
}

// fleet is the dashboard's source of the fixture's federation.
func (f *fixture) fleet() Fleet {
	st, err := metrics.New(f.client)
	if err != nil {
		panic(err) // the fixture's client has a valid configuration
	}
	return Fleet{Store: st}
}

// newFixture starts n password-protected servers, one node each, and writes
// the test data.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	return newFixtureOf(t, n, testData)
}

// newFixtureOf is newFixture with the data that data returns.
func newFixtureOf(t *testing.T, n int, data func(base time.Time) []series) *fixture {
	t.Helper()
	servers := redistest.StartN(t, n, redistest.Options{Args: []string{"--requirepass", testPassword}})
	nodes := make(map[string]federated.Node, n)
	for i, s := range servers {
		nodes[fmt.Sprintf("redis_%d", i+1)] = federated.Node{Address: s.Addr()}
	}
	return startFixture(t, servers, nodes, data)
}

// newGroupFixture starts nodes replica groups of replicas password-protected
// servers each, and writes the test data. Each group lists its servers by
// address from highest to lowest, so that the order of its configuration
// is not the order of the addresses.
func newGroupFixture(t *testing.T, nodes, replicas int) *fixture {
	t.Helper()
	servers := redistest.StartN(t, nodes*replicas, redistest.Options{Args: []string{"--requirepass", testPassword}})
	cfg := make(map[string]federated.Node, nodes)
	for i := range nodes {
		group := redistest.Addrs(servers[i*replicas : (i+1)*replicas])
		slices.SortFunc(group, func(a, b string) int { return cmp.Compare(b, a) })
		cfg[fmt.Sprintf("redis_%d", i+1)] = federated.Node{Addresses: group}
	}
	return startFixture(t, servers, cfg, testData)
}

// startFixture makes the client of the servers laid out as nodes, and
// writes the data that data returns for a "now" of base.
func startFixture(t *testing.T, servers []*redistest.Server, nodes map[string]federated.Node, data func(base time.Time) []series) *fixture {
	t.Helper()
	client, err := federated.New(federated.Config{Nodes: nodes, Options: federated.Options{
		CommandTimeout:    2 * time.Second,
		BaseRetryInterval: 50 * time.Millisecond,
		MaxRetryInterval:  200 * time.Millisecond,
		Password:          testPassword,
		Logger:            slog.New(slog.DiscardHandler),
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })

	f := &fixture{servers: servers, client: client, base: time.Now().Truncate(time.Second)}
	f.data = data(f.base)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := f.fleet().NewRecorder(metrics.RecorderOptions{})
	require.NoError(t, err)
	for _, s := range f.data {
		for _, p := range s.points {
			require.NoError(t, rec.Add(ctx, s.host, s.metric, p.Time, p.Value))
		}
	}
	require.NoError(t, rec.Flush(ctx))
	require.NoError(t, rec.Close())
	return f
}

// testData is a few hosts with a few metrics each, every point within the
// last hour before base but for two older points of disk.free_gb.
func testData(base time.Time) []series {
	every := func(n int, step time.Duration, value func(i int) float64) []metrics.Point {
		pts := make([]metrics.Point, n)
		for i := range pts {
			pts[i] = metrics.Point{Time: base.Add(-time.Duration(n-i) * step), Value: value(i)}
		}
		return pts
	}
	wave := func(mean, amp, phase float64) func(int) float64 {
		return func(i int) float64 {
			x := float64(i)
			return math.Round((mean+amp*math.Sin(x/6+phase)+amp/5*math.Sin(x*1.7))*100) / 100
		}
	}
	at := func(ago time.Duration, v float64) metrics.Point {
		return metrics.Point{Time: base.Add(-ago), Value: v}
	}
	return []series{
		{"web1.sfo", "cpu.user", every(50, time.Minute, wave(40, 25, 0))},
		{"web1.sfo", "mem.used_mb", every(50, time.Minute, func(i int) float64 { return 2048 + 10*float64(i) })},
		{"web2.sfo", "cpu.user", every(50, time.Minute, wave(55, 20, 2))},
		{"web2.sfo", "req.rate", every(200, 15*time.Second, wave(1200, 300, 1))},
		{"db1.sfo", xssMetric, every(5, 10*time.Minute, func(i int) float64 { return float64(i * i) })},
		{"db1.sfo", "disk.free_gb", []metrics.Point{at(3*time.Hour, 512), at(2*time.Hour, 500), at(30*time.Minute, 480), at(20*time.Minute, 470.5)}},
		{xssHost, "load.1m", every(30, time.Minute, wave(2, 1, 3))},
	}
}

// find returns the test series of host and metric.
func (f *fixture) find(host, metric string) series {
	for _, s := range f.data {
		if s.host == host && s.metric == metric {
			return s
		}
	}
	panic("no test series " + host + " " + metric)
}

// since returns the points of s at or after t.
func (s series) since(t time.Time) []metrics.Point {
	var out []metrics.Point
	for _, p := range s.points {
		if !p.Time.Before(t) {
			out = append(out, p)
		}
	}
	return out
}

// serve starts the dashboard of opts on a loopback test server.
func serve(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := New(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get requests url with the headers, given as name, value pairs, and
// returns the response and its body.
func get(t *testing.T, srv *httptest.Server, url string, header ...string) (*http.Response, string) {
	t.Helper()
	return getHost(t, srv, url, "", header...)
}

// getHost is get with the Host header host, when it is not empty.
func getHost(t *testing.T, srv *httptest.Server, url, host string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+url, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := *srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NotContains(t, string(body), testPassword, "GET %s shows the password", url)
	return res, string(body)
}

// getJSON requests url, checks the status code and decodes the body into v.
func getJSON(t *testing.T, srv *httptest.Server, url string, wantCode int, v any) {
	t.Helper()
	res, body := get(t, srv, url)
	require.Equal(t, wantCode, res.StatusCode, "GET %s: status; body %s", url, body)
	require.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"), "GET %s", url)
	require.NoError(t, json.Unmarshal([]byte(body), v), "GET %s: body %s", url, body)
}

// fakeSource is a Source whose answers the test sets.
type fakeSource struct {
	hosts, metrics []string
	points         []metrics.Point
	err            error
	status         []federated.ServerStatus
	order          map[string][]string // each node's servers in configuration order; default: as in status
}

// Series gives every host every metric.
func (s *fakeSource) Series(context.Context, time.Time) ([]metrics.Series, error) {
	var out []metrics.Series
	for _, host := range slices.Sorted(slices.Values(s.hosts)) {
		for _, name := range slices.Sorted(slices.Values(s.metrics)) {
			out = append(out, metrics.Series{Host: host, Metric: name})
		}
	}
	return out, s.err
}
func (s *fakeSource) Summarize(context.Context, metrics.Series, time.Time, time.Time, int) (metrics.Summary, error) {
	return metrics.Summary{Points: s.points, Total: len(s.points)}, s.err
}
func (s *fakeSource) LatestEach(_ context.Context, series ...metrics.Series) ([]metrics.LatestResult, error) {
	out := make([]metrics.LatestResult, len(series))
	for i, sr := range series {
		out[i].Series = sr
		if len(s.points) > 0 {
			out[i].Point, out[i].Found = s.points[len(s.points)-1], true
		}
	}
	return out, s.err
}
func (s *fakeSource) Status() []federated.ServerStatus { return s.status }
func (s *fakeSource) AllServers(node string) ([]string, error) {
	if addrs, ok := s.order[node]; ok {
		return addrs, nil
	}
	var out []string
	for _, st := range s.status {
		if st.Node == node {
			out = append(out, st.Address)
		}
	}
	return out, nil
}

// testErrorAt is when the failing link of testSyncerStats failed.
var testErrorAt = time.Date(2026, 11, 25, 9, 59, 58, 0, time.UTC)

// testSyncerStats and testCheck stand in for a running syncer and a check.
func testSyncerStats() *syncer.Stats {
	return &syncer.Stats{
		Peers: []syncer.PeerStats{
			{Local: "127.0.0.1:1", Peer: "127.0.0.1:2", Lag: 1500 * time.Microsecond, LagP50: time.Millisecond,
				LagP99: 40 * time.Millisecond, Added: 7},
			{Local: "127.0.0.1:1", Peer: "127.0.0.1:3", Lag: 2 * time.Second, Errors: 3, LastError: "dial tcp: refused",
				LastErrorAt: testErrorAt, LastSuccess: testErrorAt.Add(-time.Minute)},
		},
		AntiEntropy: syncer.AntiEntropyStats{Runs: 2, Repaired: 1, Added: 4},
	}
}

func testCheck(at time.Time) func() (metrics.CheckReport, time.Time, bool) {
	return func() (metrics.CheckReport, time.Time, bool) {
		return metrics.CheckReport{
			Keys: 120, Divergent: 2,
			Groups: []metrics.GroupReport{{Node: "redis_1", Servers: []string{"a:1", "b:1"}, Keys: 120, Divergent: 2}},
		}, at, true
	}
}

// markDown kills server i and reads every journal until the client marks
// it down.
func (f *fixture) markDown(t *testing.T, i int) string {
	t.Helper()
	addr := f.servers[i].Addr()
	require.NoError(t, f.servers[i].Kill())
	require.Eventually(t, func() bool {
		_, err := f.fleet().Hosts(context.Background(), time.Time{})
		return errors.Is(err, federated.ErrServerDown) && f.client.IsServerDown(addr)
	}, 10*time.Second, 20*time.Millisecond, "server %s not marked down", addr)
	return addr
}
