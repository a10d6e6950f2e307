package federated_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sort"
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
)

// goRedisProgram is a program written for go-redis, against the interface
// a go-redis service holds. It returns a transcript of what it read, so
// that two clients can be compared answer by answer. Its keys share a hash
// tag per use, so that what go-redis runs as one command or one
// transaction is on one node of the federation too.
func goRedisProgram(ctx context.Context, t *testing.T, rc redis.UniversalClient) []string {
	var out []string
	log := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	must := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}

	// Strings, counters, expirations.
	must(rc.Set(ctx, "s:1", "one", 0).Err())
	must(rc.Set(ctx, "s:2", "two", time.Minute).Err())
	log("get %s", rc.Get(ctx, "s:1").Val())
	log("getrange %s", rc.GetRange(ctx, "s:2", 0, 1).Val())
	log("incr %d", rc.IncrBy(ctx, "n", 41).Val()+rc.Incr(ctx, "n").Val())
	log("ttl>0 %t", rc.TTL(ctx, "s:2").Val() > 0)
	_, err := rc.Get(ctx, "missing").Result()
	log("missing %v", err)
	log("mget %v", rc.MGet(ctx, "{m}a", "{m}b").Val())
	must(rc.MSet(ctx, "{m}a", "A", "{m}b", "B").Err())
	log("mget %v", rc.MGet(ctx, "{m}a", "{m}b").Val())

	// Hashes, sets, sorted sets, lists.
	must(rc.HSet(ctx, "h", map[string]any{"a": "1", "b": "2"}).Err())
	log("hgetall %v", rc.HGetAll(ctx, "h").Val())
	log("hincr %d", rc.HIncrBy(ctx, "h", "a", 9).Val())
	must(rc.SAdd(ctx, "{set}x", "a", "b", "c").Err())
	must(rc.SAdd(ctx, "{set}y", "b", "c", "d").Err())
	inter := rc.SInter(ctx, "{set}x", "{set}y").Val()
	sort.Strings(inter)
	log("sinter %v", inter)
	must(rc.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "1:a"}, redis.Z{Score: 2, Member: "2:b"}).Err())
	log("zrange %v", rc.ZRangeWithScores(ctx, "z", 0, -1).Val())
	log("zunionstore %d", rc.ZUnionStore(ctx, "{zu}dst", &redis.ZStore{Keys: []string{"{zu}a", "{zu}b"}}).Val())
	must(rc.RPush(ctx, "l", "a", "b", "c").Err())
	log("lrange %v", rc.LRange(ctx, "l", 0, -1).Val())
	log("blpop %v", rc.BLPop(ctx, time.Second, "l").Val())

	// Streams.
	id := rc.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "1-1", Values: map[string]any{"f": "v"}}).Val()
	log("xadd %s", id)
	streams := rc.XRead(ctx, &redis.XReadArgs{Streams: []string{"st", "0"}, Count: 10}).Val()
	log("xread %v", streams)
	log("xlen %d", rc.XLen(ctx, "st").Val())

	// Scripts: EVAL, EVALSHA through go-redis's Script, a script loaded on
	// every server.
	log("eval %v", rc.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{"s:1"}).Val())
	script := redis.NewScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
	log("script %v", script.Run(ctx, rc, []string{"sc"}, 5).Val())
	log("script %v", script.Run(ctx, rc, []string{"sc"}, 5).Val())
	sha := rc.ScriptLoad(ctx, "return 7").Val()
	log("evalsha %v", rc.EvalSha(ctx, sha, []string{"anykey"}).Val())
	log("exists %v", rc.ScriptExists(ctx, sha).Val())

	// Pipelines and transactions.
	var gets []*redis.StringCmd
	cmds, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range 20 {
			p.Set(ctx, fmt.Sprintf("p:%d", i), i, 0)
			gets = append(gets, p.Get(ctx, fmt.Sprintf("p:%d", i)))
		}
		return nil
	})
	must(err)
	log("pipelined %d", len(cmds))
	for _, g := range gets {
		log("pget %s", g.Val())
	}
	var incr *redis.IntCmd
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "{tx}a", "1", 0)
		incr = p.Incr(ctx, "{tx}a")
		return nil
	})
	must(err)
	log("tx %d", incr.Val())
	err = rc.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, "{tx}a").Int()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "{tx}a", n*10, 0)
			return nil
		})
		return err
	}, "{tx}a")
	must(err)
	log("watch %s", rc.Get(ctx, "{tx}a").Val())

	// SCAN, with go-redis's iterator, over every node.
	var scanned []string
	iter := rc.Scan(ctx, 0, "p:*", 3).Iterator()
	for iter.Next(ctx) {
		scanned = append(scanned, iter.Val())
	}
	must(iter.Err())
	sort.Strings(scanned)
	log("scan %v", scanned)
	return out
}

