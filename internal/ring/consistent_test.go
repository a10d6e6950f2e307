package ring

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"

	"github.com/buraksezer/consistent"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// member is a node name as a consistent.Member.
type member string

func (m member) String() string { return string(m) }

// newLibraryRing builds the library's own ring with the default ring's
// settings, to compare against.
func newLibraryRing(tb testing.TB, nodes []string) *consistent.Consistent {
	tb.Helper()
	lib, err := buildLibraryRing(nodes, nil, defaultConfig)
	require.NoError(tb, err)
	return lib
}

// buildLibraryRing builds the ring that placePartitions reproduces: the
// library's, with the nodes added in sorted order. A library panic is
// returned as an error.
func buildLibraryRing(nodes []string, h Hasher, cfg ringConfig) (lib *consistent.Consistent, err error) {
	sorted, err := sortedNodes(nodes)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = xxHasher{}
	}
	members := make([]consistent.Member, len(sorted))
	for i, n := range sorted {
		members[i] = member(n)
	}
	defer func() {
		if r := recover(); r != nil {
			lib, err = nil, fmt.Errorf("library panicked: %v", r)
		}
	}()
	return consistent.New(members, consistent.Config{
		Hasher:            h,
		PartitionCount:    cfg.partitions,
		ReplicationFactor: cfg.vnodes,
		Load:              cfg.load,
	}), nil
}

// fakeHasher makes a ring that can be worked out by hand, as groupcache's
// consistenthash test does. A string of decimal digits hashes to its value:
// node "4" has its virtual nodes "40" and "41" at 40 and 41, and key "23"
// hashes to 23, partition 23 mod 10 = 3. Anything else, here the library's
// 8-byte little-endian partition numbers, hashes to ten times its value:
// partition p sits at 10p and belongs to the next virtual node at or after
// 10p, wrapping around.
var fakeHasher = HasherFunc(func(b []byte) uint64 {
	if v, err := strconv.ParseUint(string(b), 10, 64); err == nil {
		return v
	}
	var le [8]byte
	copy(le[:], b)
	return 10 * binary.LittleEndian.Uint64(le[:])
})

func TestConsistentFakeHasher(t *testing.T) {
	small := func(partitions int, load float64) ringConfig {
		return ringConfig{partitions: partitions, vnodes: 2, load: load}
	}
	tests := []struct {
		name  string
		nodes []string
		cfg   ringConfig
		// owners lists each partition's node, worked out by hand.
		owners []string
		keys   map[string]string
	}{
		{
			// Points 10 11 (1), 40 41 (4), 70 71 (7); partitions at
			// 0 10 20 … 90; at most ceil(3 × 1.25) = 4 partitions each.
			name:   "three nodes",
			nodes:  []string{"7", "1", "4"},
			cfg:    small(10, 1.25),
			owners: []string{"1", "1", "4", "4", "4", "7", "7", "7", "1", "1"},
			keys:   map[string]string{"23": "4", "7": "7", "18": "1", "1000": "1", "45": "7"},
		},
		{
			// Node 9 (points 90 91) takes partitions 8 and 9 from node 1;
			// nothing else moves. At most ceil(2 × 1.25) = 3 each.
			name:   "fourth node added",
			nodes:  []string{"7", "1", "4", "9"},
			cfg:    small(10, 1.25),
			owners: []string{"1", "1", "4", "4", "4", "7", "7", "7", "9", "9"},
			keys:   map[string]string{"23": "4", "7": "7", "18": "9", "1000": "1", "45": "7"},
		},
		{
			// Points 20 21 (2), 40 41 (4), 70 71 (7); 9 partitions, at most
			// ceil(3 × 1.0) = 3 each. Partition 8 (at 80) wraps to node 2,
			// which is full with 0 1 2, so the bounded load hands it to the
			// next virtual node with room: node 4's 40.
			name:   "bounded load",
			nodes:  []string{"2", "4", "7"},
			cfg:    small(9, 1.0),
			owners: []string{"2", "2", "2", "4", "4", "7", "7", "7", "4"},
			keys:   map[string]string{"17": "4", "8": "4", "30": "4", "1": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := newConsistent(tt.nodes, fakeHasher, tt.cfg)
			require.NoError(t, err)
			owners := make([]string, len(r.owners))
			for p, i := range r.owners {
				owners[p] = r.nodes[i]
			}
			assert.Equal(t, tt.owners, owners, "partition owners")
			for key, want := range tt.keys {
				assert.Equal(t, want, r.Locate(key), "Locate(%q)", key)
			}
		})
	}
}

