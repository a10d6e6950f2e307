package federated

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A command that waits on its server forever (BLPOP 0, XREAD BLOCK 0...)
// holds its connection for as long as no data comes: on a connection of
// the server's pool, waits as many as the pool would leave the server's
// other commands, its health checks included, waiting for one. So such a
// wait goes on a connection of its own, outside the pool, kept for the
// server's next wait once it is answered.
//
// And go-redis reads a wait forever with no deadline, and never watches a
// cancel. A wait's connection has its id learnt as it is set up (CLIENT ID),
// and at the cancel or the deadline, or when a change of nodes moves its
// keys (see waitPlace), CLIENT UNBLOCK from another connection ends the wait
// as its own timeout would. The wait is never cut: a server slow to answer
// (a long script) may hand an element to a connection whose wait was cut,
// and nobody would read it. So a server that does not answer the CLIENT
// UNBLOCK is told again until it does, the wait is answered, its connection
// fails, or the Client closes; and a user whose ACL refuses CLIENT ID or
// CLIENT UNBLOCK waits as go-redis does.

// waits are the clients of a server's waits forever: each has one
// connection of its own. They are closed with the server, or a command
// timeout after it left the federation, which ends their waits.
type waits struct {
	mu     sync.Mutex
	live   map[*waitClient]struct{} // every client, idle ones included; guarded by mu
	idle   []*waitClient            // answered, kept for the next wait; guarded by mu
	closed bool                     // guarded by mu
	placed map[*waitPlace]struct{}  // waits under way that a change of nodes may move; guarded by mu
}

// waitClient is a client of waits forever, of one connection, and the id
// Redis gives that connection, asked once as it is set up (OnConnect), not
// before each wait: a consumer's loop of BLPOP 0 on a busy list paid a
// CLIENT ID round trip for each element.
type waitClient struct {
	*redis.Client
	under *redis.Client // the server's client of commands it was made beside
	id    atomic.Int64  // CLIENT ID of its connection: 0 before its first, -1 where an ACL refuses it
}

// waitPlace is what a change of nodes needs of a wait under way: the keys
// it waits on, hashed, and how to end it once they are elsewhere. A wait
// left on a server its keys moved off (a node added that takes them)
// would wait there for ever, while the elements pushed through the
// client go where the keys are now: it is ended, as a cancel ends it,
// and sent again where they are.
type waitPlace struct {
	hashed []string
	moved  atomic.Bool
	end    context.CancelFunc
}

// movedOff reports whether a key of the wait is on no node of t that
// holds s.
func (p *waitPlace) movedOff(s *server, t *topology) bool {
	for _, h := range p.hashed {
		if !t.holds(s, h) {
			return true
		}
	}
	return false
}

// holds reports whether what hashes to hashed is on a node of t that has
// the server s among its servers.
func (t *topology) holds(s *server, hashed string) bool {
	n, err := t.route(hashed)
	return err == nil && slices.Contains(n.servers, s)
}

// track notes a wait under way until untrack.
func (w *waits) track(p *waitPlace) (untrack func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.placed == nil {
		w.placed = make(map[*waitPlace]struct{})
	}
	w.placed[p] = struct{}{}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.placed, p)
	}
}

// followKeys ends the waits under way whose keys the change of nodes from
// prev to next moved off their server, those of servers that left
// included: each is sent again where its keys are (see waitPlace). And
// it closes the subscriptions whose channels moved, as those of a server
// that leaves are: subscribe again.
func (c *Client) followKeys(prev, next *topology) {
	follow := func(s *server) {
		s.waits.mu.Lock()
		for p := range s.waits.placed {
			if p.movedOff(s, next) {
				p.moved.Store(true)
				p.end()
			}
		}
		s.waits.mu.Unlock()
		s.subs.closeMoved(s, next)
	}
	for _, s := range prev.servers {
		follow(s)
	}
	for addr, s := range next.servers {
		if prev.servers[addr] != s {
			follow(s)
		}
	}
}

