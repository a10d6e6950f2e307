package federated_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// refusal puts a server in a state where it refuses writes with a reply
// that passes, and returns a function that ends it.
type refusal struct {
	name  string
	reply string // the prefix of Redis's error
	args  []string
	start func(t *testing.T, rc *redis.Client, s *redistest.Server) (end func())
}

// deadPort returns a loopback address nothing listens on.
func deadPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// replicaOfNothing makes a server the replica of a master that is not
// there: it refuses writes (READONLY), or every command with
// replica-serve-stale-data off (MASTERDOWN).
func replicaOfNothing(staleData bool) func(t *testing.T, rc *redis.Client, s *redistest.Server) func() {
	return func(t *testing.T, rc *redis.Client, s *redistest.Server) func() {
		ctx := context.Background()
		host, port, _ := net.SplitHostPort(deadPort(t))
		if !staleData {
			require.NoError(t, rc.ConfigSet(ctx, "replica-serve-stale-data", "no").Err())
		}
		require.NoError(t, rc.SlaveOf(ctx, host, port).Err())
		return func() {
			require.NoError(t, rc.SlaveOf(ctx, "NO", "ONE").Err())
			require.NoError(t, rc.ConfigSet(ctx, "replica-serve-stale-data", "yes").Err())
		}
	}
}

var refusals = []refusal{
	{name: "out of memory", reply: "OOM", start: func(t *testing.T, rc *redis.Client, _ *redistest.Server) func() {
		ctx := context.Background()
		require.NoError(t, rc.ConfigSet(ctx, "maxmemory", "1").Err())
		return func() { require.NoError(t, rc.ConfigSet(ctx, "maxmemory", "0").Err()) }
	}},
	{name: "read-only replica", reply: "READONLY", start: replicaOfNothing(true)},
	{name: "replica without its master", reply: "MASTERDOWN", start: replicaOfNothing(false)},
	{name: "busy with a script", reply: "BUSY", start: func(t *testing.T, rc *redis.Client, s *redistest.Server) func() {
		ctx := context.Background()
		require.NoError(t, rc.ConfigSet(ctx, "busy-reply-threshold", "20").Err())
		busy := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true, ReadTimeout: -1})
		done := make(chan struct{})
		go func() {
			defer close(done)
			// A script that runs until it is killed.
			_ = busy.Eval(context.Background(), "while true do end", nil).Err()
		}()
		require.Eventually(t, func() bool {
			err := rc.Ping(ctx).Err()
			return err != nil && err.Error()[:4] == "BUSY"
		}, 5*time.Second, 5*time.Millisecond)
		return func() {
			require.NoError(t, rc.ScriptKill(ctx).Err())
			<-done
			_ = busy.Close()
		}
	}},
	{name: "failed snapshot", reply: "MISCONF",
		// A server that saves snapshots refuses writes (and PING) once one
		// fails, as on a full disk, until a save succeeds again. Here the
		// directory it saves into is gone.
		args: []string{"--save", "3600 1", "--enable-protected-configs", "yes"},
		start: func(t *testing.T, rc *redis.Client, s *redistest.Server) func() {
			ctx := context.Background()
			gone := filepath.Join(t.TempDir(), "gone")
			require.NoError(t, os.Mkdir(gone, 0o700))
			require.NoError(t, rc.ConfigSet(ctx, "dir", gone).Err())
			require.NoError(t, os.Remove(gone))
			require.NoError(t, rc.BgSave(ctx).Err())
			require.Eventually(t, func() bool {
				err := rc.Ping(ctx).Err()
				return err != nil && strings.HasPrefix(err.Error(), "MISCONF")
			}, 10*time.Second, 5*time.Millisecond)
			return func() {
				require.NoError(t, rc.ConfigSet(ctx, "dir", s.Dir()).Err())
				require.NoError(t, rc.BgSave(ctx).Err())
				require.Eventually(t, func() bool { return rc.Ping(ctx).Err() == nil }, 10*time.Second, 5*time.Millisecond)
			}
		}},
	{name: "loading its data", reply: "LOADING",
		// Each key of the snapshot takes 100µs to load: 20,000 keys keep
		// the server loading for two seconds after it restarts, answering
		// LOADING meanwhile.
		args: []string{"--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"},
		start: func(t *testing.T, rc *redis.Client, s *redistest.Server) func() {
			ctx := context.Background()
			pipe := rc.Pipeline()
			for i := range 20000 {
				pipe.Set(ctx, fmt.Sprintf("filler:%d", i), i, 0)
			}
			_, err := pipe.Exec(ctx)
			require.NoError(t, err)
			require.NoError(t, rc.Save(ctx).Err())
			restarted := make(chan error, 1)
			go func() { restarted <- s.Restart() }() // returns once loaded
			require.Eventually(t, func() bool {
				err := rc.Ping(ctx).Err()
				return err != nil && len(err.Error()) > 7 && err.Error()[:7] == "LOADING"
			}, 10*time.Second, 2*time.Millisecond)
			return func() { require.NoError(t, <-restarted) }
		}},
}

