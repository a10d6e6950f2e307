package redfedotel_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.24.0"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
)

var exampleServers []string

func TestMain(m *testing.M) {
	os.Exit(fedtest.Main(m, 2, &exampleServers))
}

// generationKey is the attribute the tests give every span of a server's
// go-redis client: 1 for the client New made, 2 for the one the server got
// when it first came back up, and so on. It tells a span of a recovered
// server's fresh client from one of the client it had before.
const generationKey = attribute.Key("test.client_generation")

// tracing records the spans of a federated client's servers.
type tracing struct {
	recorder *tracetest.SpanRecorder

	mu          sync.Mutex
	generations map[string]int // guarded by mu; go-redis clients made per server
	errs        []error        // guarded by mu; what InstrumentTracing returned
}

// newTracedClient builds a client of cfg whose servers' go-redis clients
// are instrumented by redisotel.InstrumentTracing as they are made.
func newTracedClient(t *testing.T, cfg federated.Config) (*federated.Client, *tracing) {
	t.Helper()
	tr := &tracing{recorder: tracetest.NewSpanRecorder(), generations: map[string]int{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tr.recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg.Options.OnNewClient = func(addr string, rc *redis.Client) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		tr.generations[addr]++
		err := redisotel.InstrumentTracing(rc,
			redisotel.WithTracerProvider(tp),
			redisotel.WithDialFilter(true),
			redisotel.WithAttributes(generationKey.Int(tr.generations[addr])))
		if err != nil {
			tr.errs = append(tr.errs, fmt.Errorf("instrument %s: %w", addr, err))
		}
	}
	c := fedtest.NewClient(t, cfg)
	t.Cleanup(func() {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		assert.NoError(t, errors.Join(tr.errs...), "redisotel.InstrumentTracing of a server's go-redis client")
	})
	return c, tr
}

// generation returns how many go-redis clients addr has had.
func (tr *tracing) generation(addr string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.generations[addr]
}

// span is what the tests check of a recorded span.
type span struct {
	name       string
	port       int // server.port
	generation int
	failed     bool // status Error
	commands   int  // db.redis.num_cmd, for a pipeline
}

func (s span) String() string {
	return fmt.Sprintf("%s port=%d generation=%d failed=%t commands=%d", s.name, s.port, s.generation, s.failed, s.commands)
}

// mark returns the number of spans ended so far, for since.
func (tr *tracing) mark() int { return len(tr.recorder.Ended()) }

// since returns the spans ended after mark returned from.
func (tr *tracing) since(from int) []span {
	var out []span
	for _, s := range tr.recorder.Ended()[from:] {
		sp := span{name: s.Name(), failed: s.Status().Code == codes.Error}
		for _, a := range s.Attributes() {
			switch a.Key {
			case semconv.ServerPortKey:
				sp.port = int(a.Value.AsInt64())
			case generationKey:
				sp.generation = int(a.Value.AsInt64())
			case "db.redis.num_cmd":
				sp.commands = int(a.Value.AsInt64())
			}
		}
		out = append(out, sp)
	}
	return out
}

// portOf returns the port of a host:port address.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	return port
}

// requireSpan fails the test unless spans hold want.
func requireSpan(t *testing.T, spans []span, want span) {
	t.Helper()
	require.Contains(t, spans, want, "got spans %v", spans)
}

// noOldClient fails the test if a span of spans comes from the first
// go-redis client of the server at port, which it has replaced since.
func noOldClient(t *testing.T, spans []span, port int) {
	t.Helper()
	for _, s := range spans {
		if s.port == port && s.generation == 1 {
			t.Errorf("span %v from the replaced client of the server on port %d", s, port)
		}
	}
}

// keyOn returns a key that the client places on node.
func keyOn(c *federated.Client, node string) string {
	for i := 0; ; i++ {
		if k := "k" + strconv.Itoa(i); c.KeyToNode(k) == node {
			return k
		}
	}
}

// TestInstrumentRefusesFederatedClient pins why the tests instrument each
// server's go-redis client in Options.OnNewClient: redisotel accepts only
// go-redis's own client types and refuses any other redis.UniversalClient.
// Should a redisotel release take a *federated.Client, this test fails and
// the package doc is to be revisited.
func TestInstrumentRefusesFederatedClient(t *testing.T) {
	servers := redistest.StartN(t, 1)
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(servers), Options: fedtest.Options()})
	var _ redis.UniversalClient = c

	for _, tc := range []struct {
		name       string
		instrument func(redis.UniversalClient) error
	}{
		{"tracing", func(c redis.UniversalClient) error {
			return redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(tp))
		}},
		{"metrics", func(c redis.UniversalClient) error { return redisotel.InstrumentMetrics(c) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.instrument(c)
			require.EqualError(t, err, "redisotel: *federated.Client not supported")
		})
	}
	require.NoError(t, c.Set(context.Background(), "k", "v", 0).Err())
	assert.Empty(t, recorder.Ended(), "a refused instrumentation adds no hook")
}

