package federated_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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

func TestPipelineChainingAcrossEightServers(t *testing.T) {
	servers := redistest.StartN(t, 8)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()

	const n = 400
	p := c.Chain()
	nodes := map[string]bool{}
	for i := range n {
		k := fmt.Sprintf("2026-11-25:web%d.sfo:cpu.user", i)
		nodes[c.KeyToNode(k)] = true
		p.Set(k, i)
	}
	require.Equal(t, n, p.Len())
	require.NoError(t, p.Poll(ctx))
	require.Len(t, nodes, 8, "keys should land on all 8 servers")
	require.Equal(t, 0, p.Len())

	// Reads with callbacks, chained, then counted per server.
	got := make(map[int]string, n)
	var order []int
	for i := range n {
		k := fmt.Sprintf("2026-11-25:web%d.sfo:cpu.user", i)
		p.Get(k, func(v string, err error) {
			require.NoError(t, err)
			got[i] = v
			order = append(order, i)
		})
	}
	var missing error
	p.Get("no-such-key", func(_ string, err error) { missing = err }).
		Incr("counter", nil).
		IncrBy("counter", 9, func(v int64, err error) {
			require.NoError(t, err)
			assert.Equal(t, int64(10), v)
		})
	require.NoError(t, p.Poll(ctx))
	require.Len(t, got, n)
	for i := range n {
		require.Equal(t, fmt.Sprint(i), got[i])
	}
	for i := 1; i < len(order); i++ {
		require.Less(t, order[i-1], order[i], "callbacks run in queue order")
	}
	assert.Equal(t, redis.Nil, missing, "a missing key is redis.Nil, not an error of Poll")

	// The data really is where the ring says.
	for i := range 50 {
		k := fmt.Sprintf("2026-11-25:web%d.sfo:cpu.user", i)
		v, err := directClient(t, mustServer(t, c, k)).Get(ctx, k).Int()
		require.NoError(t, err)
		require.Equal(t, i, v)
	}
}

func TestPipelineTypedCommandsAndFutures(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	p := c.Chain()

	var future *redis.StringCmd
	p.Set("h-future", "soon").Cmd(func(r redis.Cmdable) { future = r.Get(ctx, "h-future") }, nil)
	setCmd := p.Set("x", "1").Last()
	var exists, card int64
	var hash map[string]string
	var field string
	var rng []string
	var withScores []redis.Z
	var score float64
	p.HSet("h", "a", "1", "b", "2").
		HGet("h", "a", func(v string, err error) { field = v }).
		HGetAll("h", func(v map[string]string, err error) { hash = v }).
		Exists("h", func(v int64, err error) { exists = v }).
		ZAdd("z", redis.Z{Score: 1, Member: "1:a"}, redis.Z{Score: 2, Member: "2:b"}, redis.Z{Score: 3, Member: "3:c"}).
		ZCard("z", func(v int64, err error) { card = v }).
		ZRangeByScore("z", &redis.ZRangeBy{Min: "2", Max: "+inf"}, func(v []string, err error) { rng = v }).
		ZRangeByScoreWithScores("z", &redis.ZRangeBy{Min: "-inf", Max: "1"}, func(v []redis.Z, err error) { withScores = v }).
		Do(func(cmd *redis.Cmd) { score, _ = cmd.Val().(float64) }, "ZSCORE", "z", "3:c")
	require.NoError(t, p.Poll(ctx))
	assert.Equal(t, "soon", future.Val())
	assert.Equal(t, "OK", setCmd.(*redis.StatusCmd).Val())
	assert.Equal(t, "1", field)
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, hash)
	assert.Equal(t, int64(1), exists)
	assert.Equal(t, int64(3), card)
	assert.Equal(t, []string{"2:b", "3:c"}, rng)
	assert.Equal(t, []redis.Z{{Score: 1, Member: "1:a"}}, withScores)
	assert.Equal(t, 3.0, score)

	p.ZRem("z", "1:a").ZRemRangeByScore("z", "3", "3").Expire("h", time.Minute).Del("x")
	require.NoError(t, p.Poll(ctx))
	assert.Equal(t, int64(1), c.ZCard(ctx, "z").Val())
	assert.Equal(t, int64(0), c.Exists(ctx, "x").Val())

	// A key group keeps keys together in a pipeline too.
	g := p.Group("gmail")
	for i := range 20 {
		g.Set(fmt.Sprintf("u%d@gmail.com", i), "spammer")
	}
	require.NoError(t, p.Poll(ctx))
	direct := directClient(t, mustServer(t, c, "gmail"))
	for i := range 20 {
		require.Equal(t, "spammer", direct.Get(ctx, fmt.Sprintf("u%d@gmail.com", i)).Val())
	}
}

