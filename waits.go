package federated

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A command that waits on its server forever (BLPOP 0, XREAD BLOCK 0...)
// under a context that can be cancelled must end at the cancel, and
// go-redis ends a read at a deadline, never at a cancel: the wait would
// last until data came. So such a wait goes on a connection of its own,
// outside the server's pool (waits that take the pool whole would leave
// the server's other commands waiting for a connection), whose id it
// learns first (CLIENT ID). At the cancel, CLIENT UNBLOCK from another
// connection of its own ends the wait as its timeout would; where the
// server does not answer (stopped, cut off), the wait's connection is
// cut. A user whose ACL refuses CLIENT ID or CLIENT UNBLOCK waits as
// go-redis does, until the server answers: cutting a connection that the
// server still serves could pop an element for it that nobody reads.

// waits are the clients of a server's waits forever, closed with the
// server, or a command timeout after it left the federation.
type waits struct {
	mu      sync.Mutex
	clients map[*redis.Client]struct{} // guarded by mu
	closed  bool                       // guarded by mu
}

// add keeps rc, to close with the server; it reports false, and keeps
// nothing, once the server has closed.
func (w *waits) add(rc *redis.Client) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if w.clients == nil {
		w.clients = make(map[*redis.Client]struct{})
	}
	w.clients[rc] = struct{}{}
	return true
}

// remove forgets rc.
func (w *waits) remove(rc *redis.Client) {
	w.mu.Lock()
	delete(w.clients, rc)
	w.mu.Unlock()
}

// closeAll closes every client kept: their waits end.
func (w *waits) closeAll() {
	w.mu.Lock()
	clients := w.clients
	w.clients, w.closed = nil, true
	w.mu.Unlock()
	for rc := range clients {
		_ = rc.Close()
	}
}

// sendForever sends cmd, which waits on s forever, on a connection of its
// own, so that a cancel of ctx ends it (see above); it then fails with
// ctx's error. An answer that came first (an element popped) is kept.
// The user's hooks see the wait and CLIENT ID.
func (c *Client) sendForever(ctx context.Context, s *server, _ *redis.Client, cmd redis.Cmder) error {
	var (
		mu   sync.Mutex
		conn net.Conn // the wait's connection, once dialled; guarded by mu
	)
	opt := c.ownOptions(s)
	dial := opt.Dialer
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		mu.Lock()
		conn = nc
		mu.Unlock()
		return nc, err
	}
	wc := c.newWaitClient(s, opt)
	defer wc.Close()
	if !s.waits.add(wc) {
		err := c.whenClosed(fmt.Errorf("%w: server %s left the federation", ErrUnknownNode, s.addr))
		cmd.SetErr(err)
		return err
	}
	defer s.waits.remove(wc)

	idCtx, cancel := c.withTimeout(ctx)
	id, err := wc.ClientID(idCtx).Result()
	cancel()
	var reply redis.Error
	switch {
	case errors.As(err, &reply):
		// An ACL that refuses CLIENT ID: the wait cannot be ended without
		// cutting its connection, and an element pushed as the server
		// notices the cut would be popped for it and lost. It waits as
		// go-redis does.
		return wc.Process(ctx, cmd)
	case err != nil:
		cmd.SetErr(err)
		return err
	}

	replied, done := make(chan struct{}), make(chan struct{})
	var ended atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		switch c.unblock(s, id, replied) {
		case unblocked:
			ended.Store(true)
		case unreachable:
			// A server stopped or cut off pops nothing meanwhile: cut the
			// connection. (Were it to come back with an element pushed as
			// it notices the cut, the element could be popped for the
			// closing connection.)
			mu.Lock()
			if conn != nil {
				_ = conn.SetDeadline(time.Unix(1, 0))
			}
			mu.Unlock()
			ended.Store(true)
		}
	})
	err = wc.Process(ctx, cmd)
	close(replied)
	if !stop() {
		<-done
	}
	if err != nil && ended.Load() {
		// The end of the wait (a nil reply, or a cut read), not an answer.
		err = ctx.Err()
		cmd.SetErr(err)
	}
	return err
}

// unblocking is what unblock did.
type unblocking int

const (
	unblocked   unblocking = iota // the server ended the wait
	answered                      // the wait's command was answered first
	refused                       // the server refused CLIENT UNBLOCK (an ACL)
	unreachable                   // the server did not answer in the command timeout
)

// unblock ends the wait of the connection id of s with CLIENT UNBLOCK, sent
// from a connection of its own. A wait not begun yet (the command on its
// way) is tried again, with pauses growing to a second, until the wait's
// command is answered (done is closed).
func (c *Client) unblock(s *server, id int64, done <-chan struct{}) unblocking {
	control := redis.NewClient(c.ownOptions(s))
	defer control.Close()
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		ctx, cancel := c.withTimeout(context.Background())
		n, err := control.ClientUnblock(ctx, id).Result()
		cancel()
		var reply redis.Error
		switch {
		case errors.As(err, &reply):
			return refused
		case err != nil:
			return unreachable
		case n == 1:
			return unblocked
		}
		select {
		case <-done:
			return answered
		case <-time.After(pause):
		}
	}
}

// ownOptions are the options of a client of s with one connection of its
// own, dialled when first used and kept by nothing else.
func (c *Client) ownOptions(s *server) *redis.Options {
	opt := *s.opts
	opt.PoolSize, opt.MinIdleConns, opt.MaxIdleConns = 1, 0, 0
	return &opt
}

// newWaitClient builds the client of a wait forever on s, with the user's
// hooks: no health hook, since a wait that fails says nothing the
// server's other commands would not.
func (c *Client) newWaitClient(s *server, opt *redis.Options) *redis.Client {
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	rc := redis.NewClient(opt)
	c.addUserHooksLocked(rc, s.addr)
	return rc
}
