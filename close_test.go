package federated_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// Close with a server that stopped answering (SIGSTOP, a frozen host)
// closes the connections that wait on it after a second: the background
// check's PING and a GET under way held it for the whole command timeout,
// 4.4 s of 5.
func TestCloseWithAStoppedServerIsPrompt(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 5 * time.Second
	c, err := federated.New(federated.Config{Nodes: singleNodes(servers), Options: opts})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Ping(ctx).Err())
	stopped := servers[0]
	var key string
	for _, node := range c.Nodes() {
		if addrs, _ := c.AllServers(node); addrs[0] == stopped.Addr() {
			key = keyOnNode(t, c, node)
		}
	}
	require.NoError(t, stopped.Pause())
	t.Cleanup(func() { _ = stopped.Resume() })

	got := make(chan error, 1)
	go func() { got <- c.Get(ctx, key).Err() }()
	time.Sleep(1500 * time.Millisecond) // the background check's PING waits on it too
	began := time.Now()
	require.NoError(t, c.Close())
	took := time.Since(began)
	assert.Less(t, took, 2*time.Second, "Close")
	select {
	case err := <-got:
		assert.ErrorIs(t, err, federated.ErrClosed)
	case <-time.After(time.Second):
		t.Fatal("the GET under way outlived Close")
	}
}