// A server that refuses writes for a reason that passes (out of memory, a
// read-only or cut-off replica, a long script, loading its snapshot) is
// left for the next server of its group: every metric write succeeds, the
// node's current server moves, and the refusing server is not marked down,
// since it answers.
func TestRefusedWritesFailOverInTheGroup(t *testing.T) {
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			servers := redistest.StartN(t, 2, redistest.Options{Args: r.args})
			addrs := redistest.Addrs(servers)
			c := newClient(t, federated.Config{
				Nodes:   map[string]federated.Node{"group": {Addresses: addrs}},
				Options: testOptions(),
			})
			refusing := serverByAddr(servers, currentOf(t, c, "group"))
			healthy := otherServer(servers, refusing.Addr())
			rc := redis.NewClient(&redis.Options{Addr: refusing.Addr(), DisableIdentity: true})
			t.Cleanup(func() { _ = rc.Close() })
			end := r.start(t, rc, refusing)
			ctx := context.Background()

			now := time.Now()
			require.NoError(t, c.Record(ctx, "web1", "cpu", now, 1), "a point written while %s refuses", refusing.Addr())
			rec, err := newStore(t, c).NewRecorder(metrics.RecorderOptions{})
			require.NoError(t, err)
			for i := range 100 {
				require.NoError(t, rec.Add(ctx, "web1", "load", now.Add(time.Duration(i)*time.Millisecond), float64(i)))
			}
			require.NoError(t, rec.Close())
			end()

			assert.Equal(t, healthy.Addr(), currentOf(t, c, "group"), "the node's current server moved")
			assert.False(t, c.IsServerDown(refusing.Addr()), "a server that answers is not marked down")
			hc := redis.NewClient(&redis.Options{Addr: healthy.Addr(), DisableIdentity: true})
			t.Cleanup(func() { _ = hc.Close() })
			for metric, want := range map[string]int64{"cpu": 1, "load": 100} {
				key, err := c.MetricKey(now, "web1", metric)
				require.NoError(t, err)
				assert.Equal(t, want, hc.ZCard(ctx, key).Val(), "%s on the healthy server", key)
			}
		})
	}
}

// currentOf returns the address of a node's current server.
func currentOf(t *testing.T, c *federated.Client, node string) string {
	t.Helper()
	addr, err := c.NodeToServer(node)
	require.NoError(t, err)
	return addr
}

// With nowhere else to go (a node of one server), a refusal is the write's
// error: it matches ErrTemporary, and names the server. A Recorder's Close
// returns it for the points it could not write.
func TestRefusedWriteNamesItsServer(t *testing.T) {
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			s := redistest.StartT(t, redistest.Options{Args: r.args})
			c := newClient(t, federated.Config{
				Nodes:   map[string]federated.Node{"one": {Address: s.Addr()}},
				Options: testOptions(),
			})
			rc := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
			t.Cleanup(func() { _ = rc.Close() })
			end := r.start(t, rc, s)
			var once sync.Once
			t.Cleanup(func() { once.Do(end) })

			ctx := context.Background()
			err := c.Record(ctx, "web1", "cpu", time.Now(), 1)
			// Any command's refusal names its server too, sent alone, in a
			// pipeline, a chain, a transaction or a Watch.
			var pipeSet *redis.StatusCmd
			_, pipeErr := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				pipeSet = p.Set(ctx, "k", "v", 0)
				return nil
			})
			_, txErr := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "k", "v", 0)
				return nil
			})
			var chained error
			chainErr := c.Chain().Cmd(func(r redis.Cmdable) { r.Set(ctx, "k", "v", 0) }, func(cmd redis.Cmder) { chained = cmd.Err() }).Poll(ctx)
			commands := map[string]error{
				"Set":         c.Set(ctx, "k", "v", 0).Err(),
				"Pipelined":   pipeErr,
				"its command": pipeSet.Err(),
				"TxPipelined": txErr,
				"Poll":        chainErr,
				"callback":    chained,
				"Watch": c.Watch(ctx, func(tx *redis.Tx) error {
					return tx.Set(ctx, "k", "v", 0).Err()
				}, "k"),
				"Watch's TxPipelined": c.Watch(ctx, func(tx *redis.Tx) error {
					_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, "k", "v", 0)
						return nil
					})
					return err
				}, "k"),
				// The counter of go-redis's own example: a missing key read
				// first is not the transaction's error.
				"Watch's read and TxPipelined": c.Watch(ctx, func(tx *redis.Tx) error {
					n, err := tx.Get(ctx, "counter").Int()
					if err != nil && !errors.Is(err, redis.Nil) {
						return err
					}
					_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, "counter", n+1, 0)
						return nil
					})
					return err
				}, "counter"),
				"Watch's wrapped error": c.Watch(ctx, func(tx *redis.Tx) error {
					_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, "k", "v", 0)
						return nil
					})
					if err != nil {
						return fmt.Errorf("saving k: %w", err)
					}
					return nil
				}, "k"),
			}
			// A Recorder's buffered points meet the refusal when Close
			// flushes them: Close ends, returns it and counts them failed.
			rec, rerr := newStore(t, c).NewRecorder(metrics.RecorderOptions{})
			require.NoError(t, rerr)
			for i := range 100 {
				require.NoError(t, rec.Add(ctx, "web1", "load", time.Now(), float64(i)))
			}
			closeErr := rec.Close()
			once.Do(end)
			assert.ErrorIs(t, closeErr, federated.ErrTemporary)
			assert.Contains(t, fmt.Sprint(closeErr), r.reply)
			assert.Equal(t, int64(100), rec.Stats().Failed, "the points Close could not write")
			assert.Zero(t, rec.Stats().Written)
			require.Error(t, err)
			assert.ErrorIs(t, err, federated.ErrTemporary)
			var se *federated.ServerError
			require.True(t, errors.As(err, &se), "a *ServerError: %v", err)
			assert.Equal(t, s.Addr(), se.Server)
			assert.Contains(t, err.Error(), r.reply)
			assert.ErrorContains(t, commands["Watch's wrapped error"], "saving k: ", "the function's own words are kept")
			for name, err := range commands {
				assert.ErrorIs(t, err, federated.ErrTemporary, name)
				var se *federated.ServerError
				if assert.True(t, errors.As(err, &se), "%s: a *ServerError: %v", name, err) {
					assert.Equal(t, s.Addr(), se.Server, name)
				}
				assert.Equal(t, 1, strings.Count(fmt.Sprint(err), s.Addr()), "%s: the server named once: %v", name, err)
			}
			assert.False(t, c.IsServerDown(s.Addr()))
		})
	}
}