// TestGoRedisProgramRunsUnchanged runs one go-redis program on a plain
// go-redis client of one server and on a federation of four nodes: the
// answers are the same, and the federation's keys are spread over its
// nodes.
func TestGoRedisProgramRunsUnchanged(t *testing.T) {
	ctx := context.Background()
	alone := redistest.StartN(t, 1)
	plain := directClient(t, alone[0].Addr())
	want := goRedisProgram(ctx, t, plain)

	servers := redistest.StartN(t, 4)
	opts := testOptions()
	opts.HashTags = true // as go-redis's Ring and Redis Cluster place {tag}s
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	var rc redis.UniversalClient = c // the one line a go-redis program changes
	got := goRedisProgram(ctx, t, rc)
	assert.Equal(t, want, got)

	holding := 0
	for _, s := range servers {
		if directClient(t, s.Addr()).DBSize(ctx).Val() > 0 {
			holding++
		}
	}
	assert.Equal(t, 4, holding, "the keys are spread over every node")
	for i := range 20 {
		k := fmt.Sprintf("p:%d", i)
		assert.Equal(t, int64(1), directClient(t, mustServer(t, c, k)).Exists(ctx, k).Val(), "%s is on the node of its key", k)
	}
}

// TestTransactionCommandsAloneAreRefused sends MULTI and EXEC as separate
// calls while other goroutines GET: they are refused before anything is
// sent, and no GET ever answers QUEUED.
func TestTransactionCommandsAloneAreRefused(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.PoolSize = 2
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	var wrong atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
					wrong.Add(1)
				}
			}
		}()
	}
	for _, args := range [][]any{{"MULTI"}, {"EXEC"}, {"DISCARD"}, {"WATCH", "k"}, {"UNWATCH"}} {
		err := c.Do(ctx, args...).Err()
		require.ErrorIs(t, err, federated.ErrTxCommand, "%v", args)
		assert.Contains(t, err.Error(), "TxPipelined or Watch", "the error names the API to use")
	}
	err := c.Chain().Do(nil, "MULTI").Poll(ctx)
	require.ErrorIs(t, err, federated.ErrTxCommand, "a chain refuses MULTI too")
	close(stop)
	wg.Wait()
	assert.Zero(t, wrong.Load(), "no GET answered anything but its value")
	for _, s := range servers {
		info := directClient(t, s.Addr()).ClientList(ctx).Val()
		assert.NotContains(t, info, "cmd=multi", "MULTI never reached %s", s.Addr())
	}
}

// TestTransactionsAcrossNodesFail: TxPipelined and Watch of keys on two
// nodes fail with ErrCrossNode and write nothing.
func TestTransactionsAcrossNodesFail(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	a, b := "key-a", ""
	for i := range 100 {
		if k := fmt.Sprintf("key-%d", i); c.KeyToNode(k) != c.KeyToNode(a) {
			b = k
			break
		}
	}
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, a, "1", 0)
		p.Set(ctx, b, "2", 0)
		return nil
	})
	require.ErrorIs(t, err, federated.ErrCrossNode)
	assert.Equal(t, fmt.Sprintf("%v: a transaction's set %s is on node %s, its set %s on node %s",
		federated.ErrCrossNode, a, c.KeyToNode(a), b, c.KeyToNode(b)), err.Error(), "names the commands and nodes")
	err = c.Watch(ctx, func(*redis.Tx) error { return nil }, a, b)
	require.ErrorIs(t, err, federated.ErrCrossNode)
	// Inside a Watch of a, a command of b would run on a's server.
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, a, "1", 0)
			p.Set(ctx, b, "2", 0)
			return nil
		})
		return err
	}, a)
	require.ErrorIs(t, err, federated.ErrCrossNode)
	assert.Contains(t, err.Error(), c.KeyToNode(b))
	err = c.Watch(ctx, func(tx *redis.Tx) error { return tx.Get(ctx, b).Err() }, a)
	require.ErrorIs(t, err, federated.ErrCrossNode)
	err = c.Watch(ctx, func(tx *redis.Tx) error { return tx.Watch(ctx, b).Err() }, a)
	require.ErrorIs(t, err, federated.ErrCrossNode, "a WATCH of b on a's server would never fire")
	assert.Zero(t, c.Exists(ctx, a).Val()+c.Exists(ctx, b).Val(), "nothing was written")
	for _, s := range servers {
		assert.Zero(t, directClient(t, s.Addr()).DBSize(ctx).Val(), "nothing on %s", s.Addr())
	}
	require.NoError(t, c.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, a, "1", 0)
			p.Ping(ctx)
			return nil
		})
		return err
	}, a), "keys of the Watch's node, and keyless commands, go")
	require.NoError(t, c.Del(ctx, a).Err())

	// A pipeline (not a transaction) may span nodes: each node's share is
	// sent at once.
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, a, "1", 0)
		p.Set(ctx, b, "2", 0)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "1", c.Get(ctx, a).Val())
	assert.Equal(t, "2", c.Get(ctx, b).Val())
}

