package ring

import (
	"encoding/binary"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/buraksezer/consistent"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newLibraryRing builds the library's own ring with the default ring's
// settings, to compare against.
func newLibraryRing(tb testing.TB, nodes []string) *consistent.Consistent {
	tb.Helper()
	sorted, err := sortedNodes(nodes)
	require.NoError(tb, err)
	members := make([]consistent.Member, len(sorted))
	for i, n := range sorted {
		members[i] = member(n)
	}
	return consistent.New(members, consistent.Config{
		Hasher:            xxHasher{},
		PartitionCount:    partitionCount,
		ReplicationFactor: replicationFactor,
		Load:              loadFactor,
	})
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
	small := func(partitions int, load float64) consistent.Config {
		return consistent.Config{PartitionCount: partitions, ReplicationFactor: 2, Load: load}
	}
	tests := []struct {
		name  string
		nodes []string
		cfg   consistent.Config
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
		cfg    consistent.Config
	}{
		// Caps of ceil(3 × 1.0) = 3 leave one of 10 partitions homeless.
		{"caps too small", []string{"1", "4", "7"}, fakeHasher,
			consistent.Config{PartitionCount: 10, ReplicationFactor: 2, Load: 1}},
		{"more nodes than partitions", nodeNames(11), nil,
			consistent.Config{PartitionCount: 10, ReplicationFactor: 2, Load: 1.25}},
		{"one virtual node", []string{"a"}, nil,
			consistent.Config{PartitionCount: 10, ReplicationFactor: 1, Load: 1.25}},
		// All virtual nodes collide, so one node takes every partition
		// until its cap: the library panics and we recover.
		{"constant hasher", []string{"a", "b"}, constant,
			consistent.Config{PartitionCount: 10, ReplicationFactor: 2, Load: 1.25}},
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

// TestConsistentNeverPanics builds the default ring for every node count
// from 1 to 64. The load caps leave room for every partition far beyond
// that, which fitsLoadBound checks up to 1024 nodes. Under the race detector,
// where a 64-node build takes over a second, it builds a sample of the sizes;
// the plain run builds them all.
func TestConsistentNeverPanics(t *testing.T) {
	cfg := consistent.Config{PartitionCount: partitionCount, ReplicationFactor: replicationFactor, Load: loadFactor}
	for n := 1; n <= 1024; n++ {
		require.True(t, fitsLoadBound(n, cfg), "%d nodes: load caps leave partitions homeless", n)
	}
	for n := 1; n <= 64; n++ {
		if raceEnabled() && n > 9 && n != 16 && n != 17 && n != 32 && n != 33 {
			continue
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			var err error
			require.NotPanics(t, func() { _, err = NewConsistent(nodeNames(n), nil) })
			require.NoError(t, err)
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
