package federated

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// The typed go-redis API. A Client embeds a go-redis client of no server
// whose hooks never let a command reach a connection of its own: they route
// it, by its keys, to the current server of the keys' node, with the
// client's failover. Every command of go-redis is so defined once, by
// go-redis, and reaches the federation the same way.

// ErrKeyless reports a command that names no key, which the client has no
// node to send to. Nothing is sent. Send it to one server with
// ServerClient, or to every server with ForEachServer. (A few keyless
// commands are sent to every server instead: see Client.) SCAN, which
// walks every node when sent alone, fails with it in a pipeline, a
// transaction or a chain.
var ErrKeyless = errors.New("federated: command names no key to route it by")

// errScanBatched is the error of a SCAN in a pipeline, a transaction or a
// chain.
var errScanBatched = fmt.Errorf("%w: SCAN cannot go in a pipeline, a transaction or a chain, which send each command to one server: its cursor is the client's, over every node (through a Group, every server of its node) in turn; send SCAN alone (Scan, ScanIterator), or to one server through ServerClient", ErrKeyless)

// ErrTxCommand reports MULTI, EXEC, DISCARD, WATCH or UNWATCH sent alone:
// the next command might run on another connection of the pool, or on
// another server. Nothing is sent. Use TxPipelined or Watch.
var ErrTxCommand = errors.New("federated: a transaction command sent alone; use TxPipelined or Watch")

// cmdable is the typed go-redis API, embedded in Client and Group by this
// unexported name so that only its methods are promoted.
type cmdable = redis.Cmdable

// newRouter returns a go-redis client whose commands are routed by hook:
// by the key group when grouped, else by each command's keys.
func (c *Client) newRouter(group string, grouped bool) *redis.Client {
	rc := redis.NewClient(&redis.Options{
		Addr:                     "federated.invalid:0", // never dialled: the hook sends nothing through it
		DisableIdentity:          true,
		MaxRetries:               -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	rc.AddHook(routeHook{c: c, group: group, grouped: grouped})
	return rc
}

// routeHook sends a router's commands to the federation.
type routeHook struct {
	c       *Client
	group   string
	grouped bool
}

var _ redis.Hook = routeHook{}

func (h routeHook) DialHook(redis.DialHook) redis.DialHook {
	return func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("federated: a router does not connect")
	}
}

func (h routeHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.routeOne(ctx, h.route(), cmd)
		return cmd.Err()
	}
}

func (h routeHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) >= 2 && cmds[0].Name() == "multi" && cmds[len(cmds)-1].Name() == "exec" {
			return h.c.routeTx(ctx, h.route(), cmds)
		}
		return h.c.routeMany(ctx, h.route(), cmds)
	}
}

// route returns the hook's routing: by group or by keys.
func (h routeHook) route() routing { return routing{group: h.group, grouped: h.grouped} }

// routing says how commands are placed: by their keys, or all by a key
// group.
type routing struct {
	group   string
	grouped bool
}

// txCommands are the transaction commands that may not be sent alone.
var txCommands = map[string]bool{"multi": true, "exec": true, "discard": true, "watch": true, "unwatch": true}

// broadcast are the keyless commands sent to every server of the
// federation, which all must take: loading and flushing scripts and
// functions, flushing data, PING. The reply is the first server's; a
// SCRIPT EXISTS answers true for a script only where every server has it.
var broadcast = map[string]bool{
	"ping": true, "flushall": true, "flushdb": true,
	"script|load": true, "script|exists": true, "script|flush": true,
	"function|load": true, "function|delete": true, "function|flush": true, "function|restore": true,
}

// target is where a command goes: a node, or every server.
type target struct {
	node      *node
	broadcast bool
}

// placeCmd finds where a command goes, or sets its error and returns
// false. It sends nothing.
func (c *Client) placeCmd(ctx context.Context, r routing, cmd redis.Cmder) (target, bool) {
	// A wait is noted before the topology is read: a server that leaves
	// meanwhile then keeps its connections until the wait is over (see
	// closeLater).
	c.noteWaitOf(cmd)
	return c.placeIn(ctx, c.topo.Load(), r, cmd)
}

