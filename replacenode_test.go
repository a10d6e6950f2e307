package federated_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
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

// A metric write under way as a node is added (its node's current server
// paused, so that it fails over after the command timeout, after AddNode
// returned) is acknowledged where its key is by then: a read finds it.
// Record and a Recorder's Write alike.
func TestMetricWriteDuringAddNodeLandsWhereItsKeyIs(t *testing.T) {
	for _, via := range []string{"Record", "Recorder"} {
		t.Run(via, func(t *testing.T) {
			servers := redistest.StartN(t, 3)
			opts := testOptions()
			opts.CommandTimeout = 500 * time.Millisecond
			group := federated.Node{Addresses: redistest.Addrs(servers[:2])}
			added := federated.Node{Address: servers[2].Addr()}
			c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": group}, Options: opts})
			both := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": group, "b": added}, Options: opts})
			ctx := context.Background()
			now := time.Now()
			host := ""
			for i := 0; host == ""; i++ {
				if h := fmt.Sprintf("web%d", i); both.KeyToNode(mustKey(t, c, now, h, "cpu")) == "b" {
					host = h // its key moves to b
				}
			}
			st := newStore(t, c)
			rec := newRecorder(t, c, metrics.RecorderOptions{})
			paused := serverByAddr(servers, currentOf(t, c, "a"))
			require.NoError(t, paused.Pause())
			t.Cleanup(func() { _ = paused.Resume() })
			sent := make(chan struct{}) // the write is on its way to the paused server
			var once sync.Once
			c.AddServerHook(func(addr string) redis.Hook {
				return scriptSent(func() {
					if addr == paused.Addr() {
						once.Do(func() { close(sent) })
					}
				})
			})

			done := make(chan error, 1)
			go func() {
				if via == "Record" {
					done <- c.Record(ctx, host, "cpu", now, 1)
				} else {
					done <- rec.Write(ctx, metrics.Sample{Host: host, Metric: "cpu", Time: now, Value: 1})
				}
			}()
			<-sent
			require.NoError(t, c.AddNode("b", added))
			require.NoError(t, <-done)
			points, err := rangeOf(ctx, st, host, "cpu", now.Add(-time.Minute), now.Add(time.Minute))
			require.NoError(t, err)
			assert.Len(t, points, 1, "the point acknowledged is where reads look")
		})
	}
}

// scriptSent is a hook that calls itself as a script call is sent.
type scriptSent func()

func (h scriptSent) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h scriptSent) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h()
		}
		return next(ctx, cmd)
	}
}

func (h scriptSent) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A server that stays in a node that ReplaceNode changes stays as it is: a
// BLPOP waiting on it longer than the command timeout gets its value, a
// subscription on it its messages, and its ServerClient works on; the
// node's current server stays its current one.
func TestReplaceNodeKeepsTheServersThatStay(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"n": {Addresses: []string{a, b}}}, Options: opts})
	ctx := context.Background()
	current, err := c.NodeToServer("n")
	require.NoError(t, err)
	sc, err := c.ServerClient(current)
	require.NoError(t, err)

	popped := make(chan error, 1)
	go func() { popped <- c.BLPop(ctx, 5*time.Second, "q").Err() }()
	ps := c.Subscribe(ctx, "news")
	defer ps.Close()
	_, err = ps.Receive(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, err := directClient(t, current).Do(ctx, "CLIENT", "LIST", "TYPE", "normal").Text()
		return err == nil && strings.Contains(n, "cmd=blpop")
	}, 2*time.Second, 10*time.Millisecond, "the BLPOP waits")

	require.NoError(t, c.ReplaceNode("n", federated.Node{Addresses: []string{b, a}}))
	// Past the time ReplaceNode closed the old clients a command timeout
	// after the change: what is checked is that nothing happens then.
	time.Sleep(2 * opts.CommandTimeout)
	now, err := c.NodeToServer("n")
	require.NoError(t, err)
	assert.Equal(t, current, now, "the current server stays")
	require.NoError(t, c.RPush(ctx, "q", "x").Err())
	require.NoError(t, <-popped, "the BLPOP under way got its value")
	require.NoError(t, c.Publish(ctx, "news", "hello").Err())
	msg, err := ps.ReceiveMessage(ctx)
	require.NoError(t, err, "the subscription goes on")
	assert.Equal(t, "hello", msg.Payload)
	assert.NoError(t, sc.Ping(ctx).Err(), "the ServerClient works on")
}

