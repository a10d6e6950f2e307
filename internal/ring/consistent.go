package ring

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Settings of the default ring, chosen by measurement. TestConsistentDistribution
// asserts the bounds over 100,000 metric keys and logs the numbers.
//
// The ring, like github.com/buraksezer/consistent whose placement it
// reproduces, caps every node at ceil(floor(partitions/nodes) × load)
// partitions and hands a partition to the next virtual node with room when
// its nearest one is full. That cap is what keeps the busiest node at or
// below 1.25 × the mean, but whenever it binds, adding or removing a node
// also moves partitions between the old nodes. So the virtual nodes must
// balance the ring well enough by themselves that the cap stays a safety
// net, which takes about 400 per node: with 20–100 the natural imbalance
// reaches the cap and keys move between old nodes.
//
// Measured over the 100,000 keys, 8 nodes redis_1…redis_8, adding redis_9
// and removing each node in turn (max/mean; moved on add; keys moved between
// old nodes on add; other nodes' keys moved on the 8 removals):
//
//	partitions  vnodes  load   max/mean  moved   between  removal
//	   271        20    1.25    1.223    11.49%      0     2270
//	   271       400    1.25    1.185    13.23%      0        0
//	  1021       100    1.25    1.236    12.28%    343     4146
//	  1021       400    1.25    1.157    11.88%      0        0
//	  4099       100    1.25    1.233    10.33%      0      649
//	  8191        50    1.25    1.239     8.89%    350     2539
//	  8191       100    1.25    1.243    10.73%      0      648
//	  8191       200    1.25    1.090    10.74%      0        0
//	  8191       400    1.10    1.085    10.84%      0      590
//	  8191       400    1.25    1.085    10.84%      0        0  ← chosen
//	  8191       400    1.50    1.085    10.84%      0        0
//
// Beyond 8 nodes: growing redis_1… one node at a time, the cap first binds
// at 38 nodes, and from there each added node also moves 1–7 partitions
// (at most 0.09%) between old nodes, while no node owns more than 1.254 ×
// the mean number of partitions. Load 1.5 moves none between old nodes up
// to 64 but lets the busiest node own 1.43 × the mean at 64. Over 200 random
// sets of 8 node names plus a 9th, and of 16 plus a 17th, 400 virtual nodes
// never moved a partition between old nodes; 200 did in 2 and 9 of the
// sets. 8191 (a prime) partitions keep each partition's share of keys
// small, so key counts follow partition counts closely; the owner table is
// 16 KiB.
//
// Building the ring hashes every virtual node, sorts them once and walks the
// partitions: BenchmarkNewConsistent on a 2 vCPU AMD EPYC takes about
// 0.8 ms for 8 nodes, 2.5 ms for 64, 13 ms for 512 and 27 ms for 1024, and
// a build of 8191 nodes about 0.4 s. The library sorts all its virtual
// nodes again for each node it adds, so its build is quadratic: 5 ms,
// 96 ms, 7.5 s and 30 s on the same machine.
const (
	partitionCount    = 8191
	replicationFactor = 400
	loadFactor        = 1.25
)

// Consistent is the default ring: consistent hashing with bounded loads,
// placing keys exactly as github.com/buraksezer/consistent does. A key
// hashes to one of a fixed number of partitions, and each partition is owned
// by a node. The partition table is computed once at construction, so Locate
// is a hash, a modulo and a slice index: no lock and no allocation.
type Consistent struct {
	hasher Hasher
	nodes  []string // sorted
	owners []uint16 // owners[p] indexes nodes: the node that owns partition p
}

// ringConfig holds the settings of a consistent ring. Every field must be
// set: newConsistent fills no defaults.
type ringConfig struct {
	partitions int     // number of partitions keys hash to
	vnodes     int     // virtual nodes per node
	load       float64 // cap on a node's partitions, as a multiple of the mean
}

// defaultConfig holds the settings of the default ring.
var defaultConfig = ringConfig{
	partitions: partitionCount,
	vnodes:     replicationFactor,
	load:       loadFactor,
}

// NewConsistent builds the default ring over nodes with hasher h (nil means
// xxhash). Node names must be unique and non-empty; their order does not
// matter. It returns ErrUnbalanced when the load caps leave a partition
// without an owner: with more nodes than its 8191 partitions, or with a
// hasher that puts the virtual nodes on a few points.
func NewConsistent(nodes []string, h Hasher) (*Consistent, error) {
	return newConsistent(nodes, h, defaultConfig)
}

// newConsistent is NewConsistent with the ring settings as a parameter, so
// tests can build small rings that can be checked by hand.
func newConsistent(nodes []string, h Hasher, cfg ringConfig) (*Consistent, error) {
	sorted, err := sortedNodes(nodes)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = xxHasher{}
	}
	if !fitsLoadBound(len(sorted), cfg) {
		return nil, fmt.Errorf("%w: %d nodes, %d partitions, load %g",
			ErrUnbalanced, len(sorted), cfg.partitions, cfg.load)
	}
	owners, err := placePartitions(sorted, h, cfg)
	if err != nil {
		return nil, err
	}
	return &Consistent{hasher: h, nodes: sorted, owners: owners}, nil
}