func TestConsistentUnbalancedIsAnError(t *testing.T) {
	constant := HasherFunc(func([]byte) uint64 { return 42 })
	tests := []struct {
		name   string
		nodes  []string
		hasher Hasher
		cfg    ringConfig
	}{
		// Caps of ceil(3 × 1.0) = 3 leave one of 10 partitions homeless.
		{"caps too small", []string{"1", "4", "7"}, fakeHasher,
			ringConfig{partitions: 10, vnodes: 2, load: 1}},
		{"more nodes than partitions", nodeNames(11), nil,
			ringConfig{partitions: 10, vnodes: 2, load: 1.25}},
		{"one virtual node", []string{"a"}, nil,
			ringConfig{partitions: 10, vnodes: 1, load: 1.25}},
		// All virtual nodes collide, so one node takes every partition
		// until its cap and the search for room then finds none: the
		// library panics here.
		{"constant hasher", []string{"a", "b"}, constant,
			ringConfig{partitions: 10, vnodes: 2, load: 1.25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *Consistent
			var err error
			require.NotPanics(t, func() { r, err = newConsistent(tt.nodes, tt.hasher, tt.cfg) })
			require.ErrorIs(t, err, ErrUnbalanced, "got %v, want %v", err, ErrUnbalanced)
			assert.Nil(t, r)
		})
	}
	t.Run("default settings, constant hasher", func(t *testing.T) {
		require.NotPanics(t, func() {
			_, err := NewConsistent(nodeNames(8), constant)
			require.ErrorIs(t, err, ErrUnbalanced)
		})
	})
}

// TestConsistentPlacesEveryPartition builds the default ring for every node
// count from 1 to 64 and for a few fleets up to the most nodes a config
// takes, 8191 (one partition each, at most two). fitsLoadBound checks the
// load caps for every count up to 8191. Under the race detector the largest
// builds are left out.
func TestConsistentPlacesEveryPartition(t *testing.T) {
	for n := 1; n <= partitionCount; n++ {
		require.True(t, fitsLoadBound(n, defaultConfig), "%d nodes: load caps leave partitions homeless", n)
	}
	require.False(t, fitsLoadBound(partitionCount+1, defaultConfig), "more nodes than partitions")
	sizes := []int{100, 256, 600, 1000, 1024, 4096, partitionCount}
	for n := 1; n <= 64; n++ {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		if raceEnabled() && n > 1024 {
			continue
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			r, err := NewConsistent(nodeNames(n), nil)
			require.NoError(t, err)
			counts := make([]int, n)
			for _, o := range r.owners {
				counts[o]++
			}
			maxLoad := int(math.Ceil(float64(partitionCount/n) * loadFactor))
			assert.LessOrEqual(t, slices.Max(counts), maxLoad, "partitions of the busiest node")
		})
	}
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestConsistentMatchesLibrary checks that the copied partition table gives
// the same answers as the library's own LocateKey.
func TestConsistentMatchesLibrary(t *testing.T) {
	nodes := nodeNames(8)
	c, err := NewConsistent(nodes, nil)
	require.NoError(t, err)
	lib := newLibraryRing(t, nodes)
	for _, k := range metricKeys()[:20000] {
		if got, want := c.Locate(k), lib.LocateKey([]byte(k)).String(); got != want {
			t.Fatalf("Locate(%q) = %s, want %s (library)", k, got, want)
		}
	}
}

