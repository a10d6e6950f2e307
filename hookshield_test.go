package federated_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// failingHook fails the commands on the key "hooked" with err, after
// sending them on (send) or without; or, with wait, holds them that long
// before sending them on.
type failingHook struct {
	err  error
	send bool
	wait time.Duration
}

func hookedCmd(cmd redis.Cmder) bool {
	args := cmd.Args()
	return len(args) > 1 && args[1] == "hooked"
}

func (h failingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h failingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !hookedCmd(cmd) {
			return next(ctx, cmd)
		}
		if h.wait > 0 {
			time.Sleep(h.wait)
			return next(ctx, cmd)
		}
		if h.send {
			_ = next(ctx, cmd)
		}
		cmd.SetErr(h.err)
		return h.err
	}
}

func (h failingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.wait > 0 {
			time.Sleep(h.wait)
			return next(ctx, cmds)
		}
		var err error
		if h.send {
			err = next(ctx, cmds)
		}
		for _, cmd := range cmds {
			if hookedCmd(cmd) {
				cmd.SetErr(h.err)
				err = h.err
			}
		}
		return err
	}
}

// An error a user's hook makes, of the kinds a dead server gives (EOF, a
// reset, a deadline), or a hook that holds a command past its timeout,
// fails the command alone: it marked healthy servers down, both of a
// group as the command went to the next, and sent an INCR that had run to
// the next server too. The caller still finds the hook's error.
func TestHookErrorsAreNotTheServers(t *testing.T) {
	servers := redistest.StartN(t, 2)
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for name, h := range map[string]failingHook{
		"EOF":                   {err: io.EOF},
		"EOF after sending":     {err: io.EOF, send: true},
		"reset after sending":   {err: reset, send: true},
		"deadline":              {err: context.DeadlineExceeded},
		"held past the timeout": {wait: 400 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			opts := testOptions()
			opts.CommandTimeout = 300 * time.Millisecond
			opts.Hooks = []redis.Hook{h}
			c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: opts})
			ctx := context.Background()
			for _, s := range servers {
				require.NoError(t, directClient(t, s.Addr()).Del(ctx, "hooked").Err())
			}
			err := c.Incr(ctx, "hooked").Err()
			require.Error(t, err)
			if h.err != nil {
				assert.ErrorIs(t, err, h.err, "the hook's error")
			}
			assert.Contains(t, err.Error(), "a hook's error: ", "said to be the hook's, not the server's")
			_, perr := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "hooked")
				return nil
			})
			require.Error(t, perr)
			var ran int64
			for _, s := range servers {
				assert.False(t, c.IsServerDown(s.Addr()), "%s marked down by a hook", s.Addr())
				n, _ := directClient(t, s.Addr()).Get(ctx, "hooked").Int64()
				ran += n
			}
			want := int64(0)
			if h.send || h.wait > 0 {
				want = 2 // the INCR alone and the pipeline's, once each
			}
			if h.wait > 0 {
				want = 0 // sent after its deadline: go-redis sends nothing
			}
			assert.Equal(t, want, ran, "INCRs run, on both servers")
			require.NoError(t, c.Set(ctx, "other", "v", 0).Err(), "the node still takes commands")
		})
	}
}

// retryingHook sends a command that failed on once more, and returns the
// first failure (first) or the last; with detach, it sends it with a
// context of its own, which holds none of the caller's values.
type retryingHook struct{ first, detach bool }

func (retryingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h retryingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.detach {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.Background(), time.Second)
			defer cancel()
		}
		err := next(ctx, cmd)
		if err == nil || err == redis.Nil {
			return err
		}
		if again := next(ctx, cmd); again == nil || !h.first {
			return again
		}
		cmd.SetErr(err)
		return err
	}
}

func (retryingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A server's own failure that passes through a user's hook is still the
// server's, also through a hook that sends a command twice: the server is
// marked down and its node fails over, whichever failure the hook returns
// (a stopped server: the second try starts after the deadline; a killed
// one: two connection errors).
func TestServerFailureThroughARetryingHookIsTheServers(t *testing.T) {
	for name, tc := range map[string]struct {
		hook retryingHook
		stop bool
	}{
		"stopped, the last failure returned":     {retryingHook{}, true},
		"killed, the first failure returned":     {retryingHook{first: true}, false},
		"killed, sent with a context of its own": {retryingHook{detach: true}, false},
	} {
		t.Run(name, func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			opts := testOptions()
			opts.CommandTimeout = 300 * time.Millisecond
			opts.Hooks = []redis.Hook{tc.hook}
			c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: opts})
			ctx := context.Background()
			require.NoError(t, c.Set(ctx, "warm", "1", 0).Err())
			first := currentOf(t, c, "g")
			for _, s := range servers {
				if s.Addr() != first {
					continue
				}
				if tc.stop {
					require.NoError(t, s.Pause())
					t.Cleanup(func() { _ = s.Resume() })
				} else {
					require.NoError(t, s.Kill())
				}
			}
			_ = c.Incr(ctx, "n").Err()
			assert.True(t, c.IsServerDown(first), "the failed server marked down")
			assert.NotEqual(t, first, currentOf(t, c, "g"), "the node failed over")
			require.NoError(t, c.Record(ctx, "web1", "cpu", time.Now(), 1), "a metric write goes to the other server")
		})
	}
}

