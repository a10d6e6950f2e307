// Package fedtest holds what the tests of several packages share: clients
// of real redis-server processes with short timeouts, the metrics store of
// a client, writes straight to one server, and hooks and log handlers that
// record what happened. It is for tests only; every helper that can fail
// takes a testing.TB and fails the test.
package fedtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// Options are client options for tests: short timeouts and quick
// re-checks, no log output.
func Options() federated.Options {
	return federated.Options{
		CommandTimeout:    2 * time.Second,
		BaseRetryInterval: 50 * time.Millisecond,
		MaxRetryInterval:  200 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	}
}

// SameDay waits, if need be, until the UTC day has at least d left: a
// test that takes the time more than once within d, and reads the day's
// keys of each, then finds them all in one day whenever it runs.
func SameDay(t testing.TB, d time.Duration) {
	t.Helper()
	now := time.Now().UTC()
	if left := now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now); left < d {
		t.Logf("waiting %v for the UTC day to turn", left.Round(time.Millisecond))
		time.Sleep(left + 10*time.Millisecond)
	}
}

// NodeName is the name SingleNodes gives the i-th server, from 1.
func NodeName(i int) string { return "redis_" + strconv.Itoa(i) }

// SingleNodes makes a node NodeName(i) of each server.
func SingleNodes(servers []*redistest.Server) map[string]federated.Node {
	nodes := make(map[string]federated.Node, len(servers))
	for i, s := range servers {
		nodes[NodeName(i+1)] = federated.Node{Address: s.Addr()}
	}
	return nodes
}

// NewClient builds a client and closes it when the test ends.
func NewClient(t testing.TB, cfg federated.Config) *federated.Client {
	t.Helper()
	c, err := federated.New(cfg)
	if err != nil {
		t.Fatalf("federated.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// NewStore returns the metrics store of a client.
func NewStore(t testing.TB, c *federated.Client) *metrics.Store {
	t.Helper()
	st, err := metrics.New(c)
	if err != nil {
		t.Fatalf("metrics.New: %v", err)
	}
	return st
}

// NewRecorder returns a Recorder of a client's metrics store, closed when
// the test ends.
func NewRecorder(t testing.TB, c *federated.Client, opts metrics.RecorderOptions) *metrics.Recorder {
	t.Helper()
	r, err := NewStore(t, c).NewRecorder(opts)
	if err != nil {
		t.Fatalf("NewRecorder: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// DirectClient returns a plain go-redis client of one server, closed when
// the test ends.
func DirectClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// Merge adds members to keys on one server with the write script, as a
// writer whose current server it is would.
func Merge(ctx context.Context, c *federated.Client, addr string, updates []journal.KeyMembers) (journal.MergeResult, error) {
	return journal.Merge(ctx, c, addr, journal.KeysOf(c.Options().Metrics.Journal), journal.Origin{}, updates)
}

// RangeOf reads the points of one series.
func RangeOf(ctx context.Context, st *metrics.Store, host, metricName string, from, to time.Time) ([]metrics.Point, error) {
	res, err := st.Range(ctx, from, to, metrics.Series{Host: host, Metric: metricName})
	if res == nil {
		return nil, err
	}
	return res[0].Points, err
}

// RangeBySeries reads several series, their results by series.
func RangeBySeries(ctx context.Context, st *metrics.Store, series []metrics.Series, from, to time.Time) (map[metrics.Series]metrics.RangeResult, error) {
	res, err := st.Range(ctx, from, to, series...)
	if res == nil {
		return nil, err
	}
	out := make(map[metrics.Series]metrics.RangeResult, len(res))
	for _, r := range res {
		out[r.Series] = r
	}
	return out, err
}

// ServerByAddr returns the server of servers at addr, or nil.
func ServerByAddr(servers []*redistest.Server, addr string) *redistest.Server {
	for _, s := range servers {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// OtherServer returns the first server of servers that is not at addr.
func OtherServer(servers []*redistest.Server, addr string) *redistest.Server {
	for _, s := range servers {
		if s.Addr() != addr {
			return s
		}
	}
	return nil
}

// Logs is a slog.Handler that keeps every record for inspection.
type Logs struct {
	mu   sync.Mutex
	recs []slog.Record
}

// Enabled reports true: every record is kept.
func (h *Logs) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns the handler itself.
func (h *Logs) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup returns the handler itself.
func (h *Logs) WithGroup(string) slog.Handler { return h }

// Handle keeps a record.
func (h *Logs) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// Values returns the value of attribute key in every record with message
// msg.
func (h *Logs) Values(msg, key string) []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []any
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				out = append(out, a.Value.Any())
			}
			return true
		})
	}
	return out
}

// Records returns the attribute keys of every record with message msg.
func (h *Logs) Records(msg string) [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out [][]string
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		var keys []string
		r.Attrs(func(a slog.Attr) bool { keys = append(keys, a.Key); return true })
		out = append(out, keys)
	}
	return out
}

// CommandCounter is a go-redis hook that counts the commands sent, to check
// that bad input sends nothing.
type CommandCounter struct{ n atomic.Int64 }

// Count returns the commands sent so far.
func (h *CommandCounter) Count() int64 { return h.n.Load() }

// DialHook passes dials through.
func (h *CommandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts a command.
func (h *CommandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline's commands.
func (h *CommandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// MustKey returns the metric key of a host's metric at a time, by the
// client's period.
func MustKey(t testing.TB, c *federated.Client, at time.Time, host, metricName string) string {
	t.Helper()
	k, err := c.MetricKey(at, host, metricName)
	if err != nil {
		t.Fatalf("MetricKey: %v", err)
	}
	return k
}

// MustServer returns the address of the server a key's commands go to now.
func MustServer(t testing.TB, c *federated.Client, key string) string {
	t.Helper()
	addr, err := c.NodeToServer(c.KeyToNode(key))
	if err != nil {
		t.Fatalf("NodeToServer: %v", err)
	}
	return addr
}

// ServerTime returns a server's clock.
func ServerTime(t testing.TB, rc *redis.Client) time.Time {
	t.Helper()
	now, err := rc.Time(context.Background()).Result()
	if err != nil {
		t.Fatalf("TIME: %v", err)
	}
	return now
}

// Main is a TestMain body: it starts n redis-server processes for the
// package's examples and puts their addresses in *examples, runs the tests,
// stops the servers and then checks that no goroutine is left behind. It
// returns the exit code.
func Main(m *testing.M, n int, examples *[]string) int {
	// go-redis logs failed dials to stderr; the failure tests make many.
	redis.SetLogger(discardLogger{})
	for range n {
		s, err := redistest.Start(redistest.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting the example servers:", err)
			return 1
		}
		defer s.Stop()
		*examples = append(*examples, s.Addr())
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			return 1
		}
	}
	return code
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
