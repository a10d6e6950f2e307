package federated_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
)

// firstRing places every key on the first node by name: a ring of the
// caller's own.
type firstRing struct{ node string }

func (r firstRing) Locate(string) string { return r.node }

// Options.NewRing plugs a ring in, built again with the new names when
// nodes are added or removed, and sees the names sorted whatever order
// the configuration listed them in.
func TestOptionsNewRing(t *testing.T) {
	var seen [][]string
	opts := testOptions()
	opts.NewRing = func(nodes []string) (federated.Ring, error) {
		seen = append(seen, slices.Clone(nodes))
		return firstRing{nodes[0]}, nil
	}
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{
		"b": {Address: "127.0.0.1:1"}, "c": {Address: "127.0.0.1:2"}}, Options: opts})
	assert.Equal(t, "b", c.KeyToNode("anything"))
	require.NoError(t, c.AddNode("a", federated.Node{Address: "127.0.0.1:3"}))
	assert.Equal(t, "a", c.KeyToNode("anything"))
	require.NoError(t, c.RemoveNode("a"))
	assert.Equal(t, [][]string{{"b", "c"}, {"a", "b", "c"}, {"b", "c"}}, seen)

	opts.Ring = federated.RingPerl
	_, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"b": {Address: "127.0.0.1:1"}}, Options: opts})
	require.ErrorIs(t, err, federated.ErrInvalidConfig, "a named ring and NewRing")

	opts.Ring = ""
	opts.NewRing = func([]string) (federated.Ring, error) { return nil, errors.New("no such placement") }
	_, err = federated.New(federated.Config{Nodes: map[string]federated.Node{"b": {Address: "127.0.0.1:1"}}, Options: opts})
	require.ErrorContains(t, err, "no such placement")
}
