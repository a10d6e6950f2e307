package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/cmd/redfed/internal/wire"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

func TestAPIListsHostsAndMetrics(t *testing.T) {
	f := newFixture(t, 3)
	srv := serve(t, Options{Source: f.fleet()})

	var hosts hostsReply
	getJSON(t, srv, "/api/hosts", http.StatusOK, &hosts)
	assert.Equal(t, []string{xssHost, "db1.sfo", "web1.sfo", "web2.sfo"}, hosts.Hosts)
	assert.Empty(t, hosts.Warning)

	for host, want := range map[string][]string{
		"web1.sfo": {"cpu.user", "mem.used_mb"},
		"db1.sfo":  {xssMetric, "disk.free_gb"},
		xssHost:    {"load.1m"},
		"nobody":   {},
	} {
		var got metricsReply
		getJSON(t, srv, "/api/metrics?host="+url.QueryEscape(host), http.StatusOK, &got)
		assert.Equal(t, metricsReply{Host: host, Metrics: want}, got, "metrics of %q", host)
	}
}

// TestAPIListsInNaturalOrder checks that hosts and metrics come with their
// numbers in order (cache3 before cache27), on the API and on the page,
// whatever order the source gives them in.
func TestAPIListsInNaturalOrder(t *testing.T) {
	src := &fakeSource{hosts: []string{"cache27", "web1", "cache3", "cache100"}, metrics: []string{"disk10.free", "disk2.free"}}
	srv := serve(t, Options{Source: src})

	var hosts hostsReply
	getJSON(t, srv, "/api/hosts", http.StatusOK, &hosts)
	assert.Equal(t, []string{"cache3", "cache27", "cache100", "web1"}, hosts.Hosts)
	assert.Equal(t, []string{"cache27", "web1", "cache3", "cache100"}, src.hosts, "the source's slice was changed")

	var got metricsReply
	getJSON(t, srv, "/api/metrics?host=cache3", http.StatusOK, &got)
	assert.Equal(t, []string{"disk2.free", "disk10.free"}, got.Metrics)

	_, page := get(t, srv, "/")
	i3, i27 := strings.Index(page, "cache3"), strings.Index(page, "cache27")
	require.True(t, i3 >= 0 && i27 >= 0, "page lists the hosts: %s", page)
	assert.Less(t, i3, i27, "cache3 after cache27 on the page")
}

