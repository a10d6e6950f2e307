package federated

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// The blocking API is go-redis's, routed: the typed commands of
// redis.Cmdable, Do and Process, pipelines and transactions, each command
// sent to the node of its keys (see route.go). This file holds what
// redis.UniversalClient adds to redis.Cmdable, and Group.

var (
	_ redis.UniversalClient = (*Client)(nil)
	_ redis.Scripter        = (*Client)(nil)
	_ redis.Cmdable         = (*Group)(nil)
)

// Do sends any command, given as go-redis's Do takes it, name first, to
// the node of its keys: c.Do(ctx, "SET", "k", "v"). A command whose keys
// are on several nodes fails with ErrCrossNode, and one with no key with
// ErrKeyless (see Client), before anything is sent.
func (c *Client) Do(ctx context.Context, args ...any) *redis.Cmd { return c.router.Do(ctx, args...) }

// Process sends a go-redis command, routed as Do's.
func (c *Client) Process(ctx context.Context, cmd redis.Cmder) error {
	return c.router.Process(ctx, cmd)
}

// Watch runs fn in a transaction of the node of keys, which must all be on
// one node (ErrCrossNode otherwise), on a connection of that node's current
// server: go-redis's optimistic locking, WATCH then MULTI/EXEC. A command
// of fn (on tx, or in its pipelines) with a key of another node fails with
// ErrCrossNode before it is sent, and so does every command of a pipeline
// that holds one. When the federation's nodes change during fn so that
// its keys are elsewhere (a reload that renamed their node, or gave it
// other servers), a command of fn fails with redis.TxFailedErr, as for a
// watched key that changed, and so does EXEC when a watched key is
// elsewhere now: run the transaction again.
func (c *Client) Watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	return c.watch(ctx, routing{}, fn, keys...)
}

// watch is Watch with a routing.
func (c *Client) watch(ctx context.Context, r routing, fn func(*redis.Tx) error, keys ...string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(keys) == 0 && !r.grouped {
		return fmt.Errorf("%w: WATCH needs a key", ErrKeyless)
	}
	var n *node
	topo := c.topo.Load() // one for every key, as placeCmd
	if r.grouped {
		var err error
		if n, err = topo.route(r.group); err != nil {
			return err
		}
	} else {
		for _, k := range keys {
			other, err := topo.route(c.hashKey("", k))
			switch {
			case err != nil:
				return err
			case n == nil:
				n = other
			case other != n:
				return fmt.Errorf("%w: WATCH: key %q is on node %s, key %q on node %s", ErrCrossNode, keys[0], n.name, k, other.name)
			}
		}
	}
	s, err := c.currentServer(n)
	if err != nil {
		return err
	}
	// WATCH gets the command timeout, and fn's commands the deadlines fn
	// gives them: fn may take its time, and go-redis's UNWATCH at its end,
	// sent with ctx, is not sent with a command timeout that fn used up.
	var own error        // fn's error, when none of its commands failed with it
	var failed cmdErrors // fn's commands' errors
	rc := s.client.Load()
	err = rc.Watch(ctx, func(tx *redis.Tx) error {
		if len(keys) > 0 {
			wctx, cancel := c.withTimeout(ctx)
			err := tx.Watch(wctx, keys...).Err()
			cancel()
			if err != nil {
				return err
			}
		}
		failed.rename = func(err error) error { return nameRefusal(n.name, s, err) }
		tx.AddHook(&failed)
		watched := make([]string, len(keys))
		for i, k := range keys {
			watched[i] = c.hashKey("", k)
		}
		tx.AddHook(nodeGuard{c: c, r: r, n: n, s: s, topo: topo, watched: &watched})
		err := fn(tx)
		if !failed.include(err) {
			own = err
		}
		return err
	})
	if err != nil && err == own {
		return err // the caller's, as it is
	}
	// Once Close has begun, what failed under fn failed for it, in more
	// ways than go-redis names (a closed pool, a connection's state): the
	// error is ErrClosed, as for any command Close cut off. A reply of
	// Redis (a failed transaction) stays as it is; a fault of the server
	// names it, as every routed command's does.
	if closed := c.whenClosed(err); closed != err {
		return closed
	}
	if busyPool(rc, err) {
		return busyPoolError(n.name, s, rc, err)
	}
	// (WATCH ran under the command timeout, not ctx: a timeout of a server
	// the health hook marked down for it is the server's too.)
	if isServerFault(ctx, err) || isTimeout(err) && s.down.Load() {
		return &ServerError{Node: n.name, Server: s.addr, Err: err, down: s.down.Load()}
	}
	return nameRefusal(n.name, s, err)
}

