package ring

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metricKeys returns 100,000 keys shaped like the metric schema's
// ($day:$host.$dc:$metric): 5 days × 4 DCs × hosts web1…web250 × 20 metrics.
func metricKeys() []string {
	days := []string{"2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29"}
	dcs := []string{"sfo", "iad", "ams", "sin"}
	metrics := []string{
		"cpu.user", "cpu.system", "cpu.iowait", "cpu.steal", "mem.used",
		"mem.free", "swap.used", "disk.io.read", "disk.io.write", "disk.used",
		"net.rx", "net.tx", "tcp.conns", "load.1", "load.5",
		"load.15", "req.count", "req.errors", "req.latency.p50", "req.latency.p99",
	}
	keys := make([]string, 0, len(days)*len(dcs)*250*len(metrics))
	for _, day := range days {
		for _, dc := range dcs {
			for host := 1; host <= 250; host++ {
				for _, metric := range metrics {
					keys = append(keys, fmt.Sprintf("%s:web%d.%s:%s", day, host, dc, metric))
				}
			}
		}
	}
	return keys
}

// nodeNames returns redis_1 … redis_n.
func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("redis_%d", i+1)
	}
	return names
}

// without returns names minus drop.
func without(names []string, drop string) []string {
	var out []string
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}

// locateAll returns the owner of every key.
func locateAll(r Ring, keys []string) []string {
	owners := make([]string, len(keys))
	for i, k := range keys {
		owners[i] = r.Locate(k)
	}
	return owners
}

// ringBuilders lists both rings, for tests that hold for either.
var ringBuilders = []struct {
	name  string
	build func(nodes []string) (Ring, error)
}{
	{"Consistent", func(nodes []string) (Ring, error) { return NewConsistent(nodes, nil) }},
	{"Perl", func(nodes []string) (Ring, error) { return NewPerl(nodes) }},
}

func TestNewRejectsBadNodes(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		want  error
	}{
		{"nil", nil, ErrNoNodes},
		{"empty", []string{}, ErrNoNodes},
		{"empty name", []string{"redis_1", ""}, ErrEmptyNodeName},
		{"duplicate", []string{"redis_1", "redis_2", "redis_1"}, ErrDuplicateNode},
	}
	for _, rb := range ringBuilders {
		for _, tt := range tests {
			t.Run(rb.name+"/"+tt.name, func(t *testing.T) {
				r, err := rb.build(tt.nodes)
				require.ErrorIs(t, err, tt.want, "got %v, want %v", err, tt.want)
				assert.Nil(t, r)
			})
		}
	}
}

func TestNodesSortedCopy(t *testing.T) {
	in := []string{"redis_3", "redis_1", "redis_2"}
	want := []string{"redis_1", "redis_2", "redis_3"}
	c, err := NewConsistent(in, nil)
	require.NoError(t, err)
	p, err := NewPerl(in)
	require.NoError(t, err)
	assert.Equal(t, []string{"redis_3", "redis_1", "redis_2"}, in, "constructor reordered the caller's slice")
	for name, nodes := range map[string]func() []string{"Consistent": c.Nodes, "Perl": p.Nodes} {
		t.Run(name, func(t *testing.T) {
			got := nodes()
			assert.Equal(t, want, got)
			got[0] = "changed"
			assert.Equal(t, want, nodes(), "Nodes returned the ring's own slice")
		})
	}
}

// TestNodeOrderDoesNotMatter builds each ring from shuffled node lists and
// checks that every key lands on the same node.
func TestNodeOrderDoesNotMatter(t *testing.T) {
	keys := metricKeys()[:20000]
	rng := rand.New(rand.NewPCG(2026, 11))
	for _, rb := range ringBuilders {
		t.Run(rb.name, func(t *testing.T) {
			nodes := nodeNames(8)
			base, err := rb.build(nodes)
			require.NoError(t, err)
			want := locateAll(base, keys)
			for i := range 4 {
				rng.Shuffle(len(nodes), func(a, b int) { nodes[a], nodes[b] = nodes[b], nodes[a] })
				r, err := rb.build(nodes)
				require.NoError(t, err)
				// The whole table, not only the sampled keys.
				require.True(t, reflect.DeepEqual(base, r), "shuffle %d %v: ring table differs from sorted order's", i, nodes)
				got := locateAll(r, keys)
				for k := range keys {
					if got[k] != want[k] {
						t.Fatalf("shuffle %d %v: Locate(%q) = %s, want %s", i, nodes, keys[k], got[k], want[k])
					}
				}
			}
		})
	}
}

// TestConcurrentLocate lets the race detector watch many goroutines share a
// ring.
func TestConcurrentLocate(t *testing.T) {
	keys := metricKeys()[:2000]
	for _, rb := range ringBuilders {
		t.Run(rb.name, func(t *testing.T) {
			r, err := rb.build(nodeNames(8))
			require.NoError(t, err)
			want := locateAll(r, keys)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for g := range errs {
				wg.Go(func() {
					for i, k := range keys {
						if got := r.Locate(k); got != want[i] {
							errs[g] = fmt.Errorf("Locate(%q) = %s, want %s", k, got, want[i])
							return
						}
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				assert.NoError(t, err)
			}
		})
	}
}

func TestLocateDoesNotAllocate(t *testing.T) {
	keys := []string{"", "k", "2026-11-25:web123.sfo:cpu.user", string(make([]byte, 300))}
	for _, rb := range ringBuilders {
		t.Run(rb.name, func(t *testing.T) {
			r, err := rb.build(nodeNames(8))
			require.NoError(t, err)
			for _, k := range keys {
				allocs := testing.AllocsPerRun(100, func() { _ = r.Locate(k) })
				assert.Zero(t, allocs, "Locate(%d-byte key): got %v allocations, want 0", len(k), allocs)
			}
		})
	}
}

// FuzzLocate checks that any key, valid UTF-8 or not, has an owner from the
// ring and a Perl bucket in range.
func FuzzLocate(f *testing.F) {
	for _, seed := range []string{"", "2026-11-25:web123.sfo:cpu.user", "\x80", "\xe4\xb8\xa8r", "{group}key"} {
		f.Add(seed)
	}
	nodes := nodeNames(8)
	c, err := NewConsistent(nodes, nil)
	require.NoError(f, err)
	p, err := NewPerl(nodes)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, key string) {
		assert.Contains(t, nodes, c.Locate(key))
		assert.Contains(t, nodes, p.Locate(key))
		b := p.Bucket(key)
		require.True(t, b >= 0 && b < PerlBuckets, "Bucket(%q) = %d, want [0, %d)", key, b, PerlBuckets)
		assert.Equal(t, p.BucketOwner(b), p.Locate(key))
	})
}

func BenchmarkLocate(b *testing.B) {
	keys := metricKeys()[:4096]
	nodes := nodeNames(8)
	c, err := NewConsistent(nodes, nil)
	require.NoError(b, err)
	p, err := NewPerl(nodes)
	require.NoError(b, err)
	lib := newLibraryRing(b, nodes)
	b.Run("Consistent", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = c.Locate(keys[i%len(keys)])
		}
	})
	b.Run("Perl", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = p.Locate(keys[i%len(keys)])
		}
	})
	// The peer: the library's own lookup, behind its read lock and map.
	b.Run("library-LocateKey", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = lib.LocateKey(stringBytes(keys[i%len(keys)])).String()
		}
	})
}
