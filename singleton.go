package federated

import (
	"fmt"
	"sync"
)

// shared holds the clients handed out by Shared, by tag.
var shared struct {
	mu      sync.Mutex
	clients map[string]*Client
}

// Shared returns the process's client for tag, creating it from cfg the
// first time (the Perl module's tag). Later calls with the same tag return
// the same client and ignore their cfg: the first caller's configuration
// wins. Each call to Shared must be matched by a call to Close on the
// client it returned; the client really closes when the last of them does.
func Shared(tag string, cfg Config) (*Client, error) {
	if tag == "" {
		return nil, fmt.Errorf("%w: empty tag for a shared client", ErrInvalidConfig)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if c, ok := shared.clients[tag]; ok {
		c.refs++
		return c, nil
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	c.tag, c.refs = tag, 1
	if shared.clients == nil {
		shared.clients = make(map[string]*Client)
	}
	shared.clients[tag] = c
	return c, nil
}

// release drops one reference to a shared client. It reports whether the
// client should really close now.
func (c *Client) release() bool {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if c.refs == 0 {
		return true // already released, or never shared
	}
	c.refs--
	if c.refs > 0 {
		return false
	}
	delete(shared.clients, c.tag)
	return true
}
