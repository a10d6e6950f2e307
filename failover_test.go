package federated_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

func TestFailoverToNextServerOfGroup(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "before", "1", 0).Err())
	first, err := c.NodeToServer("group")
	require.NoError(t, err)
	victim := serverByAddr(servers, first)
	survivor := otherServer(servers, first)

	require.NoError(t, victim.Kill())
	start := time.Now()
	require.NoError(t, c.Set(ctx, "after", "2", 0).Err(), "the write after the kill must land on the other server")
	t.Logf("write after SIGKILL of the current server took %v", time.Since(start))
	assert.True(t, c.IsServerDown(first))
	now, err := c.NodeToServer("group")
	require.NoError(t, err)
	assert.Equal(t, survivor.Addr(), now)
	assert.Equal(t, "2", directClient(t, survivor.Addr()).Get(ctx, "after").Val())

	require.NoError(t, victim.Restart())
	start = time.Now()
	require.Eventually(t, func() bool { return !c.IsServerDown(first) }, 5*time.Second, 10*time.Millisecond,
		"the re-check should mark the restarted server up")
	t.Logf("restarted server marked up after %v", time.Since(start))
	now, err = c.NodeToServer("group")
	require.NoError(t, err)
	assert.Equal(t, survivor.Addr(), now, "the node stays on its new server (sticky)")
	require.NoError(t, c.Set(ctx, "later", "3", 0).Err())
}

func TestNodeWithNoUpServerFailsFast(t *testing.T) {
	servers := redistest.StartN(t, 3)
	nodes := singleNodes(servers[:1])
	nodes["group"] = federated.Node{Addresses: redistest.Addrs(servers[1:])}
	c := newClient(t, federated.Config{Nodes: nodes, Options: testOptions()})
	ctx := context.Background()

	require.NoError(t, servers[0].Kill())
	keyOn := func(node string) string { return keyOnNode(t, c, node) }
	single := keyOn("redis_1")
	// The first call finds out (connection refused); the next ones fail at once.
	err := c.Set(ctx, single, "x", 0).Err()
	require.ErrorIs(t, err, federated.ErrServerDown)
	for range 5 {
		start := time.Now()
		err = c.Get(ctx, single).Err()
		elapsed := time.Since(start)
		require.ErrorIs(t, err, federated.ErrServerDown)
		require.Less(t, elapsed, 100*time.Millisecond)
	}
	var se *federated.ServerError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "redis_1", se.Node)
	assert.Equal(t, servers[0].Addr(), se.Server)
	assert.Contains(t, err.Error(), servers[0].Addr())

	// A group with every server down names them all.
	require.NoError(t, servers[1].Kill())
	require.NoError(t, servers[2].Kill())
	grouped := keyOn("group")
	require.ErrorIs(t, c.Set(ctx, grouped, "x", 0).Err(), federated.ErrServerDown, "a write to a group whose servers are all dead")
	start := time.Now()
	err = c.Set(ctx, grouped, "x", 0).Err()
	require.ErrorIs(t, err, federated.ErrServerDown)
	require.Less(t, time.Since(start), 100*time.Millisecond)
	assert.Contains(t, err.Error(), servers[1].Addr())
	assert.Contains(t, err.Error(), servers[2].Addr())
	_, err = c.NodeToServer("group")
	require.ErrorIs(t, err, federated.ErrServerDown)
}

func TestPausedServerTimesOutAndComesBack(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	require.NoError(t, servers[0].Pause())
	start := time.Now()
	err := c.Get(ctx, "k").Err()
	elapsed := time.Since(start)
	slack := max(opts.CommandTimeout/4, 150*time.Millisecond)
	t.Logf("call to a SIGSTOPped server returned after %v (timeout %v)", elapsed, opts.CommandTimeout)
	require.ErrorIs(t, err, federated.ErrServerDown)
	require.Less(t, elapsed, opts.CommandTimeout+slack)
	require.True(t, c.IsServerDown(servers[0].Addr()))

	require.NoError(t, servers[0].Resume())
	start = time.Now()
	require.Eventually(t, func() bool { return !c.IsServerDown(servers[0].Addr()) }, 5*time.Second, 10*time.Millisecond)
	t.Logf("resumed server marked up after %v", time.Since(start))
	assert.Equal(t, "v", c.Get(ctx, "k").Val())
}