// TestBlockingCommandOutlivesCommandTimeout: a BLPOP that waits longer than
// the command timeout is Redis doing what it was asked, not a server down.
func TestBlockingCommandOutlivesCommandTimeout(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.CommandTimeout = 500 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()

	start := time.Now()
	_, err := c.BLPop(ctx, time.Second, "empty").Result()
	require.ErrorIs(t, err, redis.Nil, "an empty list answers nil after its timeout")
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	// Sent raw, go-redis would cut its wait at the read timeout: refused,
	// with what to do instead; a shorter wait is sent.
	err = c.Do(ctx, "BLPOP", "empty", "1").Err()
	require.ErrorContains(t, err, "use the typed method")
	start = time.Now()
	_, err = c.Do(ctx, "BLPOP", "empty", "0.1").Result()
	require.ErrorIs(t, err, redis.Nil)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	assert.False(t, c.IsServerDown(servers[0].Addr()))

	go func() {
		time.Sleep(300 * time.Millisecond)
		directClient(t, servers[0].Addr()).RPush(ctx, "later", "x")
	}()
	v, err := c.BLPop(ctx, 5*time.Second, "later").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"later", "x"}, v)
}

// TestBlockingCommandWaitsAsLongAsAsked: a wait of 0 (forever), and a wait
// under a caller's deadline longer than the command timeout, last until
// the data comes or the wait or the deadline ends, and leave the server
// up: the everyday worker loop, BLPOP 0 on a queue.
func TestBlockingCommandWaitsAsLongAsAsked(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()

	pusher := directClient(t, servers[0].Addr())
	time.AfterFunc(time.Second, func() { pusher.RPush(ctx, "jobs", "x") })
	start := time.Now()
	v, err := c.BLPop(ctx, 0, "jobs").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"jobs", "x"}, v)
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	assert.False(t, c.IsServerDown(servers[0].Addr()))

	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	start = time.Now()
	err = c.BZPopMin(dctx, time.Second, "empty").Err()
	require.ErrorIs(t, err, redis.Nil, "the wait ends, not the command timeout")
	assert.GreaterOrEqual(t, time.Since(start), time.Second)

	dctx, cancel = context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = c.BLPop(dctx, 0, "empty").Err()
	var timeout net.Error
	require.ErrorAs(t, err, &timeout, "the caller's deadline ends a wait forever")
	assert.True(t, timeout.Timeout())
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.False(t, c.IsServerDown(servers[0].Addr()), "a caller's deadline is not the server's fault")
	require.NoError(t, c.Set(ctx, "after", "1", 0).Err())

	// A cancel ends a wait forever too (go-redis alone would wait for
	// data), and leaves nothing waiting that would take the next element.
	for _, pop := range []func(context.Context) error{
		func(ctx context.Context) error { return c.BLPop(ctx, 0, "empty").Err() },
		func(ctx context.Context) error {
			return c.XRead(ctx, &redis.XReadArgs{Streams: []string{"stream", "$"}, Block: 0}).Err()
		},
	} {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(300*time.Millisecond, cancel)
		start = time.Now()
		require.ErrorIs(t, pop(cctx), context.Canceled)
		assert.Less(t, time.Since(start), 2*time.Second)
		cancel()
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, c.BLPop(cctx, 0, "empty").Err(), context.Canceled, "cancelled before it was sent")
	require.NoError(t, c.RPush(ctx, "empty", "y").Err())
	v, err = c.BLPop(ctx, time.Second, "empty").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"empty", "y"}, v)
	assert.False(t, c.IsServerDown(servers[0].Addr()))
	clients, err := directClient(t, servers[0].Addr()).ClientList(ctx).Result()
	require.NoError(t, err)
	assert.NotContains(t, clients, "flags=b", "no client is left blocked")
}

// blockedClients returns how many clients of a server wait in a blocking
// command (0 when it cannot be asked).
func blockedClients(t *testing.T, addr string) int {
	t.Helper()
	clients, err := directClient(t, addr).ClientList(context.Background()).Result()
	if err != nil {
		return 0
	}
	return strings.Count(clients, "flags=b")
}

