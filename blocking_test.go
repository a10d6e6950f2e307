package federated_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

func TestBlockingCommandsAcrossNodes(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()

	// Keys land on every node, and each lives where KeyToNode says.
	seen := map[string]bool{}
	for i := range 200 {
		k := fmt.Sprintf("2026-11-25:web%d.sfo:cpu.user", i)
		require.NoError(t, c.Set(ctx, k, i, 0).Err())
		node := c.KeyToNode(k)
		seen[node] = true
		addr, err := c.NodeToServer(node)
		require.NoError(t, err)
		got, err := directClient(t, addr).Get(ctx, k).Int()
		require.NoError(t, err, "key %q should be on %s (%s)", k, node, addr)
		require.Equal(t, i, got)
	}
	require.Len(t, seen, 4, "keys should land on every node")

	v, err := c.Get(ctx, "2026-11-25:web7.sfo:cpu.user").Int()
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	_, err = c.Get(ctx, "missing").Result()
	assert.Equal(t, redis.Nil, err, "a missing key is redis.Nil, unwrapped")

	assert.Equal(t, int64(1), c.Incr(ctx, "n").Val())
	assert.Equal(t, int64(11), c.IncrBy(ctx, "n", 10).Val())
	require.NoError(t, c.Set(ctx, "ttl", "x", 1500*time.Millisecond).Err())
	ttl := directClient(t, mustServer(t, c, "ttl")).PTTL(ctx, "ttl").Val()
	assert.Greater(t, ttl, time.Second)
	assert.True(t, c.Expire(ctx, "n", time.Minute).Val())
	assert.True(t, c.Expire(ctx, "n", 500*time.Millisecond).Val())
	assert.Equal(t, int64(1), c.Exists(ctx, "n").Val(), "an expiration under a second is one second, not EXPIRE 0")

	assert.Equal(t, int64(2), c.HSet(ctx, "h", "a", "1", "b", "2").Val())
	assert.Equal(t, "2", c.HGet(ctx, "h", "b").Val())
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, c.HGetAll(ctx, "h").Val())

	z := "2026-11-25:db1.iad:load"
	require.Equal(t, int64(3), c.ZAdd(ctx, z,
		redis.Z{Score: 100, Member: "100:0.5"}, redis.Z{Score: 200, Member: "200:1.5"}, redis.Z{Score: 300, Member: "300:2"}).Val())
	assert.Equal(t, int64(3), c.ZCard(ctx, z).Val())
	assert.Equal(t, []string{"100:0.5", "200:1.5"}, c.ZRangeByScore(ctx, z, &redis.ZRangeBy{Min: "100", Max: "250"}).Val())
	assert.Equal(t, []redis.Z{{Score: 200, Member: "200:1.5"}}, c.ZRangeByScoreWithScores(ctx, z, &redis.ZRangeBy{Min: "150", Max: "250"}).Val())
	assert.Equal(t, []string{"300:2", "200:1.5"}, c.ZRevRangeByScore(ctx, z, &redis.ZRangeBy{Min: "150", Max: "+inf"}).Val())
	assert.Equal(t, []redis.Z{{Score: 300, Member: "300:2"}}, c.ZRevRangeByScoreWithScores(ctx, z, &redis.ZRangeBy{Min: "-inf", Max: "+inf", Count: 1}).Val())
	assert.Equal(t, int64(1), c.ZRem(ctx, z, "100:0.5").Val())
	assert.Equal(t, int64(1), c.ZRemRangeByScore(ctx, z, "-inf", "250").Val())
	assert.Equal(t, int64(1), c.ZCard(ctx, z).Val())

	res, err := c.Do(ctx, "SET", "raw", "v").Text()
	require.NoError(t, err)
	assert.Equal(t, "OK", res)
	assert.Equal(t, int64(1), c.Exists(ctx, "raw").Val())
	assert.Equal(t, int64(1), c.Del(ctx, "raw").Val())
	assert.Equal(t, int64(0), c.Exists(ctx, "raw").Val())
}

