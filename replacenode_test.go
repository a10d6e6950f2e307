package federated_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// ReplaceNode moves a node to other servers in one step: every key stays
// on the node, and commands go to the new servers.
func TestReplaceNode(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{
		"a": {Address: servers[0].Addr()}, "b": {Address: servers[1].Addr()},
	}, Options: testOptions()})
	keys := metricKeys(10000)
	before := make([]string, len(keys))
	for i, k := range keys {
		before[i] = c.KeyToNode(k)
	}
	version := c.TopologyVersion()

	require.NoError(t, c.ReplaceNode("a", federated.Node{Addresses: []string{servers[2].Addr(), servers[3].Addr()}}))
	assert.Equal(t, version+1, c.TopologyVersion())
	for i, k := range keys {
		require.Equal(t, before[i], c.KeyToNode(k), "key %q moved", k)
	}
	got, err := c.AllServers("a")
	require.NoError(t, err)
	assert.Equal(t, []string{servers[2].Addr(), servers[3].Addr()}, got)
	assert.ElementsMatch(t, []string{servers[1].Addr(), servers[2].Addr(), servers[3].Addr()}, c.Servers())

	// A key of node a is written to its new servers, not the old one.
	ctx := context.Background()
	var key string
	for i, k := range keys {
		if before[i] == "a" {
			key = k
			break
		}
	}
	require.NoError(t, c.Set(ctx, key, "moved", 0).Err())
	current, err := c.NodeToServer("a")
	require.NoError(t, err)
	assert.Equal(t, "moved", directClient(t, current).Get(ctx, key).Val())
	assert.Zero(t, directClient(t, servers[0].Addr()).Exists(ctx, key).Val())

	// Its own servers again, in another order, are allowed; another
	// node's, an unknown node and a bad address are refused.
	require.NoError(t, c.ReplaceNode("a", federated.Node{Addresses: []string{servers[3].Addr(), servers[2].Addr()}}))
	err = c.ReplaceNode("a", federated.Node{Address: "localhost:" + servers[1].Addr()[len("127.0.0.1:"):]})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "is already in node b (as "+servers[1].Addr()+")")
	require.ErrorIs(t, c.ReplaceNode("nope", federated.Node{Address: "127.0.0.1:1"}), federated.ErrUnknownNode)
	require.ErrorIs(t, c.ReplaceNode("a", federated.Node{}), federated.ErrInvalidConfig)
	got, err = c.AllServers("a")
	require.NoError(t, err)
	assert.Equal(t, []string{servers[3].Addr(), servers[2].Addr()}, got, "a refusal changes nothing")
}

// A chain's commands queued before a change of topology go where the keys
// are when it is polled: after AddNode, the keys that moved to the new
// node are read there; after ReplaceNode, the node's new server holds
// them, and the server that left gets none of them.
func TestChainQueuedBeforeATopologyChange(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: servers[0].Addr()}}, Options: testOptions()})
	ctx := context.Background()
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("chained-%d", i)
	}
	queue := func(value string) *federated.Chain {
		ch := c.Chain()
		for _, k := range keys {
			ch.Set(k, value)
		}
		return ch
	}
	read := func(value string) {
		t.Helper()
		for _, k := range keys {
			got, err := c.Get(ctx, k).Result()
			require.NoError(t, err, "key %s", k)
			require.Equal(t, value, got, "key %s", k)
		}
	}

	ch := queue("1")
	require.NoError(t, c.AddNode("b", federated.Node{Address: servers[1].Addr()}))
	require.NoError(t, ch.Poll(ctx))
	moved := 0
	for _, k := range keys {
		if c.KeyToNode(k) == "b" {
			moved++
		}
	}
	require.Positive(t, moved, "some keys moved to the new node")
	read("1")

	ch = queue("2")
	require.NoError(t, c.ReplaceNode("a", federated.Node{Address: servers[2].Addr()}))
	require.NoError(t, ch.Poll(ctx))
	read("2")
	left, err := directClient(t, servers[0].Addr()).MGet(ctx, keys...).Result()
	require.NoError(t, err)
	for i, v := range left {
		assert.NotEqual(t, "2", v, "the server that left got %s", keys[i])
	}
}