func TestCallerDeadlineDoesNotMarkServerDown(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	require.NoError(t, servers[0].Pause())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Get(ctx, "k").Err()
	require.Error(t, err)
	require.NotErrorIs(t, err, federated.ErrServerDown)
	assert.False(t, c.IsServerDown(servers[0].Addr()), "a caller's own short deadline says nothing about the server")
	require.NoError(t, servers[0].Resume())
}

func TestRecheckBacksOff(t *testing.T) {
	servers := redistest.StartN(t, 1)
	logs := &recordHandler{}
	opts := testOptions()
	opts.Logger = slog.New(logs)
	opts.BaseRetryInterval = 20 * time.Millisecond
	opts.MaxRetryInterval = 100 * time.Millisecond
	opts.MaxHostRetries = 2
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	require.NoError(t, servers[0].Kill())
	require.NoError(t, c.MarkServerDown(servers[0].Addr()))

	require.Eventually(t, func() bool { return len(logs.Values("federated: server still down", "next_check")) >= 6 },
		5*time.Second, 10*time.Millisecond)
	got := logs.Values("federated: server still down", "next_check")[:6]
	want := []any{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	assert.Equal(t, want, got, "MaxHostRetries checks at the base interval, then doubling up to the cap")

	require.NoError(t, servers[0].Restart())
	require.Eventually(t, func() bool { return !c.IsServerDown(servers[0].Addr()) }, 5*time.Second, 10*time.Millisecond)
	// The server is marked up just before the event is logged.
	require.Eventually(t, func() bool { return len(logs.Records("federated: server back up")) == 1 },
		5*time.Second, 5*time.Millisecond)
	assert.Contains(t, logs.Records("federated: server back up")[0], "down_since")

	require.NoError(t, c.MarkServerDown(servers[0].Addr()))
	require.NoError(t, c.MarkServerUp(servers[0].Addr()))
	assert.False(t, c.IsServerDown(servers[0].Addr()))
	require.ErrorIs(t, c.MarkServerDown("127.0.0.1:1"), federated.ErrUnknownNode)
}

// MarkServerUp ends the background check, so that the next failure starts
// its back-off at the base interval instead of where the last one was.
func TestMarkServerUpEndsTheRecheck(t *testing.T) {
	servers := redistest.StartN(t, 1)
	logs := &recordHandler{}
	opts := testOptions()
	opts.Logger = slog.New(logs)
	opts.BaseRetryInterval = 20 * time.Millisecond
	opts.RetryIntervalMult = 10
	opts.MaxRetryInterval = time.Minute
	opts.MaxHostRetries = 1
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	addr := servers[0].Addr()
	require.NoError(t, servers[0].Kill())
	require.NoError(t, c.MarkServerDown(addr))
	require.Eventually(t, func() bool { return len(logs.Values("federated: server still down", "next_check")) >= 2 },
		5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 2*time.Second, logs.Values("federated: server still down", "next_check")[1], "the back-off grew")

	require.NoError(t, servers[0].Restart())
	require.NoError(t, c.MarkServerUp(addr))
	require.NoError(t, c.MarkServerDown(addr))
	assert.Eventually(t, func() bool { return !c.IsServerDown(addr) }, time.Second, 5*time.Millisecond,
		"checked again at the base interval, not 2s later")
}

// A server whose ACL denies the client's user PING (a user of @read and
// @write, without @connection) is marked up again once it answers after a
// failure: the check's NOPERM is an answer, as it is to the heartbeat. It
// stayed down for good, every command failing with ErrServerDown, while a
// plain go-redis client of that user was served.
func TestServerThatRefusesPingComesBackUp(t *testing.T) {
	s := redistest.StartT(t)
	ctx := context.Background()
	require.NoError(t, directClient(t, s.Addr()).Do(ctx, "ACL", "SETUSER", "app", "on", ">pw", "~*", "+@read", "+@write").Err())
	opts := testOptions()
	opts.Username, opts.Password = "app", "pw"
	c := newClient(t, federated.Config{Nodes: singleNodes([]*redistest.Server{s}), Options: opts})
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	require.NoError(t, s.Pause())
	require.Error(t, c.Set(ctx, "k", "v", 0).Err())
	require.True(t, c.IsServerDown(s.Addr()))
	require.NoError(t, s.Resume())
	require.Eventually(t, func() bool { return !c.IsServerDown(s.Addr()) }, 5*time.Second, 10*time.Millisecond,
		"marked up on the check's NOPERM")
	assert.NoError(t, c.Set(ctx, "k", "v2", 0).Err())
}

// A server marked down that refuses the client's password stays down,
// however often it is checked: the refusal is an answer, but not one a
// server that serves the client gives, and its group goes on failing over.
func TestServerThatRefusesThePasswordStaysDown(t *testing.T) {
	good := redistest.StartT(t, redistest.Options{Args: []string{"--requirepass", "right"}})
	bad := redistest.StartT(t, redistest.Options{Args: []string{"--requirepass", "another"}})
	opts := testOptions()
	opts.Password = "right"
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: []string{bad.Addr(), good.Addr()}}},
		Options: opts,
	})
	require.NoError(t, c.MarkServerDown(bad.Addr()))
	time.Sleep(20 * opts.BaseRetryInterval) // checked again and again
	assert.True(t, c.IsServerDown(bad.Addr()))
	assert.NoError(t, c.Set(context.Background(), "k", "v", 0).Err(), "on the other server")
}