// SetNodes applies a whole set of nodes in one step, where no order of
// AddNode, RemoveNode and ReplaceNode could: a node renamed, nodes merged
// into one group, two nodes that swap servers. A node whose servers do
// not change stays as it is; a set that Validate refuses changes nothing.
func TestSetNodes(t *testing.T) {
	servers := redistest.StartN(t, 3)
	s0, s1, s2 := servers[0].Addr(), servers[1].Addr(), servers[2].Addr()
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{
		"a": {Address: s0}, "b": {Addresses: []string{s1, s2}},
	}, Options: testOptions()})
	ctx := context.Background()
	version := c.TopologyVersion()

	// Writers go on throughout.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed []error
	var mu sync.Mutex
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.Set(ctx, fmt.Sprintf("k%d.%d", w, i%100), i, 0).Err(); err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	for range 10 {
		require.NoError(t, c.SetNodes(map[string]federated.Node{"a": {Address: s0}, "c": {Addresses: []string{s1, s2}}})) // b renamed
		require.NoError(t, c.SetNodes(map[string]federated.Node{"x": {Addresses: []string{s0, s1, s2}}}))                 // merged
		require.NoError(t, c.SetNodes(map[string]federated.Node{"a": {Addresses: []string{s1, s2}}, "b": {Address: s0}})) // swapped
		require.NoError(t, c.SetNodes(map[string]federated.Node{"a": {Address: s0}, "b": {Addresses: []string{s1, s2}}}))
	}
	close(stop)
	wg.Wait()
	assert.Empty(t, failed, "writes while the nodes changed")
	assert.Equal(t, version+40, c.TopologyVersion())
	require.NoError(t, c.SetNodes(map[string]federated.Node{"a": {Address: s0}, "b": {Addresses: []string{s1, s2}}}))
	assert.Equal(t, version+40, c.TopologyVersion(), "the nodes it has: no change")

	version = c.TopologyVersion()
	sc, err := c.ServerClient(s0)
	require.NoError(t, err)
	require.NoError(t, c.SetNodes(map[string]federated.Node{"a": {Address: s0}, "c": {Addresses: []string{s1, s2}}}))
	assert.Equal(t, []string{"a", "c"}, c.Nodes())
	again, err := c.ServerClient(s0)
	require.NoError(t, err)
	assert.Same(t, sc, again, "a node whose servers did not change stays as it is")
	key := "g"
	for i := 0; c.KeyToNode(key) != "c"; i++ {
		key = fmt.Sprintf("g%d", i)
	}
	require.NoError(t, c.Set(ctx, key, "v", 0).Err())
	current, err := c.NodeToServer("c")
	require.NoError(t, err)
	assert.Equal(t, "v", directClient(t, current).Get(ctx, key).Val(), "the renamed node's server takes its keys")

	for _, bad := range []map[string]federated.Node{
		nil,
		{"a": {Address: s0}, "b": {Address: s0}},
		{"a": {Address: "no-port"}},
	} {
		err := c.SetNodes(bad)
		require.ErrorIs(t, err, federated.ErrInvalidConfig, "%v", bad)
		assert.Equal(t, version+1, c.TopologyVersion(), "refused: nothing changed")
	}
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.SetNodes(map[string]federated.Node{"a": {Address: s0}}), federated.ErrClosed)
}

// A blocking command under way on a server that leaves its node, by
// RemoveNode, ReplaceNode or SetNodes, waits its wait there, sent alone,
// in a pipeline, through a ServerClient or in a Watch: the server's
// connections are closed once it may be done, not a command timeout
// after the change, which cut it with "use of closed network connection".
func TestBlockingCommandOnAServerThatLeavesWaitsItsWait(t *testing.T) {
	for _, change := range []string{"RemoveNode", "ReplaceNode", "SetNodes", "RemoveNode, pipelined", "RemoveNode, ServerClient", "RemoveNode, Watch"} {
		t.Run(change, func(t *testing.T) {
			servers := redistest.StartN(t, 3)
			a, b, other := servers[0].Addr(), servers[1].Addr(), servers[2].Addr()
			opts := testOptions()
			opts.CommandTimeout = 300 * time.Millisecond
			opts.ReadTimeout = 4 * time.Second // a pipeline's wait may be up to half of it
			c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: a}, "b": {Address: b}}, Options: opts})
			ctx := context.Background()
			key := "q"
			for i := 0; c.KeyToNode(key) != "b"; i++ {
				key = fmt.Sprintf("q%d", i)
			}
			popped := make(chan []string, 1)
			failed := make(chan error, 1)
			go func() {
				var cmd *redis.StringSliceCmd
				switch {
				case strings.HasSuffix(change, "pipelined"):
					_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
						cmd = p.BLPop(ctx, 1500*time.Millisecond, key)
						return nil
					})
				case strings.HasSuffix(change, "ServerClient"):
					sc, err := c.ServerClient(b)
					assert.NoError(t, err)
					cmd = sc.BLPop(ctx, 3*time.Second, key)
				case strings.HasSuffix(change, "Watch"):
					_ = c.Watch(ctx, func(tx *redis.Tx) error {
						cmd = tx.BLPop(ctx, 3*time.Second, key)
						return nil
					}, key)
				default:
					cmd = c.BLPop(ctx, 3*time.Second, key)
				}
				failed <- cmd.Err()
				popped <- cmd.Val()
			}()
			require.Eventually(t, func() bool {
				n, err := directClient(t, b).Do(ctx, "CLIENT", "LIST", "TYPE", "normal").Text()
				return err == nil && strings.Contains(n, "cmd=blpop")
			}, 2*time.Second, 10*time.Millisecond, "the BLPOP waits")
			switch change {
			case "RemoveNode", "RemoveNode, pipelined", "RemoveNode, ServerClient", "RemoveNode, Watch":
				require.NoError(t, c.RemoveNode("b"))
			case "ReplaceNode":
				require.NoError(t, c.ReplaceNode("b", federated.Node{Address: other}))
			default:
				require.NoError(t, c.SetNodes(map[string]federated.Node{"a": {Address: a}, "c": {Address: b}}))
			}
			// Past the time the server's connections were closed before:
			// a command timeout after the change.
			time.Sleep(3 * opts.CommandTimeout)
			require.NoError(t, directClient(t, b).RPush(ctx, key, "x").Err())
			require.NoError(t, <-failed)
			assert.Equal(t, []string{key, "x"}, <-popped)
		})
	}
}