// A command sent to every server keeps its place in a pipeline: the
// commands before it run before it, those after it after it, as in a
// pipeline of one server.
func TestPipelineKeepsABroadcastInItsPlace(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	var keys []string
	for i := range 10 {
		keys = append(keys, fmt.Sprintf("before-%d", i))
	}
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, k, "1", 0)
		}
		p.FlushDB(ctx)
		p.Set(ctx, "after", "1", 0)
		return nil
	})
	require.NoError(t, err)
	for _, k := range keys {
		n, err := c.Exists(ctx, k).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "FLUSHDB came after the SET of %s before it", k)
	}
	n, err := c.Exists(ctx, "after").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "and before the SET after it")
}

func TestPipelineReplyErrorsAreJoined(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "str", "x", 0).Err())

	var cbErr error
	p := c.Chain().
		ZCard("str", func(_ int64, err error) { cbErr = err }).
		Set("fine", "1")
	err := p.Poll(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WRONGTYPE")
	assert.Contains(t, err.Error(), "zcard str")
	require.Error(t, cbErr)
	assert.Equal(t, "1", c.Get(ctx, "fine").Val(), "the rest of the batch still succeeds")
}

// Commands that the caller's context ended before their answer make one
// error of Poll, not one each (a batch of thousands made as many lines),
// which says how many and matches the context's error; each callback
// still gets its command's. A deadline that runs out under a long script
// leaves the commands of the other server answered.
func TestPollSaysCommandsTheContextEndedOnce(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	p := c.Chain()
	var cbErrs int
	for i := range 500 {
		p.Incr(fmt.Sprintf("k%d", i), func(_ int64, err error) {
			if errors.Is(err, context.Canceled) {
				cbErrs++
			}
		})
	}
	err := p.Poll(cancelled)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, "federated: incr k0 and 499 more not answered before the context ended: context canceled", err.Error())
	assert.Equal(t, 500, cbErrs)

	// 1.5 s of script on the server of "slow", a deadline of 500 ms, once
	// both servers have a connection (a dial is no part of the test).
	for i := range 100 {
		p.Set(fmt.Sprintf("k%d", i), i)
	}
	require.NoError(t, p.Poll(context.Background()))
	const spin = "local t = redis.call('TIME') while true do local n = redis.call('TIME') " +
		"if (n[1]-t[1])*1000000 + n[2]-t[2] > 1500000 then break end end return 1"
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	p.Do(nil, "EVAL", spin, 1, "slow")
	late := 0
	for i := range 100 {
		p.Cmd(func(r redis.Cmdable) { r.Set(ctx, fmt.Sprintf("k%d", i), i, 0) }, func(cmd redis.Cmder) {
			if cmd.Err() != nil {
				late++
			}
		})
	}
	err = p.Poll(ctx)
	require.Error(t, err)
	assert.Equal(t, 1, strings.Count(err.Error(), "\n")+1, "one error: %v", err)
	// The script is named by its start.
	assert.Contains(t, err.Error(), fmt.Sprintf("federated: eval %s… (%d bytes) and %d more not answered before the context ended: ",
		spin[:64], len(spin), late))
	assert.Greater(t, late, 20)
	assert.Less(t, late, 80, "the other server's commands were answered")
}

func TestPipelineCallbacksMayQueueMore(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "pointer", "target", 0).Err())
	require.NoError(t, c.Set(ctx, "target", "value", 0).Err())

	p := c.Chain()
	var final string
	p.Get("pointer", func(next string, err error) {
		require.NoError(t, err)
		p.Get(next, func(v string, err error) { final = v })
	})
	require.NoError(t, p.Poll(ctx))
	assert.Equal(t, "value", final, "Poll waits for commands queued by callbacks")
}