// nodeGuard is a hook of a Watch's transaction: a command whose keys are
// on another node than the transaction's would run on the transaction's
// server all the same, where its keys do not live. It fails with
// ErrCrossNode before it is sent, and so does every command of a pipeline
// that holds one. Where the key was on the transaction's node, and so on
// its server, when the Watch began (every command of a group's Watch),
// but the federation's nodes changed since so that it is elsewhere now (a
// reload that renamed the node, or gave it other servers), it fails with
// redis.TxFailedErr, as a watched key that changed: the caller's loop
// runs the transaction again, where the key is now. EXEC fails so too
// when a watched key is elsewhere now, though no command of fn names it:
// a write elsewhere would not abort the transaction, which read the key
// where it was.
type nodeGuard struct {
	c       *Client
	r       routing
	n       *node
	s       *server   // the transaction's
	topo    *topology // when the Watch began
	watched *[]string // the watched keys, hashed
}

var _ redis.Hook = nodeGuard{}

// check returns the error of a command with a key of another node, or of
// a Watch whose keys are elsewhere now.
func (g nodeGuard) check(ctx context.Context, cmd redis.Cmder) error {
	name := strings.ToLower(cmd.Name())
	if name == "exec" {
		if g.r.grouped {
			return g.moved(g.c.topo.Load(), g.r.group)
		}
		now := g.c.topo.Load()
		for _, hashed := range *g.watched {
			if err := g.moved(now, hashed); err != nil {
				return err
			}
		}
		return nil
	}
	if name != "watch" && txCommands[name] {
		return nil // MULTI, DISCARD...: WATCH has keys
	}
	g.c.noteWaitOf(cmd) // before it reads the topology, as placeCmd
	now := g.c.topo.Load()
	if g.r.grouped {
		return g.moved(now, g.r.group)
	}
	var held [4]string
	keys, err := g.c.commandKeys(ctx, g.topo, cmd, held[:0])
	if err != nil {
		return err
	}
	for _, k := range keys {
		hashed := g.c.hashKey("", k)
		then, err := g.topo.route(hashed)
		switch {
		case err != nil:
			return err
		case then != g.n:
			return fmt.Errorf("%w: %s in a Watch of node %s: key %q is on node %s", ErrCrossNode, cmdName(cmd), g.n.name, k, then.name)
		}
		if err := g.moved(now, hashed); err != nil {
			return err
		}
		if name == "watch" {
			*g.watched = append(*g.watched, hashed)
		}
	}
	return nil
}

// moved returns redis.TxFailedErr when what hashes to hashed, on the
// transaction's node and server when the Watch began, is elsewhere in
// the topology now.
func (g nodeGuard) moved(now *topology, hashed string) error {
	if now == g.topo {
		return nil
	}
	n, err := now.route(hashed)
	switch {
	case err != nil:
		return err
	case n != g.n && (n.name != g.n.name || !slices.Contains(n.servers, g.s)):
		return redis.TxFailedErr
	}
	return nil
}

func (g nodeGuard) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g nodeGuard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := g.check(ctx, cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (g nodeGuard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if err := g.check(ctx, cmd); err != nil {
				for _, cmd := range cmds {
					cmd.SetErr(err)
				}
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// cmdErrors is a hook that keeps the errors of the commands it sees,
// passed through rename (nil for none) first.
type cmdErrors struct {
	rename func(error) error
	mu     sync.Mutex
	errs   []error
}

// include reports whether err is, or wraps, an error a command failed
// with.
func (h *cmdErrors) include(err error) bool {
	if err == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.errs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// keep keeps err, renamed, and returns it renamed.
func (h *cmdErrors) keep(err error) error {
	if err == nil {
		return nil
	}
	if h.rename != nil {
		err = h.rename(err)
	}
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
	return err
}

// keepCmd keeps a command's error, renamed on the command too, and returns
// it.
func (h *cmdErrors) keepCmd(cmd redis.Cmder) error {
	err := cmd.Err()
	if kept := h.keep(err); kept != err {
		cmd.SetErr(kept)
		return kept
	}
	return err
}

func (h *cmdErrors) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdErrors) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		switch {
		case err == nil:
			return nil
		case cmd.Err() == nil:
			return h.keep(err)
		}
		return h.keepCmd(cmd)
	}
}

func (h *cmdErrors) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			return nil
		}
		// The pipeline's error is most often its first command's: the
		// same, renamed. A transaction that Redis discarded (EXECABORT,
		// which says no more than that a command was refused as it was
		// queued) gives that command's error.
		var out, cause error
		for _, cmd := range cmds {
			raw := cmd.Err()
			kept := h.keepCmd(cmd)
			if out == nil && raw != nil && errors.Is(err, raw) {
				out = kept
			}
			if cause == nil && kept != nil && !errors.Is(kept, redis.Nil) && !redis.HasErrorPrefix(kept, "EXECABORT") {
				cause = kept
			}
		}
		if out == nil {
			out = h.keep(err)
		}
		if cause != nil && redis.HasErrorPrefix(out, "EXECABORT") {
			return cause
		}
		return out
	}
}