// TestWaitsForeverLeaveThePoolAndEndAtTheirCancel: waits forever, more
// than the server's pool holds, cancellable or not, leave its connections
// to the other commands, and the cancellable ones end at their cancel.
func TestWaitsForeverLeaveThePoolAndEndAtTheirCancel(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.PoolSize = 2
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	blocked := func() int { return blockedClients(t, servers[0].Addr()) }
	ctx, cancel := context.WithCancel(context.Background())
	const workers = 4
	errs := make(chan error, 2*workers)
	for i := range 2 * workers {
		wctx := ctx
		if i >= workers {
			wctx = context.Background() // the everyday worker loop's
		}
		go func() { errs <- c.BLPop(wctx, 0, "jobs").Err() }()
	}
	require.Eventually(t, func() bool { return blocked() == 2*workers }, 5*time.Second, 10*time.Millisecond, "every worker waits")
	for i := range 10 {
		require.NoError(t, c.Set(context.Background(), "k", i, 0).Err(), "the pool is free for other commands")
	}
	cancel()
	for range workers {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("a wait forever did not end at its cancel")
		}
	}
	require.NoError(t, c.RPush(context.Background(), "jobs", "1", "2", "3", "4").Err())
	for range workers {
		require.NoError(t, <-errs)
	}
	assert.Zero(t, blocked())
	assert.False(t, c.IsServerDown(servers[0].Addr()))
}

// TestCancelledWaitOnAStalledServerLosesNothing: a wait forever whose
// context ends (a cancel, a deadline) while its server does not answer
// (stopped; a long script would do the same) is not cut: an element
// pushed meanwhile, which the server hands to the wait as it answers
// again, is returned, or left in the list.
func TestCancelledWaitOnAStalledServerLosesNothing(t *testing.T) {
	for _, end := range []string{"cancel", "deadline"} {
		t.Run(end, func(t *testing.T) {
			servers := redistest.StartN(t, 1)
			opts := testOptions()
			opts.CommandTimeout = 300 * time.Millisecond
			c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
			ctx := context.Background()
			pusher := redis.NewClient(&redis.Options{Addr: servers[0].Addr(), ReadTimeout: 10 * time.Second, DisableIdentity: true})
			t.Cleanup(func() { _ = pusher.Close() })
			require.NoError(t, pusher.Ping(ctx).Err())
			wctx, cancel := context.WithCancel(ctx)
			if end == "deadline" {
				wctx, cancel = context.WithTimeout(ctx, 800*time.Millisecond)
			}
			defer cancel()
			popped := make(chan *redis.StringSliceCmd, 1)
			go func() { popped <- c.BLPop(wctx, 0, "jobs") }()
			require.Eventually(t, func() bool { return blockedClients(t, servers[0].Addr()) == 1 }, 5*time.Second, 10*time.Millisecond)
			require.NoError(t, servers[0].Pause())
			t.Cleanup(func() { _ = servers[0].Resume() })
			pushed := make(chan error, 1)
			go func() { pushed <- pusher.RPush(ctx, "jobs", "x").Err() }()
			time.Sleep(100 * time.Millisecond) // the push waits in the stopped server's socket
			cancel()
			<-wctx.Done()
			time.Sleep(2 * opts.CommandTimeout) // CLIENT UNBLOCK has gone unanswered
			require.NoError(t, servers[0].Resume())
			require.NoError(t, <-pushed)
			select {
			case cmd := <-popped:
				if cmd.Err() == nil {
					assert.Equal(t, []string{"jobs", "x"}, cmd.Val())
				} else {
					require.ErrorIs(t, cmd.Err(), wctx.Err())
					assert.Equal(t, int64(1), directClient(t, servers[0].Addr()).LLen(ctx, "jobs").Val(), "the element is in the list")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the wait did not end once its server answered again")
			}
		})
	}
}

// TestBlockingCommandInAPipeline: go-redis reads a pipeline's replies
// under the read timeout, whatever its commands. A wait that fits in half
// of it is waited, past the command timeout, in a pipeline and in a chain;
// a longer one is refused before anything is sent, with what to do
// instead. Neither marks the server down.
func TestBlockingCommandInAPipeline(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	opts.ReadTimeout = 2500 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: opts})
	ctx := context.Background()
	current := currentOf(t, c, "g")

	start := time.Now()
	var pop *redis.StringSliceCmd
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "before", "1", 0)
		pop = p.BLPop(ctx, time.Second, "empty")
		return nil
	})
	require.ErrorIs(t, err, redis.Nil, "an empty list answers nil after its wait")
	require.ErrorIs(t, pop.Err(), redis.Nil)
	assert.GreaterOrEqual(t, time.Since(start), time.Second)

	var chained error
	ch := c.Chain().Cmd(func(r redis.Cmdable) { r.BLPop(ctx, time.Second, "empty") }, func(cmd redis.Cmder) { chained = cmd.Err() })
	require.NoError(t, ch.Poll(ctx), "a chain's nil is an answer")
	require.ErrorIs(t, chained, redis.Nil)

	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "beside", "1", 0)
		p.BLPop(ctx, 2*time.Second, "empty")
		return nil
	})
	require.ErrorContains(t, err, "BLPOP in a pipeline waits 2s, more than half the read timeout")
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.BRPop(ctx, 0, "empty")
		return nil
	})
	require.ErrorContains(t, err, "waits forever")
	assert.Equal(t, int64(1), directClient(t, current).Exists(ctx, "beside").Val(), "the pipeline's other commands are sent")
	for _, s := range servers {
		assert.False(t, c.IsServerDown(s.Addr()), "%s is up", s.Addr())
	}
	assert.Equal(t, current, currentOf(t, c, "g"), "the node did not fail over")
}