func TestStatusReportsDownServers(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
	cur, err := c.NodeToServer("group")
	require.NoError(t, err)
	require.NoError(t, serverByAddr(servers, cur).Kill())
	require.NoError(t, c.MarkServerDown(cur))
	_, err = c.NodeToServer("group")
	require.NoError(t, err)
	for _, st := range c.Status() {
		assert.Equal(t, "group", st.Node)
		if st.Address == cur {
			assert.True(t, st.Down)
			assert.False(t, st.DownSince.IsZero())
			assert.False(t, st.Current)
		} else {
			assert.False(t, st.Down)
			assert.True(t, st.Current)
		}
	}
}

func TestAddRemoveNodeUnderTraffic(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers[:2]), Options: testOptions()})
	ctx := context.Background()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("g%d-k%d", g, i%500)
				if err := c.Set(ctx, k, i, 0).Err(); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range 20 {
		extra := servers[2+i%2]
		name := fmt.Sprintf("extra_%d", i%2)
		require.NoError(t, c.AddNode(name, federated.Node{Address: extra.Addr()}))
		time.Sleep(5 * time.Millisecond)
		require.NoError(t, c.RemoveNode(name))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a write failed while nodes came and went: %v", err)
	}
	assert.Equal(t, []string{"redis_1", "redis_2"}, c.Nodes())
}

// holdHook holds the failure of the first command (or pipeline) it matches,
// before the client's health hook sees it, until release is closed: the
// failure then surfaces late, as that of a command stuck on a loaded
// machine.
type holdHook struct {
	match   func(args []any) bool
	held    chan error
	release chan struct{}
	free    func() // closes release, once
}

func newHoldHook(t *testing.T, match func(args []any) bool) holdHook {
	h := holdHook{match: match, held: make(chan error, 1), release: make(chan struct{})}
	var once sync.Once
	h.free = func() { once.Do(func() { close(h.release) }) }
	t.Cleanup(h.free) // a failed test must not leave a command held
	return h
}

func (h holdHook) hold(err error) {
	select {
	case h.held <- err:
		<-h.release
	default: // only the first failure is held
	}
}

func (h holdHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && h.match(cmd.Args()) {
			h.hold(err)
		}
		return err
	}
}

func (h holdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil && h.match(cmds[0].Args()) {
			h.hold(err)
		}
		return err
	}
}