// TestConsistentMatchesLibraryBuild checks, partition for partition, that
// the ring places every partition where the library's own build does, over
// random node sets and settings. The names are drawn so that some extend
// others ("redis_1" and "redis_12"), which makes virtual nodes of different
// nodes hash the same key; the weak hasher, 4096 values, makes different
// keys collide as well. Under the race detector it checks a sample.
func TestConsistentMatchesLibraryBuild(t *testing.T) {
	weak := HasherFunc(func(b []byte) uint64 { return xxHasher{}.Sum64(b) >> 52 })
	hashers := []struct {
		name string
		h    Hasher
	}{{"xxhash", nil}, {"weak", weak}, {"fake", fakeHasher}}
	configs := []ringConfig{
		defaultConfig,
		{partitions: 10, vnodes: 2, load: 1.25},
		{partitions: 9, vnodes: 2, load: 1.0},
		{partitions: 271, vnodes: 20, load: 1.25},
		{partitions: 1021, vnodes: 100, load: 1.1},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var sets [][]string
	for n := 1; n <= 70; n++ {
		sets = append(sets, randomNodeNames(rng, n))
	}
	sets = append(sets, randomNodeNames(rng, 200), nodeNames(40), nodeNames(200))

	for _, hs := range hashers {
		for _, cfg := range configs {
			if hs.name == "fake" && cfg.vnodes > 20 {
				// Names of 8 bytes or more put all their virtual nodes on
				// one point, and the library takes minutes to walk them.
				continue
			}
			name := fmt.Sprintf("%s/partitions=%d,vnodes=%d,load=%g", hs.name, cfg.partitions, cfg.vnodes, cfg.load)
			t.Run(name, func(t *testing.T) {
				checked, unbalanced := 0, 0
				for i, nodes := range sets {
					// The library's build is quadratic: a few seconds for all
					// the sets with 400 virtual nodes, minutes under the race
					// detector. The other hashers check a sample of them.
					sample := hs.h != nil && cfg.vnodes > 100
					if len(nodes) > 70 && (hs.h != nil || raceEnabled()) ||
						sample && i%3 != 0 || raceEnabled() && i%9 != 0 {
						continue
					}
					r, err := newConsistent(nodes, hs.h, cfg)
					lib, libErr := buildLibraryRing(nodes, hs.h, cfg)
					if libErr != nil {
						require.ErrorIs(t, err, ErrUnbalanced, "set %d, %d nodes: library: %v", i, len(nodes), libErr)
						unbalanced++
						continue
					}
					require.NoError(t, err, "set %d, %d nodes: the library built the ring", i, len(nodes))
					for p, o := range r.owners {
						if got, want := r.nodes[o], lib.GetPartitionOwner(p).String(); got != want {
							t.Fatalf("set %d, %d nodes: partition %d: owner %q, want %q (library)",
								i, len(nodes), p, got, want)
						}
					}
					checked++
				}
				t.Logf("%d rings identical to the library's, %d unbalanced in both", checked, unbalanced)
				require.NotZero(t, checked, "rings the library built")
			})
		}
	}
}

// randomNodeNames returns n distinct node names: host:port pairs, names that
// extend an earlier one by a digit, unicode names, and redis_N with small N.
func randomNodeNames(rng *rand.Rand, n int) []string {
	runes := []rune("aé日本Ω🚀_-.:0123456789ßж")
	seen := map[string]bool{}
	names := make([]string, 0, n)
	for len(names) < n {
		var name string
		switch rng.IntN(4) {
		case 0:
			name = fmt.Sprintf("10.0.%d.%d:%d", rng.IntN(4), rng.IntN(256), 6379+rng.IntN(8))
		case 1:
			if len(names) == 0 {
				continue
			}
			name = names[rng.IntN(len(names))] + strconv.Itoa(rng.IntN(10))
		case 2:
			r := make([]rune, 1+rng.IntN(8))
			for i := range r {
				r[i] = runes[rng.IntN(len(runes))]
			}
			name = string(r)
		default:
			name = fmt.Sprintf("redis_%d", 1+rng.IntN(40))
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	return names
}

// TestConsistentDistribution measures balance and movement over 100,000
// metric keys and asserts the bounds the settings were chosen for. Run with
// -v to see the numbers quoted in consistent.go.
func TestConsistentDistribution(t *testing.T) {
	keys := metricKeys()
	nodes := nodeNames(8)
	c8, err := NewConsistent(nodes, nil)
	require.NoError(t, err)
	owners8 := locateAll(c8, keys)

	t.Run("balance", func(t *testing.T) {
		counts := map[string]int{}
		for _, o := range owners8 {
			counts[o]++
		}
		require.Len(t, counts, len(nodes), "nodes that own keys")
		busiest := 0
		for _, n := range counts {
			busiest = max(busiest, n)
		}
		mean := float64(len(keys)) / float64(len(nodes))
		ratio := float64(busiest) / mean
		t.Logf("8 nodes: keys per node %v; busiest %d = %.3f × mean %.0f", counts, busiest, ratio, mean)
		assert.LessOrEqual(t, ratio, 1.25, "busiest node: got %.3f × mean, want ≤ 1.25", ratio)
	})

	t.Run("add a 9th node", func(t *testing.T) {
		c9, err := NewConsistent(append(nodeNames(8), "redis_9"), nil)
		require.NoError(t, err)
		moved, betweenOld := 0, 0
		for i, k := range keys {
			got := c9.Locate(k)
			if got == owners8[i] {
				continue
			}
			moved++
			if got != "redis_9" {
				betweenOld++
				if betweenOld <= 5 {
					t.Errorf("key %q moved from %s to %s, want to redis_9 or nowhere", k, owners8[i], got)
				}
			}
		}
		pct := 100 * float64(moved) / float64(len(keys))
		t.Logf("8 → 9 nodes: %d keys moved (%.2f%%, ideal %.2f%%), %d between old nodes", moved, pct, 100.0/9, betweenOld)
		assert.LessOrEqual(t, pct, 15.0, "moved: got %.2f%%, want ≤ 15%%", pct)
		assert.Zero(t, betweenOld, "keys moved between old nodes: got %d, want 0", betweenOld)
	})

	for _, gone := range nodes {
		t.Run("remove "+gone, func(t *testing.T) {
			c7, err := NewConsistent(without(nodes, gone), nil)
			require.NoError(t, err)
			moved, wrong := 0, 0
			for i, k := range keys {
				got := c7.Locate(k)
				if owners8[i] == gone {
					moved++
					continue
				}
				if got != owners8[i] {
					wrong++
					if wrong <= 5 {
						t.Errorf("key %q moved from %s to %s, want it to stay", k, owners8[i], got)
					}
				}
			}
			t.Logf("8 → 7 nodes without %s: %d keys moved (%.2f%%), %d others moved", gone, moved,
				100*float64(moved)/float64(len(keys)), wrong)
			assert.Zero(t, wrong, "keys of other nodes moved: got %d, want 0", wrong)
		})
	}
}

// BenchmarkNewConsistent measures building the default ring, against the
// peer it replaces: the library's own build, which is quadratic in the nodes
// (about 30 s for 1024), so it runs only for the small sizes.
func BenchmarkNewConsistent(b *testing.B) {
	for _, n := range []int{8, 64, 512, 1024} {
		nodes := nodeNames(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewConsistent(nodes, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, n := range []int{8, 64} {
		nodes := nodeNames(n)
		b.Run(fmt.Sprintf("library/nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := buildLibraryRing(nodes, nil, defaultConfig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
