package federated

import (
	"fmt"
	"sync"
)

// Registry hands out one client per tag, reference-counted: the Perl
// module's shared client by tag. The zero value is ready to use, and safe
// for concurrent use. Most programs use the process's registry through
// Shared; a Registry of their own keeps a component's clients apart from
// the rest of the process (a test, say).
type Registry struct {
	mu       sync.Mutex
	clients  map[string]*Client       // by tag; guarded by mu
	building map[string]chan struct{} // tags whose client New is making, closed when done; guarded by mu
}

// defaultRegistry is the process's registry, that Shared uses.
var defaultRegistry Registry

// Shared returns the registry's client for tag, creating it from cfg the
// first time. Later calls with the same tag return the same client and
// ignore their cfg: the first caller's configuration wins. Each call must
// be matched by exactly one call to Close on the client it returned (the
// holders share one *Client, which cannot tell them apart); the client
// really closes when the last of them does, and a later call makes a new
// one. The client is made without the registry's lock: a call for
// another tag, or a Close, does not wait for it (a slow Options.NewRing,
// TLS files on a slow disk); a call for the same tag waits for it, and
// makes the client from its own cfg if that failed. So Options.NewRing
// and OnNewClient must not call Shared for the tag being made.
func (r *Registry) Shared(tag string, cfg Config) (*Client, error) {
	if tag == "" {
		return nil, fmt.Errorf("%w: empty tag for a shared client", ErrInvalidConfig)
	}
	r.mu.Lock()
	for {
		if c, ok := r.clients[tag]; ok {
			c.refs++
			r.mu.Unlock()
			return c, nil
		}
		done, ok := r.building[tag]
		if !ok {
			break
		}
		r.mu.Unlock()
		<-done
		r.mu.Lock()
	}
	done := make(chan struct{})
	if r.building == nil {
		r.building = make(map[string]chan struct{})
	}
	r.building[tag] = done
	r.mu.Unlock()

	c, err := New(cfg)

	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.building, tag)
	close(done)
	if err != nil {
		return nil, err
	}
	c.registry, c.tag, c.refs = r, tag, 1
	if r.clients == nil {
		r.clients = make(map[string]*Client)
	}
	r.clients[tag] = c
	return c, nil
}

// Shared returns the process's client for tag, creating it from cfg the
// first time (the Perl module's tag): Registry.Shared on the process's
// registry.
func Shared(tag string, cfg Config) (*Client, error) {
	return defaultRegistry.Shared(tag, cfg)
}

// release drops one reference to a shared client. It reports whether the
// client should really close now.
func (c *Client) release() bool {
	r := c.registry
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.refs == 0 {
		return true // already released
	}
	c.refs--
	if c.refs > 0 {
		return false
	}
	delete(r.clients, c.tag)
	return true
}
