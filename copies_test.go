package federated_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// copiesClient returns a client with one node, "group", of the servers in
// that order, whose metric writes are acknowledged by copies of them.
func copiesClient(t *testing.T, copies int, servers []*redistest.Server) *federated.Client {
	t.Helper()
	opts := testOptions()
	opts.Metrics.Copies = copies
	return newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: opts,
	})
}

// copiesAt is the time of the points of these tests.
var copiesAt = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// copiesSamples returns n samples of metric on host, a millisecond apart.
func copiesSamples(host, metric string, n int) []metrics.Sample {
	samples := make([]metrics.Sample, n)
	for i := range samples {
		samples[i] = metrics.Sample{Host: host, Metric: metric, Time: copiesAt.Add(time.Duration(i) * time.Millisecond), Value: float64(i)}
	}
	return samples
}

// cardOn returns how many points a server holds of a host's metric.
func cardOn(t *testing.T, c *federated.Client, s *redistest.Server, host, metric string) int64 {
	t.Helper()
	key, err := c.MetricKey(copiesAt, host, metric)
	require.NoError(t, err)
	n, err := directClient(t, s.Addr()).ZCard(context.Background(), key).Result()
	require.NoError(t, err)
	return n
}

// With copies: 2 a metric write is acknowledged only once two servers of
// its group hold it: SIGKILL the server that took it first, as soon as
// Record and Recorder.Write return and with no syncer at all, and every
// acknowledged point is on the other server. With copies: 1 (and the
// default) the same kill leaves the other server without any of them,
// which shows that the test sees a loss where there is one.
func TestCopiesSurviveTheKillOfTheFirstServer(t *testing.T) {
	for _, copies := range []int{2, 1, 0} {
		t.Run(fmt.Sprintf("copies %d", copies), func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			c := copiesClient(t, copies, servers)
			first := serverByAddr(servers, currentOf(t, c, "group"))
			survivor := otherServer(servers, first.Addr())
			r := newRecorder(t, c, metrics.RecorderOptions{})
			ctx := context.Background()

			for _, s := range copiesSamples("web1", "cpu", 20) {
				require.NoError(t, c.Record(ctx, s.Host, s.Metric, s.Time, s.Value))
			}
			var samples []metrics.Sample
			for _, metric := range []string{"load", "mem", "disk"} {
				samples = append(samples, copiesSamples("web2", metric, 300)...)
			}
			require.NoError(t, r.Write(ctx, samples...))
			require.Equal(t, first.Addr(), currentOf(t, c, "group"), "every write went first to the node's current server")
			require.NoError(t, first.Kill())

			want := map[string]int64{"cpu": 20, "load": 300, "mem": 300, "disk": 300}
			for metric, n := range want {
				host := "web2"
				if metric == "cpu" {
					host = "web1"
				}
				got := cardOn(t, c, survivor, host, metric)
				if copies == 2 {
					assert.Equal(t, n, got, "%s:%s: acknowledged points on the server left", host, metric)
				} else {
					assert.Zero(t, got, "%s:%s: points on the server that did not take the write", host, metric)
				}
			}
		})
	}
}

// With copies: 2 and one server of a pair down, no metric write is
// acknowledged: each fails with an error that matches ErrServerDown and
// names the node, the copy made and the server down, whether the dead
// server was the node's current one or the other. Once the server is back,
// writes succeed again and land on both.
func TestCopiesFailWhileAServerIsDown(t *testing.T) {
	for _, victimIsCurrent := range []bool{true, false} {
		t.Run(fmt.Sprintf("current server down %v", victimIsCurrent), func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			c := copiesClient(t, 2, servers)
			victim := serverByAddr(servers, currentOf(t, c, "group"))
			if !victimIsCurrent {
				victim = otherServer(servers, victim.Addr())
			}
			live := otherServer(servers, victim.Addr())
			r := newRecorder(t, c, metrics.RecorderOptions{})
			ctx := context.Background()
			require.NoError(t, victim.Kill())

			checkDown := func(what string, err error) {
				t.Helper()
				require.Error(t, err, "%s with a server of the pair down", what)
				assert.ErrorIs(t, err, federated.ErrServerDown, "%s: %v", what, err)
				var se *federated.ServerError
				require.True(t, errors.As(err, &se), "%s: got %T, want a *ServerError", what, err)
				assert.Equal(t, "group", se.Node)
				for _, want := range []string{"node group", "1 of 2 copies made (on " + live.Addr() + ")", victim.Addr() + ": "} {
					assert.Contains(t, err.Error(), want, "%s: the error names it", what)
				}
			}
			checkDown("Record", c.Record(ctx, "web1", "cpu", copiesAt, 1))
			samples := copiesSamples("web2", "load", 50)
			checkDown("Recorder.Write", r.Write(ctx, samples...))
			assert.EqualValues(t, 50, r.Stats().Failed, "points of the failed Write")
			assert.Zero(t, r.Stats().Written, "points acknowledged")

			require.NoError(t, victim.Restart())
			require.Eventually(t, func() bool { return c.Record(ctx, "web1", "cpu", copiesAt, 1) == nil },
				10*time.Second, 20*time.Millisecond, "Record once the server is back")
			require.NoError(t, r.Write(ctx, samples...))
			for _, s := range servers {
				assert.EqualValues(t, 1, cardOn(t, c, s, "web1", "cpu"), "Record's point on %s", s.Addr())
				assert.EqualValues(t, 50, cardOn(t, c, s, "web2", "load"), "Write's points on %s", s.Addr())
			}
		})
	}
}