// Subscribe subscribes to channels on the node of the first, the node a
// PUBLISH to it goes to: channels are placed as keys are. As with
// go-redis's Ring, the others are subscribed on that node too: subscribe
// to the channels of one node per PubSub.
//
// The subscription is on the node's current server when it is made, and
// stays there: it reconnects to that server after a failure, as go-redis's
// do. Made while no server of the node is up, it is on the current one all
// the same, and connects once that server is back; its reads fail with the
// server's dial error until then (in a group, should another server come
// back first, the node fails over to it: subscribe again, as after any
// failover). The servers of a group do not share messages, so once the node
// fails over to another server of its group, what is published through the
// client goes there and no longer reaches the subscription: subscribe again
// after a failover (NodeToServer says where the node is). A subscription
// ends when its node leaves the federation, and at Close. A PubSub made
// after Close, or ended by it, answers go-redis's redis.ErrClosed, not
// ErrClosed: go-redis reads it, and wraps no error of the client's; a read
// under way as Close ends it fails with the closed connection's error.
//
// Ending a subscription closes its PubSub, which ends the goroutine that
// its Channel runs; closing it again, as go-redis asks of its owner, only
// returns an error. (A goroutine that is handing a message to a reader
// who stopped reading, its channel's buffer full, waits for it up to the
// channel's send timeout first: a minute, or what
// redis.WithChannelSendTimeout gives Channel.)
func (c *Client) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	rc, s, hashed := c.pubsubClient(channels)
	return c.keepSubscription(s, rc.Subscribe(ctx, channels...), hashed)
}

// PSubscribe subscribes to patterns, on the node of the first, as
// Subscribe does: a pattern matches the channels of that node only.
func (c *Client) PSubscribe(ctx context.Context, patterns ...string) *redis.PubSub {
	rc, s, hashed := c.pubsubClient(patterns)
	return c.keepSubscription(s, rc.PSubscribe(ctx, patterns...), hashed)
}

// SSubscribe subscribes to shard channels on the node of the first, as
// Subscribe does.
func (c *Client) SSubscribe(ctx context.Context, channels ...string) *redis.PubSub {
	rc, s, hashed := c.pubsubClient(channels)
	return c.keepSubscription(s, rc.SSubscribe(ctx, channels...), hashed)
}

// pubsubClient returns the subscriptions' client of the current server of
// the first channel's node (see pubsubOf), that server and the first
// channel, hashed; or the router when there is none (no channel, an
// unknown node, the client closed), whose PubSub then fails to connect
// with a clear error, and a nil server. A node none of whose servers is up
// has its current server's: the subscription connects once that server is
// back, as go-redis's does; on the router, it never would.
func (c *Client) pubsubClient(channels []string) (_ *redis.Client, _ *server, hashed string) {
	if len(channels) == 0 || c.closed.Load() {
		return c.router, nil, ""
	}
	n, err := c.route("", channels[0])
	if err != nil {
		return c.router, nil, ""
	}
	s, err := c.currentServer(n)
	if err != nil {
		s = n.servers[n.current.Load()]
	}
	if ps := c.pubsubOf(s); ps != nil {
		return ps, s, c.hashKey("", channels[0])
	}
	return c.router, nil, ""
}

// keepSubscription keeps ps, made on the server s (nil for the router)
// and placed by the channel hashed, to close with the server, or at
// Close. A change of nodes that moved the channel while ps was made,
// before it was kept, closes it as followKeys would have.
func (c *Client) keepSubscription(s *server, ps *redis.PubSub, hashed string) *redis.PubSub {
	if s == nil {
		return c.routerSubs.add(ps, "")
	}
	s.subs.add(ps, hashed)
	if !c.topo.Load().holds(s, hashed) {
		_ = ps.Close() // closeAll's second Close of it only fails
	}
	return ps
}

