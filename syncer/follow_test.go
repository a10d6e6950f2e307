package syncer_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

const (
	linkStarted = "syncer: link started: the peer joined the local server's group"
	linkStopped = "syncer: link stopped: the peer left the local server's group"
)

// links returns a syncer's links as "local<-peer".
func links(s *syncer.Syncer) []string {
	var out []string
	for _, p := range s.Stats().Peers {
		out = append(out, p.Local+"<-"+p.Peer)
	}
	return out
}

// holds waits until the server at addr holds every member of want.
func holds(t *testing.T, addr string, want map[string]bool) {
	t.Helper()
	require.NotEmpty(t, want)
	require.Eventually(t, func() bool {
		got := members(t, addr)
		for m := range want {
			if !got[m] {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "%s lacks members", addr)
}

// A Syncer's links follow the changes of nodes while it runs: a server
// that joins the local server's group is pulled, one that leaves is not,
// and one that comes back is pulled from where its link stopped.
func TestLinksFollowTheChangesOfNodes(t *testing.T) {
	servers := redistest.StartN(t, 3)
	a, b, d := servers[0].Addr(), servers[1].Addr(), servers[2].Addr()
	opts := quiet()
	logs := &fedtest.Logs{}
	opts.Logger = slog.New(logs)
	c := newClient(t, federated.Config{Options: opts, Nodes: map[string]federated.Node{
		"group": {Address: a}, "other": {Address: b}, "third": {Address: d}}})
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{PollInterval: 20 * time.Millisecond, NoAntiEntropy: true})
	require.Empty(t, links(s))

	// Stats is read while the links change.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			_ = s.Stats()
			time.Sleep(time.Millisecond)
		}
	})
	defer func() { cancel(); wg.Wait() }()

	writePoints(t, c, b, "before", 20)
	require.NoError(t, c.SetNodes(map[string]federated.Node{"group": {Addresses: []string{a, b}}, "third": {Address: d}}))
	holds(t, a, members(t, b))
	assert.Equal(t, []string{a + "<-" + b}, links(s))
	assert.Equal(t, []any{b}, logs.Values(linkStarted, "peer"))

	// b leaves the group for a node of its own, d joins it.
	require.NoError(t, c.SetNodes(map[string]federated.Node{"group": {Addresses: []string{a, d}}, "other": {Address: b}}))
	require.Eventually(t, func() bool { return len(logs.Values(linkStopped, "peer")) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, []any{b}, logs.Values(linkStopped, "peer"))
	assert.Equal(t, []string{a + "<-" + d}, links(s))
	writePoints(t, c, d, "joined", 20)
	writePoints(t, c, b, "away", 20)
	holds(t, a, members(t, d))
	// Passes of a's links go on; none pulls from b.
	passes := linkStats(t, s, a, d).Passes
	require.Eventually(t, func() bool { return linkStats(t, s, a, d).Passes >= passes+5 }, 5*time.Second, 10*time.Millisecond)
	got := members(t, a)
	for m := range members(t, b) {
		assert.Equal(t, strings.Contains(m, ":before:"), got[m], "a holds %s: only what b wrote while in the group", m)
	}

	// b comes back: its link goes on from the cursor a keeps.
	require.NoError(t, c.SetNodes(map[string]federated.Node{"group": {Addresses: []string{a, b, d}}}))
	holds(t, a, members(t, b))
	assert.ElementsMatch(t, []string{a + "<-" + b, a + "<-" + d}, links(s))
	assert.Equal(t, []any{b, d, b}, logs.Values(linkStarted, "peer"))
}

