package federated

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated/internal/replyguard"
)

// server is one redis-server process and what the client knows of its health.
type server struct {
	addr string
	node string
	opts *redis.Options // template for the clients of this server

	client atomic.Pointer[redis.Client] // replaced with a fresh one when the server comes back up
	handle *redis.Client                // ServerClient's: sends through client, whichever it is
	pubsub atomic.Pointer[redis.Client] // subscriptions', made at the first (see pubsubOf)
	subs   subscriptions                // the PubSubs made on pubsub, closed with it
	waits  waits                        // the clients of waits forever, closed with the server
	// takeovers counts the times its node's commands moved to it.
	takeovers atomic.Uint64
	down      atomic.Bool // read on every command without the lock
	// unauthenticated is set when the server refused a long command from a
	// connection that gave no password, and then closes it; cleared by an
	// answer. See healthHook.unauthenticated.
	unauthenticated atomic.Bool

	mu        sync.Mutex // guards the fields below, and transitions of down
	downSince time.Time
	lastErr   error         // why the server went down, or why the last check failed
	checking  bool          // a recheck loop is running
	downs     int           // times marked down, so that the loop tells a new failure
	removed   bool          // the node was removed or the client closed
	stop      chan struct{} // closed when removed
	wake      chan struct{} // tells the recheck loop the server was marked up or down
}

func (c *Client) newServer(nodeName, addr string) *server {
	s := &server{addr: addr, node: nodeName, opts: c.redisOptions(addr),
		stop: make(chan struct{}), wake: make(chan struct{}, 1)}
	s.client.Store(c.newRedisClient(s))
	s.handle = newHandle(c, s)
	return s
}

// newRedisClient builds a go-redis client for s with the health hook first
// and the user's hooks after it.
func (c *Client) newRedisClient(s *server) *redis.Client {
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	return c.newRedisClientLocked(s, true)
}

// newRedisClientLocked is newRedisClient with c.hooksMu held: the caller
// that puts the client in place before it lets go of the mutex knows that
// AddServerHook sees it.
//
// Options.OnNewClient sees the clients of commands (commands), one at a
// time for a server, each replacing the last: not the one of its
// subscriptions, made beside them, which a caller following that option's
// advice would take for a replacement of the client still in use.
func (c *Client) newRedisClientLocked(s *server, commands bool) *redis.Client {
	rc := redis.NewClient(s.opts)
	rc.AddHook(healthHook{c: c, s: s, rc: rc})
	c.addUserHooksLocked(rc, s.addr)
	if commands && c.opts.OnNewClient != nil {
		c.opts.OnNewClient(s.addr, rc)
	}
	return rc
}

// addUserHooksLocked adds the user's hooks to a client of the server addr;
// c.hooksMu is held.
func (c *Client) addUserHooksLocked(rc *redis.Client, addr string) {
	for _, h := range c.opts.Hooks {
		rc.AddHook(shielded(h, c.opts.Logger))
	}
	for _, h := range c.extraHooks {
		rc.AddHook(shielded(h(addr), c.opts.Logger))
	}
}

// retire stops the server's check loop and marks it removed, so that it is
// never marked down or up again. It reports false if it was retired already.
func (s *server) retire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return false
	}
	s.removed = true
	close(s.stop)
	return true
}

// isRetired reports whether s left the federation, or the client closed.
func (s *server) isRetired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removed
}

func (s *server) close() error {
	if !s.retire() {
		return nil
	}
	_ = s.handle.Close() // it holds no connection
	s.subs.closeAll()
	s.waits.closeAll()
	if pubsub := s.pubsub.Load(); pubsub != nil {
		_ = pubsub.Close() // none is made once retired
	}
	return s.client.Load().Close()
}

// closeLater closes a go-redis client that commands may still be using, once
// they are done: every command is bounded by the command timeout, and a
// blocking one of a finite wait by its wait and the command timeout, so
// the client is closed after the later of the command timeout and the
// end of the blocking commands sent so far, or at once when the Client
// closes.
func (c *Client) closeLater(rc *redis.Client) {
	wait := max(c.opts.CommandTimeout, time.Until(time.Unix(0, c.waitsEnd.Load())))
	c.after(wait, func() { _ = rc.Close() })
}

// noteWait notes that a blocking command may be under way until end. A
// command notes it before it reads the topology, and a change stores the
// topology before closeLater reads the time, so that a command sent to a
// server that leaves has either read the topology without it or been
// seen by closeLater.
func (c *Client) noteWait(end time.Time) {
	for n := end.UnixNano(); ; {
		cur := c.waitsEnd.Load()
		if n <= cur || c.waitsEnd.CompareAndSwap(cur, n) {
			return
		}
	}
}