// placeIn is placeCmd in the topology topo: every key of the command is
// placed in it, since a node replaced meanwhile is another *node of the
// same name, and a node renamed maps keys otherwise.
func (c *Client) placeIn(ctx context.Context, topo *topology, r routing, cmd redis.Cmder) (target, bool) {
	name := strings.ToLower(cmd.Name())
	if txCommands[name] {
		cmd.SetErr(fmt.Errorf("%w (%s)", ErrTxCommand, strings.ToUpper(name)))
		return target{}, false
	}
	if name == "scan" {
		// SCAN sent alone walks the nodes one after another (see scan.go)
		// and is not placed: what reaches here is a pipeline's, a
		// transaction's or a chain's. Sent to one server, it would answer
		// with that server's cursor, which a SCAN of the client reads as
		// another.
		cmd.SetErr(errScanBatched)
		return target{}, false
	}
	args := cmd.Args()
	if r.grouped || name == "publish" || name == "spublish" {
		// Placed without commandKeys, which refuses these first.
		if err := checkArgs(args); err != nil {
			cmd.SetErr(err)
			return target{}, false
		}
	}
	if r.grouped {
		n, err := topo.route(r.group)
		if err != nil {
			cmd.SetErr(err)
			return target{}, false
		}
		return target{node: n}, true
	}
	if name == "publish" || name == "spublish" {
		if len(args) < 2 {
			cmd.SetErr(fmt.Errorf("federated: %s needs a channel", strings.ToUpper(name)))
			return target{}, false
		}
		// A channel is placed as a key would be, and so is a subscription.
		n, err := topo.route(c.hashKey("", argString(args[1])))
		if err != nil {
			cmd.SetErr(err)
			return target{}, false
		}
		return target{node: n}, true
	}
	var held [4]string
	keys, err := c.commandKeys(ctx, topo, cmd, held[:0])
	if err != nil {
		cmd.SetErr(err)
		return target{}, false
	}
	if len(keys) == 0 {
		full := name
		if containers[name] && len(args) > 1 {
			full = name + "|" + strings.ToLower(argString(args[1]))
		}
		if broadcast[full] {
			return target{broadcast: true}, true
		}
		cmd.SetErr(fmt.Errorf("%w: %s", ErrKeyless, strings.ToUpper(strings.ReplaceAll(full, "|", " "))))
		return target{}, false
	}
	first, err := topo.route(c.hashKey("", keys[0]))
	if err != nil {
		cmd.SetErr(err)
		return target{}, false
	}
	for _, k := range keys[1:] {
		n, err := topo.route(c.hashKey("", k))
		if err != nil {
			cmd.SetErr(err)
			return target{}, false
		}
		if n != first {
			cmd.SetErr(fmt.Errorf("%w: %s: key %q is on node %s, key %q on node %s",
				ErrCrossNode, strings.ToUpper(name), keys[0], first.name, k, n.name))
			return target{}, false
		}
	}
	return target{node: first}, true
}

// routeOne places a command and sends it; its result or error is on cmd.
func (c *Client) routeOne(ctx context.Context, r routing, cmd redis.Cmder) {
	if c.closed.Load() {
		cmd.SetErr(ErrClosed)
		return
	}
	if strings.EqualFold(cmd.Name(), "scan") {
		c.scan(ctx, r, cmd)
		return
	}
	t, ok := c.placeCmd(ctx, r, cmd)
	if !ok {
		return
	}
	if t.broadcast {
		t := c.topo.Load()
		servers := make([]*server, 0, len(t.servers))
		for _, addr := range t.addrs() {
			servers = append(servers, t.servers[addr])
		}
		c.sendEach(ctx, servers, cmd)
		return
	}
	all := c.queryAll.Load() && len(t.node.servers) > 1
	if all {
		// The copies of the command for the other servers are go-redis's
		// plain commands, read under the read timeout as a pipeline's.
		if _, ok := c.waitFits(cmd, "with query-all on"); !ok {
			return
		}
	}
	ctx, cancel, forever, ok := c.blockingContext(ctx, cmd)
	if !ok {
		return
	}
	defer cancel()
	switch {
	case all:
		c.sendEach(ctx, t.node.servers, cmd) // each server under ctx's bound
	case forever:
		send := c.sendForever(r)
		for {
			c.processWith(ctx, t.node, cmd, send)
			if !errors.Is(cmd.Err(), errWaitMoved) {
				break
			}
			// Its keys moved: where they are now.
			cmd.SetErr(nil)
			if t, ok = c.placeCmd(ctx, r, cmd); !ok {
				break
			}
		}
	default:
		c.processOn(ctx, t.node, cmd)
	}
}

