package federated

import (
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
	c.retireLater(gone)
	c.opts.Logger.Info("federated: node replaced", "node", name, "servers", n.Servers())
	return nil
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