// noteWaitOf notes the wait of cmd, a blocking command of a set time, and
// nothing for any other: it is called before a command reads the topology
// or its server's state, by every way a command is sent.
func (c *Client) noteWaitOf(cmd redis.Cmder) {
	if wait, forever, err := blockTime(cmd); err == nil && !forever && wait > 0 {
		c.noteWait(time.Now().Add(c.opts.CommandTimeout + wait))
	}
}

// later calls done once the commands under way may be done, but for
// blocking ones (see closeLater), or at once when the Client closes.
func (c *Client) later(done func()) { c.after(c.opts.CommandTimeout, done) }

// after calls done a little after d, or at once when the Client closes.
func (c *Client) after(d time.Duration, done func()) {
	if !c.addLoop() {
		done()
		return
	}
	go func() {
		defer c.wg.Done()
		t := time.NewTimer(d + 100*time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.done:
		}
		done()
	}()
}

// downReason says why a down server is down, for errors.
func (s *server) downReason() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr == nil {
		return fmt.Errorf("%w (since %s)", ErrServerDown, s.downSince.Format(time.RFC3339))
	}
	return fmt.Errorf("%w (since %s): %w", ErrServerDown, s.downSince.Format(time.RFC3339), s.lastErr)
}

// ServerStatus is what the client knows of one server's health.
type ServerStatus struct {
	Node      string    // node the server belongs to
	Address   string    // host:port
	Current   bool      // the node's commands go to this server
	Down      bool      // marked down
	DownSince time.Time // when it was marked down; zero when up
	LastError error     // why it went down, or why the last check failed
	Downs     int       // times it was marked down
	Takeovers uint64    // times its node's commands moved to it from another server
}

