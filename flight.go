package federated

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Flight is a batch of pipelined commands on its way to the servers, started
// by Pipeline.Go. Wait for it from the goroutine that owns the pipeline.
type Flight struct {
	c     *Client
	queue []queued
	// version is the topology's when the first command of the queue was
	// placed: a flight started after a change of topology places its
	// commands again, so that none goes to a node that no longer holds
	// its keys, nor to a server the federation no longer reads.
	version uint64
	alls    map[int][]serverCmd // answers of query-all commands, by queue index
	done    chan struct{}       // closed when every server has answered or failed

	pending atomic.Int32       // server round trips still under way
	cancel  context.CancelFunc // of the round trips' context, called by the last
	mu      sync.Mutex         // guards errs until done is closed
	errs    []error            // one per server or node that failed

	waited   bool
	err      error // the result of Wait, once waited
	ownsPlan bool  // uses its batch's plan, which recycle resets
}

// serverCmd is one server's copy of a query-all command.
type serverCmd struct {
	server string
	cmd    redis.Cmder
}

// sendGroup is the part of a flight bound for one server.
type sendGroup struct {
	node     *node
	srv      *server
	cmds     []redis.Cmder
	failover bool // the commands may move to the next server of the group

	// pipe is a go-redis pipeline of pipeOf, kept for the next flight that
	// reuses the group: making one costs a few allocations.
	pipe   redis.Pipeliner
	pipeOf *redis.Client
}

// Done is closed when every server has answered or failed; then Wait does
// not block.
func (f *Flight) Done() <-chan struct{} { return f.done }

// Wait waits for the flight, runs the callbacks in queue order, and returns
// the errors of what failed, as Poll does. Calling it again returns the same
// error without running the callbacks again. A callback that panics ends
// the callbacks' run there (those after it are not run), and a Wait after
// the panic returns the flight's error all the same.
func (f *Flight) Wait() error {
	<-f.done
	if f.waited {
		return f.err
	}
	f.waited = true
	// The error first: a callback that panics leaves it said.
	errs := f.errs
	var ended ctxEnded
	for i, q := range f.queue {
		if !q.all || q.node == nil {
			errs = ended.appendReplyError(errs, q.cmd, "", "")
			continue
		}
		for _, sc := range f.alls[i] {
			errs = ended.appendReplyError(errs, sc.cmd, q.node.name, sc.server)
		}
	}
	if ended.n > 0 {
		errs = append(errs, ended.err())
	}
	f.err = errors.Join(errs...)
	for i, q := range f.queue {
		if !q.all || q.node == nil {
			deliver(q.cb, "", q.cmd)
			continue
		}
		for _, sc := range f.alls[i] {
			deliver(q.cb, sc.server, sc.cmd)
		}
	}
	return f.err
}

// ctxEnded counts the commands of a flight that the caller's context
// ended before their answer (a timeout that is not the command timeout's,
// or a cancel): one error says them all, as one says a server's failure,
// not one for each command of a large batch.
type ctxEnded struct {
	n     int
	first redis.Cmder
}

// appendReplyError adds a command's own error, one that is not already
// counted as its server's or node's failure, nor the caller's context's,
// naming the node and server of a query-all command's copy (server not
// "") unless the error does: the servers of a group may answer it
// differently, and the caller has to know which one to look at. A missing
// key is not an error.
func (u *ctxEnded) appendReplyError(errs []error, cmd redis.Cmder, node, server string) []error {
	err := cmd.Err()
	switch {
	case err == nil || isCounted(err):
	case !isHookError(err) && (errors.Is(err, context.Canceled) || isTimeout(err)):
		if u.n == 0 {
			u.first = cmd
		}
		u.n++
	case server != "" && !errors.As(err, new(*ServerError)):
		errs = append(errs, fmt.Errorf("federated: %s (node %s, server %s): %w", cmdWithKey(cmd), node, server, err))
	default:
		errs = append(errs, fmt.Errorf("federated: %s: %w", cmdWithKey(cmd), err))
	}
	return errs
}

