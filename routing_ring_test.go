package federated_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
)

// strayRing places every key on a name that is not a node: a broken ring
// of the caller's own.
type strayRing struct{}

func (strayRing) Locate(string) string { return "no-such-node" }

// A ring of Options.NewRing that places a key on a name that is not a
// node fails what would be sent there with an error wrapping
// ErrUnknownNode that names the key and the name, instead of panicking:
// a command, a pipeline's commands, a transaction, a Watch, a Chain, a
// key group's commands and a metric write.
func TestRouteToNoNode(t *testing.T) {
	opts := testOptions()
	opts.NewRing = func([]string) (federated.Ring, error) { return strayRing{}, nil }
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: "127.0.0.1:1"}}, Options: opts})
	ctx := context.Background()
	const want = `federated: unknown node: Options.NewRing placed key "k" on "no-such-node", which is not a node`
	check := func(t *testing.T, what string, err error) {
		t.Helper()
		require.ErrorIs(t, err, federated.ErrUnknownNode, "%s: got %v, want ErrUnknownNode", what, err)
		assert.Contains(t, err.Error(), `on "no-such-node", which is not a node`, "%s: got %q", what, err)
	}

	t.Run("command", func(t *testing.T) {
		err := c.Get(ctx, "k").Err()
		check(t, "Get", err)
		assert.EqualError(t, err, want)
		check(t, "Do", c.Do(ctx, "set", "k", "v").Err())
		check(t, "MGet", c.MGet(ctx, "k", "k2").Err())
		check(t, "Publish", c.Publish(ctx, "k", "hi").Err())
	})
	t.Run("pipeline", func(t *testing.T) {
		var get, set redis.Cmder
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			get = p.Get(ctx, "k")
			set = p.Set(ctx, "k2", "v", 0)
			return nil
		})
		check(t, "Pipelined", err)
		check(t, "a pipeline's GET", get.Err())
		check(t, "a pipeline's SET", set.Err())
		_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Incr(ctx, "k")
			return nil
		})
		check(t, "TxPipelined", err)
	})
	t.Run("watch", func(t *testing.T) {
		ran := false
		err := c.Watch(ctx, func(*redis.Tx) error { ran = true; return nil }, "k", "k2")
		check(t, "Watch", err)
		assert.False(t, ran, "Watch ran its function on no node")
	})
	t.Run("chain", func(t *testing.T) {
		var got error
		err := c.Chain().Get("k", func(_ string, err error) { got = err }).Poll(ctx)
		check(t, "a chain's Poll", err)
		check(t, "a chain's GET", got)
	})
	t.Run("group", func(t *testing.T) {
		g := c.Group("g")
		assert.Equal(t, "no-such-node", g.Node(), "Group.Node says where the ring placed it")
		check(t, "a group's Get", g.Get(ctx, "k").Err())
		check(t, "a group's Watch", g.Watch(ctx, func(*redis.Tx) error { return nil }, "k"))
	})
	t.Run("metric", func(t *testing.T) {
		err := c.Record(ctx, "web1", "cpu", time.Now(), 1)
		check(t, "Record", err)
		assert.False(t, errors.Is(err, federated.ErrServerDown), "no server was tried: %v", err)
	})
}