// pubsubOf returns the server's client for subscriptions, made at the
// first, or nil once the server left the federation or the client closed.
// Unlike the client of its commands, it is not replaced when the server
// comes back up, which would close a PubSub's connections for good: a
// PubSub on it reconnects after a failure as go-redis's do. It closes with
// the server.
func (c *Client) pubsubOf(s *server) *redis.Client {
	if ps := s.pubsub.Load(); ps != nil {
		return ps
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return nil
	}
	if ps := s.pubsub.Load(); ps != nil {
		return ps
	}
	// Made and stored under hooksMu, as markUp swaps a client in: a hook
	// added meanwhile is in it, or added to it.
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	ps := c.newRedisClientLocked(s, false)
	s.pubsub.Store(ps)
	return ps
}

// AddHook adds a go-redis hook to the client of every server, now and
// after any server's client is replaced (a recovered server gets a fresh
// one), after the hooks of Options.Hooks.
//
// A hook sits on a server's client, not around the federation's call: it
// sees each server a command or pipeline is sent to, a second after a
// failover within a group included, with the arguments the first one
// left, and the client's own traffic (health checks, go-redis's HELLO).
// The client places a command by its keys before any hook runs: a hook
// that rewrites a key (a prefix for a namespace) sends the command to the
// node of the key as given, and, not idempotent, rewrites it again on the
// next server of a failover. Place keys yourself (KeyToNode, a key
// group) instead. An error a hook makes (one its server did not return,
// io.EOF or a deadline of the hook's own included), and a hook that holds
// a command past its deadline, fail that command alone: the server is not
// marked down for it, nor is the command sent to another server;
// errors.Is finds the hook's error. A hook that panics fails the command,
// or every command of the pipeline, the same way, and the panic is logged
// with its stack: hooks run on the client's own goroutines too (health
// checks, each server's share of a pipeline), where a panic would end
// the process.
func (c *Client) AddHook(h redis.Hook) {
	c.AddServerHook(func(string) redis.Hook { return h })
}

// AddServerHook is AddHook with a hook made for each server by hook, which
// is given the server's address: for instrumentation that tells servers
// apart. hook is called for every server now and for every server client
// made later, and must not block, nor call the client's AddNode,
// RemoveNode, ReplaceNode, SetNodes, MarkServerUp, AddHook, AddServerHook
// or Close. AddServerHook waits for an AddNode, ReplaceNode or SetNodes
// under way, so that their servers get the hook too.
func (c *Client) AddServerHook(hook func(addr string) redis.Hook) {
	// AddNode, ReplaceNode and SetNodes make their servers' clients, with
	// the hooks then, and store them under topoMu: the hook waits for
	// them.
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	c.extraHooks = append(c.extraHooks, hook)
	for addr, s := range c.topo.Load().servers {
		s.client.Load().AddHook(shielded(hook(addr), c.opts.Logger))
		if ps := s.pubsub.Load(); ps != nil {
			ps.AddHook(shielded(hook(addr), c.opts.Logger))
		}
		s.waits.addHook(shielded(hook(addr), c.opts.Logger))
	}
}

// PoolStats returns the connection pool statistics of every server
// together.
func (c *Client) PoolStats() *redis.PoolStats {
	out := &redis.PoolStats{}
	for _, s := range c.topo.Load().servers {
		st := s.client.Load().PoolStats()
		out.Hits += st.Hits
		out.Misses += st.Misses
		out.Timeouts += st.Timeouts
		out.WaitCount += st.WaitCount
		out.WaitDurationNs += st.WaitDurationNs
		out.Unusable += st.Unusable
		out.TotalConns += st.TotalConns
		out.IdleConns += st.IdleConns
		out.StaleConns += st.StaleConns
	}
	return out
}

// errNoAutoPipeline is the error of the AutoPipeline calls.
var errNoAutoPipeline = errors.New("federated: auto-pipelining is not supported; use Pipelined, which sends each node's share at once")

// AutoPipeline is not supported, as with go-redis's Ring.
func (c *Client) AutoPipeline() (*redis.AutoPipeliner, error) { return nil, errNoAutoPipeline }

// AutoPipelineWithOptions is not supported, as with go-redis's Ring.
func (c *Client) AutoPipelineWithOptions(*redis.AutoPipelineOptions) (*redis.AutoPipeliner, error) {
	return nil, errNoAutoPipeline
}