// err says the commands unanswered, by the first and how many more.
func (u *ctxEnded) err() error {
	more := ""
	if u.n > 1 {
		more = fmt.Sprintf(" and %d more", u.n-1)
	}
	return fmt.Errorf("federated: %s%s not answered before the context ended: %w", cmdWithKey(u.first), more, u.first.Err())
}

// isCounted reports an error that is no failure (redis.Nil) or that is
// already counted as its server's, node's or client's failure (a
// command's own refusal is not).
func isCounted(err error) bool {
	var se *ServerError
	return errors.Is(err, redis.Nil) || errors.Is(err, ErrClosed) || errors.As(err, &se) && !se.refusal
}

// cmdWithKey names a command by its name and first argument, for errors.
func cmdWithKey(cmd redis.Cmder) string {
	args := cmd.Args()
	if len(args) < 2 {
		return cmd.Name()
	}
	arg := argString(args[1])
	// A script, or a value that is not a key, can be long: enough of it
	// to know it by.
	const most = 64
	if len(arg) > most {
		cut := most
		for cut > 0 && !utf8.RuneStart(arg[cut]) {
			cut--
		}
		arg = fmt.Sprintf("%s… (%d bytes)", arg[:cut], len(arg))
	}
	return cmd.Name() + " " + arg
}

// plan groups a flight's commands by server. Poll reuses one plan across
// its flights, so a steady stream of batches allocates no new groups.
type plan struct {
	groups map[*server]*sendGroup // routed commands, by server
	pinned map[*server]*sendGroup // query-all copies, by server
	order  []*sendGroup           // every group, in order of first use
	failed map[*node]bool         // nodes already reported down
	downs  map[*server]bool       // servers already reported down, by query-all
	free   []*sendGroup           // groups of an earlier flight, for reuse
}

func newPlan() *plan {
	return &plan{groups: make(map[*server]*sendGroup), pinned: make(map[*server]*sendGroup),
		failed: make(map[*node]bool), downs: make(map[*server]bool)}
}

// group returns the group for s in m, making it on first use.
func (pl *plan) group(m map[*server]*sendGroup, n *node, s *server, failover bool) *sendGroup {
	if g := m[s]; g != nil {
		return g
	}
	var g *sendGroup
	if k := len(pl.free); k > 0 {
		g, pl.free = pl.free[k-1], pl.free[:k-1]
	} else {
		g = &sendGroup{}
	}
	g.node, g.srv, g.failover = n, s, failover
	m[s] = g
	pl.order = append(pl.order, g)
	return g
}

// reset empties the plan for the next flight, dropping every reference to
// the last one's commands.
func (pl *plan) reset() {
	for _, g := range pl.order {
		clear(g.cmds)
		g.cmds = g.cmds[:0]
		pl.free = append(pl.free, g)
	}
	clear(pl.order)
	pl.order = pl.order[:0]
	clear(pl.groups)
	clear(pl.pinned)
	clear(pl.failed)
	clear(pl.downs)
}

// start groups the queue by server and sends each group on its own
// goroutine; with inline, the last group goes from the calling goroutine,
// which then returns only when that group is done. Commands for a node with
// no up server fail at once.
func (f *Flight) start(ctx context.Context, pl *plan, inline bool) {
	c := f.c
	if c.closed.Load() {
		f.failAll(ErrClosed)
		return
	}
	if c.topo.Load().version != f.version {
		f.placeAgain(ctx)
	}
	nodeDown := func(n *node, err error) {
		if !pl.failed[n] {
			pl.failed[n] = true
			f.errs = append(f.errs, err)
		}
	}
	var wait time.Duration // the longest wait of a blocking command
	for i, q := range f.queue {
		if q.node == nil {
			continue // not placed: its error is set
		}
		w, ok := c.waitFits(q.cmd, "in a pipeline")
		if !ok {
			f.queue[i].node = nil // refused: its error is set
			continue
		}
		wait = max(wait, w)
		if q.all {
			f.queueAll(i, q, pl)
			continue
		}
		s, err := c.currentServer(q.node)
		if err != nil {
			q.cmd.SetErr(err)
			nodeDown(q.node, err)
			continue
		}
		g := pl.group(pl.groups, q.node, s, true)
		g.cmds = append(g.cmds, q.cmd)
	}

	order := pl.order
	if len(order) == 0 {
		close(f.done)
		return
	}
	if !c.addLoop() {
		f.failAll(ErrClosed)
		return
	}
	ctx, f.cancel = c.withTimeoutPlus(ctx, wait)
	f.pending.Store(int32(len(order)))
	if inline {
		last := order[len(order)-1]
		order = order[:len(order)-1]
		defer f.send(ctx, last)
	}
	for _, g := range order {
		c.dispatch(sendTask{ctx: ctx, f: f, g: g})
	}
}