func TestAPISeries(t *testing.T) {
	f := newFixture(t, 3)
	srv := serve(t, Options{Source: f.fleet()})
	hourAgo := time.Now().Add(-DefaultRange)

	// The default range, the last hour: every point of every series.
	for _, s := range f.data {
		var got seriesReply
		getJSON(t, srv, "/api/series?"+url.Values{"host": {s.host}, "metric": {s.metric}}.Encode(), http.StatusOK, &got)
		assert.Equal(t, s.host, got.Host)
		assert.Equal(t, s.metric, got.Metric)
		assert.Equal(t, unitOf(s.metric), got.Unit, "unit of %s", s.metric)
		assertPoints(t, s.since(hourAgo), got.Points, "%s %s", s.host, s.metric)
	}
	_, body := get(t, srv, "/api/series?host=web1.sfo&metric=mem.used_mb")
	assert.Contains(t, body, `"unit":{"kind":"bytes","scale":1048576}`, "the unit of a metric in MB")

	cpu := f.find("web1.sfo", "cpu.user")
	from, to := cpu.points[0].Time, cpu.points[10].Time
	disk := f.find("db1.sfo", "disk.free_gb")
	rate := f.find("web2.sfo", "req.rate")
	tests := []struct {
		name  string
		query url.Values
		want  []metrics.Point
	}{
		{"unix seconds", url.Values{"from": {unix(from)}, "to": {unix(to)}}, cpu.points[:11]},
		{"RFC 3339", url.Values{"from": {from.UTC().Format(time.RFC3339)}, "to": {to.In(time.FixedZone("", 7200)).Format(time.RFC3339)}}, cpu.points[:11]},
		{"unescaped zone offset", url.Values{"from": {from.In(time.FixedZone("", 3600)).Format(time.RFC3339)}, "to": {unix(to)}}, cpu.points[:11]},
		{"from only", url.Values{"from": {unix(cpu.points[45].Time)}}, cpu.points[45:]},
		{"range", url.Values{"range": {"12m"}, "to": {unix(to)}}, cpu.points[:11]},
		{"range in days", url.Values{"range": {"1d"}}, cpu.points},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.query.Set("host", cpu.host)
			tt.query.Set("metric", cpu.metric)
			q := tt.query.Encode()
			if tt.name == "unescaped zone offset" {
				q, _ = url.QueryUnescape(q) // "+01:00" arrives as " 01:00"
			}
			var got seriesReply
			getJSON(t, srv, "/api/series?"+q, http.StatusOK, &got)
			assertPoints(t, tt.want, got.Points, "query %s", q)
		})
	}

	t.Run("longer range shows older points", func(t *testing.T) {
		var got seriesReply
		getJSON(t, srv, "/api/series?host=db1.sfo&metric=disk.free_gb", http.StatusOK, &got)
		assertPoints(t, disk.points[2:], got.Points, "last hour")
		getJSON(t, srv, "/api/series?host=db1.sfo&metric=disk.free_gb&range=6h", http.StatusOK, &got)
		assertPoints(t, disk.points, got.Points, "last 6h")
	})

	t.Run("max_points", func(t *testing.T) {
		var got seriesReply
		getJSON(t, srv, "/api/series?host=web2.sfo&metric=req.rate&max_points=20", http.StatusOK, &got)
		assert.Equal(t, len(rate.points), got.DownsampledFrom)
		assert.LessOrEqual(t, len(got.Points), 20)
		assert.GreaterOrEqual(t, len(got.Points), 10)
		lo, hi := minMax(rate.points)
		gotLo, gotHi := minMax(pointsOf(got.Points))
		assert.Equal(t, [2]float64{lo, hi}, [2]float64{gotLo, gotHi}, "extremes survive downsampling")
	})
}

