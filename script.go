package federated

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ScriptCall is a Lua script call that RunOnNode sends to a node. Scripts
// run on standalone servers: their keys need not be declared in Keys.
type ScriptCall struct {
	Script *redis.Script
	Keys   []string
	Args   []any
	// Idempotent says that running the call twice does what running it
	// once does (adding members to a sorted set, say). Such a call goes to
	// the next up server of the node's group after any failure of its
	// server: a timeout, or a refusal that passes (ErrTemporary: out of
	// memory, loading, busy, a read-only replica), after which the refusing
	// server, which is not marked down, stops being the node's current
	// one. A call that is not idempotent goes to the next server only when
	// its connection failed (so at least once, as go-redis's own retries),
	// never after a timeout or a refusal: the server may have run it.
	Idempotent bool
	// Copies, for an idempotent call, is how many servers of the node's
	// group must run it before RunOnNode returns: the current server, then
	// the next up ones. Zero means one.
	Copies int
}

// ScriptReply is one server's answer to a ScriptCall.
type ScriptReply struct {
	Server string // host:port
	Val    any
}

// RunOnNode runs a script call on a node's current server, with the
// client's failover rules (see ScriptCall.Idempotent), and returns the
// answer of each server that ran it: one, or Copies of them, the first
// from the server that ran it first. Each try has its own command
// timeout. Its errors are *ServerError values that name the node and the
// server; when fewer servers than Copies could run an idempotent call, the
// error says how many did and why each other failed, and matches
// ErrServerDown where one was down: send the call again.
func (c *Client) RunOnNode(ctx context.Context, node string, call ScriptCall) ([]ScriptReply, error) {
	n, err := c.topo.Load().node(node)
	if err != nil {
		return nil, err
	}
	return c.runOnNode(ctx, n, &call)
}

// runOnNode is RunOnNode on a node of the topology.
func (c *Client) runOnNode(ctx context.Context, n *node, call *ScriptCall) ([]ScriptReply, error) {
	s, val, err := c.runCurrent(ctx, n, call)
	if err != nil {
		return nil, err
	}
	replies := []ScriptReply{{Server: s.addr, Val: val}}
	if call.Idempotent && call.Copies > 1 {
		return c.runCopies(ctx, n, s, call, replies)
	}
	return replies, nil
}

// runCurrent runs a call on the node's current server, and on the next
// ones as the call's failover rules allow. It returns the server that ran
// it.
func (c *Client) runCurrent(ctx context.Context, n *node, call *ScriptCall) (*server, any, error) {
	var tries retries
	var left []error // the failures of the servers it left, each a *ServerError
	for {
		s, err := c.currentServer(n)
		if err != nil {
			return nil, nil, err // every server down: the error names each and why
		}
		rc := s.client.Load()
		val, err := c.runServer(ctx, s, rc, call.Script, call.Keys, call.Args)
		switch {
		case err == nil:
			return s, val, nil
		case ctx.Err() != nil || errors.Is(err, ErrClosed):
			return s, nil, err
		case errors.Is(err, ErrTemporary):
			if !call.Idempotent || !tries.leave(n) {
				return s, nil, failedOnEach(n, left, err)
			}
			if !c.leave(n, s, err) {
				// No other server up: those that are down are the
				// node's failures too, not sent to.
				return s, nil, failedOnEach(n, append(left, downFaults(n, s, left)...), err)
			}
			left = append(left, err)
			continue
		}
		var se *ServerError
		retry := call.Idempotent || isRetryable(err)
		if !errors.As(err, &se) || !retry || !tries.again(n, s, rc != s.client.Load()) {
			return s, nil, failedOnEach(n, left, err) // refused by Redis, or no try left
		}
		left = append(left, err)
	}
}

// downFaults returns, for each server of n but s that is marked down and
// not among the failures in left, its down error.
func downFaults(n *node, s *server, left []error) []error {
	var out []error
	for _, other := range n.servers {
		if other == s || !other.down.Load() || slices.ContainsFunc(left, func(err error) bool {
			var se *ServerError
			return errors.As(err, &se) && se.Server == other.addr
		}) {
			continue
		}
		out = append(out, &ServerError{Node: other.node, Server: other.addr, Err: other.downReason(), down: true})
	}
	return out
}

// failedOnEach returns the error of a call that failed on a server after
// it left others of n, each for a failure of its own (left): one that
// names every server and why, so that an operator who mends one server
// is not left with a node that still fails. A server tried twice (its
// client replaced meanwhile) is named once, with its last failure.
func failedOnEach(n *node, left []error, last error) error {
	if len(left) == 0 {
		return last
	}
	faults := make([]error, 0, len(left)+1)
	for _, err := range append(left, last) {
		var se *ServerError
		if errors.As(err, &se) {
			faults = slices.DeleteFunc(faults, func(f error) bool {
				var other *ServerError
				return errors.As(f, &other) && other.Server == se.Server
			})
		}
		faults = append(faults, err)
	}
	if len(faults) == 1 {
		return last
	}
	return &ServerError{Node: n.name, Err: &eachFailedError{faults: faults}}
}

// eachFailedError is the failure of a call that failed on each server it
// was tried on, and on those it was not sent to for being down.
type eachFailedError struct {
	faults []error // each a *ServerError, in the order tried, the servers down before the last
}

// Error names each server and why it failed.
func (e *eachFailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "failed on each of %d servers", len(e.faults))
	writeFaults(&b, e.faults)
	return b.String()
}

