package federated_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// TestQueryAllHitCounts is the Perl module's multi-address test: a 4-server
// group, a query-all SET answered by all 4, then by exactly the 3 left after
// one is killed.
func TestQueryAllHitCounts(t *testing.T) {
	servers := redistest.StartN(t, 4)
	opts := testOptions()
	opts.QueryAll = true
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: opts,
	})
	ctx := context.Background()

	answers := func(key string) (ok, failed int) {
		p := c.Chain()
		p.DoAll(func(server string, cmd *redis.Cmd) {
			if cmd.Err() == nil {
				ok++
			} else {
				failed++
			}
		}, "SET", key, "v")
		_ = p.Poll(ctx)
		return ok, failed
	}
	ok, failed := answers("before")
	require.Equal(t, 4, ok)
	require.Zero(t, failed)
	for _, s := range servers {
		assert.Equal(t, "v", directClient(t, s.Addr()).Get(ctx, "before").Val(), "server %s", s.Addr())
	}

	require.NoError(t, servers[2].Kill())
	ok, failed = answers("first-after-kill")
	require.Equal(t, 3, ok, "the three live servers answer")
	require.LessOrEqual(t, failed, 1, "the dead one fails, once")
	ok, failed = answers("after")
	require.Equal(t, 3, ok)
	require.Equal(t, 1, failed, "a server known to be down is not asked, and says so")

	// The query_all option sends typed pipeline commands to every server too.
	var calls, down int
	err := c.Chain().Set("typed", "x").Get("typed", func(v string, err error) {
		if errors.Is(err, federated.ErrServerDown) {
			down++
			return
		}
		require.NoError(t, err)
		require.Equal(t, "x", v)
		calls++
	}).Poll(ctx)
	require.ErrorIs(t, err, federated.ErrServerDown, "the down server's part is an error")
	assert.Contains(t, err.Error(), servers[2].Addr())
	assert.Equal(t, 3, calls, "a Get under query_all answers once per up server")
	assert.Equal(t, 1, down, "and fails for the down one")
}

// A server of a group that answers a query-all command with an error is
// named in the error of All and of a chain's Poll, as a server that fails
// is: the servers of a group may differ, and "WRONGTYPE" alone does not
// say which to look at. (The error named the command only.)
func TestQueryAllReplyErrorNamesItsServer(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
	ctx := context.Background()
	for i, s := range servers {
		d := directClient(t, s.Addr())
		if i == 1 {
			require.NoError(t, d.Set(ctx, "z", "a string", 0).Err())
		} else {
			require.NoError(t, d.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "a"}).Err())
		}
	}
	want := fmt.Sprintf("federated: zcard z (node group, server %s): WRONGTYPE", servers[1].Addr())
	results, err := c.All(ctx, "ZCARD", "z")
	require.Error(t, err)
	assert.Contains(t, err.Error(), want)
	assert.NotContains(t, err.Error(), servers[0].Addr())
	require.Len(t, results, 3)

	c.SetQueryAll(true)
	var answers int
	err = c.Chain().ZCard("z", func(n int64, err error) { answers++ }).Poll(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), want)
	assert.Equal(t, 3, answers)
}

func TestBlockingAllReturnsOneSlotPerServer(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
	ctx := context.Background()
	for i, s := range servers {
		require.NoError(t, directClient(t, s.Addr()).Set(ctx, "k", fmt.Sprint("v", i), 0).Err())
	}
	results, err := c.All(ctx, "GET", "k")
	require.NoError(t, err)
	require.Len(t, results, 3)
	for i, r := range results {
		assert.Equal(t, servers[i].Addr(), r.Server, "results come in configuration order")
		assert.Equal(t, fmt.Sprint("v", i), r.Val)
		assert.NoError(t, r.Err)
	}

	// A replica that disagrees in type answers with its own error; the rest
	// still answer.
	require.NoError(t, directClient(t, servers[1].Addr()).Del(ctx, "z").Err())
	require.NoError(t, directClient(t, servers[1].Addr()).Set(ctx, "z", "string", 0).Err())
	require.NoError(t, directClient(t, servers[0].Addr()).ZAdd(ctx, "z", redis.Z{Score: 1, Member: "a"}).Err())
	results, err = c.All(ctx, "ZCARD", "z")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WRONGTYPE")
	require.Len(t, results, 3)
	assert.Equal(t, int64(1), results[0].Val)
	assert.ErrorContains(t, results[1].Err, "WRONGTYPE")
	assert.Equal(t, int64(0), results[2].Val)

	for _, s := range servers {
		require.NoError(t, s.Kill())
	}
	results, err = c.All(ctx, "GET", "k")
	require.ErrorIs(t, err, federated.ErrServerDown)
	require.Len(t, results, 3, "a slot for every server, also when all are down")
	for i, r := range results {
		assert.Equal(t, servers[i].Addr(), r.Server)
		require.Error(t, r.Err)
	}
	results, err = c.All(ctx, "GET", "k")
	require.ErrorIs(t, err, federated.ErrServerDown, "known to be down: not asked")
	require.Len(t, results, 3)
	for i, r := range results {
		assert.Equal(t, servers[i].Addr(), r.Server)
		assert.ErrorIs(t, r.Err, federated.ErrServerDown)
		assert.ErrorContains(t, r.Err, servers[i].Addr())
	}
}

