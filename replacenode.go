package federated

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
)

// ReplaceNode gives a node of the federation other servers at run time, in
// one step: its name, which is what the ring hashes, stays, so every key
// stays on the node and no command goes elsewhere meanwhile. A server in
// both lists stays as it is: its connections, its health, its
// subscriptions, the commands under way on it (a BLPOP that waits) and
// its ServerClient; the node keeps its current server if that stays, and
// starts on a server of the new list otherwise, as a new node does.
// Commands under way on the servers that leave finish there, as with
// RemoveNode. It refuses servers that Config.Validate would, and no error
// shows the password.
func (c *Client) ReplaceNode(name string, n Node) error {
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	if c.closed.Load() { // under topoMu, so Close closes what it adds
		return ErrClosed
	}
	old := c.topo.Load()
	prev, err := old.node(name)
	if err != nil {
		return err
	}
	if err := c.checkNode(old, name, n); err != nil {
		return err
	}
	nd := c.nodeKeeping(name, n, prev)
	next := old.successor()
	next.nodes[name] = nd
	var gone []*server
	for _, s := range prev.servers {
		if !slices.Contains(nd.servers, s) {
			delete(next.servers, s.addr)
			gone = append(gone, s)
		}
	}
	for _, s := range nd.servers {
		next.servers[s.addr] = s
	}
	next.setRing(old.ring) // the same names: only the index of nodes changes
	c.topo.Store(next)
	c.followKeys(old, next)
	c.retireLater(gone)
	c.opts.Logger.Info("federated: node replaced", "node", name, "servers", n.Servers())
	return nil
}

// SetNodes gives the federation the nodes of nodes at run time, in one
// step: the nodes not in it are removed, its new ones added, and the
// others given their servers as ReplaceNode does. Changes that no order
// of AddNode, RemoveNode and ReplaceNode can make, since each checks its
// node against the others of the moment, it makes: the only node
// renamed, every node merged into one group, two nodes that swap
// servers. A node whose servers do not change stays as it is, and a
// server that stays in a node of the same name stays as it is;
// one that moves to a node of another name starts anew there, and the
// commands under way on a server that leaves its node finish there, as
// with RemoveNode. The nodes it has already change nothing. It refuses
// nodes that Config.Validate would, changing nothing, and no error shows
// the password.
func (c *Client) SetNodes(nodes map[string]Node) error {
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	if c.closed.Load() { // under topoMu, so Close closes what it adds
		return ErrClosed
	}
	v := validator{}.withSecret(c.opts.Password)
	if err := v.nodes(Config{Nodes: nodes, Options: c.opts}); err != nil {
		return v.finish(err, nil)
	}
	old := c.topo.Load()
	next := &topology{nodes: make(map[string]*node, len(nodes)), servers: make(map[string]*server), version: old.version + 1}
	same := len(nodes) == len(old.nodes)
	for name, n := range nodes {
		nd := old.nodes[name]
		if nd == nil || !slices.Equal(nd.addrs(), n.Servers()) {
			nd, same = c.nodeKeeping(name, n, nd), false
		}
		next.nodes[name] = nd
		for _, s := range nd.servers {
			next.servers[s.addr] = s
		}
	}
	if same {
		return nil // the nodes it has: no change, nor a new version
	}
	var gone, added []*server
	for _, s := range old.servers {
		if next.servers[s.addr] != s {
			gone = append(gone, s)
		}
	}
	for _, s := range next.servers {
		if old.servers[s.addr] != s {
			added = append(added, s)
		}
	}
	if slices.Equal(slices.Sorted(maps.Keys(old.nodes)), slices.Sorted(maps.Keys(next.nodes))) {
		next.setRing(old.ring) // the same names: only the index of nodes changes
	} else {
		r, err := newRing(&c.opts, slices.Collect(maps.Keys(next.nodes)))
		if err != nil {
			for _, s := range added {
				_ = s.close()
			}
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
		next.setRing(r)
	}
	c.topo.Store(next)
	c.followKeys(old, next)
	c.retireLater(gone)
	c.opts.Logger.Info("federated: nodes set", "nodes", slices.Sorted(maps.Keys(nodes)))
	return nil
}

// addrs returns the addresses of the node's servers, in order.
func (n *node) addrs() []string {
	out := make([]string, len(n.servers))
	for i, s := range n.servers {
		out[i] = s.addr
	}
	return out
}

// nodeKeeping returns the node name with n's servers, where a server of
// prev's that stays is prev's own, and prev's current server, if it stays,
// is the node's current one; else a server of n's, at random. prev is nil
// for a new node.
func (c *Client) nodeKeeping(name string, n Node, prev *node) *node {
	var kept []*server
	var current *server
	if prev != nil {
		kept, current = prev.servers, prev.servers[prev.current.Load()]
	}
	addrs := n.Servers()
	nd := &node{name: name, servers: make([]*server, len(addrs))}
	at := -1
	for i, addr := range addrs {
		j := slices.IndexFunc(kept, func(s *server) bool { return s.addr == addr })
		if j < 0 {
			nd.servers[i] = c.newServer(name, addr)
			continue
		}
		nd.servers[i] = kept[j]
		if kept[j] == current {
			at = i
		}
	}
	switch {
	case at >= 0:
		nd.current.Store(int32(at))
	case len(addrs) > 1:
		nd.current.Store(int32(rand.IntN(len(addrs))))
	}
	return nd
}
