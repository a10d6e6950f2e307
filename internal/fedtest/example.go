package fedtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/internal/redistest"
)

// ReplicatedConfigFile starts 4 servers and writes a federation file of
// them, two replica groups of two, and points $REDFED_CONFIG at it for the
// rest of the test, as a user of an example program would. It returns the
// servers.
func ReplicatedConfigFile(t *testing.T) []*redistest.Server {
	t.Helper()
	servers := redistest.StartN(t, 4)
	doc := fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n  redis_2: {addresses: [%q, %q]}\n",
		servers[0].Addr(), servers[1].Addr(), servers[2].Addr(), servers[3].Addr())
	path := filepath.Join(t.TempDir(), "fed.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDFED_CONFIG", path)
	return servers
}

// RunExample runs an example program's run function on a federation of
// ReplicatedConfigFile named by $REDFED_CONFIG alone, as a user would,
// and returns what it wrote and the servers.
func RunExample(t *testing.T, run func(ctx context.Context, args []string, out io.Writer) error) (string, []*redistest.Server) {
	t.Helper()
	servers := ReplicatedConfigFile(t)
	var out bytes.Buffer
	if err := run(context.Background(), nil, &out); err != nil {
		t.Fatalf("the example on $REDFED_CONFIG: %v", err)
	}
	return out.String(), servers
}

// MetricKeysAreSortedSets fails the test where a key of the servers that
// is shaped as a metric key ($period:$host:$metric) is not a sorted set:
// a plain SET under such a name that a syncer or a repair would trip on.
// It returns how many metric keys there are.
func MetricKeysAreSortedSets(t *testing.T, servers []*redistest.Server) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for _, s := range servers {
		rc := DirectClient(t, s.Addr())
		keys, err := rc.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatalf("server %s: KEYS: %v", s.Addr(), err)
		}
		for _, k := range keys {
			period, _, _ := strings.Cut(k, ":")
			if !metric.PeriodShaped(period) {
				continue
			}
			n++
			if typ := rc.Type(ctx, k).Val(); typ != "zset" {
				t.Errorf("server %s: metric-shaped key %s is a %s, not a sorted set", s.Addr(), k, typ)
			}
		}
	}
	return n
}
