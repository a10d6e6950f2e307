package federated

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// newHandle returns the go-redis client ServerClient hands out for s, a
// server of c: one of no connection, whose hooks send everything through
// the server's current client, so that it outlives the replacement of
// that client.
func newHandle(c *Client, s *server) *redis.Client {
	rc := redis.NewClient(&redis.Options{
		Addr:                     s.addr,
		DisableIdentity:          true,
		MaxRetries:               -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	rc.AddHook(handleHook{c: c, s: s})
	return rc
}

// errHandleConn reports a use of a ServerClient that needs a connection
// of its own.
var errHandleConn = errors.New("federated: a server's client from ServerClient holds no connection: use the Client's Conn, Watch or Subscribe")

// handleHook sends a handle's commands through its server's current
// client, and fails them once c is closed or the server left it (see
// gone).
type handleHook struct {
	c *Client
	s *server
}

var _ redis.Hook = handleHook{}

func (h handleHook) DialHook(redis.DialHook) redis.DialHook {
	return func(context.Context, string, string) (net.Conn, error) { return nil, errHandleConn }
}

func (h handleHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.noteWaitOf(cmd) // before it looks whether the server left
		if err := h.gone(); err != nil {
			cmd.SetErr(err)
			return err
		}
		if err := refusedOnHandle(cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return h.closedErr(h.s.client.Load().Process(ctx, cmd), cmd)
	}
}

// connCommands change the connection they run on: on a handle, a pooled
// connection that every command of the server takes in turn. A SELECT
// would send the next routed writes that take it to another database, a
// CLIENT REPLY OFF leave them without their replies (and the server
// marked down for it), a SUBSCRIBE put pushes in their way, a SYNC turn
// it into a replication stream. CLIENT's
// subcommands are named "client|sub".
var connCommands = map[string]bool{
	"select": true, "auth": true, "hello": true, "reset": true, "quit": true,
	"readonly": true, "readwrite": true, "monitor": true,
	"sync": true, "psync": true, "replconf": true,
	"subscribe": true, "psubscribe": true, "ssubscribe": true,
	"unsubscribe": true, "punsubscribe": true, "sunsubscribe": true,
	"client|reply": true, "client|tracking": true, "client|caching": true,
	"client|setname": true, "client|no-evict": true, "client|no-touch": true,
}

// refusedOnHandle returns why a handle does not send cmd, nil when it
// does: a transaction's command (a Watch of the handle would WATCH on one
// pooled connection and run its transaction on another), or one that
// changes its connection (connCommands).
func refusedOnHandle(cmd redis.Cmder) error {
	name := strings.ToLower(cmd.Name())
	if txCommands[name] {
		return fmt.Errorf("%w (%s on a server's client from ServerClient)", ErrTxCommand, cmdName(cmd))
	}
	full := name
	if args := cmd.Args(); name == "client" && len(args) > 1 {
		full = name + "|" + strings.ToLower(argString(args[1]))
	}
	if connCommands[full] {
		return fmt.Errorf("%w (%s would change a connection that the server's other commands share)",
			errHandleConn, strings.ToUpper(strings.ReplaceAll(full, "|", " ")))
	}
	return nil
}

func (h handleHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.c.noteWaitOf(cmd) // before it looks whether the server left
		}
		if err := h.gone(); err != nil {
			for _, cmd := range cmds {
				cmd.SetErr(err)
			}
			return err
		}
		rc := h.s.client.Load()
		var pipe redis.Pipeliner
		if len(cmds) >= 2 && cmds[0].Name() == "multi" && cmds[len(cmds)-1].Name() == "exec" {
			pipe, cmds = rc.TxPipeline(), cmds[1:len(cmds)-1]
		} else {
			pipe = rc.Pipeline()
		}
		for _, cmd := range cmds {
			if err := refusedOnHandle(cmd); err != nil {
				// Nothing of the pipeline is sent: its commands share
				// the connection the refused one would change.
				for _, c := range cmds {
					c.SetErr(err)
				}
				return err
			}
		}
		for _, cmd := range cmds {
			_ = pipe.Process(ctx, cmd)
		}
		_, err := pipe.Exec(ctx)
		return h.closedErr(err, cmds...)
	}
}

// gone returns ErrClosed once the client closed, and an error wrapping
// ErrUnknownNode once the server left its node (RemoveNode, a ReplaceNode
// that leaves it out, a SetNodes that moves it to a node of another
// name): the server's go-redis client would answer go-redis's own error,
// or, until it is closed, commands for a server that is no longer the
// federation's.
func (h handleHook) gone() error {
	if h.c.closed.Load() {
		return ErrClosed
	}
	select {
	case <-h.s.stop:
		if now, ok := h.c.topo.Load().servers[h.s.addr]; ok && now.node != h.s.node {
			return fmt.Errorf("%w: server %s left node %s for node %s; ServerClient gives its client now", ErrUnknownNode, h.s.addr, h.s.node, now.node)
		}
		return fmt.Errorf("%w: server %s left the federation; ServerClient gives its client now", ErrUnknownNode, h.s.addr)
	default:
		return nil
	}
}

// closedErr is Client.whenClosed of err, and of each of cmds' errors.
func (h handleHook) closedErr(err error, cmds ...redis.Cmder) error {
	for _, cmd := range cmds {
		if closed := h.c.whenClosed(cmd.Err()); closed != cmd.Err() {
			cmd.SetErr(closed)
		}
	}
	return h.c.whenClosed(err)
}