// routeMany places a pipeline's commands and sends them, each node's at
// once, every node at the same time; every command gets its result or
// error. A command sent to every server (FLUSHDB, PING...) goes once the
// commands before it are answered, and before those after it. With
// query-all on, each command goes to every server of its node's group, as
// a command sent alone does: it holds the first server's reply, and every
// server's error. It returns the first error, as go-redis's pipelines do.
func (c *Client) routeMany(ctx context.Context, r routing, cmds []redis.Cmder) error {
	all := c.queryAll.Load()
	f := &Flight{c: c, version: c.topo.Load().version, done: make(chan struct{})}
	send := func() {
		if len(f.queue) == 0 {
			return
		}
		f.start(ctx, newPlan(), true)
		<-f.done
		f.joinCopies()
		f = &Flight{c: c, version: c.topo.Load().version, done: make(chan struct{})}
	}
	for _, cmd := range cmds {
		t, ok := c.placeCmd(ctx, r, cmd)
		switch {
		case !ok:
		case t.broadcast:
			send()
			c.routeOne(ctx, r, cmd)
		default:
			f.queue = append(f.queue, queued{node: t.node, cmd: cmd, all: all && len(t.node.servers) > 1, r: r})
		}
	}
	send()
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return err
		}
	}
	return nil
}

// routeTx sends a transaction, MULTI and EXEC around commands, to the one
// node of their keys as a MULTI/EXEC of that node's current server. It is
// sent once: a transaction whose connection failed may have run.
func (c *Client) routeTx(ctx context.Context, r routing, cmds []redis.Cmder) error {
	inner := cmds[1 : len(cmds)-1]
	fail := func(err error) error {
		for _, cmd := range cmds {
			cmd.SetErr(err)
		}
		return err
	}
	if c.closed.Load() {
		return fail(ErrClosed)
	}
	var (
		n     *node
		first redis.Cmder // of n
	)
	topo := c.topo.Load() // one for every command, as for every key of one
	for _, cmd := range inner {
		t, ok := c.placeIn(ctx, topo, r, cmd)
		switch {
		case !ok:
			return fail(cmd.Err())
		case t.broadcast:
			return fail(fmt.Errorf("%w: %s in a transaction names no key", ErrKeyless, strings.ToUpper(cmd.Name())))
		case n != nil && t.node != n:
			return fail(fmt.Errorf("%w: a transaction's %s is on node %s, its %s on node %s",
				ErrCrossNode, cmdWithKey(first), n.name, cmdWithKey(cmd), t.node.name))
		case n == nil:
			n, first = t.node, cmd
		}
	}
	if n == nil {
		return nil // an empty transaction
	}
	s, err := c.currentServer(n)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	rc := s.client.Load()
	pipe := rc.TxPipeline()
	for _, cmd := range inner {
		_ = pipe.Process(ctx, cmd) // only queues
	}
	_, err = pipe.Exec(ctx)
	if closed := c.whenClosed(err); closed != err {
		return fail(closed)
	}
	if err != nil && busyPool(rc, err) {
		return fail(busyPoolError(n.name, s, rc, err))
	}
	if err != nil && isServerFault(ctx, err) {
		return fail(&ServerError{Node: n.name, Server: s.addr, Err: err, down: s.down.Load()})
	}
	if err != nil {
		for _, cmd := range cmds {
			if e := cmd.Err(); e != nil {
				if named := nameRefusal(n.name, s, e); named != e {
					cmd.SetErr(named)
				}
			}
		}
		err = nameRefusal(n.name, s, err)
		// EXECABORT says no more than that a command was refused as it
		// was queued: that command's error says why.
		if redis.HasErrorPrefix(err, "EXECABORT") {
			for _, cmd := range inner {
				if e := cmd.Err(); e != nil && !redis.HasErrorPrefix(e, "EXECABORT") {
					return e
				}
			}
		}
	}
	return err
}