// AsyncAutoPipeline is not supported, as with go-redis's Ring.
func (c *Client) AsyncAutoPipeline() (*redis.AutoPipeliner, error) { return nil, errNoAutoPipeline }

// AsyncAutoPipelineWithOptions is not supported, as with go-redis's Ring.
func (c *Client) AsyncAutoPipelineWithOptions(*redis.AutoPipelineOptions) (*redis.AutoPipeliner, error) {
	return nil, errNoAutoPipeline
}

// Group is the typed go-redis API with every key placed by a key group
// instead of by itself: every command lands on the group's node (the Perl
// module's [group, key]), whatever keys it names. Get one with
// Client.Group; it is safe for concurrent use.
type Group struct {
	cmdable
	c      *Client
	router *redis.Client
	name   string
}

// Group returns the typed API of a key group. The empty group is a group
// too, placed as the Perl module places it.
func (c *Client) Group(name string) *Group {
	rc := c.newRouter(name, true)
	return &Group{cmdable: rc, c: c, router: rc, name: name}
}

// Node returns the name of the group's node.
func (g *Group) Node() string { return g.c.topo.Load().ring.Locate(g.name) }

// Do sends any command, name first, to the group's node.
func (g *Group) Do(ctx context.Context, args ...any) *redis.Cmd { return g.router.Do(ctx, args...) }

// Process sends a go-redis command to the group's node.
func (g *Group) Process(ctx context.Context, cmd redis.Cmder) error {
	return g.router.Process(ctx, cmd)
}

// Watch runs fn in a transaction of the group's node, as Client.Watch.
func (g *Group) Watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	return g.c.watch(ctx, routing{group: g.name, grouped: true}, fn, keys...)
}

// All sends a command to every server of the group's node (query-all), as
// Client.All does.
func (g *Group) All(ctx context.Context, args ...any) ([]ServerResult, error) {
	return g.c.all(ctx, routing{group: g.name, grouped: true}, args...)
}

// processOn sends a command to a node's current server. When the connection
// fails, the server is marked down (by the health hook) and the command goes
// to the next up server of the group, each server at most once; when it
// failed on a connection of the server's replaced client (see healthHook),
// it goes to the same server again on the new one. A timeout is not
// retried: the command may have run. The error is set on cmd; the server
// that answered last is returned (nil for none). ctx bounds the command:
// the caller applies the command timeout (see blockingContext).
func (c *Client) processOn(ctx context.Context, n *node, cmd redis.Cmder) *server {
	return c.processWith(ctx, n, cmd, func(ctx context.Context, _ *server, rc *redis.Client, cmd redis.Cmder) error {
		return rc.Process(ctx, cmd)
	})
}

// processWith is processOn, sending the command to a server's client with
// send.
func (c *Client) processWith(ctx context.Context, n *node, cmd redis.Cmder, send func(context.Context, *server, *redis.Client, redis.Cmder) error) *server {
	if c.closed.Load() {
		cmd.SetErr(ErrClosed)
		return nil
	}
	var tries retries
	for {
		s, err := c.currentServer(n)
		if err != nil {
			cmd.SetErr(c.whenClosed(err))
			return nil
		}
		rc := s.client.Load()
		err = send(ctx, s, rc, cmd)
		if closed := c.whenClosed(err); closed != err {
			cmd.SetErr(closed)
			return s
		}
		if err == nil || !isServerFault(ctx, err) {
			if named := nameRefusal(n.name, s, err); named != err {
				cmd.SetErr(named)
			}
			return s
		}
		if busyPool(rc, err) {
			cmd.SetErr(busyPoolError(n.name, s, rc, err))
			return s
		}
		if isRetryable(err) && ctx.Err() == nil && tries.again(n, s, rc != s.client.Load()) {
			cmd.SetErr(nil)
			continue
		}
		cmd.SetErr(&ServerError{Node: n.name, Server: s.addr, Err: err, down: s.down.Load()})
		return s
	}
}

// whenClosed returns ErrClosed for a command's error that is not the
// server's reply, nor the caller's context, once c has closed, and err as
// it is otherwise: a command that passed the check for a closed client as
// Close began meets its server's client or connection closed under it,
// and go-redis answers that in more ways than one.
func (c *Client) whenClosed(err error) error {
	if err == nil || !c.closed.Load() || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return err
	}
	return ErrClosed
}

// cmdName names a command for errors.
func cmdName(cmd redis.Cmder) string { return strings.ToUpper(cmd.Name()) }