// TestTracingAcrossFailover follows one replica group through the failure
// of its current server, the failover to the other, the failed server's
// recovery, and a second failover back to it: every command is traced by
// the go-redis client of the server that ran it, the recovered server's by
// its fresh client.
func TestTracingAcrossFailover(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c, tr := newTracedClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: fedtest.Options(),
	})
	ctx := context.Background()
	first, err := c.NodeToServer("group")
	require.NoError(t, err)
	victim := fedtest.ServerByAddr(servers, first)
	survivor := fedtest.OtherServer(servers, first)
	victimPort, survivorPort := portOf(t, victim.Addr()), portOf(t, survivor.Addr())

	from := tr.mark()
	require.NoError(t, c.Set(ctx, "a", "1", 0).Err())
	require.Equal(t, "1", c.Get(ctx, "a").Val())
	spans := tr.since(from)
	requireSpan(t, spans, span{name: "set", port: victimPort, generation: 1})
	requireSpan(t, spans, span{name: "get", port: victimPort, generation: 1})

	require.NoError(t, victim.Kill())
	from = tr.mark()
	require.NoError(t, c.Set(ctx, "b", "2", 0).Err(), "the write after the kill fails over")
	require.True(t, c.IsServerDown(victim.Addr()))
	spans = tr.since(from)
	requireSpan(t, spans, span{name: "set", port: victimPort, generation: 1, failed: true})
	requireSpan(t, spans, span{name: "set", port: survivorPort, generation: 1})

	require.NoError(t, victim.Restart())
	require.Eventually(t, func() bool { return !c.IsServerDown(victim.Addr()) },
		5*time.Second, 10*time.Millisecond, "the restarted server is marked up")
	require.Equal(t, 2, tr.generation(victim.Addr()), "the recovered server has a fresh go-redis client")
	require.Equal(t, 1, tr.generation(survivor.Addr()))

	require.NoError(t, survivor.Kill())
	from = tr.mark()
	require.NoError(t, c.Set(ctx, "c", "3", 0).Err(), "the write after the second kill fails over back")
	require.Equal(t, "3", c.Get(ctx, "c").Val())
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "d", "4", 0)
		p.Get(ctx, "d")
		p.Incr(ctx, "e")
		return nil
	})
	require.NoError(t, err)
	require.Len(t, cmds, 3)
	spans = tr.since(from)
	requireSpan(t, spans, span{name: "set", port: survivorPort, generation: 1, failed: true})
	requireSpan(t, spans, span{name: "set", port: victimPort, generation: 2})
	requireSpan(t, spans, span{name: "get", port: victimPort, generation: 2})
	requireSpan(t, spans, span{name: "redis.pipeline set get incr", port: victimPort, generation: 2, commands: 3})
	noOldClient(t, spans, victimPort)
}

// TestTracingOfSingleNodes checks that a pipeline over two nodes is traced
// once per server, and that a node's only server is traced by its fresh
// client once it is back up.
func TestTracingOfSingleNodes(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c, tr := newTracedClient(t, federated.Config{Nodes: fedtest.SingleNodes(servers), Options: fedtest.Options()})
	ctx := context.Background()
	keys := []string{keyOn(c, fedtest.NodeName(1)), keyOn(c, fedtest.NodeName(2))}
	ports := []int{portOf(t, servers[0].Addr()), portOf(t, servers[1].Addr())}

	from := tr.mark()
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, k, "v", 0)
			p.Get(ctx, k)
		}
		return nil
	})
	require.NoError(t, err)
	spans := tr.since(from)
	for _, port := range ports {
		requireSpan(t, spans, span{name: "redis.pipeline set get", port: port, generation: 1, commands: 2})
	}

	require.NoError(t, servers[0].Kill())
	from = tr.mark()
	require.ErrorIs(t, c.Get(ctx, keys[0]).Err(), federated.ErrServerDown)
	requireSpan(t, tr.since(from), span{name: "get", port: ports[0], generation: 1, failed: true})

	require.NoError(t, servers[0].Restart())
	require.Eventually(t, func() bool { return !c.IsServerDown(servers[0].Addr()) },
		5*time.Second, 10*time.Millisecond, "the restarted server is marked up")
	from = tr.mark()
	require.NoError(t, c.Set(ctx, keys[0], "again", 0).Err())
	require.NoError(t, c.Set(ctx, keys[1], "again", 0).Err())
	spans = tr.since(from)
	requireSpan(t, spans, span{name: "set", port: ports[0], generation: 2})
	requireSpan(t, spans, span{name: "set", port: ports[1], generation: 1})
	noOldClient(t, spans, ports[0])
}

// Example instruments every server's go-redis client, including the
// fresh one a server gets when it comes back up, with redisotel.
func Example() {
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	defer tp.Shutdown(context.Background())

	opts := fedtest.Options()
	opts.OnNewClient = func(addr string, rc *redis.Client) {
		// redisotel.InstrumentTracing(client) refuses a *federated.Client.
		if err := redisotel.InstrumentTracing(rc, redisotel.WithTracerProvider(tp), redisotel.WithDialFilter(true)); err != nil {
			fmt.Println(err)
		}
	}
	client, err := federated.New(federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: exampleServers}},
		Options: opts,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	ctx := context.Background()
	client.Set(ctx, "greeting", "hello", 0)
	client.Get(ctx, "greeting")
	client.Del(ctx, "greeting")
	var names []string
	for _, s := range recorder.Ended() {
		// HELLO is go-redis's handshake on a new connection.
		if s.Name() != "hello" {
			names = append(names, s.Name())
		}
	}
	fmt.Println(names)
	// Output: [set get del]
}
