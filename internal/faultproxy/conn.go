package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// direction is the way a copier moves bytes.
type direction int

const (
	toServer direction = iota // from the client to the target
	toClient                  // from the target to the client
)

// conn is one proxied connection: the accepted client socket and, once
// dialled, the socket to the target.
type conn struct {
	client *net.TCPConn
	// cancel ends the context of serve and both copiers.
	cancel context.CancelFunc

	// server is the socket to the target, nil until dialled. Guarded by
	// Proxy.mu.
	server *net.TCPConn
	// closed is set once both sockets have been closed. Guarded by
	// Proxy.mu.
	closed bool
}

// closeLocked closes both sockets, resetting them if reset is set, and
// wakes every goroutine of the connection. It reports whether this call
// closed them; later calls do nothing.
func (c *conn) closeLocked(reset bool) bool {
	if c.closed {
		return false
	}
	c.closed = true
	c.cancel()
	closeTCP(c.client, reset)
	if c.server != nil {
		closeTCP(c.server, reset)
	}
	return true
}

// serve connects c to the target once no blackhole is in force, then
// copies both ways until both directions end or c is closed.
func (p *Proxy) serve(ctx context.Context, c *conn) {
	defer p.release(c)

	// While blackholed, not even the target learns of the client: it would
	// answer nothing anyway, and a refused dial would reset the client.
	if _, ok := p.hold(ctx, time.Now(), false); !ok {
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		if ctx.Err() == nil {
			p.stats.dialErrors.Add(1)
		}
		p.abort(c)
		return
	}
	server := nc.(*net.TCPConn)

	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		closeTCP(server, true)
		return
	}
	c.server = server
	p.mu.Unlock()

	var copiers sync.WaitGroup
	copiers.Go(func() { p.pipe(ctx, c, toServer, c.client, server) })
	p.pipe(ctx, c, toClient, server, c.client)
	copiers.Wait()
}

// release closes c, if nothing else has, and forgets it.
func (p *Proxy) release(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.closeLocked(false)
	delete(p.conns, c)
	p.stats.active.Add(-1)
}

// abort resets both sockets of c after an error on one of them, so the
// other peer learns of the failure too.
func (p *Proxy) abort(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.closeLocked(true)
}

// pipe copies from src to dst chunk by chunk, letting the faults in force
// delay, hold or discard each chunk. EOF is forwarded as a half-close; any
// other error resets the connection.
func (p *Proxy) pipe(ctx context.Context, c *conn, dir direction, src, dst *net.TCPConn) {
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f, ok := p.hold(ctx, time.Now(), true)
			if !ok {
				return
			}
			if f.cut(dir) {
				p.stats.discarded.Add(1)
			} else {
				if _, err := dst.Write(buf[:n]); err != nil {
					p.abort(c)
					return
				}
				p.stats.bytes[dir].Add(int64(n))
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			// A FIN waits out a blackhole like data, so a client that
			// gives up during one is not seen leaving before it lifts.
			if _, ok := p.hold(ctx, time.Now(), false); ok {
				_ = dst.CloseWrite()
			}
			return
		default:
			p.abort(c)
			return
		}
	}
}

// hold waits until the faults let through a chunk read at readAt: no
// blackhole and, if delay is set, the latency elapsed since readAt. It
// re-checks whenever a fault changes, so Heal releases a held chunk at
// once. It returns the faults in force when it let the chunk through, or
// false if the connection was closed meanwhile.
func (p *Proxy) hold(ctx context.Context, readAt time.Time, delay bool) (faults, bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var held, delayed bool
	for {
		p.mu.Lock()
		f, changed := p.faults, p.changed
		p.mu.Unlock()

		var expired <-chan time.Time
		if f.blackhole {
			if !held {
				held = true
				p.stats.held.Add(1)
			}
		} else {
			var wait time.Duration
			if delay {
				wait = f.latency - time.Since(readAt)
			}
			if wait <= 0 {
				return f, true
			}
			if !delayed {
				delayed = true
				p.stats.delayed.Add(1)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}

		select {
		case <-ctx.Done():
			return f, false
		case <-changed:
		case <-expired:
		}
	}
}