// A command that fails on a server's old connection after the server was
// restarted and marked up again says nothing about the restarted server: it
// must not mark it down (which would fail the node over for nothing, or
// leave it with no up server), and the command goes out again on the new
// connection.
func TestLateFailureOfReplacedClientKeepsServerUp(t *testing.T) {
	ctx := context.Background()
	now := time.Now() // one time for the point and its key, whatever the day
	held := func(args []any) bool { return len(args) > 1 && args[1] == "held" }
	cases := []struct {
		name  string
		match func(args []any) bool
		call  func(c *federated.Client) error
		check func(t *testing.T, rc *redis.Client)
	}{
		{
			name:  "blocking",
			match: held,
			call:  func(c *federated.Client) error { return c.Set(ctx, "held", "v", 0).Err() },
			check: func(t *testing.T, rc *redis.Client) { assert.Equal(t, "v", rc.Get(ctx, "held").Val()) },
		},
		{
			name:  "pipeline",
			match: held,
			call:  func(c *federated.Client) error { return c.Chain().Set("held", "p").Poll(ctx) },
			check: func(t *testing.T, rc *redis.Client) { assert.Equal(t, "p", rc.Get(ctx, "held").Val()) },
		},
		{
			name: "record",
			match: func(args []any) bool {
				name := fmt.Sprint(args[0])
				return name == "evalsha" || name == "eval"
			},
			call: func(c *federated.Client) error { return c.Record(ctx, "web1", "cpu", now, 1) },
			check: func(t *testing.T, rc *redis.Client) {
				key, err := dayKey(now, "web1", "cpu")
				require.NoError(t, err)
				assert.EqualValues(t, 1, rc.ZCard(ctx, key).Val())
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servers := redistest.StartN(t, 1)
			addr := servers[0].Addr()
			hold := newHoldHook(t, tc.match)
			opts := testOptions()
			opts.BaseRetryInterval = 10 * time.Millisecond
			opts.Hooks = []redis.Hook{hold}
			c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
			require.NoError(t, c.Set(ctx, "warm", "1", 0).Err())

			require.NoError(t, servers[0].Kill())
			done := make(chan error, 1)
			go func() { done <- tc.call(c) }()
			select {
			case err := <-hold.held:
				t.Logf("held failure: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("the call to the killed server did not fail")
			}

			// The server is found down, restarted, and marked up with a new
			// client; then the old client's failure surfaces.
			require.NoError(t, c.MarkServerDown(addr))
			require.NoError(t, servers[0].Restart())
			require.Eventually(t, func() bool { return !c.IsServerDown(addr) }, 5*time.Second, 5*time.Millisecond)
			hold.free()
			err := <-done

			assert.False(t, c.IsServerDown(addr), "the restarted server was marked down by a failure of its replaced client")
			require.NoError(t, err, "the call should go out again on the new connection")
			tc.check(t, directClient(t, addr))
		})
	}
}

// A command that timed out may have run, so the blocking API does not send
// it to the group's next server: an INCR must not count twice.
func TestTimedOutCommandIsNotResent(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: opts,
	})
	ctx := context.Background()
	require.NoError(t, c.Incr(ctx, "counter").Err())
	cur, err := c.NodeToServer("group")
	require.NoError(t, err)
	paused, other := serverByAddr(servers, cur), otherServer(servers, cur)

	require.NoError(t, paused.Pause())
	err = c.Incr(ctx, "counter").Err()
	require.ErrorIs(t, err, federated.ErrServerDown, "the INCR timed out on the paused server")
	var se *federated.ServerError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, cur, se.Server)
	assert.Zero(t, directClient(t, other.Addr()).Exists(ctx, "counter").Val(),
		"the INCR that timed out was sent to the other server too")

	// The paused server ran the INCR waiting in its socket once it resumed:
	// it counted once, on one server.
	require.NoError(t, paused.Resume())
	direct := directClient(t, cur)
	assert.Eventually(t, func() bool { return direct.Get(ctx, "counter").Val() == "2" },
		5*time.Second, 10*time.Millisecond)
	assert.Zero(t, directClient(t, other.Addr()).Exists(ctx, "counter").Val())
}

// A server's client from ServerClient keeps working after the server dies,
// is marked down and comes back with fresh connections: for single
// commands, pipelines and transactions.
func TestServerClientOutlivesRecovery(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	addr := servers[0].Addr()
	rc, err := c.ServerClient(addr)
	require.NoError(t, err)
	require.NoError(t, rc.Set(ctx, "k", "1", 0).Err())

	require.NoError(t, servers[0].Kill())
	require.Error(t, rc.Get(ctx, "k").Err())
	require.True(t, c.IsServerDown(addr), "a failure through the server's client marks it down")
	require.NoError(t, servers[0].Restart())
	require.Eventually(t, func() bool { return !c.IsServerDown(addr) }, 10*time.Second, 10*time.Millisecond)

	again, err := c.ServerClient(addr)
	require.NoError(t, err)
	assert.Same(t, rc, again, "one client per server, for the server's life in the federation")
	require.NoError(t, rc.Set(ctx, "k", "2", 0).Err(), "the client from before the failure still works")
	cmds, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "k")
		p.Get(ctx, "k")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "3", cmds[1].(*redis.StringCmd).Val())
	var incr *redis.IntCmd
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, "k")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, int64(4), incr.Val())
	require.ErrorIs(t, rc.Watch(ctx, func(*redis.Tx) error { return nil }, "k"), federated.ErrTxCommand)
}