// TestSlowWatchFunctionKeepsItsServerUp: a Watch whose function takes
// longer than the command timeout, and ends without a transaction, leaves
// go-redis to UNWATCH: that is no timeout of the server.
func TestSlowWatchFunctionKeepsItsServerUp(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 200 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: opts})
	ctx := context.Background()
	current := currentOf(t, c, "g")
	nothing := errors.New("nothing to do")
	err := c.Watch(ctx, func(tx *redis.Tx) error {
		if err := tx.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		return nothing
	}, "k")
	require.ErrorIs(t, err, nothing, "the function's own error, as it is")
	assert.False(t, c.IsServerDown(current))
	assert.Equal(t, current, currentOf(t, c, "g"), "the node did not fail over")

	// A WATCH that does commit after the same wait.
	require.NoError(t, c.Watch(ctx, func(tx *redis.Tx) error {
		time.Sleep(300 * time.Millisecond)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "v", 0)
			return nil
		})
		return err
	}, "k"))
	assert.Equal(t, "v", directClient(t, current).Get(ctx, "k").Val())
	assert.False(t, c.IsServerDown(current))
}

// TestWatchKeepsItsFunctionsErrorAsCloseBegins: an error of Watch's own
// function is the caller's, also once Close has begun; an error of a
// command the function sent, which Close cut off, is ErrClosed.
func TestWatchKeepsItsFunctionsErrorAsCloseBegins(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c, err := federated.New(federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	require.NoError(t, err)
	ctx := context.Background()
	mine := errors.New("nothing to do")
	closed := make(chan error, 1)
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		if err := tx.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
			return err
		}
		go func() { closed <- c.Close() }()
		require.Eventually(t, func() bool { return errors.Is(c.Ping(ctx).Err(), federated.ErrClosed) }, 5*time.Second, time.Millisecond)
		return mine
	}, "k")
	require.ErrorIs(t, err, mine)
	require.NoError(t, <-closed)
	require.ErrorIs(t, c.Watch(ctx, func(*redis.Tx) error { return nil }, "k"), federated.ErrClosed)
}

// TestGroupRoutesTypedCommands: a Group's commands land on the group's
// node, whatever their keys, as the Perl module's [group, key] do.
func TestGroupRoutesTypedCommands(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	g := c.Group("web1.sfo")
	addr, err := c.NodeToServer(g.Node())
	require.NoError(t, err)
	direct := directClient(t, addr)
	for i := range 20 {
		k := fmt.Sprintf("any-%d", i)
		require.NoError(t, g.Set(ctx, k, i, 0).Err())
		assert.Equal(t, int64(1), direct.Exists(ctx, k).Val(), "%s is on the group's node", k)
	}
	n, err := g.Do(ctx, "DBSIZE").Int64()
	require.NoError(t, err, "a keyless command goes to the group's node")
	assert.Equal(t, int64(20), n)
	_, err = g.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "any-1")
		p.Incr(ctx, "any-2")
		return nil
	})
	require.NoError(t, err, "a group's transaction may name any keys")
	_, err = c.Do(ctx, "DBSIZE").Result()
	require.ErrorIs(t, err, federated.ErrKeyless, "the client has no node for a keyless command")
	require.NoError(t, c.Ping(ctx).Err(), "PING goes to every server")
}