// send sends one server's share of the flight, and ends the flight when it
// was the last, also when the share panicked (in the caller's goroutine,
// which may recover: Close waits for the flight's end).
func (f *Flight) send(ctx context.Context, g *sendGroup) {
	c := f.c
	defer func() {
		if f.pending.Add(-1) == 0 {
			f.cancel()
			close(f.done)
			c.wg.Done()
		}
	}()
	if err := c.sendPipeline(ctx, g); err != nil {
		f.mu.Lock()
		f.errs = append(f.errs, err)
		f.mu.Unlock()
	}
}

// queueAll places a query-all command: a copy for every server of its
// node's group. A server marked down is not asked: its copy fails at once
// with its ErrServerDown, so that every server has its answer.
func (f *Flight) queueAll(i int, q queued, pl *plan) {
	if f.alls == nil {
		f.alls = make(map[int][]serverCmd)
	}
	// The command itself (a future, Last) holds the answer of the first
	// server asked; the others get copies.
	own := 0
	for j, s := range q.node.servers {
		if !s.down.Load() {
			own = j
			break
		}
	}
	for j, s := range q.node.servers {
		cmd := q.cmd
		if j != own {
			cmd = cloneCmd(q.cmd)
		}
		f.alls[i] = append(f.alls[i], serverCmd{server: s.addr, cmd: cmd})
		if s.down.Load() {
			err := &ServerError{Node: q.node.name, Server: s.addr, Err: s.downReason(), down: true}
			cmd.SetErr(err)
			if !pl.downs[s] {
				pl.downs[s] = true
				f.errs = append(f.errs, err)
			}
			continue
		}
		g := pl.group(pl.pinned, q.node, s, false)
		g.cmds = append(g.cmds, cmd)
	}
}

// placeAgain places the flight's commands again on the topology of now.
// One whose key no longer has a node, or that can no longer be placed,
// gets its error and is not sent.
func (f *Flight) placeAgain(ctx context.Context) {
	for i, q := range f.queue {
		if q.node == nil {
			continue // never placed: its error is set
		}
		t, ok := f.c.placeCmd(ctx, q.r, q.cmd)
		switch {
		case !ok:
			f.queue[i].node = nil
		case t.broadcast: // placed as a key's before, it cannot be one now
			f.queue[i].node = nil
			q.cmd.SetErr(fmt.Errorf("%w: %s", ErrKeyless, cmdName(q.cmd)))
		default:
			f.queue[i].node = t.node
		}
	}
}

// joinCopies sets on each query-all command of a finished flight every
// server's error, each naming its server, as sendEach does for a command
// sent alone; the command keeps the first server's reply.
func (f *Flight) joinCopies() {
	for i, q := range f.queue {
		if !q.all || q.node == nil {
			continue
		}
		var errs []error
		for _, sc := range f.alls[i] {
			err := sc.cmd.Err()
			if err == nil || errors.Is(err, redis.Nil) {
				continue
			}
			var se *ServerError
			if !errors.As(err, &se) && !errors.Is(err, ErrClosed) {
				err = &ServerError{Node: q.node.name, Server: sc.server, Err: err}
			}
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			q.cmd.SetErr(errors.Join(errs...))
		}
	}
}

// failAll fails every command of the flight with err.
func (f *Flight) failAll(err error) {
	for _, q := range f.queue {
		q.cmd.SetErr(err)
	}
	f.alls = nil
	for i, q := range f.queue {
		if q.all {
			if f.alls == nil {
				f.alls = make(map[int][]serverCmd)
			}
			f.alls[i] = []serverCmd{{cmd: q.cmd}}
		}
	}
	f.errs = []error{err}
	close(f.done)
}