// NextServer and IsServerUp, the Perl module's calls: a failover by hand,
// in configuration order.
func TestNextServerMovesTheNode(t *testing.T) {
	servers := redistest.StartN(t, 3)
	addrs := redistest.Addrs(servers)
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: addrs}}, Options: testOptions()})
	ctx := context.Background()
	first, err := c.NodeToServer("g")
	require.NoError(t, err)
	k := slices.Index(addrs, first)
	require.GreaterOrEqual(t, k, 0)
	for i := range 4 {
		now, err := c.NodeToServer("g")
		require.NoError(t, err)
		assert.Equal(t, addrs[(k+i)%3], now)
		require.NoError(t, c.Set(ctx, "k", i, 0).Err())
		assert.Equal(t, int64(1), directClient(t, now).Exists(ctx, "k").Val(), "commands go to %s", now)
		require.NoError(t, directClient(t, now).Del(ctx, "k").Err())
		next, err := c.NextServer("g")
		require.NoError(t, err)
		assert.Equal(t, addrs[(k+i+1)%3], next)
	}
	_, err = c.NextServer("nope")
	require.ErrorIs(t, err, federated.ErrUnknownNode)
	assert.True(t, c.IsServerUp(addrs[0]))
	require.NoError(t, c.MarkServerDown(addrs[0]))
	assert.False(t, c.IsServerUp(addrs[0]))
	assert.False(t, c.IsServerUp("127.0.0.1:1"), "a server outside the federation is not up")
}

// A server that dies while no command goes to it (a group's standby) is
// found down by the background PINGs within about the health-check
// interval and the command timeout, with the time it stopped answering;
// one that stops answering (SIGSTOP) too. Close does not wait for a PING
// to a paused server.
func TestHealthCheckFindsIdleServersDown(t *testing.T) {
	servers := redistest.StartN(t, 3)
	addrs := redistest.Addrs(servers)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	opts.HealthCheckInterval = 200 * time.Millisecond
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: addrs}}, Options: opts})
	require.NoError(t, err)
	cur, err := c.NodeToServer("g")
	require.NoError(t, err)
	var standby []*redistest.Server
	for _, s := range servers {
		if s.Addr() != cur {
			standby = append(standby, s)
		}
	}

	killed := time.Now()
	require.NoError(t, standby[0].Kill())
	require.Eventually(t, func() bool { return c.IsServerDown(standby[0].Addr()) }, 2*time.Second, 10*time.Millisecond,
		"no command went to it: the health check found it")
	for _, st := range c.Status() {
		if st.Address == standby[0].Addr() {
			assert.WithinDuration(t, killed, st.DownSince, time.Second, "down since about when it died")
			assert.Error(t, st.LastError)
		}
	}

	require.NoError(t, standby[1].Pause())
	t.Cleanup(func() { _ = standby[1].Resume() })
	require.Eventually(t, func() bool { return c.IsServerDown(standby[1].Addr()) }, 3*time.Second, 10*time.Millisecond,
		"a server that stops answering is found down too")
	assert.False(t, c.IsServerDown(cur), "the server that answers stays up")

	start := time.Now()
	require.NoError(t, c.Close())
	assert.Less(t, time.Since(start), opts.CommandTimeout, "Close cuts the PINGs under way short")
}

// With NoHealthCheck a dead idle server is found only by a command.
func TestNoHealthCheck(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.NoHealthCheck = true
	opts.HealthCheckInterval = 50 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	require.NoError(t, servers[0].Kill())
	time.Sleep(6 * opts.HealthCheckInterval) // what would have been six checks
	assert.False(t, c.IsServerDown(servers[0].Addr()), "nothing asked it")
	require.Error(t, c.Set(context.Background(), "k", "v", 0).Err())
	assert.True(t, c.IsServerDown(servers[0].Addr()))
}

// A server's client from ServerClient, kept past Close, fails its
// commands and pipelines with ErrClosed, as every call of the closed
// client does.
func TestServerClientAfterCloseFailsWithErrClosed(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"a": {Address: servers[0].Addr()}}, Options: testOptions()})
	require.NoError(t, err)
	sc, err := c.ServerClient(servers[0].Addr())
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, sc.Ping(ctx).Err())
	require.NoError(t, c.Close())
	require.ErrorIs(t, sc.Ping(ctx).Err(), federated.ErrClosed)
	_, err = sc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Ping(ctx)
		return nil
	})
	require.ErrorIs(t, err, federated.ErrClosed)
}

