package federated_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// fakeNodes makes n single-server nodes on addresses nothing listens on:
// routing never connects.
func fakeNodes(n int) map[string]federated.Node {
	nodes := make(map[string]federated.Node, n)
	for i := 1; i <= n; i++ {
		nodes[nodeName(i)] = federated.Node{Address: fmt.Sprintf("127.0.0.1:%d", 20000+i)}
	}
	return nodes
}

func metricKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("2026-11-%02d:web%d.sfo:cpu.m%d", 20+i%7, i%997, i%31)
	}
	return keys
}

func TestRoutingAgreesWhateverTheNodeOrder(t *testing.T) {
	for _, ringName := range []string{federated.RingConsistent, federated.RingPerl} {
		t.Run(ringName, func(t *testing.T) {
			// One client from a file listing nodes 1..8, one listing them 8..1,
			// one built with a single node and the rest added in a shuffled order.
			var fwd, rev strings.Builder
			fwd.WriteString("options: {ring: " + ringName + "}\nnodes:\n")
			rev.WriteString("options: {ring: " + ringName + "}\nnodes:\n")
			for i := 1; i <= 8; i++ {
				fmt.Fprintf(&fwd, "  redis_%d: {address: \"127.0.0.1:%d\"}\n", i, 20000+i)
				fmt.Fprintf(&rev, "  redis_%d: {address: \"127.0.0.1:%d\"}\n", 9-i, 20000+9-i)
			}
			cfgA, err := federated.ParseConfig([]byte(fwd.String()))
			require.NoError(t, err)
			cfgB, err := federated.ParseConfig([]byte(rev.String()))
			require.NoError(t, err)
			a, b := newClient(t, cfgA), newClient(t, cfgB)

			all := fakeNodes(8)
			opts := quiet(federated.Options{Ring: ringName})
			c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"redis_5": all["redis_5"]}, Options: opts})
			for _, i := range []int{3, 8, 1, 6, 2, 7, 4} {
				require.NoError(t, c.AddNode(nodeName(i), all[nodeName(i)]))
			}

			for _, k := range metricKeys(20000) {
				na, nb, nc := a.KeyToNode(k), b.KeyToNode(k), c.KeyToNode(k)
				if na != nb || na != nc {
					t.Fatalf("key %q: forward order routes to %s, reverse order to %s, added one by one to %s", k, na, nb, nc)
				}
			}
		})
	}
}

// TestPerlRingThroughClient checks the client wiring of the Perl ring against
// the placement the Perl module itself produced.
func TestPerlRingThroughClient(t *testing.T) {
	c := newClient(t, federated.Config{Nodes: fakeNodes(8), Options: quiet(federated.Options{Ring: federated.RingPerl})})
	f, err := os.Open("testdata/perl-ring/8nodes.sample.keys.tsv")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	rows := 0
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 2 {
			continue // keys given in hex are checked by the ring's own tests
		}
		rows++
		if got := c.KeyToNode(fields[0]); got != fields[1] {
			t.Errorf("KeyToNode(%q) = %s, want %s", fields[0], got, fields[1])
		}
	}
	require.NoError(t, sc.Err())
	require.Greater(t, rows, 300)

	require.NoError(t, c.RemoveNode("redis_3"))
	f2, err := os.Open("testdata/perl-ring/8nodes-remove-redis_3.sample.keys.tsv")
	require.NoError(t, err)
	defer f2.Close()
	sc = bufio.NewScanner(f2)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 2 {
			continue
		}
		if got := c.KeyToNode(fields[0]); got != fields[1] {
			t.Errorf("after RemoveNode(redis_3): KeyToNode(%q) = %s, want %s", fields[0], got, fields[1])
		}
	}
	require.NoError(t, sc.Err())
}

