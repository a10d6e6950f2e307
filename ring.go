package federated

import (
	"errors"
	"slices"

	"github.com/redfed/federated/internal/ring"
)

// Ring maps the string hashed for a key (the key, its key group or its hash
// tag) to the name of the node that owns it. Implementations are immutable
// and safe for concurrent use; the client builds a new ring when nodes are
// added or removed and swaps it in. Options.NewRing plugs one in.
type Ring interface {
	Locate(hashKey string) string
}

var (
	_ Ring = (*ring.Consistent)(nil)
	_ Ring = (*ring.Perl)(nil)
)

// newRing builds the ring of the options over the node names, sorted so
// that no ring sees the order the nodes were listed in.
func newRing(o *Options, nodes []string) (Ring, error) {
	slices.Sort(nodes)
	switch {
	case o.NewRing != nil:
		r, err := o.NewRing(nodes)
		if err == nil && r == nil {
			err = errors.New("Options.NewRing returned no ring")
		}
		return r, err
	case o.Ring == RingPerl:
		return ring.NewPerl(nodes)
	}
	return ring.NewConsistent(nodes, nil)
}
