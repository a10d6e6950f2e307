package federated

// ReplaceNode gives a node of the federation other servers at run time, in
// one step: its name, which is what the ring hashes, stays, so every key
// stays on the node and no command goes elsewhere meanwhile. The node
// starts on a server of the new list, as a new node does; a server in both
// lists gets fresh connections. Commands under way on the old servers
// finish there, as with RemoveNode. It refuses servers that Config.Validate
// would, and no error shows the password.
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
	nd := c.newNode(name, n)
	next := old.successor()
	next.nodes[name] = nd
	for _, s := range prev.servers {
		delete(next.servers, s.addr)
	}
	for _, s := range nd.servers {
		next.servers[s.addr] = s
	}
	next.setRing(old.ring) // the same names: only the index of nodes changes
	c.topo.Store(next)
	c.retireLater(prev.servers)
	c.opts.Logger.Info("federated: node replaced", "node", name, "servers", n.Servers())
	return nil
}