func TestAPIBadParameters(t *testing.T) {
	f := newFixture(t, 1)
	srv := serve(t, Options{Source: f.fleet()})
	tests := []struct {
		url, param string
	}{
		{"/api/metrics", "host"},
		{"/api/metrics?host=a:b", "host"},
		{"/api/metrics?host=%01", "host"},
		{"/api/series?metric=cpu", "host"},
		{"/api/series?host=web1.sfo", "metric"},
		{"/api/series?host=a:b&metric=cpu", "host"},
		{"/api/series?host=web1.sfo&metric=cpu%7F", "metric"},
		{"/api/series?host=web1.sfo&metric=cpu&from=yesterday", "from"},
		{"/api/series?host=web1.sfo&metric=cpu&to=1e9", "to"},
		{"/api/series?host=web1.sfo&metric=cpu&to=99999999999999", "to"},
		{"/api/series?host=web1.sfo&metric=cpu&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"},
		{"/api/series?host=web1.sfo&metric=cpu&from=0", "from"},
		{"/api/series?host=web1.sfo&metric=cpu&range=0s", "range"},
		{"/api/series?host=web1.sfo&metric=cpu&range=-1h", "range"},
		{"/api/series?host=web1.sfo&metric=cpu&range=-213503d", "range"}, // wrapped to 23.6 h once
		{"/api/series?host=web1.sfo&metric=cpu&to=0", "to"},              // the default range before it
		{"/api/overview?metric=a%00b", "metric"},                         // before any host is read
		{"/api/series?host=web1.sfo&metric=cpu&range=1y", "range"},
		{"/api/series?host=web1.sfo&metric=cpu&range=40d", "range"},
		{"/api/series?host=web1.sfo&metric=cpu&range=1h&from=0", "range"},
		{"/api/series?host=web1.sfo&metric=cpu&max_points=1", "max_points"},
		{"/api/series?host=web1.sfo&metric=cpu&max_points=many", "max_points"},
		{"/api/series?host=web1.sfo&metric=cpu&max_points=10001", "max_points"},
		// A pair that does not parse, or a parameter given twice, was
		// dropped: the default range came back with 200.
		{"/api/series?host=web1.sfo&metric=cpu.user&from=%zz", "from"},
		{"/api/series?host=web1.sfo&metric=cpu.user&max_points=%zz", "max_points"},
		{"/api/series?host=web1.sfo&metric=cpu.user&range=%zz", "range"},
		{"/api/series?host=web1.sfo&metric=cpu.user&from=1;to=2", "from"},
		{"/api/series?host=web1.sfo&metric=cpu.user&%zz=1", "query"},
		{"/api/series?host=web1.sfo&metric=cpu.user&a;b=1", "query"},
		{"/api/metrics?host=%zz", "host"},
		{"/api/metrics?host=web1.sfo&host=web2.sfo", "host"},
		{"/api/series?host=web1.sfo&host=web2.sfo&metric=cpu.user", "host"},
		{"/api/series?host=web1.sfo&metric=cpu.user&metric=req.rate", "metric"},
		{"/api/series?host=web1.sfo&metric=cpu.user&from=2026-01-01T00:00:00Z&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z", "from"},
		{"/api/series?host=web1.sfo&metric=cpu.user&max_points=10&max_points=20", "max_points"},
		{"/api/overview?metric=cpu.user&top=2&top=3", "top"},
		{"/api/overview?metric=cpu.user&range=1h&range=6h", "range"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			var got errorReply
			getJSON(t, srv, tt.url, http.StatusBadRequest, &got)
			assert.Equal(t, tt.param, got.Param, "param; error %q", got.Error)
			assert.Contains(t, got.Error, tt.param)
		})
	}

	var got errorReply
	getJSON(t, srv, "/api/metrics?host=%zz", http.StatusBadRequest, &got)
	assert.Contains(t, got.Error, `"host=%zz" cannot be read`, "said \"host: missing\" once")

	res, _ := get(t, srv, "/api/nope")
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "unknown path")
	res, err := srv.Client().Post(srv.URL+"/api/hosts", "text/plain", nil)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "POST")
}

func TestAPISourceErrors(t *testing.T) {
	failure := fmt.Errorf("%w: node redis_2, server 10.0.0.2:6379: connection refused", federated.ErrServerDown)
	src := &fakeSource{err: failure}
	now := time.Now()
	srv := serve(t, Options{Source: src, Now: func() time.Time { return now }})
	urls := []string{"/api/hosts", "/api/metrics?host=web1", "/api/series?host=web1&metric=cpu"}

	// Nothing came back: 502 with the error.
	for _, u := range urls {
		var got errorReply
		getJSON(t, srv, u, http.StatusBadGateway, &got)
		assert.Equal(t, failure.Error(), got.Error, "GET %s", u)
	}

	// Some servers answered: their answer, with the error as a warning,
	// once the failed listing is no longer kept.
	src.hosts, src.metrics = []string{"web1"}, []string{"cpu"}
	now = now.Add(listingRetry)
	src.points = []metrics.Point{{Time: time.Unix(1_700_000_000, 500_000_000), Value: 1.5}}
	var hosts hostsReply
	getJSON(t, srv, urls[0], http.StatusOK, &hosts)
	assert.Equal(t, hostsReply{Hosts: []string{"web1"}, Warning: failure.Error()}, hosts)
	var metrics metricsReply
	getJSON(t, srv, urls[1], http.StatusOK, &metrics)
	assert.Equal(t, metricsReply{Host: "web1", Metrics: []string{"cpu"}, Warning: failure.Error()}, metrics)
	var series seriesReply
	getJSON(t, srv, urls[2], http.StatusOK, &series)
	assert.Equal(t, []wire.Point{{Time: time.Unix(1_700_000_000, 500_000_000).UTC(), Value: 1.5}}, series.Points)
	assert.Equal(t, failure.Error(), series.Warning)

	// A bad name wrapped in another error is still the caller's fault.
	src.err = fmt.Errorf("read: %w", errors.Join(failure, fmt.Errorf("%w %q: bad", federated.ErrBadMetric, "x")))
	var bad errorReply
	getJSON(t, srv, urls[2], http.StatusBadRequest, &bad)
	assert.Equal(t, "metric", bad.Param)
}