// Status returns the health of every server, sorted by address.
func (c *Client) Status() []ServerStatus {
	t := c.topo.Load()
	out := make([]ServerStatus, 0, len(t.servers))
	for _, addr := range t.addrs() { // t's, not a newer topology's
		s := t.servers[addr]
		n := t.nodes[s.node]
		s.mu.Lock()
		st := ServerStatus{
			Node:      s.node,
			Address:   s.addr,
			Current:   n.servers[n.current.Load()] == s,
			Down:      s.down.Load(),
			Downs:     s.downs,
			Takeovers: s.takeovers.Load(),
		}
		if st.Down {
			st.DownSince, st.LastError = s.downSince, s.lastErr
		}
		s.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// IsServerDown reports whether the server at addr is marked down. An address
// outside the federation is reported up.
func (c *Client) IsServerDown(addr string) bool {
	s, err := c.topo.Load().server(addr)
	return err == nil && s.down.Load()
}

// IsServerUp reports whether the server at addr is in the federation and
// not marked down (the Perl module's isServerUp).
func (c *Client) IsServerUp(addr string) bool {
	s, err := c.topo.Load().server(addr)
	return err == nil && !s.down.Load()
}

// NextServer moves a node's commands to the next server of its group, in
// configuration order and wrapping around, and returns its address: a
// failover by hand (the Perl module's nextServer). A node of one server
// keeps it. The next server is taken even if marked down; commands then
// move on from it as after any failure.
func (c *Client) NextServer(nodeName string) (string, error) {
	n, err := c.topo.Load().node(nodeName)
	if err != nil {
		return "", err
	}
	for {
		i := n.current.Load()
		j := (int(i) + 1) % len(n.servers)
		if n.current.CompareAndSwap(i, int32(j)) {
			if j != int(i) {
				n.servers[j].takeovers.Add(1)
				c.opts.Logger.Warn("federated: node moved to its next server", "node", n.name, "from", n.servers[i].addr, "to", n.servers[j].addr)
			}
			return n.servers[j].addr, nil
		}
	}
}

// MarkServerDown marks a server down by hand: commands stop going to it and
// the background check starts probing it, as after a failure. After Close
// it returns ErrClosed.
func (c *Client) MarkServerDown(addr string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	s, err := c.topo.Load().server(addr)
	if err != nil {
		return err
	}
	c.markDown(s, nil, errors.New("marked down by hand"))
	return nil
}

// MarkServerUp marks a server up by hand, ending its background check.
// After Close it returns ErrClosed.
func (c *Client) MarkServerUp(addr string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	s, err := c.topo.Load().server(addr)
	if err != nil {
		return err
	}
	c.markUp(s)
	return nil
}

// markDown marks s down, logs it, and starts its recheck loop unless one is
// running or the client is closing. A failure seen on rc, when not nil,
// counts only while rc is the server's current client (see healthHook); the
// check is made under the lock, so that markUp cannot swap the client in
// between.
func (c *Client) markDown(s *server, rc *redis.Client, cause error) {
	s.mu.Lock()
	if s.down.Load() || s.removed || (rc != nil && s.client.Load() != rc) {
		s.mu.Unlock()
		return
	}
	s.down.Store(true)
	s.downSince = time.Now()
	s.lastErr = cause
	s.downs++
	start := !s.checking && c.addLoop()
	if start {
		s.checking = true
	} else if s.checking {
		s.poke() // down again before the loop saw it up: its back-off starts over
	}
	s.mu.Unlock()

	c.opts.Logger.Warn("federated: server down", "server", s.addr, "node", s.node, "err", cause)
	if start {
		go c.recheck(s)
	}
}

// addLoop registers a background loop with the client's wait group, unless
// the client is closing.
func (c *Client) addLoop() bool {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	return true
}

// markUp marks s up and gives it a fresh go-redis client, so that nothing of
// the failed connections (or go-redis's dial-error count) carries over.
func (c *Client) markUp(s *server) {
	// Under topoMu: a change of nodes that moves s's address to a node of
	// another name makes the new server, and its client, before it retires
	// s; s marked up in between would hand Options.OnNewClient a client
	// after the new server's, though s is about to go, and an
	// instrumentation that follows the latest client would drop the live
	// one.
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	s.mu.Lock()
	if !s.down.Load() || s.removed {
		s.mu.Unlock()
		return
	}
	since := s.downSince
	c.hooksMu.Lock() // a hook added meanwhile goes to the client swapped in
	old := s.client.Swap(c.newRedisClientLocked(s, true))
	c.hooksMu.Unlock()
	s.downSince, s.lastErr = time.Time{}, nil
	s.down.Store(false)
	s.poke() // the loop ends, also when marked up by hand
	s.mu.Unlock()

	c.closeLater(old)
	c.opts.Logger.Info("federated: server back up", "server", s.addr, "node", s.node,
		"down_since", since, "down_for", time.Since(since).Round(time.Millisecond))
}

// poke wakes the server's recheck loop, if one runs, without waiting.
func (s *server) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// recheck probes a down server until it answers, the server is marked up by
// hand, or the client closes. The first MaxHostRetries probes come at
// BaseRetryInterval; after that the interval grows by RetryIntervalMult up to
// MaxRetryInterval. A server marked down again before the loop saw it up
// starts the back-off over.
func (c *Client) recheck(s *server) {
	defer c.wg.Done()
	interval := c.opts.BaseRetryInterval
	failed := 0
	s.mu.Lock()
	downs := s.downs
	s.mu.Unlock()
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		due := false
		select {
		case <-c.done:
			return
		case <-s.stop:
			return
		case <-s.wake:
		case <-timer.C:
			due = true
		}
		if due && s.down.Load() {
			if err := c.probe(s); probeUp(err) {
				c.markUp(s)
			} else {
				s.mu.Lock()
				s.lastErr = err
				s.mu.Unlock()
				failed++
				if failed >= c.opts.MaxHostRetries {
					interval = c.nextInterval(interval)
				}
				c.opts.Logger.Debug("federated: server still down", "server", s.addr, "node", s.node,
					"checks", failed, "next_check", interval, "err", err)
			}
		}
		s.mu.Lock()
		if !s.down.Load() {
			s.checking = false
			s.mu.Unlock()
			return
		}
		if s.downs != downs {
			downs, interval, failed = s.downs, c.opts.BaseRetryInterval, 0
		}
		s.mu.Unlock()
		timer.Reset(interval)
	}
}

// nextInterval grows a recheck interval by RetryIntervalMult up to
// MaxRetryInterval. The product is capped as a float: converted first, a
// product beyond the range of a Duration would come out negative.
func (c *Client) nextInterval(interval time.Duration) time.Duration {
	next := float64(interval) * c.opts.RetryIntervalMult
	if next >= float64(c.opts.MaxRetryInterval) {
		return c.opts.MaxRetryInterval
	}
	return time.Duration(next)
}

// probeUp reports whether a probe's outcome shows its server up: an answer
// to the PING, or NOPERM, an ACL's refusal of the PING to a user it lets
// in and serves other commands (one whose rules lack @connection, whose
// servers were never marked up again after a failure). Other refusals
// keep the server down, so that its group goes on failing over: a state
// that passes (LOADING, BUSY...), a password the server no longer takes,
// a server full of clients.
func probeUp(err error) bool {
	var reply redis.Error
	return err == nil || errors.As(err, &reply) && strings.HasPrefix(reply.Error(), "NOPERM")
}

// probe pings a server on a connection of its own, so that the failures of
// probes do not count against the server's pool.
func (c *Client) probe(s *server) error {
	opts := *s.opts
	opts.PoolSize = 2 // go-redis starts a background redial after PoolSize dial failures
	rc := redis.NewClient(&opts)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.CommandTimeout)
	defer cancel()
	return rc.Ping(ctx).Err()
}