// A local server that leaves the federation has no links until it comes
// back; links that Options.Links names stay whatever the nodes become.
func TestLinksOfALocalServerThatLeavesAndOfOptionsLinks(t *testing.T) {
	servers := redistest.StartN(t, 4)
	a, b, d, e := servers[0].Addr(), servers[1].Addr(), servers[2].Addr(), servers[3].Addr()
	c := newClient(t, federated.Config{Options: quiet(), Nodes: map[string]federated.Node{
		"one": {Addresses: []string{a, b}}, "two": {Addresses: []string{d, e}}}})
	s, _ := startSyncer(t, c, []string{a, d}, syncer.Options{PollInterval: 20 * time.Millisecond, NoAntiEntropy: true,
		Links: map[string][]string{d: {e}}})
	assert.Equal(t, []string{a + "<-" + b, d + "<-" + e}, links(s))

	require.NoError(t, c.SetNodes(map[string]federated.Node{"one": {Address: b}, "two": {Address: e}, "three": {Address: d}}))
	require.Eventually(t, func() bool { return len(links(s)) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{d + "<-" + e}, links(s), "a left the federation, d's links are its own")
	writePoints(t, c, e, "custom", 10)
	holds(t, d, members(t, e))

	require.NoError(t, c.SetNodes(map[string]federated.Node{"one": {Addresses: []string{b, a}}, "two": {Address: e}, "three": {Address: d}}))
	writePoints(t, c, b, "back", 10)
	holds(t, a, members(t, b))
	assert.Equal(t, []string{a + "<-" + b, d + "<-" + e}, links(s))
}

// A link started for a server that joined does not wait for the link of
// one that left, stopped while its peer does not answer (its command
// waits for the command timeout): it pulls within a poll or so, and the
// links follow a change made meanwhile.
func TestLinkStartedDoesNotWaitForALinkStopping(t *testing.T) {
	servers := redistest.StartN(t, 4)
	a, b, d, e := servers[0].Addr(), servers[1].Addr(), servers[2].Addr(), servers[3].Addr()
	c := newClient(t, federated.Config{Options: quiet(), Nodes: map[string]federated.Node{
		"group": {Addresses: []string{a, b}}, "x": {Address: d}, "y": {Address: e}}})
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{PollInterval: 20 * time.Millisecond, NoAntiEntropy: true})
	writePoints(t, c, b, "before", 10)
	holds(t, a, members(t, b))

	require.NoError(t, servers[1].Pause())
	t.Cleanup(func() { _ = servers[1].Resume() })
	time.Sleep(100 * time.Millisecond) // a pass waits for the stopped peer
	writePoints(t, c, d, "joined", 10)
	start := time.Now()
	require.NoError(t, c.SetNodes(map[string]federated.Node{"group": {Addresses: []string{a, d}}, "y": {Address: e}}))
	holds(t, a, members(t, d))
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "pulled from the server that joined (command timeout 2 s)")
	require.NoError(t, c.SetNodes(map[string]federated.Node{"group": {Addresses: []string{a, d, e}}}))
	require.Eventually(t, func() bool { return len(links(s)) == 2 }, time.Second, 10*time.Millisecond,
		"a change made while the link of b stops: %v", links(s))
	assert.Equal(t, []string{a + "<-" + d, a + "<-" + e}, links(s))
}

// A local server named another way than the client spells it (localhost
// for 127.0.0.1, a host in upper case) is the client's server: its links
// are those of its group, itself left out.
func TestLocalServerSpeltAnotherWay(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	other := "LOCALHOST" + strings.TrimPrefix(a, "127.0.0.1")
	s, _ := startSyncer(t, c, []string{other}, syncer.Options{PollInterval: 20 * time.Millisecond, NoAntiEntropy: true})
	assert.Equal(t, []string{a + "<-" + b}, links(s))
	writePoints(t, c, b, "web1", 10)
	holds(t, a, members(t, b))
	_, err := syncer.NewFromClient(c, []string{a, other}, syncer.Options{})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.ErrorContains(t, err, "local server "+a+" named twice, as "+a+" and "+other)
	_, err = syncer.NewFromClient(c, []string{a}, syncer.Options{Links: map[string][]string{a: {b}, other: {b}}})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.ErrorContains(t, err, "links name server "+a+" twice")

	// A change of nodes that spells the server otherwise leaves it
	// replicated: its links go on under the new spelling.
	require.NoError(t, c.SetNodes(map[string]federated.Node{"group": {Addresses: []string{other, b}}}))
	require.Eventually(t, func() bool {
		l := links(s)
		return len(l) == 1 && l[0] == other+"<-"+b
	}, 5*time.Second, 10*time.Millisecond, "%v", links(s))
	writePoints(t, c, b, "web2", 10)
	holds(t, a, members(t, b))
}

// A writer that journals with its own clock, in whole seconds and behind
// the server's (the Perl module), writes to a server while it joins the
// local server's group: the link started for it pulls what the writer
// journalled before the change and after, late entries included.
func TestLinkStartedByAChangeOfNodesPullsAPerlStyleWriter(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, federated.Config{Options: quiet(), Nodes: map[string]federated.Node{
		"group": {Address: a}, "other": {Address: b}}})
	startSyncer(t, c, []string{a}, syncer.Options{PollInterval: 20 * time.Millisecond, NoAntiEntropy: true,
		Overlap: 3 * time.Second, OverlapInterval: time.Second})
	ctx := context.Background()
	rb := direct(t, b)
	write := func(round int) {
		sec := time.Now().Unix() - 2 // 2-3 s behind the server's clock
		for i := range 10 {
			key, err := metricKey(time.Unix(sec, 0), "perl", fmt.Sprintf("m%d", i))
			require.NoError(t, err)
			require.NoError(t, rb.ZAdd(ctx, key, redis.Z{Score: float64(sec), Member: fmt.Sprintf("%d:%d", sec, round)}).Err())
			require.NoError(t, rb.ZAdd(ctx, "journal", redis.Z{Score: float64(sec), Member: key}).Err())
		}
	}
	for round := range 20 {
		if round == 10 {
			require.NoError(t, c.SetNodes(map[string]federated.Node{"group": {Addresses: []string{a, b}}}))
		}
		write(round)
		time.Sleep(50 * time.Millisecond)
	}
	holds(t, a, members(t, b))
}