// fitsLoadBound reports whether every partition can get an owner. Each node
// is capped at ceil(floor(partitions/nodes) × load) partitions, and the caps
// must add up to at least the partitions. With at least two virtual nodes
// per node and a hasher without collisions, the caps are the only limit:
// a node keeps its first ten virtual nodes (another name followed by a
// number can make such a key only if it is a prefix of the node's name, and
// then the node, added later, wins), and the search for room walks all but
// one virtual node, so it reaches every node with room.
func fitsLoadBound(nodes int, cfg ringConfig) bool {
	if cfg.vnodes < 2 || cfg.partitions < 1 {
		return false
	}
	perNode := math.Ceil(float64(cfg.partitions/nodes) * cfg.load)
	return float64(nodes)*perNode >= float64(cfg.partitions)
}

// placePartitions returns the owner of every partition, as an index into
// sorted, computed exactly as consistent.New(members, cfg) of
// github.com/buraksezer/consistent v0.10.0 computes it when given the
// members in sorted order; TestConsistentMatchesLibraryBuild holds the two
// to the same table. The library sorts its circle again after each member
// it adds, which makes a build quadratic in the nodes (30 s for 1024); this
// hashes every virtual node and sorts once.
//
// Three details of the library decide the placement and are kept:
//   - Virtual node i of node n is the hash of n's name followed by i in
//     decimal (fmt's "%s%d"), so names that extend one another can make the
//     same key: "redis_1" with 12 and "redis_11" with 2 both hash
//     "redis_112". The circle keeps both points, but the library's
//     point-to-member map keeps the member added last, which is the later
//     name in sorted order: every copy of a point belongs to that node.
//   - Partition p sits at the hash of p as 8 little-endian bytes and goes to
//     the first point at or after it, wrapping around, unless that point's
//     node already holds ceil(floor(partitions/nodes) × load) partitions;
//     then it goes to the next point whose node has room.
//   - The search gives up, and the library panics, after looking at all but
//     one of the points; that is ErrUnbalanced here.
func placePartitions(sorted []string, h Hasher, cfg ringConfig) ([]uint16, error) {
	// The circle: points[j] is a virtual node's hash and nodes[j] the index
	// of its node, filled node by node in sorted order, as the library adds
	// them.
	points := make([]uint64, 0, len(sorted)*cfg.vnodes)
	nodes := make([]uint16, 0, cap(points))
	var key []byte
	for n, name := range sorted {
		key = append(key[:0], name...)
		for i := range cfg.vnodes {
			key = strconv.AppendInt(key[:len(name)], int64(i), 10)
			points = append(points, h.Sum64(key))
			nodes = append(nodes, uint16(n))
		}
	}
	sortPoints(points, nodes)
	// The sort is stable, so each run of equal points ends with the node
	// added last; the library's map gives every copy to it.
	for j := len(points) - 2; j >= 0; j-- {
		if points[j] == points[j+1] {
			nodes[j] = nodes[j+1]
		}
	}

	maxLoad := math.Ceil(float64(uint64(cfg.partitions)/uint64(len(sorted))) * cfg.load)
	loads := make([]int, len(sorted))
	owners := make([]uint16, cfg.partitions)
	var partKey [8]byte
	for p := range owners {
		binary.LittleEndian.PutUint64(partKey[:], uint64(p))
		j, _ := slices.BinarySearch(points, h.Sum64(partKey[:]))
		placed := false
		for range len(points) - 1 {
			if j == len(points) {
				j = 0
			}
			if n := nodes[j]; float64(loads[n])+1 <= maxLoad {
				loads[n]++
				owners[p] = n
				placed = true
				break
			}
			j++
		}
		if !placed {
			return nil, fmt.Errorf("%w: %d nodes: no node has room for partition %d of %d",
				ErrUnbalanced, len(sorted), p, cfg.partitions)
		}
	}
	return owners, nil
}

// sortPoints sorts points ascending and moves nodes with them. It is a
// stable LSD radix sort, a byte a pass: linear in the points, where sorting
// (point, node) pairs with slices.SortFunc made a 1024-node build three
// times as slow.
func sortPoints(points []uint64, nodes []uint16) {
	if len(points) < 2 {
		return
	}
	// One pass counts the points by each of their 8 bytes.
	var offsets [8][256]int
	for _, p := range points {
		for d := range offsets {
			offsets[d][byte(p>>(8*d))]++
		}
	}
	srcP, dstP := points, make([]uint64, len(points))
	srcN, dstN := nodes, make([]uint16, len(nodes))
	for d := range offsets {
		shift := 8 * d
		if offsets[d][byte(points[0]>>shift)] == len(points) {
			continue // every point has the same byte here
		}
		sum := 0
		for b, c := range offsets[d] {
			offsets[d][b] = sum
			sum += c
		}
		next := &offsets[d]
		for j, p := range srcP {
			b := byte(p >> shift)
			dstP[next[b]] = p
			dstN[next[b]] = srcN[j]
			next[b]++
		}
		srcP, dstP = dstP, srcP
		srcN, dstN = dstN, srcN
	}
	if &srcP[0] != &points[0] {
		copy(points, srcP)
		copy(nodes, srcN)
	}
}

// Locate returns the node that owns key. It does not allocate.
func (c *Consistent) Locate(key string) string {
	return c.nodes[c.LocateIndex(key)]
}

// LocateIndex returns the index in Nodes of the node that owns key.
func (c *Consistent) LocateIndex(key string) int {
	return int(c.owners[c.hasher.Sum64(stringBytes(key))%uint64(len(c.owners))])
}

// Nodes returns the ring's node names, sorted.
func (c *Consistent) Nodes() []string {
	return slices.Clone(c.nodes)
}