func TestPipelineTimeoutOnPausedServer(t *testing.T) {
	servers := redistest.StartN(t, 4)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()

	paused := servers[0].Addr()
	p := c.Chain()
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		p.Set(keys[i], i)
	}
	require.NoError(t, p.Poll(ctx))

	require.NoError(t, servers[0].Pause())
	results := make(map[string]error, len(keys))
	for _, k := range keys {
		p.Get(k, func(_ string, err error) { results[k] = err })
	}
	start := time.Now()
	err := p.Poll(ctx)
	elapsed := time.Since(start)
	t.Logf("Poll with a SIGSTOPped server returned after %v (timeout %v)", elapsed, opts.CommandTimeout)
	require.Less(t, elapsed, opts.CommandTimeout+max(opts.CommandTimeout/4, 150*time.Millisecond))
	require.ErrorIs(t, err, federated.ErrServerDown)
	require.Len(t, results, len(keys), "every callback runs")
	onPaused := 0
	for _, k := range keys {
		if mustNode(c, k) == paused {
			onPaused++
			require.ErrorIs(t, results[k], federated.ErrServerDown, "key %q on the paused server", k)
		} else {
			require.NoError(t, results[k], "key %q on a live server", k)
		}
	}
	require.Positive(t, onPaused)
	require.True(t, c.IsServerDown(paused))

	// Commands for the down server now fail at once.
	var onDown string
	for _, k := range keys {
		if mustNode(c, k) == paused {
			onDown = k
			break
		}
	}
	start = time.Now()
	var fast error
	require.ErrorIs(t, p.Get(onDown, func(_ string, err error) { fast = err }).Poll(ctx), federated.ErrServerDown)
	require.Less(t, time.Since(start), 100*time.Millisecond)
	require.ErrorIs(t, fast, federated.ErrServerDown)
	require.NoError(t, servers[0].Resume())
}

// mustNode returns the single server of the node that owns key.
func mustNode(c *federated.Client, key string) string {
	addrs, _ := c.AllServers(c.KeyToNode(key))
	return addrs[0]
}

func TestPipelineFailsOverInGroup(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
	ctx := context.Background()
	require.NoError(t, c.Chain().Set("warm", "1").Poll(ctx))
	cur, err := c.NodeToServer("group")
	require.NoError(t, err)
	require.NoError(t, serverByAddr(servers, cur).Kill())

	p := c.Chain()
	for i := range 50 {
		p.Set(fmt.Sprintf("after%d", i), i)
	}
	require.NoError(t, p.Poll(ctx), "a batch whose server died goes to the next server of the group")
	survivor := otherServer(servers, cur)
	assert.Equal(t, int64(50), directClient(t, survivor.Addr()).DBSize(ctx).Val())
}

func TestPipelineGoOverlapsWork(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	p := c.Chain()
	var v string
	f := p.Set("a", "1").Get("a", func(s string, err error) { v = s }).Go(ctx)
	require.Equal(t, 0, p.Len(), "the pipeline is free again once Go returns")
	p.Set("b", "2") // queued for the next flight
	select {
	case <-f.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("flight did not finish")
	}
	assert.Empty(t, v, "callbacks run in Wait, not before")
	require.NoError(t, f.Wait())
	require.NoError(t, f.Wait(), "Wait again returns the same result")
	assert.Equal(t, "1", v)
	require.NoError(t, p.Poll(ctx))
	assert.Equal(t, "2", c.Get(ctx, "b").Val())
}

// A callback that panics ends the callbacks' run, and a Wait after it
// still says what failed: it returned nil, and a dead server's failure
// went unsaid.
func TestPipelineWaitAfterAPanickingCallbackSaysWhatFailed(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	live, dead := keyOnNode(t, c, "redis_1"), keyOnNode(t, c, "redis_2")
	require.NoError(t, servers[1].Kill())
	p := c.Chain()
	p.Incr(live, func(int64, error) { panic("a callback's bug") })
	p.Incr(dead, func(int64, error) {})
	f := p.Go(ctx)
	assert.PanicsWithValue(t, "a callback's bug", func() { _ = f.Wait() })
	err := f.Wait()
	require.ErrorIs(t, err, federated.ErrServerDown)
	assert.Contains(t, err.Error(), servers[1].Addr())
}

