package federated_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// holdNewClient returns options whose OnNewClient, called while the client
// builds a go-redis client for addr, signals entered and waits for
// release: it holds a topology change, or a server coming back, half done.
func holdNewClient(addr string) (opts federated.Options, entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	opts = testOptions()
	opts.OnNewClient = func(a string, _ *redis.Client) {
		if a == addr {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
	}
	return opts, entered, release
}

// addHookMeanwhile adds a hook that counts commands while a change to c
// is held in OnNewClient, lets the change go on (release) and returns
// the hook once added.
func addHookMeanwhile(c *federated.Client, release chan struct{}) *commandCounter {
	cc := &commandCounter{}
	hooked := make(chan struct{})
	go func() {
		c.AddHook(cc)
		close(hooked)
	}()
	time.Sleep(50 * time.Millisecond) // AddHook has run, if it does not wait
	close(release)
	<-hooked
	return cc
}

// An AddNode that Close overtakes: Close waits for it and closes the new
// node's server too, so no connection of a closed client is left open.
// (Close read the servers without waiting, and the added server's client
// stayed open: 3-9 runs in 2,000 of the two calls at once.)
func TestAddNodeDuringCloseLeavesNothingOpen(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts, entered, release := holdNewClient(servers[1].Addr())
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"a": {Address: servers[0].Addr()}}, Options: opts})
	require.NoError(t, err)
	added := make(chan error, 1)
	go func() { added <- c.AddNode("b", federated.Node{Address: servers[1].Addr()}) }()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	<-c.Done()
	time.Sleep(50 * time.Millisecond) // Close has read the servers, if it does not wait
	close(release)
	require.NoError(t, <-closed)
	if err := <-added; err != nil {
		require.ErrorIs(t, err, federated.ErrClosed)
	}
	sc, err := c.ServerClient(servers[1].Addr())
	if err == nil {
		assert.Error(t, sc.Ping(context.Background()).Err(), "the added server's client answers after Close")
	}
}

// A hook added while AddNode builds a node reaches the node's servers.
// (The node's clients were built with the hooks of before, and the hook
// went only to the servers of the topology then.)
func TestHookAddedDuringAddNodeReachesItsServers(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts, entered, release := holdNewClient(servers[1].Addr())
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: servers[0].Addr()}}, Options: opts})
	added := make(chan error, 1)
	go func() { added <- c.AddNode("b", federated.Node{Address: servers[1].Addr()}) }()
	<-entered
	cc := addHookMeanwhile(c, release)
	require.NoError(t, <-added)
	sc, err := c.ServerClient(servers[1].Addr())
	require.NoError(t, err)
	require.NoError(t, sc.Ping(context.Background()).Err())
	assert.Positive(t, cc.Count(), "commands the hook saw on the added node's server")
}

// A hook added while a server comes back (its fresh client being built)
// reaches the client it comes back with.
func TestHookAddedWhileAServerComesBackReachesIt(t *testing.T) {
	servers := redistest.StartN(t, 1)
	addr := servers[0].Addr()
	opts := testOptions()
	entered, release := make(chan struct{}), make(chan struct{})
	var hold sync.Mutex
	holding := false
	opts.OnNewClient = func(string, *redis.Client) {
		hold.Lock()
		h := holding
		holding = false
		hold.Unlock()
		if h {
			close(entered)
			<-release
		}
	}
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: addr}}, Options: opts})
	require.NoError(t, c.MarkServerDown(addr))
	hold.Lock()
	holding = true
	hold.Unlock()
	up := make(chan error, 1)
	go func() { up <- c.MarkServerUp(addr) }()
	<-entered
	cc := addHookMeanwhile(c, release)
	require.NoError(t, <-up)
	require.NoError(t, c.Set(context.Background(), "k", "v", 0).Err())
	assert.Positive(t, cc.Count(), "commands the hook saw on the server's fresh client")
}