// What a hook answers that no server fault looks like (a cache's miss as
// redis.Nil) reaches the caller as it is, for code that compares it with
// ==.
func TestHookAnswerOtherThanAFaultStaysAsItIs(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.Hooks = []redis.Hook{failingHook{err: redis.Nil}}
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	_, err := c.Get(ctx, "hooked").Result()
	assert.True(t, err == redis.Nil, "%#v", err)
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "hooked")
		return nil
	})
	assert.True(t, err == redis.Nil, "%#v", err)
}

// panicHook panics on the commands on a key that begins "hooked", after
// sending them on or before, and, with pings set, on PINGs (health
// checks), which it counts.
type panicHook struct {
	after bool
	pings *atomic.Int64
}

func (h panicHook) hit(cmd redis.Cmder) bool {
	args := cmd.Args()
	if len(args) > 1 {
		key, _ := args[1].(string)
		return strings.HasPrefix(key, "hooked")
	}
	if h.pings != nil && cmd.Name() == "ping" {
		h.pings.Add(1)
		return true
	}
	return false
}

func (h panicHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h panicHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !h.hit(cmd) {
			return next(ctx, cmd)
		}
		if h.after {
			_ = next(ctx, cmd)
		}
		panic("hook panic on " + cmd.Name())
	}
}

func (h panicHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if h.hit(cmd) {
				if h.after {
					_ = next(ctx, cmds)
				}
				panic("hook panic on " + cmd.Name())
			}
		}
		return next(ctx, cmds)
	}
}

// A hook that panics fails what it was given, as an error of the hook's:
// its panic on the client's own goroutines (a pipeline's share for each
// server, a health check) ended the process whatever the caller
// recovered, and one in the caller's goroutine left Close waiting for
// ever. The server is not marked down, and a command the server ran is
// not sent to the next of its group.
func TestHookPanicFailsWhatItWasGiven(t *testing.T) {
	servers := redistest.StartN(t, 3)
	opts := testOptions()
	opts.HealthCheckInterval = 50 * time.Millisecond
	var pings atomic.Int64
	opts.Hooks = []redis.Hook{panicHook{after: true, pings: &pings}}
	c, err := federated.New(federated.Config{Options: opts, Nodes: map[string]federated.Node{
		"group":  {Addresses: redistest.Addrs(servers[:2])},
		"single": {Address: servers[2].Addr()},
	}})
	require.NoError(t, err)
	ctx := context.Background()
	hooked, other := "", "" // keys of the group and of the single server
	for i := 0; hooked == "" || other == ""; i++ {
		if k := fmt.Sprint("hooked", i); c.KeyToNode(k) == "group" {
			hooked = k
		}
		if k := fmt.Sprint("k", i); c.KeyToNode(k) == "single" {
			other = k
		}
	}

	require.ErrorContains(t, c.Incr(ctx, hooked).Err(), "federated: a hook panicked: hook panic on incr")
	// A pipeline whose shares go to both nodes, the failing one's from a
	// goroutine of the client's, and a chain the same.
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, other)
		p.Incr(ctx, hooked)
		return nil
	})
	require.ErrorContains(t, err, "a hook panicked")
	require.NoError(t, cmds[0].Err())
	require.ErrorContains(t, cmds[1].Err(), "a hook panicked")
	require.ErrorContains(t, c.Chain().Incr(other, nil).Incr(hooked, nil).Poll(ctx), "a hook panicked")

	// Health checks, each of which panics.
	require.Eventually(t, func() bool { return pings.Load() >= 3 }, 5*time.Second, 10*time.Millisecond)
	for _, st := range c.Status() {
		assert.False(t, st.Down, "%s marked down", st.Address)
	}
	// Each INCR ran once, on the group's current server.
	current, err := c.NodeToServer("group")
	require.NoError(t, err)
	n, err := directClient(t, current).Get(ctx, hooked).Int()
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Zero(t, directClient(t, otherServer(servers[:2], current).Addr()).Exists(ctx, hooked).Val())

	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

// A hook's own deadline, in a chain, is the hook's error, said for its
// command: not a command the caller's context ended before its answer.
func TestHookDeadlineInAChainIsTheHooks(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.Hooks = []redis.Hook{failingHook{err: context.DeadlineExceeded}}
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	err := c.Chain().Incr("hooked", nil).Incr("other", nil).Poll(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, "federated: incr hooked: a hook's error: context deadline exceeded", err.Error())
}

// dialPanicHook panics in its dial hook after the connection is dialed.
type dialPanicHook struct{ panicHook }

func (dialPanicHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if _, err := next(ctx, network, addr); err != nil {
			return nil, err
		}
		panic("dial hook panic")
	}
}

// A dial hook that panics after its connection was dialed fails the dial,
// and the connection is closed: it was left open, one more each try.
func TestDialHookPanicClosesTheConnection(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.Hooks = []redis.Hook{dialPanicHook{}}
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	// Fewer tries than the pool has connections: past that, go-redis
	// retries the dial in the background, a second apart.
	for range 5 {
		require.ErrorContains(t, c.Set(ctx, "k", "v", 0).Err(), "a hook panicked: dial hook panic")
	}
	admin := directClient(t, servers[0].Addr())
	require.Eventually(t, func() bool {
		return strings.Count(admin.ClientList(ctx).Val(), "\n") == 1 // the admin's own
	}, 5*time.Second, 20*time.Millisecond, "connections left open: %s", admin.ClientList(ctx).Val())
}