// sendEach sends a command to each of servers, all at once, each under
// its own command timeout, and keeps the first server's reply; the error
// joins every server's, a server marked down included. It serves the
// keyless commands sent to every server of the federation, and query-all.
// A SCRIPT EXISTS answers true for a script only where every server has
// it.
func (c *Client) sendEach(ctx context.Context, servers []*server, cmd redis.Cmder) {
	cmds := make([]redis.Cmder, len(servers)) // nil for a server not asked
	errs := make([]error, len(servers))
	asked := false
	var wg sync.WaitGroup
	for i, s := range servers {
		if s.down.Load() {
			errs[i] = &ServerError{Node: s.node, Server: s.addr, Err: s.downReason(), down: true}
			continue
		}
		one := cmd
		if asked {
			one = redis.NewCmd(ctx, cmd.Args()...)
		}
		cmds[i], asked = one, true
		wg.Go(func() {
			sctx, cancel := c.withTimeout(ctx)
			defer cancel()
			errs[i] = s.client.Load().Process(sctx, one)
		})
	}
	wg.Wait()
	var failed []error
	var exists []bool
	for i, s := range servers {
		err := errs[i]
		if cmds[i] != nil {
			if closed := c.whenClosed(err); closed != err {
				cmd.SetErr(closed) // Close came while the command was on its way
				return
			}
			if err != nil && !errors.Is(err, redis.Nil) {
				err = &ServerError{Node: s.node, Server: s.addr, Err: err, down: s.down.Load()}
			} else {
				err = nil
				if e, ok := scriptExists(cmds[i]); ok {
					exists = andBools(exists, e)
				}
			}
		}
		if err != nil {
			failed = append(failed, err)
		}
	}
	if b, ok := cmd.(*redis.BoolSliceCmd); ok && exists != nil {
		b.SetVal(exists)
	}
	if len(failed) > 0 {
		cmd.SetErr(errors.Join(failed...))
	}
}

// scriptExists returns a SCRIPT EXISTS reply.
func scriptExists(cmd redis.Cmder) ([]bool, bool) {
	if !strings.EqualFold(cmd.Name(), "script") || len(cmd.Args()) < 2 || !strings.EqualFold(argString(cmd.Args()[1]), "exists") {
		return nil, false
	}
	switch v := cmd.(type) {
	case *redis.BoolSliceCmd:
		return v.Val(), true
	case *redis.Cmd:
		vals, err := v.Int64Slice()
		if err != nil {
			return nil, false
		}
		out := make([]bool, len(vals))
		for i, x := range vals {
			out[i] = x == 1
		}
		return out, true
	}
	return nil, false
}

// andBools ands b into a, element by element; a nil a takes b.
func andBools(a, b []bool) []bool {
	if a == nil {
		return append([]bool(nil), b...)
	}
	for i := range a {
		a[i] = a[i] && i < len(b) && b[i]
	}
	return a
}

// blocking are the commands that wait on the server, with the position of
// their timeout among the arguments (negative from the end) and its unit.
var blocking = map[string]struct {
	at   int
	unit time.Duration
}{
	"blpop": {-1, time.Second}, "brpop": {-1, time.Second}, "brpoplpush": {-1, time.Second},
	"blmove": {-1, time.Second}, "bzpopmin": {-1, time.Second}, "bzpopmax": {-1, time.Second},
	"blmpop": {1, time.Second}, "bzmpop": {1, time.Second},
	"wait": {2, time.Millisecond}, "waitaof": {3, time.Millisecond},
}

