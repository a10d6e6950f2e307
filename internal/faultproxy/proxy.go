package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// dialTimeout bounds the connection to the target. The target is on
	// loopback, so a dial either succeeds or is refused at once; the bound
	// only matters for a target whose accept queue is full.
	dialTimeout = 5 * time.Second

	// acceptRetry is the pause after a failed Accept (EMFILE and the like),
	// so the accept loop does not spin while the error lasts.
	acceptRetry = 10 * time.Millisecond

	// chunkSize is the most one read takes from a socket; latency is added
	// per chunk.
	chunkSize = 32 << 10
)

// Proxy forwards TCP connections from a loopback listener to a target and
// injects faults into them. It is safe for concurrent use. Create it with
// New and stop it with Close.
type Proxy struct {
	target string
	ln     *net.TCPListener
	addr   string
	stats  counters

	// wg counts the accept loop and one serve goroutine per connection,
	// which owns the connection's second copier.
	wg sync.WaitGroup

	mu sync.Mutex
	// faults are the faults in force. Guarded by mu.
	faults faults
	// changed is closed, and replaced, whenever faults change, so that
	// copiers waiting on a fault re-check at once. Guarded by mu.
	changed chan struct{}
	// conns are the connections accepted and not yet released, with their
	// sockets. Guarded by mu.
	conns map[*conn]struct{}
	// closed is set by the first Close. Guarded by mu.
	closed bool
	// done is closed by the first Close; it cuts the accept loop's back-off
	// short.
	done chan struct{}
}

// counters are the statistics behind Stats, updated without the lock.
type counters struct {
	accepted   atomic.Int64
	active     atomic.Int64
	bytes      [2]atomic.Int64 // indexed by direction
	dropped    atomic.Int64
	reset      atomic.Int64
	delayed    atomic.Int64
	held       atomic.Int64
	discarded  atomic.Int64
	dialErrors atomic.Int64
}

// Stats is a snapshot of a proxy's counters. The counters are read one by
// one, so a snapshot taken while traffic flows may be off by a chunk or a
// connection between fields.
type Stats struct {
	// Accepted counts connections accepted, including those DropNew reset.
	Accepted int64
	// Active is the number of connections open now: accepted, not dropped,
	// and not yet closed on both sides. A connection half-closed by one
	// peer stays active until the other closes too.
	Active int64
	// BytesToServer counts bytes written to the target.
	BytesToServer int64
	// BytesToClient counts bytes written to clients.
	BytesToClient int64

	// Dropped counts connections that DropNew reset on accept.
	Dropped int64
	// Reset counts connections that CutAll reset.
	Reset int64
	// Delayed counts chunks that SetLatency delayed.
	Delayed int64
	// Held counts connections (before they reach the target) and chunks
	// that a blackhole stalled.
	Held int64
	// Discarded counts chunks that CutDirection threw away.
	Discarded int64
	// DialErrors counts connections reset because the target could not be
	// reached.
	DialErrors int64
}

// New starts a proxy that listens on 127.0.0.1 on a free port and forwards
// every connection it accepts to target, a "host:port" address. No fault is
// in force until one is set.
func New(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on 127.0.0.1: %w", err)
	}
	p := &Proxy{
		target:  target,
		ln:      ln,
		addr:    ln.Addr().String(),
		changed: make(chan struct{}),
		conns:   make(map[*conn]struct{}),
		done:    make(chan struct{}),
	}
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr returns the address clients connect to, "127.0.0.1:PORT". It stays
// valid after Close, when connections to it are refused.
func (p *Proxy) Addr() string { return p.addr }

// Target returns the address the proxy forwards to, as given to New.
func (p *Proxy) Target() string { return p.target }

// Close stops listening, closes every connection on both sides and waits
// for every goroutine of the proxy to end. Connections are closed, not
// reset, so peers see EOF, unless they had sent bytes the proxy had not
// read, in which case the kernel resets them. Close is idempotent; every
// call waits, and only the first can return an error. Fault setters called
// after Close have no effect.
func (p *Proxy) Close() error {
	p.mu.Lock()
	var err error
	if !p.closed {
		p.closed = true
		close(p.done)
		err = p.ln.Close()
		for c := range p.conns {
			c.closeLocked(false)
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("faultproxy: close listener %s: %w", p.addr, err)
	}
	return nil
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	s := &p.stats
	return Stats{
		Accepted:      s.accepted.Load(),
		Active:        s.active.Load(),
		BytesToServer: s.bytes[toServer].Load(),
		BytesToClient: s.bytes[toClient].Load(),
		Dropped:       s.dropped.Load(),
		Reset:         s.reset.Load(),
		Delayed:       s.delayed.Load(),
		Held:          s.held.Load(),
		Discarded:     s.discarded.Load(),
		DialErrors:    s.dialErrors.Load(),
	}
}

func (p *Proxy) acceptLoop() {
	for {
		client, err := p.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-p.done:
				return
			case <-time.After(acceptRetry):
			}
			continue
		}
		p.admit(client)
	}
}

// admit registers an accepted connection and starts serving it, or resets
// it if the proxy is closed or dropping new connections.
func (p *Proxy) admit(client *net.TCPConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		closeTCP(client, true)
		return
	}
	p.stats.accepted.Add(1)
	if p.faults.dropNew {
		p.stats.dropped.Add(1)
		closeTCP(client, true)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{client: client, cancel: cancel}
	p.conns[c] = struct{}{}
	p.stats.active.Add(1)
	p.wg.Go(func() { p.serve(ctx, c) })
}

// closeTCP closes c; with reset, SO_LINGER 0 makes the close send RST, so
// the peer sees "connection reset by peer" instead of EOF.
func closeTCP(c *net.TCPConn, reset bool) {
	if reset {
		_ = c.SetLinger(0)
	}
	_ = c.Close()
}