// get returns an idle client made beside under, the server's client of
// commands now, or one made by newClient; ok is false, and no client is
// kept, once the waits are closed. An idle client made beside a client
// since replaced (the server came back up) is closed: its connection may
// be one to the server before it went down, whose failure says nothing
// of the server now, and would mark it down (see sendForeverOn).
func (w *waits) get(under *redis.Client, newClient func(under *redis.Client) *waitClient) (wc *waitClient, ok bool) {
	w.mu.Lock()
	var stale []*waitClient
	for n := len(w.idle); n > 0 && !w.closed; n = len(w.idle) {
		wc = w.idle[n-1]
		w.idle = w.idle[:n-1]
		if wc.under == under {
			w.mu.Unlock()
			closeClients(stale)
			return wc, true
		}
		delete(w.live, wc)
		stale = append(stale, wc)
	}
	w.mu.Unlock()
	closeClients(stale)
	wc = newClient(under)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		_ = wc.Close()
		return nil, false
	}
	if w.live == nil {
		w.live = make(map[*waitClient]struct{})
	}
	w.live[wc] = struct{}{}
	return wc, true
}

// closeClients closes clients.
func closeClients(clients []*waitClient) {
	for _, wc := range clients {
		_ = wc.Close()
	}
}

// put gives back a client whose wait ended: kept for the next wait if
// keep and fewer than most are idle, closed otherwise.
func (w *waits) put(wc *waitClient, keep bool, most int) {
	w.mu.Lock()
	if keep && !w.closed && len(w.idle) < most {
		w.idle = append(w.idle, wc)
		w.mu.Unlock()
		return
	}
	delete(w.live, wc)
	w.mu.Unlock()
	_ = wc.Close()
}

// addHook adds h to every client.
func (w *waits) addHook(h redis.Hook) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wc := range w.live {
		wc.AddHook(h)
	}
}

// closeAll closes every client, and those made later as they come.
func (w *waits) closeAll() {
	w.mu.Lock()
	live := w.live
	w.live, w.idle, w.closed = nil, nil, true
	w.mu.Unlock()
	for wc := range live {
		_ = wc.Close()
	}
}

// errWaitMoved is the error of a wait forever ended because a change of
// nodes moved its keys: the caller sends it again where they are.
var errWaitMoved = errors.New("federated: the keys of the wait moved to another node")

// sendForever returns a send for processWith that sends cmd, which waits
// forever, routed by r: see sendForeverOn.
func (c *Client) sendForever(r routing) func(context.Context, *server, *redis.Client, redis.Cmder) error {
	return func(ctx context.Context, s *server, pooled *redis.Client, cmd redis.Cmder) error {
		return c.sendForeverOn(ctx, s, pooled, cmd, r)
	}
}

// sendForeverOn sends cmd, which waits on s forever, on a connection of
// its own, and so that a cancel of ctx ends it (see above): it then fails
// with ctx's error; and so that a change of nodes that moves its keys
// ends it: it then fails with errWaitMoved. An answer that came first (an
// element popped) is kept. The user's hooks see the wait and CLIENT ID.
func (c *Client) sendForeverOn(ctx context.Context, s *server, pooled *redis.Client, cmd redis.Cmder, r routing) error {
	rc, ok := s.waits.get(pooled, func(under *redis.Client) *waitClient { return c.newWaitClient(s, under) })
	if !ok {
		err := c.whenClosed(fmt.Errorf("%w: server %s left the federation", ErrUnknownNode, s.addr))
		cmd.SetErr(err)
		return err
	}
	var raw error // the wait's own error
	defer func() { s.waits.put(rc, raw == nil || errors.Is(raw, redis.Nil), pooled.Options().PoolSize) }()
	// A wait's client has no health hook: a failure of its connection
	// marks the server down here, as the health hook would, so that the
	// wait goes to the next server of its group, and a wait sent again
	// fails at once instead of dialing a dead server.
	late := ctx.Err() != nil
	failed := func(ctx context.Context, err error) {
		if !late && isServerFault(ctx, err) {
			c.markDown(s, pooled, err)
		}
	}

	if rc.id.Load() == 0 {
		// Its first wait: a PING sets its connection up, and learns its
		// id (see newWaitClient).
		idCtx, cancel := c.withTimeout(ctx)
		err := rc.Ping(idCtx).Err()
		cancel()
		if err != nil {
			raw = err
			failed(idCtx, err)
			cmd.SetErr(err)
			return err
		}
	}
	if rc.id.Load() < 0 { // an ACL that refuses CLIENT ID
		raw = rc.Process(ctx, cmd)
		failed(ctx, raw)
		return c.leftError(s, cmd, raw)
	}
	// The wait ends when ctx does, or when its keys move.
	wctx, end := context.WithCancel(ctx)
	defer end()
	place := &waitPlace{end: end}
	if place.hashed = c.waitKeys(ctx, r, cmd); len(place.hashed) > 0 {
		defer s.waits.track(place)()
		if place.movedOff(s, c.topo.Load()) { // moved before it was tracked
			place.moved.Store(true)
			end()
		}
	}
	answered, done := make(chan struct{}), make(chan struct{})
	var ended atomic.Bool
	stop := context.AfterFunc(wctx, func() {
		defer close(done)
		ended.Store(c.unblock(s, rc.id.Load, answered))
	})
	raw = rc.Process(ctx, cmd)
	close(answered)
	if !stop() {
		<-done
	}
	if raw != nil && place.moved.Load() && ctx.Err() == nil {
		// Ended for the move, or failed meanwhile (closed with a server
		// that left while stopped, which no CLIENT UNBLOCK reached): no
		// element was taken, and the keys are elsewhere now.
		cmd.SetErr(errWaitMoved)
		return errWaitMoved
	}
	if raw != nil && ended.Load() {
		// The end of the wait (a nil reply), not an answer.
		cmd.SetErr(ctx.Err())
		return ctx.Err()
	}
	failed(ctx, raw)
	return c.leftError(s, cmd, raw)
}

