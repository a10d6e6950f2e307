package ring

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"maps"
	"slices"
	"strconv"
)

// Placement constants of Set::ConsistentHash 0.92 as AnyEvent::Redis::Federated
// 0.08 uses it.
const (
	// PerlBuckets is the number of buckets a key hashes to.
	PerlBuckets = 1024
	// perlPointsPerNode is the number of ring points per node: the Perl
	// client gives every node weight 10, and Set::ConsistentHash places
	// weight × 100 points.
	perlPointsPerNode = 10 * 100
	// perlBucketStride is the distance between bucket starts on the 2^32
	// circle: 2^32 / 1024.
	perlBucketStride = 1 << 22
)

// Perl reproduces the key placement of the Perl module
// AnyEvent::Redis::Federated 0.08 on Set::ConsistentHash 0.92, so that Go
// and Perl clients configured with the same node names agree on where every
// key lives.
//
// A key's bucket is the big-endian uint32 of the first 4 bytes of MD5(key),
// modulo 1024. Each node NODE has ring points at the little-endian uint32 of
// the first 4 bytes of SHA-1("NODE-n") for n = 1 … 1000. Bucket b belongs to
// the node of the smallest point ≥ b·2^22, wrapping to the smallest point of
// all when there is none. The 1024 owners are computed at construction, so
// Locate is one MD5 and a table lookup.
//
// When two nodes produce the same point, Set::ConsistentHash keeps the one
// it wrote last, in Perl's randomised hash order, so Perl itself is not
// reproducible there. This type keeps the node whose name sorts last. For
// redis_1 … redis_64 no two points collide, so the choice never matters for
// those names.
type Perl struct {
	nodes  []string            // sorted
	owners [PerlBuckets]uint16 // owners[b] indexes nodes: the node that owns bucket b
}

// NewPerl builds the Perl-compatible ring over nodes. Node names must be
// unique and non-empty; their order does not matter, as in Perl.
func NewPerl(nodes []string) (*Perl, error) {
	sorted, err := sortedNodes(nodes)
	if err != nil {
		return nil, err
	}
	pointOwner := perlPoints(sorted)
	points := slices.Sorted(maps.Keys(pointOwner))

	p := &Perl{nodes: sorted}
	for b := range p.owners {
		// The smallest point ≥ start, or the first point when none is.
		// Bucket 0 (start 0) gets the first point either way, as in Perl.
		i, _ := slices.BinarySearch(points, uint32(b)*perlBucketStride)
		if i == len(points) {
			i = 0
		}
		owner, _ := slices.BinarySearch(sorted, pointOwner[points[i]])
		p.owners[b] = uint16(owner)
	}
	return p, nil
}

// perlPoints returns the ring points of the sorted nodes and the node each
// point belongs to. On a collision the node written last, whose name sorts
// last, keeps the point.
func perlPoints(sorted []string) map[uint32]string {
	pointOwner := make(map[uint32]string, len(sorted)*perlPointsPerNode)
	buf := make([]byte, 0, 64)
	for _, node := range sorted {
		for n := 1; n <= perlPointsPerNode; n++ {
			buf = strconv.AppendInt(append(append(buf[:0], node...), '-'), int64(n), 10)
			sum := sha1.Sum(buf)
			pointOwner[binary.LittleEndian.Uint32(sum[:4])] = node
		}
	}
	return pointOwner
}

// Bucket returns the bucket of key, in [0, PerlBuckets).
func (p *Perl) Bucket(key string) int {
	sum := md5.Sum(stringBytes(key))
	return int(binary.BigEndian.Uint32(sum[:4]) % PerlBuckets)
}

// BucketOwner returns the node that owns bucket b. It panics if b is not in
// [0, PerlBuckets).
func (p *Perl) BucketOwner(b int) string {
	return p.nodes[p.owners[b]]
}

// Locate returns the node that owns key. It does not allocate.
func (p *Perl) Locate(key string) string {
	return p.nodes[p.owners[p.Bucket(key)]]
}

// LocateIndex returns the index in Nodes of the node that owns key.
func (p *Perl) LocateIndex(key string) int {
	return int(p.owners[p.Bucket(key)])
}

// Nodes returns the ring's node names, sorted.
func (p *Perl) Nodes() []string {
	return slices.Clone(p.nodes)
}
