package federated

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// A SCAN of the client walks every node in turn, by name: the node's
// current server, from cursor 0 until it returns 0, then the next node.
// The cursor the client returns holds all three: the server's cursor
// shifted up by scanNodeBits+scanServerBits, the server's index in its
// node, and the node's index (through a Group, the server's cursor and
// index only). A server's cursor means nothing to another server (each
// lays its table out in its own way), so a page that lands on another
// server of the node than the last (a failover between or during pages)
// walks that server from its start: keys may come twice, and none of the
// new server's is missed (keys that the old server alone held are not
// seen, and a server that restarted between pages is walked on from its
// cursor, as a plain SCAN of it would be). The cursor is valid while the
// nodes stay the same; with nodes added or removed in the middle, a scan
// may miss or repeat keys, as a SCAN of one server may when its table
// grows, and a cursor that names a node past the last one left ends it.

// scanNodeBits is how many low bits of a cursor name the node.
const scanNodeBits = 10

// scanServerBits is how many bits above those name the server in its
// node.
const scanServerBits = 8

// scan runs a SCAN on the node its cursor names (through a Group, on the
// group's node, whose cursor names no node) and returns the page with the
// cursor that continues it, on this node or on the next.
func (c *Client) scan(ctx context.Context, r routing, cmd redis.Cmder) {
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
	var names []string
	var n *node
	i, nodeBits := 0, scanNodeBits
	if r.grouped {
		if n, err = t.route(r.group); err != nil {
			cmd.SetErr(err)
			return
		}
		nodeBits = 0
	} else {
		names = t.names()
		i = int(cursor & (1<<scanNodeBits - 1))
		if len(names) > 1<<scanNodeBits {
			cmd.SetErr(fmt.Errorf("federated: SCAN walks at most %d nodes, the federation has %d", 1<<scanNodeBits, len(names)))
			return
		}
		if i >= len(names) {
			// Nodes were removed since the cursor was made: the nodes
			// after the last are walked, the scan is over.
			setScanPage(cmd, nil, 0)
			return
		}
		n = t.nodes[names[i]]
	}
	from := int(cursor >> nodeBits & (1<<scanServerBits - 1))
	serverCursor := cursor >> (nodeBits + scanServerBits)
	if len(n.servers) > 1<<scanServerBits {
		cmd.SetErr(fmt.Errorf("federated: SCAN walks nodes of at most %d servers, node %s has %d", 1<<scanServerBits, n.name, len(n.servers)))
		return
	}
	var raw *redis.Cmd
	var at int // the index of the server that answered
	for {
		raw = redis.NewCmd(ctx, append([]any{"scan", serverCursor}, args[2:]...)...)
		pctx, cancel := c.withTimeout(ctx) // each try its own
		s := c.processOn(pctx, n, raw)
		cancel()
		if err := raw.Err(); err != nil {
			cmd.SetErr(err)
			return
		}
		at = slices.Index(n.servers, s)
		if serverCursor == 0 || at == from {
			break
		}
		serverCursor, from = 0, at // another server: from its start
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
	case next != 0 && next >= 1<<(64-nodeBits-scanServerBits):
		cmd.SetErr(fmt.Errorf("federated: SCAN cursor %d of node %s is too large to carry its node and server", next, n.name))
		return
	case next != 0:
		out = next<<(nodeBits+scanServerBits) | uint64(at)<<nodeBits | uint64(i)
	case i+1 < len(names):
		out = uint64(i + 1) // the next node, from its start
	}
	setScanPage(cmd, page, out)
}

// setScanPage sets a page of keys and the cursor that goes on after it as
// the answer of cmd.
func setScanPage(cmd redis.Cmder, page []string, cursor uint64) {
	switch v := cmd.(type) {
	case *redis.ScanCmd:
		v.SetVal(page, cursor)
	case *redis.Cmd:
		keys := make([]any, len(page))
		for j, k := range page {
			keys[j] = k
		}
		v.SetVal([]any{strconv.FormatUint(cursor, 10), keys})
	default:
		cmd.SetErr(fmt.Errorf("federated: SCAN into a %T", cmd))
	}
}