// A Watch during which the federation's nodes change (a reload renamed
// its node, or gave it other servers) fails with redis.TxFailedErr, as
// for a watched key that changed, so that the caller's loop runs it again
// where the key is now: it failed with ErrCrossNode, which a caller takes
// for a mistake in its code, and a Watch whose node got other servers
// wrote on the old one, where no reader looks.
func TestWatchAcrossAChangeOfNodesFailsAsAChangedKey(t *testing.T) {
	servers := redistest.StartN(t, 2)
	s0, s1 := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: s0}}, Options: testOptions()})
	ctx := context.Background()
	for i, change := range []map[string]federated.Node{
		{"b": {Address: s0}}, // renamed: the key is on b now, on the same server
		{"b": {Address: s1}}, // other servers
	} {
		tries := 0
		for {
			tries++
			err := c.Watch(ctx, func(tx *redis.Tx) error {
				n, err := tx.Get(ctx, "w").Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				if tries == 1 {
					require.NoError(t, c.SetNodes(change))
				}
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, "w", n+1, 0)
					return nil
				})
				return err
			}, "w")
			if err == redis.TxFailedErr {
				continue
			}
			require.NoError(t, err, "change %d", i)
			break
		}
		assert.Equal(t, 2, tries, "change %d: run again once", i)
		current, err := c.NodeToServer("b")
		require.NoError(t, err)
		assert.Equal(t, "1", directClient(t, current).Get(ctx, "w").Val(), "change %d: written where the key is", i)
		require.NoError(t, directClient(t, current).Del(ctx, "w").Err())
	}

	// A group's Watch the same way.
	g := c.Group("g")
	tries := 0
	for {
		tries++
		err := g.Watch(ctx, func(tx *redis.Tx) error {
			if tries == 1 {
				require.NoError(t, c.SetNodes(map[string]federated.Node{"b": {Address: s0}}))
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "gw", tries, 0)
				return nil
			})
			return err
		}, "gw")
		if err == redis.TxFailedErr {
			continue
		}
		require.NoError(t, err)
		break
	}
	assert.Equal(t, 2, tries, "a group's Watch: run again once")
	assert.Equal(t, "2", directClient(t, s0).Get(ctx, "gw").Val(), "written where the group is")
	assert.Zero(t, directClient(t, s1).Exists(ctx, "gw").Val())

	// A key of another node all along is ErrCrossNode, whatever changed
	// meanwhile: a retry loop would spin on TxFailedErr.
	require.NoError(t, c.SetNodes(map[string]federated.Node{"a": {Address: s0}, "b": {Address: s1}}))
	mine, theirs := "k0", "k1"
	for i := 0; c.KeyToNode(theirs) == c.KeyToNode(mine); i++ {
		theirs = fmt.Sprintf("k%d", i+2)
	}
	err := c.Watch(ctx, func(tx *redis.Tx) error {
		// A change that moves nothing.
		require.NoError(t, c.ReplaceNode(c.KeyToNode(theirs), federated.Node{Address: mustServerOf(t, c, theirs)}))
		return tx.Get(ctx, theirs).Err()
	}, mine)
	require.ErrorIs(t, err, federated.ErrCrossNode)
}