// A metric write that fails on every server of its group, each refusing
// or stopped, names each server and why: mending the one named would
// leave the node failing. It matches what each failure matches.
func TestWriteFailedOnEveryServerNamesEach(t *testing.T) {
	servers := redistest.StartN(t, 2)
	opts := testOptions()
	opts.CommandTimeout = 300 * time.Millisecond
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}},
		Options: opts,
	})
	ctx := context.Background()
	for _, s := range servers {
		require.NoError(t, directClient(t, s.Addr()).ConfigSet(ctx, "maxmemory", "1").Err())
	}
	err := c.Record(ctx, "web1", "cpu", time.Now(), 1)
	require.ErrorIs(t, err, federated.ErrTemporary)
	assert.ErrorContains(t, err, "failed on each of 2 servers")
	for _, s := range servers {
		assert.Equal(t, 1, strings.Count(err.Error(), s.Addr()), "%s named once: %v", s.Addr(), err)
	}
	assert.Equal(t, 2, strings.Count(err.Error(), "OOM"), err.Error())

	// Stopped: each is marked down by its timeout, and a Recorder's
	// flush names both.
	for _, s := range servers {
		require.NoError(t, directClient(t, s.Addr()).ConfigSet(ctx, "maxmemory", "0").Err())
		require.NoError(t, s.Pause())
		t.Cleanup(func() { _ = s.Resume() })
	}
	rec := newRecorder(t, c, metrics.RecorderOptions{FlushInterval: time.Hour})
	werr := rec.Write(ctx, metrics.Sample{Host: "web1", Metric: "cpu", Time: time.Now(), Value: 1})
	require.ErrorIs(t, werr, federated.ErrServerDown)
	for _, s := range servers {
		assert.Contains(t, werr.Error(), s.Addr(), "each server named")
	}
}

// A metric write refused by the one server of its group that is up names
// the others, down, too, and matches ErrServerDown as well as
// ErrTemporary: it named the refusing server alone, and an operator who
// mended it was left with a node that still failed.
func TestWriteRefusedBesideADownServerNamesBoth(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
	ctx := context.Background()
	cur := currentOf(t, c, "g")
	down := servers[0]
	if down.Addr() == cur {
		down = servers[1]
	}
	require.NoError(t, down.Kill())
	require.NoError(t, c.MarkServerDown(down.Addr()))
	require.NoError(t, directClient(t, cur).ConfigSet(ctx, "maxmemory", "1").Err())

	err := c.Record(ctx, "web1", "cpu", time.Now(), 1)
	require.ErrorIs(t, err, federated.ErrTemporary)
	require.ErrorIs(t, err, federated.ErrServerDown)
	assert.ErrorContains(t, err, "failed on each of 2 servers")
	assert.ErrorContains(t, err, down.Addr())
	assert.ErrorContains(t, err, cur)

	rec := newRecorder(t, c, metrics.RecorderOptions{FlushInterval: time.Hour})
	werr := rec.Write(ctx, metrics.Sample{Host: "web1", Metric: "cpu", Time: time.Now(), Value: 1})
	require.ErrorIs(t, werr, federated.ErrTemporary)
	require.ErrorIs(t, werr, federated.ErrServerDown)
	assert.Contains(t, werr.Error(), down.Addr())
}