// A server's client from ServerClient whose server left the federation
// fails its commands with ErrUnknownNode, and ServerClient gives the
// server's client of now: after RemoveNode, after a ReplaceNode that
// leaves the server out, and after a SetNodes that moves it to a node of
// another name. One that keeps the server keeps its client.
func TestServerClientOfAServerThatLeftFails(t *testing.T) {
	servers := redistest.StartN(t, 3)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: a}, "b": {Address: b}}, Options: testOptions()})
	ctx := context.Background()

	old, err := c.ServerClient(b)
	require.NoError(t, err)
	require.NoError(t, c.RemoveNode("b"))
	require.ErrorIs(t, old.Ping(ctx).Err(), federated.ErrUnknownNode)
	_, err = c.ServerClient(b)
	require.ErrorIs(t, err, federated.ErrUnknownNode)

	old, err = c.ServerClient(a)
	require.NoError(t, err)
	require.NoError(t, c.ReplaceNode("a", federated.Node{Address: a}))
	require.NoError(t, old.Ping(ctx).Err(), "a ReplaceNode that keeps the server keeps its client")
	require.NoError(t, c.ReplaceNode("a", federated.Node{Address: servers[2].Addr()}))
	_, err = old.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Ping(ctx)
		return nil
	})
	require.ErrorIs(t, err, federated.ErrUnknownNode)
	_, err = c.ServerClient(a)
	require.ErrorIs(t, err, federated.ErrUnknownNode)
	now, err := c.ServerClient(servers[2].Addr())
	require.NoError(t, err)
	require.NoError(t, now.Ping(ctx).Err())

	// A server that moves to a node of another name (a reload renamed
	// its node) is in the federation still: the error says where.
	require.NoError(t, c.SetNodes(map[string]federated.Node{"c": {Address: servers[2].Addr()}}))
	err = now.Ping(ctx).Err()
	require.ErrorIs(t, err, federated.ErrUnknownNode)
	assert.ErrorContains(t, err, "server "+servers[2].Addr()+" left node a for node c")
	moved, err := c.ServerClient(servers[2].Addr())
	require.NoError(t, err)
	require.NoError(t, moved.Ping(ctx).Err())
}

// A ServerClient sends through the connections every routed command of
// its server takes in turn: a command that would change one of them
// (SELECT, CLIENT REPLY, SUBSCRIBE...) is refused, alone or in a pipeline,
// and the routed writes that follow stay in database 0.
func TestServerClientRefusesWhatWouldChangeAConnection(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	sc, err := c.ServerClient(servers[0].Addr())
	require.NoError(t, err)
	for _, args := range [][]any{{"select", "1"}, {"CLIENT", "REPLY", "OFF"}, {"client", "tracking", "on"},
		{"subscribe", "ch"}, {"hello", "3"}, {"reset"}, {"readonly"}, {"sync"}, {"psync", "?", "-1"}, {"replconf", "listening-port", "1"}} {
		assert.ErrorContains(t, sc.Do(ctx, args...).Err(), "would change a connection", "%v", args)
	}
	_, err = sc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Ping(ctx)
		p.Do(ctx, "select", "1")
		return nil
	})
	require.ErrorContains(t, err, "SELECT would change a connection")
	for i := range 50 {
		require.NoError(t, c.Set(ctx, fmt.Sprint("s", i), "x", 0).Err())
	}
	assert.Equal(t, int64(50), directClient(t, servers[0].Addr()).DBSize(ctx).Val(), "every write is in database 0")
	assert.NoError(t, sc.Do(ctx, "client", "id").Err(), "a CLIENT subcommand that changes nothing is sent")
}