// TestEveryTypedCommandInBothStyles: the typed go-redis API and the chain
// are one set of commands. Every method of redis.Cmdable is a method of
// the Client, and a chain queues the same commands through Cmd; a sample
// of each kind of reply comes back the same by both.
func TestEveryTypedCommandInBothStyles(t *testing.T) {
	ct := reflect.TypeOf((*redis.Cmdable)(nil)).Elem()
	client := reflect.TypeOf(&federated.Client{})
	group := reflect.TypeOf(&federated.Group{})
	for i := range ct.NumMethod() {
		name := ct.Method(i).Name
		_, onClient := client.MethodByName(name)
		_, onGroup := group.MethodByName(name)
		assert.True(t, onClient && onGroup, "%s", name)
	}
	assert.Greater(t, ct.NumMethod(), 400, "go-redis's whole command set")

	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	samples := []func(r redis.Cmdable) redis.Cmder{
		func(r redis.Cmdable) redis.Cmder { return r.Set(ctx, "a", "1", time.Minute) },
		func(r redis.Cmdable) redis.Cmder { return r.Get(ctx, "a") },
		func(r redis.Cmdable) redis.Cmder { return r.Expire(ctx, "a", 500*time.Millisecond) },
		func(r redis.Cmdable) redis.Cmder { return r.Exists(ctx, "a") },
		func(r redis.Cmdable) redis.Cmder { return r.HSet(ctx, "h", "f", "v") },
		func(r redis.Cmdable) redis.Cmder { return r.HGetAll(ctx, "h") },
		func(r redis.Cmdable) redis.Cmder { return r.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "m"}) },
		func(r redis.Cmdable) redis.Cmder { return r.ZRangeWithScores(ctx, "z", 0, -1) },
		func(r redis.Cmdable) redis.Cmder { return r.XLen(ctx, "nostream") },
		func(r redis.Cmdable) redis.Cmder { return r.Eval(ctx, "return KEYS[1]", []string{"a"}) },
	}
	var typed, chained []string
	for _, s := range samples {
		typed = append(typed, s(c).String())
	}
	require.NoError(t, c.FlushAll(ctx).Err(), "FLUSHALL goes to every server")
	p := c.Chain()
	for _, s := range samples {
		p.Cmd(func(r redis.Cmdable) { s(r) }, func(cmd redis.Cmder) { chained = append(chained, cmd.String()) })
	}
	require.NoError(t, p.Poll(ctx))
	assert.Equal(t, typed, chained)
	assert.Contains(t, typed[2], "expire a 1", "an expiration under a second is one second in both")
}

// A Watch that fails on a server that stopped answering names the node and
// the server, as every routed command does.
func TestWatchOnAStalledServerNamesIt(t *testing.T) {
	servers := redistest.StartN(t, 1)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "w", 1, 0).Err())
	require.NoError(t, servers[0].Pause())
	t.Cleanup(func() { _ = servers[0].Resume() })
	err := c.Watch(ctx, func(tx *redis.Tx) error { return tx.Get(ctx, "w").Err() }, "w")
	var se *federated.ServerError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, servers[0].Addr(), se.Server)
	assert.ErrorIs(t, err, federated.ErrServerDown)
}

// TestStreamReadsNamedLikeTheirOptions: XREAD and XREADGROUP are read as
// Redis reads them, option by option: a group or a consumer named
// "streams" or "block" is not taken for the option, and a stream named
// "block" does not make a read wait.
func TestStreamReadsNamedLikeTheirOptions(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	key := ""
	for i := range 100 { // a stream on another node than "block" and "count"
		if k := fmt.Sprintf("s%d", i); c.KeyToNode(k) != c.KeyToNode("block") && c.KeyToNode(k) != c.KeyToNode("count") {
			key = k
			break
		}
	}
	require.NotEmpty(t, key)
	require.NoError(t, c.XGroupCreateMkStream(ctx, key, "streams", "0").Err())
	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"f", "v"}}).Err())
	got, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "streams", Consumer: "block", Streams: []string{key, ">"}, Count: 10, Block: -1}).Result()
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, key, got[0].Stream)
	require.Len(t, got[0].Messages, 1)

	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "block", Values: []any{"f", "v"}}).Err())
	var read *redis.XStreamSliceCmd
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		read = p.XRead(ctx, &redis.XReadArgs{Streams: []string{"block", "0"}, Count: 1, Block: -1})
		return nil
	})
	require.NoError(t, err, "a read that does not wait is not refused in a pipeline")
	require.Len(t, read.Val(), 1)
	assert.Equal(t, "block", read.Val()[0].Stream)
}