// Unwrap returns each server's failure, so that the call matches
// ErrServerDown when a server was down, and ErrTemporary when one refused.
func (e *eachFailedError) Unwrap() []error { return e.faults }

// writeFaults writes each server's failure after a "; ".
func writeFaults(b *strings.Builder, faults []error) {
	for _, err := range faults {
		var se *ServerError
		if errors.As(err, &se) && se.Server != "" {
			fmt.Fprintf(b, "; %s: %v", se.Server, se.Err)
		} else {
			fmt.Fprintf(b, "; %v", err)
		}
	}
}

// runCopies runs an idempotent call that first ran on first on the servers
// of n after it, in group order, until Copies servers have run it, so that
// what it wrote outlives the loss of any one of them. Each copy has its own
// command timeout and the first copy's rules: a server that is down, fails,
// or refuses for a reason that passes is left for the next, and a failure
// that came from a replaced client is tried once more on the new one.
func (c *Client) runCopies(ctx context.Context, n *node, first *server, call *ScriptCall, replies []ScriptReply) ([]ScriptReply, error) {
	var faults []error
	from := slices.Index(n.servers, first)
copies:
	for k := 1; k < len(n.servers) && len(replies) < call.Copies; k++ {
		s := n.servers[(from+k)%len(n.servers)]
		rc := s.client.Load()
		val, err := c.runServer(ctx, s, rc, call.Script, call.Keys, call.Args)
		var se *ServerError
		if err != nil && ctx.Err() == nil && errors.As(err, &se) && rc != s.client.Load() {
			val, err = c.runServer(ctx, s, nil, call.Script, call.Keys, call.Args)
		}
		switch {
		case err != nil && (errors.Is(err, ErrClosed) || ctx.Err() != nil):
			return nil, err
		case err != nil:
			faults = append(faults, err)
			if !fromServer(err) {
				// A hook's refusal is the application's, not the server's:
				// no other server makes the copy in its place.
				break copies
			}
		default:
			replies = append(replies, ScriptReply{Server: s.addr, Val: val})
		}
	}
	if len(replies) < call.Copies {
		held := make([]string, len(replies))
		for i, r := range replies {
			held[i] = r.Server
		}
		return nil, &ServerError{Node: n.name, Err: &copiesError{want: call.Copies, held: held, faults: faults}}
	}
	return replies, nil
}

// fromServer reports whether err, of a call on one server, is the
// server's: a reply, a failure of its connection, a timeout, the server
// down or its pool full. Any other came from the application's hooks
// (which may fail a command with any error of their own).
func fromServer(err error) bool {
	var reply redis.Error
	return !isHookError(err) && (errors.As(err, &reply) || isConnError(err) || isTimeout(err) ||
		errors.Is(err, ErrServerDown) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, ErrMalformedReply))
}

// RunOnServer runs a Lua script on one server, bounded by the command
// timeout as a routed command is, and with the server's health tracked
// the same way: a server marked down is not asked, and nothing is sent
// again elsewhere. Its error is a *ServerError that names the server.
func (c *Client) RunOnServer(ctx context.Context, addr string, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	s, err := c.topo.Load().server(addr)
	if err != nil {
		cmd.SetErr(err)
		return cmd
	}
	val, err := c.runServer(ctx, s, nil, script, keys, args)
	cmd.SetVal(val)
	cmd.SetErr(err)
	return cmd
}

// runServer runs a script on one server, through rc, the server's client
// the caller loaded (nil for the current one).
func (c *Client) runServer(ctx context.Context, s *server, rc *redis.Client, script *redis.Script, keys []string, args []any) (any, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if s.down.Load() {
		return nil, &ServerError{Node: s.node, Server: s.addr, Err: s.downReason(), down: true}
	}
	if rc == nil {
		rc = s.client.Load()
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	val, err := script.Run(ctx, rc, keys, args...).Result()
	switch {
	case err == nil:
		return val, nil
	case busyPool(rc, err):
		return nil, busyPoolError(s.node, s, rc, err)
	}
	return nil, &ServerError{Node: s.node, Server: s.addr, Err: err, down: s.down.Load()}
}

// copiesError is the failure of an idempotent call that fewer servers of
// its group ran than ScriptCall.Copies asks.
type copiesError struct {
	want   int
	held   []string // the servers that ran the call
	faults []error  // of the servers that did not, each a *ServerError
}

// Error says how many copies were made, where, and why each other server
// of the group made none.
func (e *copiesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "not acknowledged: %d of %d copies made (on %s)", len(e.held), e.want, strings.Join(e.held, ", "))
	if len(e.faults) == 0 {
		b.WriteString("; the group has no other server")
	}
	writeFaults(&b, e.faults)
	return b.String()
}

// Unwrap returns each server's failure, so that the call matches
// ErrServerDown when a server was down, and ErrTemporary when one refused.
func (e *copiesError) Unwrap() []error { return e.faults }

// leave moves a node's commands off s, which refused a write, to the next
// up server of its group. It reports false when there is none.
func (c *Client) leave(n *node, s *server, cause error) bool {
	from := slices.Index(n.servers, s)
	for k := 1; k < len(n.servers); k++ {
		j := (from + k) % len(n.servers)
		next := n.servers[j]
		if next.down.Load() {
			continue
		}
		if n.current.CompareAndSwap(int32(from), int32(j)) {
			next.takeovers.Add(1)
			c.opts.Logger.Warn("federated: node failed over: its server refuses writes", "node", n.name,
				"from", s.addr, "to", next.addr, "err", cause)
		}
		return true
	}
	return false
}