// Commands sent while Close runs, routed or through a ServerClient, fail
// with ErrClosed once they fail, never with go-redis's own error for the
// server's client it closed under them.
func TestCommandsRacingCloseFailWithErrClosed(t *testing.T) {
	servers := redistest.StartN(t, 1)
	ctx := context.Background()
	for round := range 50 {
		c, err := federated.New(federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
		require.NoError(t, err)
		sc, err := c.ServerClient(servers[0].Addr())
		require.NoError(t, err)
		incr := func(key string) func(redis.Pipeliner) error {
			return func(p redis.Pipeliner) error {
				p.Incr(ctx, key)
				p.Incr(ctx, key)
				return nil
			}
		}
		// Each worker has its key, so that no other's write fails its
		// WATCH.
		ops := map[string]func(key string) error{
			"routed":        func(key string) error { return c.Set(ctx, key, "v", 0).Err() },
			"server client": func(key string) error { return sc.Set(ctx, key, "v", 0).Err() },
			"transaction": func(key string) error {
				_, err := c.TxPipelined(ctx, incr(key))
				return err
			},
			"watch": func(key string) error {
				return c.Watch(ctx, func(tx *redis.Tx) error {
					_, err := tx.TxPipelined(ctx, incr(key))
					return err
				}, key)
			},
			"to every server": func(string) error { return c.Ping(ctx).Err() },
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(ops))
		for name, op := range ops {
			for i := range 2 {
				wg.Go(func() {
					for {
						if err := op(fmt.Sprintf("%s:%d", name, i)); err != nil {
							errs <- fmt.Errorf("%s: %w", name, err)
							return
						}
					}
				})
			}
		}
		time.Sleep(time.Duration(2+round%10) * time.Millisecond)
		require.NoError(t, c.Close())
		wg.Wait()
		close(errs)
		for err := range errs {
			require.ErrorIs(t, err, federated.ErrClosed)
		}
	}
}

// A SCAN whose node fails over between pages (its server killed, or moved
// by NextServer) walks the new server from its start: a server's cursor
// means nothing to another, whose table is laid out in its own way, and
// carried over it skipped a sixth of the keys. Keys may come twice; none
// is missed. A Group's SCAN, of its node alone, the same.
func TestScanAcrossAFailover(t *testing.T) {
	for _, move := range []string{"kill", "next", "group"} {
		t.Run(move, func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			addrs := redistest.Addrs(servers)
			c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: addrs}}, Options: testOptions()})
			ctx := context.Background()
			const n = 5000
			for _, addr := range addrs { // both hold the keys, as a synced group does
				pipe := directClient(t, addr).Pipeline()
				for i := range n {
					pipe.Set(ctx, fmt.Sprintf("key:%d", i), i, 0)
				}
				_, err := pipe.Exec(ctx)
				require.NoError(t, err)
			}
			current := servers[slices.Index(addrs, currentOf(t, c, "g"))]
			seen := map[string]bool{}
			var cursor uint64
			for page := 1; ; page++ {
				var scanner redis.Cmdable = c
				if move == "group" {
					scanner = c.Group("any")
				}
				keys, next, err := scanner.Scan(ctx, cursor, "key:*", 200).Result()
				require.NoError(t, err)
				for _, k := range keys {
					seen[k] = true
				}
				if page == 5 {
					if move != "next" {
						require.NoError(t, current.Kill())
					} else {
						_, err := c.NextServer("g")
						require.NoError(t, err)
					}
				}
				if cursor = next; cursor == 0 {
					break
				}
			}
			assert.Equal(t, n, len(seen), "keys seen")
		})
	}
}

// A command sent to every server (PING, FLUSHDB, SCRIPT LOAD...), and a
// query-all, ask the servers at once: with several servers stopped the
// call still ends within one command timeout, not one for each.
func TestCommandToEveryServerEndsWithinOneTimeout(t *testing.T) {
	servers := redistest.StartN(t, 4)
	opts := testOptions()
	opts.CommandTimeout = 500 * time.Millisecond
	opts.HealthCheckInterval = time.Hour // no PING finds the stopped ones first
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{
		"one": {Address: servers[0].Addr()},
		"g":   {Addresses: redistest.Addrs(servers[1:])},
	}, Options: opts})
	ctx := context.Background()
	require.NoError(t, c.Ping(ctx).Err())
	for _, s := range servers[1:] {
		require.NoError(t, s.Pause())
		t.Cleanup(func() { _ = s.Resume() })
	}
	start := time.Now()
	err := c.Ping(ctx).Err()
	assert.Less(t, time.Since(start), 900*time.Millisecond, "three stopped servers, one timeout")
	var se *federated.ServerError
	require.ErrorAs(t, err, &se)
	for _, s := range servers[1:] {
		assert.Contains(t, err.Error(), s.Addr())
	}
	assert.NotContains(t, err.Error(), servers[0].Addr())

	// Query-all, of a group whose servers stopped: one timeout too.
	require.NoError(t, servers[1].Resume())
	require.NoError(t, c.MarkServerUp(servers[2].Addr()))
	require.NoError(t, c.MarkServerUp(servers[3].Addr()))
	c.SetQueryAll(true)
	key := ""
	for i := range 100 {
		if k := fmt.Sprintf("k%d", i); c.KeyToNode(k) == "g" {
			key = k
			break
		}
	}
	require.NotEmpty(t, key)
	start = time.Now()
	err = c.Get(ctx, key).Err()
	assert.Less(t, time.Since(start), 900*time.Millisecond, "two stopped servers of the group, one timeout")
	for _, s := range servers[2:] {
		assert.Contains(t, err.Error(), s.Addr())
	}
}

