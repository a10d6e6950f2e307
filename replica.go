package federated

import "github.com/redis/go-redis/v9"

// ReplicaGroup returns the addresses of the servers of the node that a
// server belongs to, itself included, in configuration order.
func (c *Client) ReplicaGroup(addr string) (node string, servers []string, err error) {
	s, err := c.topo.Load().server(addr)
	if err != nil {
		return "", nil, err
	}
	servers, err = c.AllServers(s.node)
	return s.node, servers, err
}

// serverClient returns the go-redis client of a server that is up.
func (c *Client) serverClient(addr string) (*redis.Client, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	s, err := c.topo.Load().server(addr)
	if err != nil {
		return nil, err
	}
	if s.down.Load() {
		return nil, &ServerError{Node: s.node, Server: s.addr, Err: s.downReason(), down: true}
	}
	return s.client.Load(), nil
}
