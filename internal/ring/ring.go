package ring

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Ring maps a key to the name of the node that owns it. Implementations are
// immutable and safe for concurrent use.
type Ring interface {
	Locate(key string) string
}

// Indexed is a Ring that can also answer with the index of the node in its
// sorted node list, sparing the caller a lookup by name.
type Indexed interface {
	Ring
	LocateIndex(key string) int
	Nodes() []string
}

// maxNodes is the most nodes a ring takes: owner tables hold 16-bit
// indexes.
const maxNodes = 1 << 16

// MaxNodes is the most nodes NewPerl takes, and MaxConsistentNodes the
// most NewConsistent takes: one a partition, none left without one.
const (
	MaxNodes           = maxNodes
	MaxConsistentNodes = partitionCount
)

// Hasher hashes bytes to 64 bits. Sum64 must not modify or retain its
// argument: Locate passes the bytes of the key string without copying them.
// A nil Hasher means xxhash (github.com/cespare/xxhash/v2).
type Hasher interface {
	Sum64([]byte) uint64
}

// HasherFunc adapts an ordinary function to the Hasher interface.
type HasherFunc func([]byte) uint64

// Sum64 returns f(b).
func (f HasherFunc) Sum64(b []byte) uint64 { return f(b) }

// xxHasher is the default Hasher.
type xxHasher struct{}

func (xxHasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

var (
	_ Indexed = (*Consistent)(nil)
	_ Indexed = (*Perl)(nil)
	_ Hasher  = xxHasher{}
	_ Hasher  = HasherFunc(nil)
)

var (
	// ErrNoNodes is returned when a ring is built from an empty node list.
	ErrNoNodes = errors.New("federated: ring has no nodes")
	// ErrEmptyNodeName is returned when a node name is the empty string.
	ErrEmptyNodeName = errors.New("federated: empty node name")
	// ErrDuplicateNode is returned when a node name appears more than once.
	ErrDuplicateNode = errors.New("federated: duplicate node name")
	// ErrTooManyNodes is returned for a ring of more than 65,536 nodes.
	ErrTooManyNodes = errors.New("federated: too many nodes for a ring")
	// ErrUnbalanced is returned when the consistent ring cannot place its
	// partitions within the load bound, which happens only for node counts
	// far beyond what a fleet uses (see NewConsistent).
	ErrUnbalanced = errors.New("federated: cannot distribute ring partitions")
)

// sortedNodes validates nodes and returns a sorted copy, so that the order
// the caller listed them in cannot change a mapping.
func sortedNodes(nodes []string) ([]string, error) {
	if len(nodes) == 0 {
		return nil, ErrNoNodes
	}
	if len(nodes) > maxNodes {
		return nil, fmt.Errorf("%w: %d", ErrTooManyNodes, len(nodes))
	}
	for i, n := range nodes {
		if n == "" {
			return nil, fmt.Errorf("%w at index %d", ErrEmptyNodeName, i)
		}
	}
	sorted := slices.Clone(nodes)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateNode, sorted[i])
		}
	}
	return sorted, nil
}

// stringBytes returns the bytes of s without copying. The caller must not
// modify them.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