// healthHook marks its server down when a command or pipeline fails in a way
// that shows the server is unreachable or unresponsive.
//
// Only a failure on the server's current go-redis client counts. A command
// that ran on the client replaced when the server came back up (it started
// before a crash and its error surfaced late) says nothing about the
// restarted server, and marking it down would fail its node over for no
// reason, or leave a group with no up server. Nor does a command sent with
// its context already done: it never reached the server (go-redis fails it
// at once, often as a timeout).
type healthHook struct {
	c  *Client
	s  *server
	rc *redis.Client // the client the hook is added to
}

// fault marks the server down for err, unless the hook's client was replaced.
func (h healthHook) fault(err error) { h.c.markDown(h.s, h.rc, err) }

var _ redis.Hook = healthHook{}

func (h healthHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h healthHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		late := ctx.Err() != nil
		err := next(ctx, cmd)
		if explained, ok := h.unauthenticated(err); ok {
			cmd.SetErr(explained)
			err = explained
		}
		if !late && isServerFault(ctx, err) && !busyPool(h.rc, err) {
			h.fault(err)
		} else if explained := h.explainReply(err); explained != err {
			cmd.SetErr(explained)
			err = explained
		}
		return err
	}
}

// unauthenticated explains the loss of a connection that Redis closes after
// refusing a long command from it for want of a password: go-redis pooled
// it again before the close arrived, and the next command on it fails
// with EOF. That is the refusal, not a server down. ok is false for any
// other error, and for every error once the server has answered since.
func (h healthHook) unauthenticated(err error) (error, bool) {
	if !h.s.unauthenticated.Load() {
		return err, false
	}
	if err == nil {
		h.s.unauthenticated.Store(false)
		return nil, false
	}
	if !isConnError(err) {
		return err, false
	}
	return fmt.Errorf("federated: authentication required: the server closed a connection that gave no password (%v)", err), true
}

// explainReply explains Redis's answer to a command of more than ten
// arguments (a script call, a metric write) from a connection that has not
// authenticated: a protocol error, where a shorter command gets NOAUTH.
// Redis closes the connection after it, which the hook notes.
func (h healthHook) explainReply(err error) error {
	var reply redis.Error
	if errors.As(err, &reply) && strings.HasPrefix(reply.Error(), "ERR Protocol error: unauthenticated") {
		h.s.unauthenticated.Store(true)
		return fmt.Errorf("federated: authentication required: the server refused a long command from a connection that gave no password (%w)", err)
	}
	return err
}

func (h healthHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		late := ctx.Err() != nil
		err := next(ctx, cmds)
		if explained, ok := h.unauthenticated(err); ok {
			err = explained
			for _, cmd := range cmds {
				if e := cmd.Err(); e == nil || isConnError(e) {
					cmd.SetErr(explained)
				}
			}
		}
		if err != nil {
			for _, cmd := range cmds {
				if e := cmd.Err(); e != nil {
					if explained := h.explainReply(e); explained != e {
						cmd.SetErr(explained)
					}
				}
			}
			if fault := firstFault(ctx, cmds); fault != nil && !late {
				if !busyPool(h.rc, fault) {
					h.fault(fault)
				}
			} else if unanswered(cmds) {
				err = &ServerError{Node: h.s.node, Server: h.s.addr, Err: err}
				for _, cmd := range cmds {
					cmd.SetErr(err)
				}
			}
		}
		return err
	}
}

// unanswered reports a failed pipeline none of whose commands has an error.
// go-redis leaves them so when Redis refuses to set the connection up (a
// wrong password, an ACL user that may not HELLO): nothing was sent, and
// their zero values would pass for answers.
func unanswered(cmds []redis.Cmder) bool {
	for _, cmd := range cmds {
		if cmd.Err() != nil {
			return false
		}
	}
	return true
}