func TestCrossNodeCommandsSendNothing(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()

	// Find two keys on different nodes.
	a, b := "key-a", ""
	for i := range 100 {
		k := fmt.Sprintf("key-%d", i)
		if c.KeyToNode(k) != c.KeyToNode(a) {
			b = k
			break
		}
	}
	require.NotEmpty(t, b)
	require.NoError(t, c.Set(ctx, a, "1", 0).Err())
	require.NoError(t, c.Set(ctx, b, "2", 0).Err())

	for name, err := range map[string]error{
		"MGET":   c.MGet(ctx, a, b).Err(),
		"DEL":    c.Del(ctx, a, b).Err(),
		"EXISTS": c.Exists(ctx, a, b).Err(),
		"Do":     c.Do(ctx, "SINTER", a, b).Err(),
	} {
		require.ErrorIs(t, err, federated.ErrCrossNode, name)
		assert.Contains(t, err.Error(), c.KeyToNode(b), name)
	}
	assert.Equal(t, "1", c.Get(ctx, a).Val(), "DEL across nodes must delete nothing")
	assert.Equal(t, "2", c.Get(ctx, b).Val(), "DEL across nodes must delete nothing")
	require.ErrorIs(t, c.MGet(ctx).Err(), federated.ErrKeyless)
}

func TestKeyGroupsKeepKeysTogether(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()

	gmail := c.Group("gmail")
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprintf("user%d@gmail.com", i)
		require.NoError(t, gmail.Set(ctx, keys[i], "spammer", 0).Err())
	}
	addr, err := c.NodeToServer(c.KeyToNode("gmail"))
	require.NoError(t, err)
	direct := directClient(t, addr)
	for _, k := range keys {
		require.Equal(t, "spammer", direct.Get(ctx, k).Val(), "key %q should be on the group's server %s", k, addr)
	}
	vals, err := gmail.MGet(ctx, keys...).Result()
	require.NoError(t, err, "keys of one group share a node, so MGET works")
	require.Len(t, vals, len(keys))
	assert.Equal(t, int64(len(keys)), gmail.Del(ctx, keys...).Val())
}

func TestCallsAfterCloseFail(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c, err := federated.New(federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	require.NoError(t, err)
	require.NoError(t, c.Set(context.Background(), "k", "v", 0).Err())
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close is idempotent")
	require.ErrorIs(t, c.Get(context.Background(), "k").Err(), federated.ErrClosed)
	require.ErrorIs(t, c.AddNode("x", federated.Node{Address: "127.0.0.1:1"}), federated.ErrClosed)
	// Marking a server by hand did nothing and said nothing.
	require.ErrorIs(t, c.MarkServerDown(servers[0].Addr()), federated.ErrClosed)
	require.ErrorIs(t, c.MarkServerUp(servers[0].Addr()), federated.ErrClosed)
}

// A subscription outlives its server's blip, as go-redis's does: the
// server stops answering, is marked down, comes back and is marked up,
// which gives its commands a fresh client and closes the old one; the
// subscription, on a client of its own, still receives. Close ends it.
func TestSubscriptionOutlivesAServerBlip(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	var first atomic.Pointer[redis.Client] // the server's first client, for commands
	opts.OnNewClient = func(_ string, rc *redis.Client) { first.CompareAndSwap(nil, rc) }
	c, err := federated.New(federated.Config{Nodes: singleNodes(servers), Options: opts})
	require.NoError(t, err)
	ctx := context.Background()
	ps := c.Subscribe(ctx, "news")
	defer ps.Close()
	_, err = ps.Receive(ctx)
	require.NoError(t, err, "subscribed")
	ch := ps.Channel()
	receive := func(want string) {
		t.Helper()
		require.NoError(t, c.Publish(ctx, "news", want).Err())
		select {
		case m, ok := <-ch:
			require.True(t, ok, "the subscription ended")
			assert.Equal(t, want, m.Payload)
		case <-time.After(2 * time.Second):
			t.Fatalf("no message %q", want)
		}
	}
	receive("before")

	addr := servers[0].Addr()
	require.NoError(t, servers[0].Pause())
	require.Error(t, c.Ping(ctx).Err())
	require.True(t, c.IsServerDown(addr))
	require.NoError(t, servers[0].Resume())
	require.Eventually(t, func() bool { return !c.IsServerDown(addr) }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return errors.Is(first.Load().Ping(ctx).Err(), redis.ErrClosed) }, 5*time.Second, 10*time.Millisecond,
		"the client replaced when the server came back is closed")
	receive("after")

	require.NoError(t, c.Close())
	select {
	case _, ok := <-ch:
		assert.False(t, ok, "Close ends the subscription")
	case <-time.After(2 * time.Second):
		t.Fatal("the subscription outlived Close")
	}
}