// A copy skips a server that is down or stopped, or that refuses writes
// for a reason that passes, for the next server of the group: in a group of three with
// copies: 2 the write succeeds on the other two. The node's current server
// stays where it is, and a refusing server is not marked down. With no
// third server, the refusal is the write's error.
func TestCopiesGoToTheNextUpServer(t *testing.T) {
	for _, tt := range []struct {
		name  string
		upset func(t *testing.T, s *redistest.Server)
	}{
		{"down", func(t *testing.T, s *redistest.Server) { require.NoError(t, s.Kill()) }},
		{"out of memory", func(t *testing.T, s *redistest.Server) {
			require.NoError(t, directClient(t, s.Addr()).ConfigSet(context.Background(), "maxmemory", "1").Err())
		}},
		{"read-only", func(t *testing.T, s *redistest.Server) {
			require.NoError(t, directClient(t, s.Addr()).Do(context.Background(), "REPLICAOF", "127.0.0.1", "1").Err())
		}},
		{"stopped", func(t *testing.T, s *redistest.Server) {
			require.NoError(t, s.Pause())
			t.Cleanup(func() { _ = s.Resume() })
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			servers := redistest.StartN(t, 3)
			c := copiesClient(t, 2, servers)
			cur := currentOf(t, c, "group")
			var upset *redistest.Server
			for i, s := range servers {
				if s.Addr() == cur {
					upset = servers[(i+1)%len(servers)] // the next in the group's order
				}
			}
			tt.upset(t, upset)
			ctx := context.Background()
			r := newRecorder(t, c, metrics.RecorderOptions{})
			require.NoError(t, c.Record(ctx, "web1", "cpu", copiesAt, 1))
			require.NoError(t, r.Write(ctx, copiesSamples("web2", "load", 50)...))

			assert.Equal(t, cur, currentOf(t, c, "group"), "the node's current server")
			for _, s := range servers {
				if s == upset {
					continue
				}
				assert.EqualValues(t, 1, cardOn(t, c, s, "web1", "cpu"), "Record's point on %s", s.Addr())
				assert.EqualValues(t, 50, cardOn(t, c, s, "web2", "load"), "Write's points on %s", s.Addr())
			}
			if tt.name == "out of memory" || tt.name == "read-only" {
				assert.False(t, c.IsServerDown(upset.Addr()), "a server that answers is not marked down")
				assert.Zero(t, cardOn(t, c, upset, "web1", "cpu"), "points on the refusing server")
			}
		})
	}

	t.Run("refusing, with no other server", func(t *testing.T) {
		servers := redistest.StartN(t, 2)
		c := copiesClient(t, 2, servers)
		refusing := otherServer(servers, currentOf(t, c, "group"))
		rc := directClient(t, refusing.Addr())
		require.NoError(t, rc.ConfigSet(context.Background(), "maxmemory", "1").Err())
		err := c.Record(context.Background(), "web1", "cpu", copiesAt, 1)
		require.NoError(t, rc.ConfigSet(context.Background(), "maxmemory", "0").Err())
		require.Error(t, err)
		assert.ErrorIs(t, err, federated.ErrTemporary)
		assert.NotErrorIs(t, err, federated.ErrServerDown)
		for _, want := range []string{"node group", "1 of 2 copies made", refusing.Addr() + ": ", "OOM"} {
			assert.Contains(t, err.Error(), want)
		}
	})
}

