package federated

import (
	"github.com/redfed/federated/internal/ring"
)

// Ring maps the string hashed for a key (the key, its key group or its hash
// tag) to the name of the node that owns it. Implementations are immutable
// and safe for concurrent use; the client builds a new ring when nodes are
// added or removed and swaps it in.
type Ring interface {
	Locate(hashKey string) string
}

var (
	_ Ring = (*ring.Consistent)(nil)
	_ Ring = (*ring.Perl)(nil)
)

// newRing builds the named ring over the node names.
func newRing(name string, nodes []string) (Ring, error) {
	if name == RingPerl {
		return ring.NewPerl(nodes)
	}
	return ring.NewConsistent(nodes, nil)
}
