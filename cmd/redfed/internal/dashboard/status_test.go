package dashboard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

// The servers are listed by node, nodes in natural order, each node's
// servers in its configuration order, on the API and on the page.
func TestStatusGroupsByNode(t *testing.T) {
	src := &fakeSource{
		status: []federated.ServerStatus{ // sorted by address, as the client gives them
			{Node: "redis_10", Address: "10.0.0.1:1"},
			{Node: "redis_2", Address: "10.0.0.1:2", Current: true},
			{Node: "redis_10", Address: "10.0.0.2:1", Current: true},
			{Node: "redis_2", Address: "10.0.0.2:2", Down: true, DownSince: time.Now(), LastError: errors.New("refused")},
			{Node: "redis_2", Address: "10.0.0.3:2"},
		},
		order: map[string][]string{
			"redis_2":  {"10.0.0.3:2", "10.0.0.1:2", "10.0.0.2:2"},
			"redis_10": {"10.0.0.2:1", "10.0.0.1:1"},
		},
	}
	srv := serve(t, Options{Source: src})
	var st statusReply
	getJSON(t, srv, "/api/status", http.StatusOK, &st)
	var got []string
	for _, s := range st.Servers {
		got = append(got, s.Node+" "+s.Address)
	}
	want := []string{"redis_2 10.0.0.3:2", "redis_2 10.0.0.1:2", "redis_2 10.0.0.2:2", "redis_10 10.0.0.2:1", "redis_10 10.0.0.1:1"}
	assert.Equal(t, want, got, "servers by node")

	_, body := get(t, srv, "/status")
	groups := regexp.MustCompile(`(?s)<tbody class="node[^"]*" data-node="([^"]+)">(.*?)</tbody>`).FindAllStringSubmatch(body, -1)
	require.Len(t, groups, 2, "a row group per node:\n%s", body)
	rows := regexp.MustCompile(`data-address="([^"]+)"`)
	got = nil
	for _, g := range groups {
		for _, r := range rows.FindAllStringSubmatch(g[2], -1) {
			got = append(got, g[1]+" "+r[1])
		}
	}
	assert.Equal(t, want, got, "rows by node")
	assert.Contains(t, groups[0][0], `<tbody class="node degraded" data-node="redis_2">`, "a node with a server down")
	assert.Contains(t, groups[0][2], "2 of 3 up")
	assert.Contains(t, groups[0][2], `<tr class="up current" data-address="10.0.0.1:2">`, "the current server is marked")
	assert.Contains(t, groups[1][2], "2 of 2 up")
}

// A killed server shows as down within seconds by the client's background
// PINGs alone, the dashboard sending nothing; down_since is when it
// stopped answering. Once it is back, it shows as up, with no error.
func TestStatusShowsKilledServerDown(t *testing.T) {
	f := newFixture(t, 3)
	srv := serve(t, Options{Source: f.fleet()})
	interval := f.client.Options().HealthCheckInterval
	victim := f.servers[1]
	addr := victim.Addr()

	killedAt := time.Now()
	require.NoError(t, victim.Kill())
	var got serverStatus
	waitStatus(t, srv, 5*time.Second, func(s serverStatus) bool { return s.Address == addr && s.Down }, &got,
		"server %s down within 5 s of its kill", addr)
	require.NotNil(t, got.DownSince, "down_since of %s", addr)
	since, err := time.Parse(time.RFC3339, *got.DownSince)
	require.NoError(t, err)
	// The API keeps milliseconds: allow for the rounding.
	assert.False(t, since.Before(killedAt.Add(-time.Millisecond)), "down since %v, before the kill at %v", since, killedAt)
	assert.False(t, since.After(killedAt.Add(interval+time.Second)),
		"down since %v, more than a PING interval (%v) and 1 s after the kill at %v", since, interval, killedAt)
	assert.NotEmpty(t, got.LastError, "why %s is down", addr)

	require.NoError(t, victim.Restart())
	waitStatus(t, srv, 10*time.Second, func(s serverStatus) bool { return s.Address == addr && !s.Down }, &got,
		"server %s up again after its restart", addr)
	assert.Nil(t, got.DownSince, "down_since once up")
	assert.Empty(t, got.LastError, "error once up")
}

// A server that hangs (SIGSTOP) answers no PING: it shows as down once
// the PING's command timeout is over, down since a time after the pause
// (the client marks the time it gave up on the PING, at most a PING
// interval and a command timeout after the server stopped answering), and
// up once it answers again.
func TestStatusShowsHungServerDown(t *testing.T) {
	f := newFixture(t, 2)
	srv := serve(t, Options{Source: f.fleet()})
	opts := f.client.Options()
	victim := f.servers[0]
	addr := victim.Addr()

	pausedAt := time.Now()
	require.NoError(t, victim.Pause())
	within := opts.HealthCheckInterval + opts.CommandTimeout + 2*time.Second
	var got serverStatus
	waitStatus(t, srv, within, func(s serverStatus) bool { return s.Address == addr && s.Down }, &got,
		"hung server %s down within a PING interval and a command timeout (%v)", addr, within)
	require.NotNil(t, got.DownSince)
	since, err := time.Parse(time.RFC3339, *got.DownSince)
	require.NoError(t, err)
	assert.False(t, since.Before(pausedAt.Add(-time.Millisecond)), "down since %v, before the pause at %v", since, pausedAt)
	assert.False(t, since.After(pausedAt.Add(within)), "down since %v, more than %v after the pause at %v", since, within, pausedAt)

	require.NoError(t, victim.Resume())
	waitStatus(t, srv, 10*time.Second, func(s serverStatus) bool { return s.Address == addr && !s.Down }, &got,
		"server %s up once it answers again", addr)
	assert.Empty(t, got.LastError)
}

