package federated_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

func TestSharedClientPerTag(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := federated.Config{Nodes: singleNodes(servers[:1]), Options: testOptions()}
	other := federated.Config{Nodes: singleNodes(servers[1:]), Options: testOptions()}

	a, err := federated.Shared("rate-limiter", cfg)
	require.NoError(t, err)
	b, err := federated.Shared("rate-limiter", other)
	require.NoError(t, err)
	require.Same(t, a, b, "the same tag gives the same client")
	assert.Equal(t, []string{servers[0].Addr()}, b.Servers(), "the first caller's configuration wins")

	c, err := federated.Shared("other-tag", other)
	require.NoError(t, err)
	require.NotSame(t, a, c)

	ctx := context.Background()
	require.NoError(t, a.Close())
	require.NoError(t, b.Set(ctx, "k", "v", 0).Err(), "still open while one Shared is not closed")
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.Get(ctx, "k").Err(), federated.ErrClosed, "closed when the last one closes")

	d, err := federated.Shared("rate-limiter", other)
	require.NoError(t, err)
	require.NotSame(t, a, d, "after the last Close, the tag starts afresh")
	assert.Equal(t, []string{servers[1].Addr()}, d.Servers())
	require.NoError(t, d.Close())
	require.NoError(t, c.Close())

	_, err = federated.Shared("", cfg)
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	_, err = federated.Shared("bad", federated.Config{})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
}

func TestSharedConcurrently(t *testing.T) {
	cfg := oneServer(t)
	var wg sync.WaitGroup
	clients := make([]*federated.Client, 32)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := federated.Shared("concurrent", cfg)
			if err != nil {
				t.Error(err)
				return
			}
			clients[i] = c
			_ = c.Set(context.Background(), "k", i, 0).Err()
		}()
	}
	wg.Wait()
	for _, c := range clients {
		require.Same(t, clients[0], c)
	}
	for _, c := range clients {
		require.NoError(t, c.Close())
	}
	require.ErrorIs(t, clients[0].Get(context.Background(), "k").Err(), federated.ErrClosed)
}

// A Registry of one's own keeps its clients apart from the process's.
func TestRegistryOfItsOwn(t *testing.T) {
	cfg := oneServer(t)
	var r federated.Registry
	mine, err := r.Shared("tag", cfg)
	require.NoError(t, err)
	process, err := federated.Shared("tag", cfg)
	require.NoError(t, err)
	require.NotSame(t, mine, process)
	again, err := r.Shared("tag", cfg)
	require.NoError(t, err)
	require.Same(t, mine, again)
	require.NoError(t, mine.Close())
	require.NoError(t, again.Close())
	require.NoError(t, process.Close())
	require.ErrorIs(t, mine.Get(context.Background(), "k").Err(), federated.ErrClosed)
}

// A client being made (a slow Options.NewRing, TLS files on a slow disk)
// holds up no other tag of the registry, nor a Close; a call for its own
// tag waits for it and shares it. The registry's lock was held while New
// ran: a ring builder that called Shared for another tag deadlocked.
func TestSharedMakesAClientWithoutHoldingTheOthers(t *testing.T) {
	cfg := oneServer(t)
	var r federated.Registry
	held, err := r.Shared("held", cfg)
	require.NoError(t, err)

	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	slow := cfg
	slow.Options.NewRing = func(nodes []string) (federated.Ring, error) {
		entered <- struct{}{}
		<-release
		return firstRing{nodes[0]}, nil
	}
	made := make(chan *federated.Client, 2)
	for range 2 {
		go func() {
			c, err := r.Shared("slow", slow)
			assert.NoError(t, err)
			made <- c
		}()
	}
	<-entered // one call is making the client; the other waits for it

	// Each within a few seconds, the client being made not done.
	for what, call := range map[string]func() error{
		"Shared of another tag": func() error {
			other, err := r.Shared("other", cfg)
			if err != nil {
				return err
			}
			return other.Close()
		},
		"Close of another tag": held.Close,
	} {
		ended := make(chan error, 1)
		go func() { ended <- call() }()
		select {
		case err := <-ended:
			require.NoError(t, err, what)
		case <-time.After(5 * time.Second):
			close(release)
			t.Fatalf("%s waited for the client being made", what)
		}
	}

	close(release)
	a, b := <-made, <-made
	require.Same(t, a, b, "the calls for the tag being made share its client")
	require.NoError(t, a.Ping(context.Background()).Err())
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
}

// oneServer returns the configuration of one node of one server, started
// for the test.
func oneServer(t *testing.T) federated.Config {
	t.Helper()
	return federated.Config{Nodes: singleNodes(redistest.StartN(t, 1)), Options: testOptions()}
}