// A subscription on a server of a node that leaves the federation ends
// once the commands under way would have: the federation no longer reads
// that server, and nothing of it outlives Close.
func TestSubscriptionEndsWithItsNode(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	leaving := nodeName(1)
	channel := ""
	for i := 0; channel == ""; i++ {
		if k := fmt.Sprintf("news-%d", i); c.KeyToNode(k) == leaving {
			channel = k
		}
	}
	ps := c.Subscribe(ctx, channel)
	defer ps.Close()
	_, err := ps.Receive(ctx)
	require.NoError(t, err, "subscribed")
	ch := ps.Channel()
	require.NoError(t, c.RemoveNode(leaving))
	select {
	case _, ok := <-ch:
		assert.False(t, ok, "the subscription ended")
	case <-time.After(testOptions().CommandTimeout + 2*time.Second):
		t.Fatal("the subscription outlived its node")
	}
}

// A subscription whose channel a node added takes is closed at once, as
// one of a server that leaves is, so that its owner subscribes again
// where messages published through the client now go: it stayed on the
// old server and received nothing. One whose channel stays receives on.
func TestSubscriptionOfAMovedChannelEnds(t *testing.T) {
	s0, two, moving, staying := keysOfAnAddedNode(t, "news-")
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: s0}}, Options: testOptions()})
	ctx := context.Background()
	subscribe := func(channel string) <-chan *redis.Message {
		ps := c.Subscribe(ctx, channel)
		t.Cleanup(func() { _ = ps.Close() })
		_, err := ps.Receive(ctx)
		require.NoError(t, err, "subscribed")
		return ps.Channel()
	}
	moved, stays := subscribe(moving), subscribe(staying)
	require.NoError(t, c.AddNode("b", two["b"]))
	select {
	case _, ok := <-moved:
		assert.False(t, ok, "the subscription ended")
	case <-time.After(2 * time.Second):
		t.Fatal("the subscription of a moved channel went on")
	}
	require.NoError(t, c.Publish(ctx, staying, "hello").Err())
	select {
	case m := <-stays:
		assert.Equal(t, "hello", m.Payload)
	case <-time.After(2 * time.Second):
		t.Fatal("the subscription of a channel that stayed received nothing")
	}
	moved = subscribe(moving)
	require.NoError(t, c.Publish(ctx, moving, "again").Err())
	select {
	case m := <-moved:
		assert.Equal(t, "again", m.Payload)
	case <-time.After(2 * time.Second):
		t.Fatal("subscribed again, it received nothing")
	}
}

// A subscription ends with the Client: Close closes its PubSub, and so
// the goroutine go-redis runs behind its Channel, whether the owner closes
// it later or not.
func TestSubscriptionEndsAtClose(t *testing.T) {
	servers := redistest.StartN(t, 1)
	before := goleak.IgnoreCurrent()
	c, err := federated.New(federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	require.NoError(t, err)
	ctx := context.Background()
	ps := c.Subscribe(ctx, "news")
	_, err = ps.Receive(ctx)
	require.NoError(t, err)
	ch := ps.Channel()
	require.NoError(t, c.Close())
	_, open := <-ch
	assert.False(t, open, "the channel is closed")
	assert.NoError(t, goleak.Find(before), "nothing of the subscription runs on")
	assert.Error(t, ps.Close(), "closing it again only fails")
}

// OnNewClient sees the clients of a server's commands, each replacing the
// last, and not the client its subscriptions get at the first: a caller
// that closes the last client's instruments when a new one comes for the
// address would close those of the client still in use.
func TestOnNewClientSeesTheClientsOfCommands(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	var made atomic.Int32
	opts.OnNewClient = func(string, *redis.Client) { made.Add(1) }
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	ps := c.Subscribe(ctx, "news")
	defer ps.Close()
	_, err := ps.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, int32(1), made.Load(), "one client, of the server's commands")
}

// A wait forever whose server dies marks it down, as any command's
// failure does, and the next wait goes to the next server of the group:
// with no health check, a loop of BLPOP 0 on a killed server failed
// 43,000 times in 4 s, dialing it each time, and never moved.
func TestWaitForeverOnAKilledServerFailsOver(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.NoHealthCheck = true
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: opts})
	ctx := context.Background()

	got := make(chan []string, 1)
	errs := 0
	go func() {
		for {
			v, err := c.BLPop(ctx, 0, "q").Result()
			if err == nil {
				got <- v
				return
			}
			if errors.Is(err, federated.ErrClosed) {
				return // a failed test's Close
			}
			errs++
		}
	}()
	time.Sleep(200 * time.Millisecond) // the wait is on the group's current server
	current, err := c.NodeToServer("g")
	require.NoError(t, err)
	waiting, next := serverByAddr(servers, current), otherServer(servers, current)
	require.NoError(t, waiting.Kill())
	require.NoError(t, directClient(t, next.Addr()).RPush(ctx, "q", "x").Err())
	select {
	case v := <-got:
		assert.Equal(t, []string{"q", "x"}, v)
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not move to the next server")
	}
	assert.LessOrEqual(t, errs, 1, "the killed wait's error, at most")
	assert.True(t, c.IsServerDown(current))
}