// isServerFault reports whether err shows the server to be unreachable or
// unresponsive. Replies from Redis, including error replies, show it alive.
// A timeout counts only when the command timeout was the deadline that ran
// out (or there was no deadline and a socket timeout fired), not a caller's
// shorter deadline; a cancelled context never counts (nor, see busyPool,
// a wait for a connection of a busy pool).
func isServerFault(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, redis.ErrClosed) || errors.Is(err, context.Canceled) ||
		isHookError(err) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return false
	}
	if isTimeout(err) {
		_, hasDeadline := ctx.Deadline()
		return hasCommandTimeout(ctx) || !hasDeadline
	}
	return isConnError(err)
}

// busyPoolError is the error of a command that busyPool reports.
func busyPoolError(node string, s *server, rc *redis.Client, err error) *ServerError {
	return &ServerError{Node: node, Server: s.addr,
		Err: fmt.Errorf("no connection of its pool (pool_size %d) came free in time: %w", rc.Options().PoolSize, err)}
}

// busyPool reports a command that ran out of time waiting for a connection
// of rc's pool while every one was in use: no fault of the server, which
// was not asked. go-redis returns the context's own error (or
// ErrPoolTimeout) both for that and for a dial that did not finish in time
// (it dials apart from the waiting command), which is the server's fault:
// a pool full and none of it idle tells the first. A *net.OpError is a
// read, write or dial that failed.
func busyPool(rc *redis.Client, err error) bool {
	var op *net.OpError
	if !errors.Is(err, redis.ErrPoolTimeout) && !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &op) {
		return false
	}
	st := rc.PoolStats()
	return int(st.TotalConns) >= rc.Options().PoolSize && st.IdleConns == 0
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isConnError reports an error of the connection itself: refused, reset,
// closed by the peer, or a reply the connection refused to read. The last
// comes wrapped in a *net.OpError, but is named here so that a server that
// sends one is taken for down whatever wraps the error on its way; all but
// a value go-redis cannot parse, which Redis itself sends as some scripts'
// answers: the command's own failure, as a reply error is.
func isConnError(err error) bool {
	if isHookError(err) || errors.Is(err, replyguard.ErrUnreadable) {
		return false // a user's hook's, or an answer's, not the connection's
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, ErrReplyTooLarge) || errors.Is(err, ErrMalformedReply) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op)
}

// isRetryable reports a failure after which the command can go to another
// server of the group: the connection failed rather than timed out, or
// than answered with a reply refused (the command ran). Like go-redis's
// own retries, this may apply a command twice if the server died after
// executing it and before answering.
func isRetryable(err error) bool {
	return !isTimeout(err) && isConnError(err) &&
		!errors.Is(err, ErrReplyTooLarge) && !errors.Is(err, ErrMalformedReply)
}

// retries counts the tries of one command or batch after failures of its
// server: a failover to each other server of the group at most once, and
// one more try on the same server when the failure came from a connection
// of its replaced client (see healthHook), which says nothing about the
// server as it is now.
type retries struct {
	failovers int
	fresh     bool // the same server was tried again on its new client
}

// leave reports whether to try another server of n after a server refused
// a write, and counts the try: each other server of the group at most once,
// failovers included.
func (r *retries) leave(n *node) bool {
	if r.failovers >= len(n.servers)-1 {
		return false
	}
	r.failovers++
	return true
}

// again reports whether to try again after a failure on s, and counts the
// try: the failure came from a client of s since replaced, or s was marked
// down and another server of n may be up.
func (r *retries) again(n *node, s *server, replaced bool) bool {
	switch {
	case replaced && !r.fresh:
		r.fresh = true
		return true
	case s.down.Load() && r.failovers < len(n.servers)-1:
		r.failovers++
		return true
	}
	return false
}

// heartbeat sends every up server a PING each HealthCheckInterval, so that
// a server that dies while no command goes to it (a group's standby, a node
// idle for a while) is marked down within about the interval and the
// command timeout, by the health hook, instead of when a command next
// finds it. A down server is left to its recheck loop. It ends on Close,
// cutting short the PINGs under way.
func (c *Client) heartbeat() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() { cancel(); <-stopped }()
	t := time.NewTicker(c.opts.HealthCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.pingUp(ctx)
	}
}

// pingUp pings every up server at once and waits for the answers.
func (c *Client) pingUp(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range c.topo.Load().servers {
		if s.down.Load() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := c.withTimeout(ctx)
			defer cancel()
			rc := s.client.Load()
			err := rc.Ping(ctx).Err() // a failure marks s down, in the health hook
			if err != nil && busyPool(rc, err) {
				// Every connection is in use, slow commands or a server
				// that stopped answering them: ask on one of its own.
				if err := c.probe(s); !probeUp(err) {
					c.markDown(s, rc, err)
				}
			}
		}()
	}
	wg.Wait()
}
