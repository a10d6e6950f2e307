package dashboard

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAPIOverview(t *testing.T) {
	f := newFixture(t, 3)
	srv := serve(t, Options{Source: f.fleet()})
	hourAgo := time.Now().Add(-DefaultRange)

	// The hosts with cpu.user, by their latest value, highest first.
	cpu := []series{f.find("web1.sfo", "cpu.user"), f.find("web2.sfo", "cpu.user")}
	latest := func(s series) float64 { return s.points[len(s.points)-1].Value }
	slices.SortFunc(cpu, func(a, b series) int { return cmp.Compare(latest(b), latest(a)) })
	var got overviewReply
	getJSON(t, srv, "/api/overview?metric=cpu.user", http.StatusOK, &got)
	assert.Equal(t, "cpu.user", got.Metric)
	assert.Equal(t, 2, got.Ranked, "hosts with cpu.user")
	require.Len(t, got.Series, 2)
	for i, s := range cpu {
		assert.Equal(t, s.host, got.Series[i].Host, "series %d: the busiest first", i)
		assertPoints(t, s.since(hourAgo), got.Series[i].Points, "%s of the overview", s.host)
	}
	assert.Empty(t, got.Warning)

	getJSON(t, srv, "/api/overview?metric=cpu.user&top=1", http.StatusOK, &got)
	require.Len(t, got.Series, 1)
	assert.Equal(t, cpu[0].host, got.Series[0].Host, "top=1: the busiest")
	assert.Equal(t, 2, got.Ranked, "top=1: the hosts compared, not those kept")

	// Hosts given: those, in that order, ranking nothing.
	getJSON(t, srv, "/api/overview?metric=mem.used_mb&range=6h&host=db1.sfo&host=web1.sfo", http.StatusOK, &got)
	assert.Zero(t, got.Ranked)
	assert.Equal(t, unit{"bytes", 1 << 20}, got.Unit)
	require.Len(t, got.Series, 2)
	assert.Equal(t, "db1.sfo", got.Series[0].Host)
	assert.Empty(t, got.Series[0].Points, "db1.sfo has no mem.used_mb")
	mem := f.find("web1.sfo", "mem.used_mb")
	assertPoints(t, mem.points, got.Series[1].Points, "web1.sfo mem.used_mb, given")

	// A host named as markup is a name like any other.
	getJSON(t, srv, "/api/overview?"+url.Values{"metric": {"load.1m"}}.Encode(), http.StatusOK, &got)
	require.Len(t, got.Series, 1)
	assert.Equal(t, xssHost, got.Series[0].Host)

	for _, tt := range []struct{ query, param string }{
		{"", "metric"},
		{"metric=cpu.user&top=0", "top"},
		{"metric=cpu.user&top=13", "top"},
		{"metric=cpu.user&top=x", "top"},
		{"metric=cpu.user&top=2&host=web1.sfo", "top"},
		{"metric=cpu.user&host=", "host"},
		{"metric=cpu.user&" + strings.Repeat("host=a&", MaxOverviewTop+1), "host"},
		{"metric=cpu.user&range=2x", "range"},
		{"metric=cpu.user&max_points=1", "max_points"},
		{"metric=cpu.user&host=a:b", "host"},
	} {
		var bad errorReply
		getJSON(t, srv, "/api/overview?"+tt.query, http.StatusBadRequest, &bad)
		assert.Equal(t, tt.param, bad.Param, "GET /api/overview?%s: %s", tt.query, bad.Error)
	}
}

func TestSpread(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	assert.Equal(t, []string{"a", "d", "g"}, spread(names, 3))
	assert.Equal(t, names, spread(names, 7))
	assert.Equal(t, names[:2], spread(names[:2], 3))
}

func TestDistinctLines(t *testing.T) {
	assert.Equal(t, "a\nb", distinctLines("a\nb\na\n\nb"))
	assert.Empty(t, distinctLines(""))
	assert.Equal(t, "node a, server 127.0.0.1:6379: read tcp 127.0.0.1:6379: i/o timeout\n"+
		"node b, server 127.0.0.1:6380: write tcp [::1]:6380: i/o timeout",
		distinctLines("node a, server 127.0.0.1:6379: read tcp 127.0.0.1:52478->127.0.0.1:6379: i/o timeout\n"+
			"node a, server 127.0.0.1:6379: read tcp 127.0.0.1:52479->127.0.0.1:6379: i/o timeout\n"+
			"node b, server 127.0.0.1:6380: write tcp [::1]:41000->[::1]:6380: i/o timeout"),
		"the same failure of a server, met on two connections, is said once")
}