// holdDial holds the first dial after hold is called until release.
type holdDial struct {
	armed   *atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (h holdDial) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h.armed.CompareAndSwap(true, false) {
			close(h.entered)
			<-h.release
		}
		return next(ctx, network, addr)
	}
}

func (h holdDial) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h holdDial) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A subscription being made while a change of nodes moves its channel is
// closed too: it was kept after the change had closed those that moved,
// and heard nothing, for ever, of what was published through the client.
func TestSubscriptionMadeDuringAMoveEnds(t *testing.T) {
	s0, two, channel, _ := keysOfAnAddedNode(t, "news-")
	hold := holdDial{armed: new(atomic.Bool), entered: make(chan struct{}), release: make(chan struct{})}
	opts := testOptions()
	opts.Hooks = []redis.Hook{hold}
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: s0}}, Options: opts})
	ctx := context.Background()
	hold.armed.Store(true)
	made := make(chan *redis.PubSub, 1)
	go func() { made <- c.Subscribe(ctx, channel) }()
	<-hold.entered // its connection is being made
	require.NoError(t, c.AddNode("b", two["b"]))
	close(hold.release)
	ps := <-made
	defer ps.Close()
	select {
	case _, ok := <-ps.Channel():
		assert.False(t, ok, "the subscription ended")
	case <-time.After(2 * time.Second):
		t.Fatal("the subscription of a channel moved while it was made went on")
	}
}

// A wait forever on a server that a change takes out of the federation
// while it is stopped, which no CLIENT UNBLOCK reaches, is sent again
// where its key is once the server's connections are closed: it failed,
// though the element it waited for was there.
func TestWaitForeverOnAStoppedServerThatLeavesMoves(t *testing.T) {
	servers := redistest.StartN(t, 2)
	s0, s1 := servers[0].Addr(), servers[1].Addr()
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: s0}}, Options: opts})
	ctx := context.Background()
	waited := make(chan *redis.StringSliceCmd, 1)
	go func() { waited <- c.BLPop(ctx, 0, "jobs") }()
	require.Eventually(t, func() bool { return blockedClients(t, s0) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, servers[0].Pause())
	defer func() { _ = servers[0].Resume() }()
	require.NoError(t, c.ReplaceNode("a", federated.Node{Address: s1}))
	require.NoError(t, c.RPush(ctx, "jobs", "x").Err())
	select {
	case cmd := <-waited:
		require.NoError(t, cmd.Err())
		assert.Equal(t, []string{"jobs", "x"}, cmd.Val())
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not end")
	}
}

// A subscription made while no server of its node is up (a worker that
// starts before its Redis) connects once the server is back, as go-redis's
// does, and receives. It was made on no server, and answered "a router
// does not connect" for good.
func TestSubscriptionMadeWhileItsNodeIsDownConnectsWhenItIsBack(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	addr := servers[0].Addr()
	require.NoError(t, servers[0].Kill())
	require.Error(t, c.Ping(ctx).Err())
	require.True(t, c.IsServerDown(addr))

	ps := c.Subscribe(ctx, "jobs")
	defer ps.Close()
	_, err := ps.Receive(ctx)
	require.Error(t, err, "no server to subscribe on")
	assert.ErrorContains(t, err, addr, "the error names the server")
	ch := ps.Channel()

	require.NoError(t, servers[0].Restart())
	require.Eventually(t, func() bool { return !c.IsServerDown(addr) }, 10*time.Second, 10*time.Millisecond)
	deadline := time.After(10 * time.Second)
	for {
		// Published again until the subscription, reconnecting with
		// go-redis's back-off, has subscribed.
		require.NoError(t, c.Publish(ctx, "jobs", "job").Err())
		select {
		case m, ok := <-ch:
			require.True(t, ok, "the subscription ended")
			assert.Equal(t, "job", m.Payload)
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("the subscription made while its server was down never received")
		}
	}
}