// waitStatus polls /api/status until a server matches, and stores it in
// got.
func waitStatus(t *testing.T, srv *httptest.Server, within time.Duration, match func(serverStatus) bool,
	got *serverStatus, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, func() bool {
		var st statusReply
		getJSON(t, srv, "/api/status", http.StatusOK, &st)
		for _, s := range st.Servers {
			if match(s) {
				*got = s
				return true
			}
		}
		return false
	}, within, 50*time.Millisecond, append([]any{msg}, args...)...)
}

// A syncer link's error shows with its time while the link fails, and is
// gone once a pass after it succeeded; anti-entropy's, until a run
// succeeds.
func TestStatusSyncerErrorClears(t *testing.T) {
	failedAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	ae := syncer.AntiEntropyStats{Runs: 1, LastRun: failedAt, LastError: "compare: timeout"}
	peer := syncer.PeerStats{Local: "10.0.0.1:1", Peer: "10.0.0.2:1", Errors: 1, LastError: "dial tcp: refused",
		LastErrorAt: failedAt, LastSuccess: failedAt.Add(-time.Minute)}
	stats := func() *syncer.Stats {
		mu.Lock()
		defer mu.Unlock()
		return &syncer.Stats{Peers: []syncer.PeerStats{peer}, AntiEntropy: ae}
	}
	srv := serve(t, Options{Source: &fakeSource{}, Syncer: stats})

	var st statusReply
	getJSON(t, srv, "/api/status", http.StatusOK, &st)
	require.Len(t, st.Syncer.Peers, 1)
	assert.Equal(t, "dial tcp: refused", st.Syncer.Peers[0].LastError)
	assert.Equal(t, ptr("2026-11-25T10:00:00.000Z"), st.Syncer.Peers[0].LastErrorAt)
	_, body := get(t, srv, "/status")
	assert.Contains(t, body, `dial tcp: refused <span class="when" data-time="2026-11-25T10:00:00.000Z">`, "the error and its time")
	assert.Contains(t, body, `The last run failed, <span class="when" data-time="2026-11-25T10:00:00.000Z">2026-11-25T10:00:00.000Z</span>: compare: timeout`,
		"anti-entropy's error and its time")

	mu.Lock()
	peer.LastSuccess = failedAt.Add(time.Second)
	ae = syncer.AntiEntropyStats{Runs: 2, LastRun: failedAt.Add(time.Second)}
	mu.Unlock()
	getJSON(t, srv, "/api/status", http.StatusOK, &st)
	assert.Empty(t, st.Syncer.Peers[0].LastError, "error once a pass succeeded")
	assert.Nil(t, st.Syncer.Peers[0].LastErrorAt)
	assert.Equal(t, int64(1), st.Syncer.Peers[0].Errors, "failed passes are still counted")
	_, body = get(t, srv, "/status")
	assert.NotContains(t, body, "dial tcp: refused")
	assert.NotContains(t, body, "compare: timeout", "anti-entropy's error once a run succeeded")
	assert.False(t, strings.Contains(body, `class="failing"`), "a link that works is not marked failing")
}

// A check's error shows with the check's time, and is gone once a check
// finds the group well.
func TestStatusCheckErrorClears(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	report := metrics.CheckReport{Keys: 10, Groups: []metrics.GroupReport{{Node: "redis_1", Servers: []string{"a:1", "b:1"}, Error: "b:1: refused"}}}
	last := func() (metrics.CheckReport, time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		return report, at, true
	}
	srv := serve(t, Options{Source: &fakeSource{}, LastCheck: last})
	_, body := get(t, srv, "/status")
	assert.Contains(t, body, `b:1: refused <span class="when" data-time="2026-11-25T10:00:00.000Z">`, "the check's error and its time")

	mu.Lock()
	report.Groups, at = []metrics.GroupReport{{Node: "redis_1", Servers: []string{"a:1", "b:1"}, Keys: 10}}, at.Add(time.Minute)
	mu.Unlock()
	_, body = get(t, srv, "/status")
	assert.NotContains(t, body, "refused", "the error once a check found the group well")
	assert.Contains(t, body, `OK: 10 keys compared, 0 divergent, at <span data-time="2026-11-25T10:01:00.000Z">`)
}