// A watched key that a change of nodes moved fails the transaction at
// EXEC, though fn writes only another key, which stayed: a write to the
// watched key where it is now would not abort it, and EXEC committed a
// value made from what the key held on its old node.
func TestWatchFailsWhenAWatchedKeyMoved(t *testing.T) {
	s0, two, watched, written := keysOfAnAddedNode(t, "w")
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: s0}}, Options: testOptions()})
	other := newClient(t, federated.Config{Nodes: two, Options: testOptions()})
	ctx := context.Background()
	err := c.Watch(ctx, func(tx *redis.Tx) error {
		require.NoError(t, c.SetNodes(two))
		require.NoError(t, other.Set(ctx, watched, 100, 0).Err())
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, written, "derived", 0)
			return nil
		})
		return err
	}, watched)
	require.ErrorIs(t, err, redis.TxFailedErr)
	assert.Zero(t, directClient(t, s0).Exists(ctx, written).Val())
}

// keysOfAnAddedNode starts two servers, for a node "a" and a node "b" to
// be added, and returns the first's address, the nodes with b, a key
// named from prefix that b takes from a, and one that stays on a.
func keysOfAnAddedNode(t *testing.T, prefix string) (s0 string, two map[string]federated.Node, moving, staying string) {
	t.Helper()
	servers := redistest.StartN(t, 2)
	s0 = servers[0].Addr()
	two = map[string]federated.Node{"a": {Address: s0}, "b": {Address: servers[1].Addr()}}
	both := newClient(t, federated.Config{Nodes: two, Options: testOptions()})
	for i := 0; moving == "" || staying == ""; i++ {
		if k := fmt.Sprint(prefix, i); both.KeyToNode(k) == "b" {
			moving = k
		} else {
			staying = k
		}
	}
	return s0, two, moving, staying
}

// mustServerOf returns the address of the server that key's node sends to.
func mustServerOf(t *testing.T, c *federated.Client, key string) string {
	t.Helper()
	addr, err := c.NodeToServer(c.KeyToNode(key))
	require.NoError(t, err)
	return addr
}

// A pipeline under way on a server that left its node fails with
// ErrClosed when the Client closes under it, as one on a server of the
// federation does: it failed with go-redis's "use of closed network
// connection".
func TestPipelineOnALeavingServerAtCloseFailsWithErrClosed(t *testing.T) {
	servers := redistest.StartN(t, 2)
	s0, s1 := servers[0].Addr(), servers[1].Addr()
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"a": {Address: s0}}, Options: testOptions()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() }) // should a check fail before its Close
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.BLPop(ctx, 800*time.Millisecond, "list")
			return nil
		})
		done <- err
	}()
	require.Eventually(t, func() bool {
		n, err := directClient(t, s0).Do(ctx, "CLIENT", "LIST", "TYPE", "normal").Text()
		return err == nil && strings.Contains(n, "cmd=blpop")
	}, 2*time.Second, 10*time.Millisecond, "the BLPOP waits")
	require.NoError(t, c.SetNodes(map[string]federated.Node{"a": {Address: s1}}))
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-done, federated.ErrClosed)
}

// A server that comes back up while SetNodes moves its address to a node
// of another name: Options.OnNewClient's last client for the address is
// the one in use, not one of the server that leaves, closed soon after,
// which an instrumentation that follows the latest client would report
// in place of the live one.
func TestServerBackUpDuringSetNodesGivesTheLiveClientLast(t *testing.T) {
	servers := redistest.StartN(t, 2)
	x, y := servers[0].Addr(), servers[1].Addr()
	var (
		mu   sync.Mutex
		last = map[string]*redis.Client{}
		slow atomic.Bool
	)
	opts := testOptions()
	opts.CommandTimeout = 500 * time.Millisecond
	opts.OnNewClient = func(addr string, rc *redis.Client) {
		mu.Lock()
		defer mu.Unlock()
		last[addr] = rc
	}
	opts.NewRing = func(nodes []string) (federated.Ring, error) {
		if slow.Load() {
			// SetNodes holds the change here, its new server made and
			// the old not yet retired, while the old one's check finds
			// the server up.
			time.Sleep(4 * opts.BaseRetryInterval)
		}
		return firstRing{nodes[0]}, nil
	}
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: x}, "n": {Address: y}}, Options: opts})
	require.NoError(t, c.MarkServerDown(x))
	slow.Store(true)
	require.NoError(t, c.SetNodes(map[string]federated.Node{"b": {Address: x}, "n": {Address: y}}))
	slow.Store(false)
	time.Sleep(opts.CommandTimeout + 500*time.Millisecond) // the clients retired are closed by then
	mu.Lock()
	rc := last[x]
	mu.Unlock()
	assert.NoError(t, rc.Ping(context.Background()).Err(), "the last client given for the server is live")
}