// blockingContext bounds a command by the command timeout, and a command
// that waits on the server (BLPOP, XREAD BLOCK, WAIT...) by its wait plus
// the command timeout, so that waiting never counts as the server failing
// to answer; a wait of 0, forever, is bounded by ctx alone (see
// sendForever), and reported. A timeout it cannot read fails the command.
//
// go-redis lets a socket read of a typed blocking command (BLPop, XRead
// with Block...) last its wait; a command sent raw, by Do, gets the read
// timeout of any command, and its wait would end as a timeout that marks
// the server down. So a raw command that waits more than half the read
// timeout (Redis ends a wait up to 100 ms late at its default hz) is
// refused, naming the way to send it.
func (c *Client) blockingContext(ctx context.Context, cmd redis.Cmder) (_ context.Context, _ context.CancelFunc, forever, ok bool) {
	wait, forever, err := blockTime(cmd)
	if err != nil {
		cmd.SetErr(err)
		return nil, nil, false, false
	}
	if _, raw := cmd.(*redis.Cmd); raw && (forever || wait > c.opts.ReadTimeout/2) {
		cmd.SetErr(fmt.Errorf("federated: %s sent by Do waits %s, more than half the read timeout (%s): use the typed method (BLPop, XRead...), which go-redis lets wait, or a shorter wait",
			cmdName(cmd), waitText(wait, forever), c.opts.ReadTimeout))
		return nil, nil, false, false
	}
	switch {
	case forever:
		return ctx, func() {}, true, true
	case wait > 0:
		ctx, cancel := c.withTimeoutPlus(ctx, wait)
		return ctx, cancel, false, true
	}
	ctx, cancel := c.withTimeout(ctx)
	return ctx, cancel, false, true
}

// waitFits returns how long a command sent in a pipeline (or, as where
// says, like one) may wait on the server (BLPOP, XREAD BLOCK, WAIT...), 0
// for most. go-redis reads a pipeline's replies under the read timeout,
// whatever its commands, so a wait of more than half of it would end as a
// timeout that marks a healthy server down: such a command is refused,
// with an error that names the way to send it, and ok is false.
func (c *Client) waitFits(cmd redis.Cmder, where string) (wait time.Duration, ok bool) {
	wait, forever, err := blockTime(cmd)
	if err == nil && (forever || wait > c.opts.ReadTimeout/2) {
		err = fmt.Errorf("federated: %s %s waits %s, more than half the read timeout (%s): wait less, or send it alone by the typed method (BLPop, XRead...), which go-redis lets wait, with query-all off",
			cmdName(cmd), where, waitText(wait, forever), c.opts.ReadTimeout)
	}
	if err != nil {
		cmd.SetErr(err)
		return 0, false
	}
	return wait, true
}

// waitText says how long a blocking command waits.
func waitText(wait time.Duration, forever bool) string {
	if forever {
		return "forever"
	}
	return wait.String()
}

// blockTime returns how long a command may wait on the server, and whether
// it waits forever.
func blockTime(cmd redis.Cmder) (time.Duration, bool, error) {
	name := strings.ToLower(cmd.Name())
	args := cmd.Args()
	var text string
	var unit time.Duration
	switch b, ok := blocking[name]; {
	case ok:
		at := b.at
		if at < 0 {
			at += len(args)
		}
		if at <= 0 || at >= len(args) {
			return 0, false, nil
		}
		text, unit = argString(args[at]), b.unit
	case name == "xread" || name == "xreadgroup":
		opts := readStreamOptions(args)
		if opts.block == 0 || opts.streams == 0 {
			return 0, false, nil
		}
		text, unit = argString(args[opts.block]), time.Millisecond
	default:
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, fmt.Errorf("federated: %s: timeout %q is not a number of %s", strings.ToUpper(name), text, unit)
	}
	if f == 0 {
		return 0, true, nil
	}
	return time.Duration(f * float64(unit)), false, nil
}