// A command that waits for a connection of a busy pool past its timeout
// fails, but the server it never reached is not marked down: a pool taken
// by slow commands says nothing of the server.
func TestBusyPoolDoesNotMarkTheServerDown(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.PoolSize = 1
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	popped := make(chan error, 1)
	go func() { popped <- c.BLPop(ctx, 2*time.Second, "empty").Err() }()
	require.Eventually(t, func() bool {
		clients, err := directClient(t, servers[0].Addr()).ClientList(ctx).Result()
		return err == nil && strings.Contains(clients, "flags=b")
	}, 5*time.Second, 10*time.Millisecond)
	err := c.Set(ctx, "k", "v", 0).Err()
	require.ErrorContains(t, err, "no connection of its pool (pool_size 1) came free in time")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "k", "v", 0)
		return nil
	})
	require.ErrorContains(t, err, "no connection of its pool (pool_size 1) came free in time", "in a pipeline too")
	_, err = c.RunOnServer(ctx, servers[0].Addr(), redis.NewScript("return 1"), nil).Result()
	require.ErrorContains(t, err, "no connection of its pool (pool_size 1) came free in time", "a script too")
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "k", "v", 0)
		return nil
	})
	require.ErrorContains(t, err, "no connection of its pool (pool_size 1) came free in time", "a transaction too")
	err = c.Watch(ctx, func(*redis.Tx) error { return nil }, "k")
	require.ErrorContains(t, err, "no connection of its pool (pool_size 1) came free in time", "a Watch too")
	assert.False(t, c.IsServerDown(servers[0].Addr()))
	require.ErrorIs(t, <-popped, redis.Nil)
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
}

// blackhole returns an address whose listener's backlog is full, so that a
// dial to it never completes: a host that drops new connections.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr // the backlog is full
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Fatal("the backlog never filled")
	return ""
}

// A server whose dial never completes is marked down by the command that
// waited for it, and its group fails over: go-redis dials apart from the
// waiting command, which sees its own deadline rather than the dial's
// failure, as it would waiting for a busy pool.
func TestServerThatNeverAnswersADialIsMarkedDown(t *testing.T) {
	servers := redistest.StartN(t, 1)
	hole := blackhole(t)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: []string{hole, servers[0].Addr()}}}, Options: opts})
	ctx := context.Background()
	for currentOf(t, c, "g") != hole {
		_, err := c.NextServer("g")
		require.NoError(t, err)
	}
	require.Error(t, c.Set(ctx, "k", "1", 0).Err())
	assert.True(t, c.IsServerDown(hole))
	require.NoError(t, c.Set(ctx, "k", "2", 0).Err(), "the group failed over")
	assert.Equal(t, servers[0].Addr(), currentOf(t, c, "g"))
}

// A server that stops answering while slow commands hold every connection
// of its pool is still found down by the health checks, which ask it on
// a connection of their own when the pool has none free.
func TestStoppedServerWithABusyPoolIsFoundDown(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.PoolSize = 1
	opts.CommandTimeout = 300 * time.Millisecond
	opts.HealthCheckInterval = 200 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: opts})
	ctx := context.Background()
	current := serverByAddr(servers, currentOf(t, c, "g"))
	go func() { _ = c.BLPop(ctx, 10*time.Second, "empty").Err() }() // holds the pool
	require.Eventually(t, func() bool { return blockedClients(t, current.Addr()) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, current.Pause())
	t.Cleanup(func() { _ = current.Resume() })
	require.Eventually(t, func() bool { return c.IsServerDown(current.Addr()) }, 5*time.Second, 20*time.Millisecond,
		"found down well before the slow command's 10 s")
}