// A key that fails on a further copy (it holds another type there) fails
// as it would on the first: Record returns its error, naming the server,
// and a Recorder's Write returns it for that key alone, while the other
// keys of the same call are written on both servers.
func TestCopiesFailAKeyThatFailsOnACopy(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := copiesClient(t, 2, servers)
	first := serverByAddr(servers, currentOf(t, c, "group"))
	second := otherServer(servers, first.Addr())
	ctx := context.Background()
	bad, err := c.MetricKey(copiesAt, "bad", "cpu")
	require.NoError(t, err)
	require.NoError(t, directClient(t, second.Addr()).Set(ctx, bad, "a string", 0).Err())

	err = c.Record(ctx, "bad", "cpu", copiesAt, 1)
	require.ErrorIs(t, err, federated.ErrWrongType)
	var se *federated.ServerError
	require.True(t, errors.As(err, &se), "got %T, want a *ServerError", err)
	assert.Equal(t, second.Addr(), se.Server, "the server the key failed on")

	r := newRecorder(t, c, metrics.RecorderOptions{})
	err = r.Write(ctx,
		metrics.Sample{Host: "bad", Metric: "cpu", Time: copiesAt.Add(time.Second), Value: 2},
		metrics.Sample{Host: "good", Metric: "cpu", Time: copiesAt, Value: 1})
	require.ErrorIs(t, err, federated.ErrWrongType)
	assert.Contains(t, err.Error(), bad)
	assert.NotContains(t, err.Error(), ":good:")
	assert.EqualValues(t, 1, r.Stats().Written, "points written")
	assert.EqualValues(t, 1, r.Stats().Failed, "points failed")
	for _, s := range servers {
		assert.EqualValues(t, 1, cardOn(t, c, s, "good", "cpu"), "the good key on %s", s.Addr())
	}
}

// A node added at run time with fewer servers than copies is refused: it
// could acknowledge no metric write.
func TestCopiesOfANodeAddedWithTooFewServers(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := copiesClient(t, 2, servers[:2])
	err := c.AddNode("single", federated.Node{Address: servers[2].Addr()})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.ErrorContains(t, err, "nodes.single: 1 server, but options.metrics.copies asks 2 copies")
	assert.Equal(t, []string{"group"}, c.Nodes(), "nothing was added")
}

// scriptHook fails every script call with err, unless err is nil.
type scriptHook struct{ err error }

func (h scriptHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); h.err == nil || name != "evalsha" && name != "eval" {
			return next(ctx, cmd)
		}
		cmd.SetErr(h.err)
		return h.err
	}
}

func (h scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A hook's refusal of the second copy fails the write, as it fails a
// command anywhere else, and the write is not sent to the group's third
// server in its place: it was, and the Write returned nil, the hook's
// error reported nowhere.
func TestCopiesStopAtAHooksRefusal(t *testing.T) {
	for name, refusal := range map[string]error{
		"an error of its own":   errors.New("the application's hook says no"),
		"one like the server's": fmt.Errorf("the hook's proxy: %w", io.EOF),
	} {
		t.Run(name, func(t *testing.T) {
			servers := redistest.StartN(t, 3)
			c := copiesClient(t, 2, servers)
			first, err := c.NodeToServer("group")
			require.NoError(t, err)
			at := slices.Index(redistest.Addrs(servers), first)
			second, third := servers[(at+1)%3], servers[(at+2)%3]
			c.AddServerHook(func(addr string) redis.Hook {
				if addr != second.Addr() {
					return scriptHook{}
				}
				return scriptHook{err: refusal}
			})
			r := newRecorder(t, c, metrics.RecorderOptions{})
			err = r.Write(context.Background(), copiesSamples("web1", "cpu", 1)...)
			require.ErrorIs(t, err, refusal)
			assert.Contains(t, err.Error(), "not acknowledged: 1 of 2 copies made")
			assert.Contains(t, err.Error(), second.Addr())
			assert.Zero(t, cardOn(t, c, third, "web1", "cpu"), "not sent to the third server")
			assert.False(t, c.IsServerDown(second.Addr()))
		})
	}
}