// TestSortPatternsStayOnTheirNode: SORT's BY and GET patterns read keys
// named by each element, which may be on any node, where they would read
// as missing: a pattern is taken only where a {tag} before its * places
// every key it reads, on the node of the sorted key, as Redis Cluster
// does.
func TestSortPatternsStayOnTheirNode(t *testing.T) {
	servers := redistest.StartN(t, 3)
	opts := testOptions()
	opts.HashTags = true
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	other := ""
	for i := range 100 {
		if tag := fmt.Sprintf("t%d", i); c.KeyToNode("{"+tag+"}") != c.KeyToNode("{u}") {
			other = tag
			break
		}
	}
	require.NotEmpty(t, other)
	require.NoError(t, c.RPush(ctx, "{u}list", "1", "2", "3").Err())
	for i := 1; i <= 3; i++ {
		require.NoError(t, c.Set(ctx, fmt.Sprintf("{u}obj_%d", i), fmt.Sprintf("v%d", i), 0).Err())
		require.NoError(t, c.HSet(ctx, fmt.Sprintf("{u}h_%d", i), "w", 4-i).Err())
	}
	got, err := c.Sort(ctx, "{u}list", &redis.Sort{By: "{u}h_*->w", Get: []string{"#", "{u}obj_*"}}).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"3", "v3", "2", "v2", "1", "v1"}, got)
	for _, s := range []*redis.Sort{
		{Get: []string{"obj_*"}},
		{By: "w_*"},
		{Get: []string{"{" + other + "}obj_*"}},
		{Get: []string{"obj_*{u}"}},
		// A metric key is placed whole, whatever its braces.
		{Get: []string{"2026-11-25:{u}*"}},
	} {
		err := c.Sort(ctx, "{u}list", s).Err()
		require.ErrorIs(t, err, federated.ErrCrossNode, "%+v", s)
	}
	got, err = c.Sort(ctx, "{u}list", &redis.Sort{By: "nosort", Get: []string{"#"}}).Result()
	require.NoError(t, err, "patterns that read no key")
	assert.Equal(t, []string{"1", "2", "3"}, got)

	// Options are read in order: a pattern named "store" is no STORE, and
	// the word after it no key.
	list := ""
	for i := range 100 {
		if k := fmt.Sprintf("{l%d}list", i); c.KeyToNode(k) != c.KeyToNode("ALPHA") {
			list = k
			break
		}
	}
	require.NoError(t, c.RPush(ctx, list, "b", "a").Err())
	got, err = c.Do(ctx, "SORT", list, "BY", "store", "ALPHA").StringSlice()
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, got, "BY store: no sort")
	n, err := c.Do(ctx, "SORT", "{u}list", "BY", "store", "STORE", "{u}sorted").Int()
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, int64(3), c.LLen(ctx, "{u}sorted").Val())
	require.ErrorIs(t, c.Do(ctx, "SORT", "{u}list", "STORE", "{"+other+"}sorted").Err(), federated.ErrCrossNode)
}

// TestWaitForeverMovesWhenItsServerLeaves: a wait forever on a server that
// a ReplaceNode took out of the federation goes to the new server at
// once, where its jobs now go: it failed a command timeout later, and a
// caller that did not send it again waited for nothing. Close ends one
// at once.
func TestWaitForeverMovesWhenItsServerLeaves(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"n": {Address: servers[0].Addr()}}, Options: opts})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blocked := func(s *redistest.Server) bool { return blockedClients(t, s.Addr()) > 0 }
	waited := make(chan *redis.StringSliceCmd, 1)
	go func() { waited <- c.BLPop(ctx, 0, "jobs") }()
	require.Eventually(t, func() bool { return blocked(servers[0]) }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.ReplaceNode("n", federated.Node{Address: servers[1].Addr()}))
	require.Eventually(t, func() bool { return blocked(servers[1]) && !blocked(servers[0]) }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.RPush(ctx, "jobs", "x").Err())
	select {
	case cmd := <-waited:
		require.NoError(t, cmd.Err())
		assert.Equal(t, []string{"jobs", "x"}, cmd.Val())
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not move with its node")
	}

	go func() { waited <- c.BLPop(ctx, 0, "jobs") }()
	require.Eventually(t, func() bool { return blocked(servers[1]) }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Close())
	select {
	case cmd := <-waited:
		require.ErrorIs(t, cmd.Err(), federated.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("the wait outlived Close")
	}
}

// A wait forever whose key a node added takes goes to that node at once,
// with no context that can end it too, and one whose key stays where it
// was is left waiting: an element pushed through the client after the
// change reaches each. The first waited on the old server for ever, where
// nothing was pushed any more.
func TestWaitForeverMovesWithItsKey(t *testing.T) {
	s0, two, moving, staying := keysOfAnAddedNode(t, "q")
	s1 := two["b"].Address // blocked on, once b is added
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: s0}}, Options: testOptions()})
	ctx := context.Background()
	waited := make(chan *redis.StringSliceCmd, 2)
	for _, k := range []string{moving, staying} {
		go func() { waited <- c.BLPop(ctx, 0, k) }()
	}
	require.Eventually(t, func() bool { return blockedClients(t, s0) == 2 }, 5*time.Second, 10*time.Millisecond)
	var clientIDs atomic.Int64
	c.AddHook(seenHook{name: "client", n: &clientIDs})
	require.NoError(t, c.AddNode("b", federated.Node{Address: s1}))
	require.Eventually(t, func() bool { return blockedClients(t, s0) == 1 && blockedClients(t, s1) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, int64(1), clientIDs.Load(), "the staying wait was not sent again")
	for _, k := range []string{moving, staying} {
		require.NoError(t, c.RPush(ctx, k, "x").Err())
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case cmd := <-waited:
			require.NoError(t, cmd.Err())
			got[cmd.Val()[0]] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("waits answered: %v", got)
		}
	}
	assert.Equal(t, map[string]bool{moving: true, staying: true}, got)
}

