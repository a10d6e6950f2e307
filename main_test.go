package federated_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests starts the servers the examples use, runs the tests, stops the
// servers and then checks that no goroutine is left behind.
func runTests(m *testing.M) int {
	// go-redis logs failed dials to stderr; the failure tests make many.
	redis.SetLogger(discardLogger{})
	for range 3 {
		s, err := redistest.Start(redistest.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting the example servers:", err)
			return 1
		}
		defer s.Stop()
		exampleServers = append(exampleServers, s.Addr())
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

// testOptions are options for tests: short timeouts and quick re-checks, no
// log output.
func testOptions() federated.Options {
	return federated.Options{
		CommandTimeout:    2 * time.Second,
		BaseRetryInterval: 50 * time.Millisecond,
		MaxRetryInterval:  200 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	}
}

// quiet returns opts with logging off.
func quiet(opts federated.Options) federated.Options {
	opts.Logger = slog.New(slog.DiscardHandler)
	return opts
}

// singleNodes makes a node redis_<i> of each server.
func singleNodes(servers []*redistest.Server) map[string]federated.Node {
	nodes := make(map[string]federated.Node, len(servers))
	for i, s := range servers {
		nodes[nodeName(i+1)] = federated.Node{Address: s.Addr()}
	}
	return nodes
}

func nodeName(i int) string { return "redis_" + strconv.Itoa(i) }

// newClient builds a client and closes it when the test ends.
func newClient(t testing.TB, cfg federated.Config) *federated.Client {
	t.Helper()
	c, err := federated.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