func TestAddRemoveNodeMovesOnlyTheirKeys(t *testing.T) {
	all := fakeNodes(9)
	eight := fakeNodes(8)
	c := newClient(t, federated.Config{Nodes: eight, Options: quiet(federated.Options{})})
	keys := metricKeys(100000)
	before := make([]string, len(keys))
	for i, k := range keys {
		before[i] = c.KeyToNode(k)
	}

	require.NoError(t, c.AddNode("redis_9", all["redis_9"]))
	moved := 0
	for i, k := range keys {
		if n := c.KeyToNode(k); n != before[i] {
			moved++
			require.Equal(t, "redis_9", n, "key %q moved from %s to %s, not to the new node", k, before[i], n)
		}
	}
	share := float64(moved) / float64(len(keys))
	t.Logf("adding a 9th node moved %d of %d keys (%.1f%%)", moved, len(keys), 100*share)
	assert.LessOrEqual(t, share, 0.15)
	assert.Greater(t, moved, 0)

	require.NoError(t, c.RemoveNode("redis_9"))
	for i, k := range keys {
		require.Equal(t, before[i], c.KeyToNode(k), "key %q after removing the added node", k)
	}

	require.NoError(t, c.RemoveNode("redis_4"))
	for i, k := range keys {
		n := c.KeyToNode(k)
		if before[i] != "redis_4" {
			require.Equal(t, before[i], n, "key %q was on %s, not on the removed node, yet moved", k, before[i])
		} else {
			require.NotEqual(t, "redis_4", n)
		}
	}
}

func TestAddRemoveNodeErrors(t *testing.T) {
	c := newClient(t, federated.Config{Nodes: fakeNodes(2), Options: quiet(federated.Options{})})
	require.ErrorIs(t, c.AddNode("redis_1", federated.Node{Address: "127.0.0.1:1"}), federated.ErrInvalidConfig)
	err := c.AddNode("redis_3", federated.Node{Address: "127.0.0.1:20001"})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "already in node redis_1")
	require.ErrorIs(t, c.AddNode("redis_3", federated.Node{}), federated.ErrInvalidConfig)
	require.ErrorIs(t, c.RemoveNode("nope"), federated.ErrUnknownNode)
	require.NoError(t, c.RemoveNode("redis_1"))
	require.ErrorIs(t, c.RemoveNode("redis_2"), federated.ErrInvalidConfig, "the last node cannot go")
	require.Equal(t, []string{"redis_2"}, c.Nodes())
}

func TestHashTag(t *testing.T) {
	tests := []struct{ key, want string }{
		{"plain", "plain"},
		{"{user1}.a", "user1"},
		{"x{user1}y", "user1"},
		{"{}x", "{}x"},
		{"{", "{"},
		{"a}{b}", "b"},
		{"{a}{b}", "a"},
		{"{{a}}", "{a"},
	}
	for _, tt := range tests {
		if got := federated.HashTag(tt.key); got != tt.want {
			t.Errorf("HashTag(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}

	on := newClient(t, federated.Config{Nodes: fakeNodes(8), Options: quiet(federated.Options{HashTags: true})})
	off := newClient(t, federated.Config{Nodes: fakeNodes(8)})
	spread := map[string]bool{}
	for i := range 200 {
		k := fmt.Sprintf("{user42}.field%d", i)
		require.Equal(t, on.KeyToNode("user42"), on.KeyToNode(k))
		spread[off.KeyToNode(k)] = true
	}
	assert.Greater(t, len(spread), 1, "without hash tags the keys should spread")
}

// The empty key group is a group as any other: the Perl module hashes
// the group it is given, "" included, and so does the client.
func TestEmptyKeyGroupIsHashed(t *testing.T) {
	servers := redistest.StartN(t, 4)
	opts := testOptions()
	opts.Ring = federated.RingPerl
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	g := c.Group("")
	require.Equal(t, c.KeyToNode(""), g.Node(), "the node of the hash of the empty string")
	for i := range 20 {
		k := fmt.Sprintf("k%d", i)
		require.NoError(t, g.Set(ctx, k, i, 0).Err())
		addr, err := c.NodeToServer(g.Node())
		require.NoError(t, err)
		assert.Equal(t, int64(1), directClient(t, addr).Exists(ctx, k).Val(), "%s is on the empty group's node, not its own (%s)", k, c.KeyToNode(k))
	}
	var landed string
	require.NoError(t, c.Chain().Group("").Set("chained", "x").Poll(ctx))
	for _, s := range servers {
		if directClient(t, s.Addr()).Exists(ctx, "chained").Val() == 1 {
			landed = s.Addr()
		}
	}
	addr, err := c.NodeToServer(g.Node())
	require.NoError(t, err)
	assert.Equal(t, addr, landed, "a chain's empty group too")
}
