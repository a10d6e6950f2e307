package federated

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// A SCAN of the client walks every node in turn, by name: the node's
// current server, from cursor 0 until it returns 0, then the next node.
// The cursor the client returns holds both: the server's cursor shifted up
// by scanNodeBits, and the node's index. It is valid while the nodes stay
// the same; with nodes added or removed in the middle, a scan may miss or
// repeat keys, as a SCAN of one server may when its table grows.

// scanNodeBits is how many low bits of a cursor name the node.
const scanNodeBits = 10

// scan runs a SCAN on the node its cursor names and returns the page with
// the cursor that continues it, on this node or on the next.
func (c *Client) scan(ctx context.Context, cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 2 {
		cmd.SetErr(fmt.Errorf("federated: SCAN needs a cursor"))
		return
	}
	cursor, err := strconv.ParseUint(argString(args[1]), 10, 64)
	if err != nil {
		cmd.SetErr(fmt.Errorf("federated: SCAN cursor %q: %w", argString(args[1]), err))
		return
	}
	t := c.topo.Load()
	names := t.names()
	i := int(cursor & (1<<scanNodeBits - 1))
	serverCursor := cursor >> scanNodeBits
	if len(names) > 1<<scanNodeBits {
		cmd.SetErr(fmt.Errorf("federated: SCAN walks at most %d nodes, the federation has %d", 1<<scanNodeBits, len(names)))
		return
	}
	if i >= len(names) {
		cmd.SetErr(fmt.Errorf("federated: SCAN cursor %d names node %d of %d", cursor, i, len(names)))
		return
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	one := append([]any{"scan", serverCursor}, args[2:]...)
	raw := redis.NewCmd(ctx, one...)
	c.processOn(ctx, t.nodes[names[i]], raw)
	if err := raw.Err(); err != nil {
		cmd.SetErr(err)
		return
	}
	reply, _ := raw.Val().([]any)
	if len(reply) != 2 {
		cmd.SetErr(fmt.Errorf("federated: unexpected SCAN reply %v", raw.Val()))
		return
	}
	next, err := strconv.ParseUint(argString(reply[0]), 10, 64)
	if err != nil {
		cmd.SetErr(fmt.Errorf("federated: unexpected SCAN cursor %v", reply[0]))
		return
	}
	items, _ := reply[1].([]any)
	page := make([]string, 0, len(items))
	for _, it := range items {
		page = append(page, argString(it))
	}
	var out uint64
	switch {
	case next != 0 && next >= 1<<(64-scanNodeBits):
		cmd.SetErr(fmt.Errorf("federated: SCAN cursor %d of node %s is too large to carry the node", next, names[i]))
		return
	case next != 0:
		out = next<<scanNodeBits | uint64(i)
	case i+1 < len(names):
		out = uint64(i + 1) // the next node, from its start
	}
	switch v := cmd.(type) {
	case *redis.ScanCmd:
		v.SetVal(page, out)
	case *redis.Cmd:
		keys := make([]any, len(page))
		for j, k := range page {
			keys[j] = k
		}
		v.SetVal([]any{strconv.FormatUint(out, 10), keys})
	default:
		cmd.SetErr(fmt.Errorf("federated: SCAN into a %T", cmd))
	}
}