func TestPipelineAutoFlush(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.PipelineAutoFlush = 100
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	p := c.Chain()
	for i := range 1000 {
		p.Set(fmt.Sprintf("k%d", i), i)
		require.Less(t, p.Len(), 200, "the queue never holds more than the limit per node")
	}
	require.NoError(t, p.Poll(context.Background()))
	total := int64(0)
	for _, s := range servers {
		total += directClient(t, s.Addr()).DBSize(context.Background()).Val()
	}
	assert.Equal(t, int64(1000), total)
}

// Callbacks that queue enough to flush automatically send only what they
// queued: every command runs once, and every callback gets its own answer.
func TestPipelineAutoFlushFromCallbacks(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.PipelineAutoFlush = 2
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()
	p := c.Chain()
	got := map[string]int64{}
	record := func(key string) func(int64, error) {
		return func(v int64, err error) {
			require.NoError(t, err)
			got[key] = v
		}
	}
	p.Incr("a", func(v int64, err error) {
		record("a")(v, err)
		for i := range 4 {
			key := fmt.Sprintf("from-callback-%d", i)
			p.Incr(key, record(key))
		}
	})
	p.Incr("b", record("b"))
	require.NoError(t, p.Poll(ctx))
	want := map[string]int64{"a": 1, "b": 1}
	for i := range 4 {
		want[fmt.Sprintf("from-callback-%d", i)] = 1
	}
	assert.Equal(t, want, got)
	for key := range want {
		assert.Equal(t, "1", c.Get(ctx, key).Val(), "%s incremented once", key)
	}
}

func TestPipelineConcurrentGoroutines(t *testing.T) {
	servers := redistest.StartN(t, 4)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := c.Chain()
			for round := range 20 {
				for i := range 25 {
					p.Set(fmt.Sprintf("g%d:k%d", g, i), round)
				}
				bad := 0
				for i := range 25 {
					p.Get(fmt.Sprintf("g%d:k%d", g, i), func(v string, err error) {
						if err != nil || v != fmt.Sprint(round) {
							bad++
						}
					})
				}
				if err := p.Poll(ctx); err != nil || bad > 0 {
					errs <- fmt.Errorf("goroutine %d round %d: %d bad reads, err %v", g, round, bad, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPipelineMemoryIsBounded repeats the Perl module's leak test: 50,000
// Set+Poll cycles, then 50,000 more; the live heap must not grow between
// the two halves by 256 KiB, about 5 bytes a cycle (200,000 cycles each,
// with 1 MiB, took 47 s of the suite under the race detector).
func TestPipelineMemoryIsBounded(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	p := c.Chain()
	cycles := func(n int) {
		for i := range n {
			if err := p.Set("leak-test", i).Poll(ctx); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	const n = 50000
	cycles(n)
	first := heap()
	cycles(n)
	second := heap()
	t.Logf("live heap after %d cycles: %d bytes; after %d: %d bytes", n, first, 2*n, second)
	growth := int64(second) - int64(first)
	require.Less(t, growth, int64(256<<10), "heap grew by %d bytes over %d cycles", growth, n)
}

func TestPipelineOnClosedClient(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c, err := federated.New(federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	require.NoError(t, err)
	p := c.Chain()
	require.NoError(t, c.Close())
	var cbErr error
	err = p.Get("k", func(_ string, err error) { cbErr = err }).Poll(context.Background())
	require.ErrorIs(t, err, federated.ErrClosed)
	require.ErrorIs(t, cbErr, federated.ErrClosed)
	require.True(t, errors.Is(err, federated.ErrClosed))
}

// keyOnNode returns a key that c places on node.
func keyOnNode(t *testing.T, c *federated.Client, node string) string {
	t.Helper()
	for i := range 100_000 {
		if k := fmt.Sprintf("k%d", i); c.KeyToNode(k) == node {
			return k
		}
	}
	t.Fatalf("no key of the first 100,000 on node %s", node)
	return ""
}