// waitKeys returns the keys of a wait, hashed as routing hashes them, or
// none when they cannot be told (the wait is then not moved).
func (c *Client) waitKeys(ctx context.Context, r routing, cmd redis.Cmder) []string {
	if r.grouped {
		return []string{r.group}
	}
	keys, err := c.commandKeys(ctx, c.topo.Load(), cmd, nil)
	if err != nil {
		return nil
	}
	hashed := make([]string, len(keys))
	for i, k := range keys {
		hashed[i] = c.hashKey("", k)
	}
	return hashed
}

// leftError returns a wait's error, which, once s has left the federation
// and its waits were closed, says so.
func (c *Client) leftError(s *server, cmd redis.Cmder, err error) error {
	if err == nil || errors.Is(err, redis.Nil) || !s.isRetired() {
		return err
	}
	err = c.whenClosed(fmt.Errorf("%w: server %s left the federation while the command waited (%v)", ErrUnknownNode, s.addr, err))
	cmd.SetErr(err)
	return err
}

// unblock ends the wait of the connection id of s with CLIENT UNBLOCK, sent
// from a connection of its own, and reports whether it did. A wait not
// begun yet (the command on its way) and a server that does not answer
// are tried again, with pauses growing to a second, until the wait's
// command is answered (answered is closed) or the Client closes. A server
// that refuses it (an ACL) is not asked again: the wait goes on.
func (c *Client) unblock(s *server, id func() int64, answered <-chan struct{}) bool {
	opt := *s.opts
	opt.PoolSize, opt.MinIdleConns, opt.MaxIdleConns = 1, 0, 0
	control := redis.NewClient(&opt)
	defer control.Close()
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		ctx, cancel := c.withTimeout(context.Background())
		n, err := control.ClientUnblock(ctx, id()).Result()
		cancel()
		var reply redis.Error
		switch {
		case errors.As(err, &reply):
			return false
		case err == nil && n == 1:
			return true
		}
		select {
		case <-answered:
			return false
		case <-c.done:
			return false
		case <-time.After(pause):
		}
	}
}

// newWaitClient builds a client of s for waits forever: one connection of
// its own, and the user's hooks but no health hook, which would take the
// wait's client for a client replaced (sendForever marks the server down
// in its stead).
func (c *Client) newWaitClient(s *server, under *redis.Client) *waitClient {
	wc := &waitClient{under: under}
	opt := *s.opts
	opt.PoolSize, opt.MinIdleConns, opt.MaxIdleConns = 1, 0, 1
	// Each connection's id, as it is set up: that of one dialed again
	// (reaped while idle, or broken) is known before a wait is sent on it.
	opt.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		id, err := cn.ClientID(ctx).Result()
		var reply redis.Error
		switch {
		case errors.As(err, &reply):
			id = -1 // the wait goes on as go-redis's does
		case err != nil:
			return err
		}
		wc.id.Store(id)
		return nil
	}
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	wc.Client = redis.NewClient(&opt)
	c.addUserHooksLocked(wc.Client, s.addr)
	return wc
}