func TestForEachServer(t *testing.T) {
	servers := redistest.StartN(t, 4)
	nodes := singleNodes(servers[:2])
	nodes["group"] = federated.Node{Addresses: redistest.Addrs(servers[2:])}
	c := newClient(t, federated.Config{Nodes: nodes, Options: testOptions()})
	var mu sync.Mutex
	var seen []string
	err := c.ForEachServer(context.Background(), func(ctx context.Context, addr string, rc *redis.Client) error {
		if err := rc.Ping(ctx).Err(); err != nil {
			return err
		}
		mu.Lock()
		seen = append(seen, addr)
		mu.Unlock()
		return nil
	})
	require.NoError(t, err)
	sort.Strings(seen)
	assert.Equal(t, c.Servers(), seen)

	require.NoError(t, servers[1].Kill())
	require.NoError(t, servers[3].Kill())
	err = c.ForEachServer(context.Background(), func(ctx context.Context, addr string, rc *redis.Client) error {
		return rc.Ping(ctx).Err()
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), servers[1].Addr())
	assert.Contains(t, err.Error(), servers[3].Addr())
	assert.NotContains(t, err.Error(), servers[0].Addr())
}

// Query-all reaches the typed API too, and switches at run time.
func TestQueryAllTypedAndSwitched(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
	ctx := context.Background()
	holding := func(key string) int {
		n := 0
		for _, s := range servers {
			n += int(directClient(t, s.Addr()).Exists(ctx, key).Val())
		}
		return n
	}
	require.NoError(t, c.Set(ctx, "one", "x", 0).Err())
	assert.Equal(t, 1, holding("one"), "off: the current server only")
	c.SetQueryAll(true)
	require.NoError(t, c.Set(ctx, "all", "x", 0).Err())
	assert.Equal(t, 3, holding("all"), "on: every server of the group")
	assert.Equal(t, "x", c.Get(ctx, "all").Val())
	var got *redis.StringCmd
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "pipelined", "x", 0)
		got = p.Get(ctx, "all")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, holding("pipelined"), "a pipeline's commands too")
	assert.Equal(t, "x", got.Val())
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "transaction", "x", 0)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, holding("transaction"), "a transaction is the current server's")

	// A server's error is the command's, and names the server.
	require.NoError(t, directClient(t, servers[2].Addr()).Set(ctx, "list", "not a list", 0).Err())
	var push *redis.IntCmd
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		push = p.LPush(ctx, "list", "x")
		return nil
	})
	require.ErrorContains(t, err, servers[2].Addr())
	require.ErrorContains(t, push.Err(), "WRONGTYPE")
	c.SetQueryAll(false)
	require.NoError(t, c.Set(ctx, "one-again", "x", 0).Err())
	assert.Equal(t, 1, holding("one-again"))
}

// ForEachServer names the node and server of each error once: an error
// that names them already (a ServerError of that server) is not named
// again.
func TestForEachServerNamesEachServerOnce(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	err := c.ForEachServer(context.Background(), func(_ context.Context, addr string, _ *redis.Client) error {
		if addr == servers[0].Addr() {
			return &federated.ServerError{Node: "n", Server: addr, Err: federated.ErrServerDown}
		}
		return errors.New("boom")
	})
	require.ErrorIs(t, err, federated.ErrServerDown)
	for _, s := range servers {
		assert.Equal(t, 1, strings.Count(err.Error(), s.Addr()), "%s in %q", s.Addr(), err)
	}
	assert.Contains(t, err.Error(), "node "+nodeName(2)+", server "+servers[1].Addr()+": boom")
}

// With query-all on, a blocking command waits its wait on every server of
// its group, past the command timeout, without marking any down; a wait
// that go-redis would cut short, over half the read timeout, is refused,
// as in a pipeline.
func TestQueryAllBlockingCommands(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	opts.ReadTimeout = 2500 * time.Millisecond
	opts.QueryAll = true
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: opts})
	ctx := context.Background()
	start := time.Now()
	require.ErrorIs(t, c.BLPop(ctx, time.Second, "empty").Err(), redis.Nil)
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	for _, s := range servers {
		assert.False(t, c.IsServerDown(s.Addr()))
	}
	require.ErrorContains(t, c.BLPop(ctx, 0, "empty").Err(), "BLPOP with query-all on waits forever, more than half the read timeout")
	require.ErrorContains(t, c.BLPop(ctx, 2*time.Second, "empty").Err(), "BLPOP with query-all on waits 2s")
}