// TestWaitForeverOfAUserWithoutClientCommands: a user whose ACL refuses
// CLIENT ID waits as go-redis does: a cancel does not cut the wait, whose
// connection the server still serves, so the element pushed after it is
// returned rather than popped for a connection nobody reads.
func TestWaitForeverOfAUserWithoutClientCommands(t *testing.T) {
	servers := redistest.StartN(t, 1)
	ctx := context.Background()
	admin := directClient(t, servers[0].Addr())
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "worker", "on", ">pw", "~*", "+@all", "-client").Err())
	opts := testOptions()
	opts.Username, opts.Password = "worker", "pw"
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	popped := make(chan *redis.StringSliceCmd, 1)
	go func() { popped <- c.BLPop(wctx, 0, "jobs") }()
	require.Eventually(t, func() bool { return blockedClients(t, servers[0].Addr()) == 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	time.Sleep(200 * time.Millisecond) // the cancel, had it cut the wait, would have by now
	require.NoError(t, admin.RPush(ctx, "jobs", "x").Err())
	select {
	case cmd := <-popped:
		require.NoError(t, cmd.Err())
		assert.Equal(t, []string{"jobs", "x"}, cmd.Val())
	case <-time.After(5 * time.Second):
		t.Fatal("the pushed element did not end the wait")
	}
}

// seenHook counts the commands of one name it sees.
type seenHook struct {
	name string
	n    *atomic.Int64
}

func (h seenHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h seenHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == h.name {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h seenHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestHookAddedLaterSeesWaitsForever: a hook added after a wait forever's
// connection was made (and kept for the next wait) sees the next wait.
func TestHookAddedLaterSeesWaitsForever(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	require.NoError(t, c.RPush(ctx, "jobs", "1", "2").Err())
	require.NoError(t, c.BLPop(ctx, 0, "jobs").Err())
	var seen atomic.Int64
	c.AddHook(seenHook{name: "blpop", n: &seen})
	require.NoError(t, c.BLPop(ctx, 0, "jobs").Err())
	assert.Equal(t, int64(1), seen.Load())
}

// A wait's connection kept idle from before its server came back up is
// not used again: its failure, a connection to the server as it was,
// would mark the server as it is now down. The next wait dials anew.
func TestWaitAfterAServerCameBackUpTakesANewConnection(t *testing.T) {
	servers := redistest.StartN(t, 1)
	addr := servers[0].Addr()
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	admin := directClient(t, addr)
	// waitConn returns the id of the connection that ran the last BLPOP.
	waitConn := func() string {
		for line := range strings.SplitSeq(admin.ClientList(ctx).Val(), "\n") {
			if strings.Contains(line, " cmd=blpop ") {
				id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
				return id
			}
		}
		return ""
	}
	require.NoError(t, admin.RPush(ctx, "q", "a", "b", "c").Err())
	require.NoError(t, c.BLPop(ctx, 0, "q").Err())
	first := waitConn()
	require.NotEmpty(t, first)
	require.NoError(t, c.BLPop(ctx, 0, "q").Err())
	require.Equal(t, first, waitConn(), "an idle wait connection is used again")

	require.NoError(t, c.MarkServerDown(addr))
	require.NoError(t, c.MarkServerUp(addr))
	require.NoError(t, c.BLPop(ctx, 0, "q").Err())
	assert.NotEqual(t, first, waitConn(), "the server came back up: a new connection")
	assert.NotContains(t, admin.ClientList(ctx).Val(), "id="+first+" ", "the old one is closed")
}

// A loop of waits forever on a busy list asks its connection's id once,
// as the connection is set up, not before each wait: each element cost a
// CLIENT ID round trip besides its BLPOP. A cancel still ends a wait.
func TestWaitsForeverAskTheirConnectionsIDOnce(t *testing.T) {
	servers := redistest.StartN(t, 1)
	var clientCmds, pops atomic.Int64
	opts := testOptions()
	opts.Hooks = []redis.Hook{seenHook{name: "client", n: &clientCmds}, seenHook{name: "blpop", n: &pops}}
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, c.RPush(ctx, "jobs", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10).Err())
	for range 10 {
		require.NoError(t, c.BLPop(ctx, 0, "jobs").Err())
	}
	assert.Equal(t, int64(10), pops.Load())
	assert.Equal(t, int64(1), clientCmds.Load(), "CLIENT ID once, for 10 waits")

	// Its connection killed while idle, the next wait dials anew, and the
	// cancel ends it by the new connection's id.
	admin := directClient(t, servers[0].Addr())
	require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err())
	waited := make(chan error, 1)
	go func() { waited <- c.BLPop(ctx, 0, "jobs").Err() }()
	require.Eventually(t, func() bool { return blockedClients(t, servers[0].Addr()) == 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-waited:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("the cancel did not end the wait")
	}
}