// sendPipeline sends a group's commands to its server in one round trip.
// When the connection fails and the group may fail over, the commands go to
// the node's next up server, each server at most once; when it failed on a
// connection of the server's replaced client, they go to the same server
// again on its new one (see retries). It returns the server's failure,
// which is also set on every command it hit.
func (c *Client) sendPipeline(ctx context.Context, g *sendGroup) error {
	s := g.srv
	var tries retries
	for {
		rc := s.client.Load()
		if g.pipeOf != rc {
			g.pipe, g.pipeOf = rc.Pipeline(), rc
		}
		pipe := g.pipe
		for _, cmd := range g.cmds {
			_ = pipe.Process(ctx, cmd) // only queues
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			return nil
		}
		for _, cmd := range g.cmds {
			if e := cmd.Err(); e != nil {
				if named := nameRefusal(g.node.name, s, e); named != e {
					cmd.SetErr(named)
				}
			}
		}
		fault := firstFault(ctx, g.cmds)
		if closed := c.whenClosed(fault); fault != nil && closed != fault {
			// The Client closed under it: its server's connections too.
			for _, cmd := range g.cmds {
				if e := cmd.Err(); e != nil && isServerFault(ctx, e) {
					cmd.SetErr(closed)
				}
			}
			return closed
		}
		if fault != nil && busyPool(rc, fault) {
			se := busyPoolError(g.node.name, s, rc, fault)
			for _, cmd := range g.cmds {
				if cmd.Err() != nil {
					cmd.SetErr(se)
				}
			}
			return se
		}
		if fault == nil {
			// Answers from Redis, errors or not: each is on its command.
			// A connection Redis refused to set up is the server's error,
			// which the health hook put on every command.
			var refused *ServerError
			if errors.As(g.cmds[0].Err(), &refused) && !refused.refusal {
				return refused
			}
			return nil
		}
		if isRetryable(fault) && ctx.Err() == nil {
			replaced := rc != s.client.Load()
			next := s // a replaced client: the same server again
			if !replaced && g.failover {
				next, _ = c.currentServer(g.node)
			}
			if next != nil && (replaced || next != s) && tries.again(g.node, s, replaced) {
				for _, cmd := range g.cmds {
					cmd.SetErr(nil)
				}
				s = next
				continue
			}
		}
		se := &ServerError{Node: g.node.name, Server: s.addr, Err: fault, down: s.down.Load()}
		for _, cmd := range g.cmds {
			if e := cmd.Err(); e != nil && isServerFault(ctx, e) {
				cmd.SetErr(se)
			}
		}
		return se
	}
}

// firstFault returns the first error among the commands that shows their
// server unreachable or unresponsive. A pipeline's own error is only its
// first command error, which may be an answer from Redis.
func firstFault(ctx context.Context, cmds []redis.Cmder) error {
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && isServerFault(ctx, err) {
			return err
		}
	}
	return nil
}

// cloneCmd makes a fresh command of the same type and arguments, for another
// server of a query-all.
func cloneCmd(cmd redis.Cmder) redis.Cmder {
	ctx, args := context.Background(), cmd.Args()
	switch cmd.(type) {
	case *redis.StringCmd:
		return redis.NewStringCmd(ctx, args...)
	case *redis.StatusCmd:
		return redis.NewStatusCmd(ctx, args...)
	case *redis.IntCmd:
		return redis.NewIntCmd(ctx, args...)
	case *redis.BoolCmd:
		return redis.NewBoolCmd(ctx, args...)
	case *redis.StringSliceCmd:
		return redis.NewStringSliceCmd(ctx, args...)
	case *redis.ZSliceCmd:
		return redis.NewZSliceCmd(ctx, args...)
	case *redis.MapStringStringCmd:
		return redis.NewMapStringStringCmd(ctx, args...)
	case *redis.SliceCmd:
		return redis.NewSliceCmd(ctx, args...)
	default:
		return redis.NewCmd(ctx, args...)
	}
}