func TestAPIStatus(t *testing.T) {
	f := newFixture(t, 3)
	checkedAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	srv := serve(t, Options{Source: f.fleet(), Syncer: testSyncerStats, LastCheck: testCheck(checkedAt)})

	var st statusReply
	getJSON(t, srv, "/api/status", http.StatusOK, &st)
	require.Len(t, st.Servers, 3)
	for _, s := range st.Servers {
		assert.False(t, s.Down, "%s down before any kill", s.Address)
		assert.Nil(t, s.DownSince)
	}

	killed := f.markDown(t, 1)
	var hosts hostsReply
	getJSON(t, srv, "/api/hosts", http.StatusOK, &hosts)
	assert.Contains(t, hosts.Warning, killed, "hosts with a server down: warning")

	getJSON(t, srv, "/api/status", http.StatusOK, &st)
	var found bool
	for _, s := range st.Servers {
		if s.Address != killed {
			assert.False(t, s.Down, "%s down", s.Address)
			continue
		}
		found = true
		assert.True(t, s.Down, "killed server %s: down", killed)
		require.NotNil(t, s.DownSince, "killed server: down_since")
		since, err := time.Parse(time.RFC3339, *s.DownSince)
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now(), since, time.Minute)
		assert.NotEmpty(t, s.LastError)
	}
	assert.True(t, found, "killed server %s in status", killed)

	require.NotNil(t, st.Syncer)
	assert.Equal(t, []peerStatus{
		{Local: "127.0.0.1:1", Peer: "127.0.0.1:2", LagMS: 1.5, P50MS: 1, P99MS: 40, Added: 7},
		{Local: "127.0.0.1:1", Peer: "127.0.0.1:3", LagMS: 2000, Errors: 3, LastError: "dial tcp: refused",
			LastErrorAt: ptr("2026-11-25T09:59:58.000Z")},
	}, st.Syncer.Peers)
	assert.Equal(t, antiEntropyStatus{Runs: 2, Repaired: 1, Added: 4}, st.Syncer.AntiEntropy)
	require.NotNil(t, st.Check)
	assert.Equal(t, checkStatus{OK: false, Keys: 120, Divergent: 2, At: "2026-11-25T10:00:00.000Z",
		Groups: []groupStatus{{Node: "redis_1", Servers: []string{"a:1", "b:1"}, Keys: 120, Divergent: 2}}}, *st.Check)

	// Without a syncer or a check, both are null.
	srv = serve(t, Options{Source: f.fleet(), Syncer: func() *syncer.Stats { return nil },
		LastCheck: func() (metrics.CheckReport, time.Time, bool) { return metrics.CheckReport{}, time.Time{}, false }})
	_, body := get(t, srv, "/api/status")
	assert.Contains(t, body, `"syncer":null`)
	assert.Contains(t, body, `"check":null`)
}

// assertPoints checks JSON points against the points written: the same
// instants, to the nanosecond, in UTC.
func assertPoints(t *testing.T, want []metrics.Point, got []wire.Point, what string, args ...any) {
	t.Helper()
	label := fmt.Sprintf(what, args...)
	require.Len(t, got, len(want), "points of %s", label)
	for i, p := range want {
		assert.Equal(t, wire.Point{Time: p.Time.UTC(), Value: p.Value}, got[i], "point %d of %s", i, label)
	}
}

func pointsOf(points []wire.Point) []metrics.Point {
	out := make([]metrics.Point, len(points))
	for i, p := range points {
		out[i] = metrics.Point{Time: p.Time, Value: p.Value}
	}
	return out
}

func minMax(pts []metrics.Point) (lo, hi float64) {
	lo, hi = pts[0].Value, pts[0].Value
	for _, p := range pts {
		lo, hi = min(lo, p.Value), max(hi, p.Value)
	}
	return lo, hi
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func ptr[T any](v T) *T { return &v }
