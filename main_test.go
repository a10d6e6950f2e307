package federated_test

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testOptions are options for tests: short timeouts and quick re-checks, no
// log output.
func testOptions() federated.Options {
	return federated.Options{
		CommandTimeout:    400 * time.Millisecond,
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
