package federated

import (
	"errors"
	"fmt"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/replyguard"
)

// ErrServerDown reports that a command could not be sent because the server
// it was meant for is down, or that the server failed while the command was
// under way. The error also names the node and the server; when every server
// of a node is down it names them all.
var ErrServerDown = errors.New("federated: server down")

// ErrCrossNode reports a multi-key command whose keys hash to different nodes.
// Nothing is sent when it is returned.
var ErrCrossNode = errors.New("federated: keys map to different nodes")

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("federated: client closed")

// ErrUnknownNode reports a node name that is not part of the federation.
var ErrUnknownNode = errors.New("federated: unknown node")

// ErrInvalidConfig reports a configuration that New or LoadConfig refused.
// The error names the field and the value at fault.
var ErrInvalidConfig = errors.New("federated: invalid configuration")

// ErrPeriodDropped reports a metric write refused because its key's period
// was dropped (see package metrics, Store.DropBefore): a dropped period never comes back. The error
// names the key, its period and the oldest period kept. A read that a
// DropBefore overtook, having read a part of a period it dropped, fails
// with it too.
var ErrPeriodDropped = journal.ErrPeriodDropped

// ErrTemporary reports a command that a server refused for a reason that
// passes: it is out of memory, loading its data, busy with a script, a
// read-only replica (until it is promoted), or refusing writes since its
// last snapshot failed (MISCONF, a full disk). The same command may succeed
// later; others, such as ErrWrongType, fail the same way again. A metric
// write refused so goes to the next server of its group.
var ErrTemporary = journal.ErrTemporary

// ErrWrongType reports a metric write refused because its key holds
// another type than a sorted set (someone wrote it as a string, say). The
// error names the key. Writing it again fails the same way until the key
// is deleted.
var ErrWrongType = journal.ErrWrongType

// ErrReplyTooLarge reports a reply refused because it declares more than
// the client will allocate before reading it: a string over 512 MiB, more
// than 16777216 slots of arrays and maps pending (a map's pair counts
// six), aggregates nested more than 512 deep, or a line over 64 KiB. The
// connection is closed and the server taken for down, as for a broken
// connection. The error names the server and the header at fault.
var ErrReplyTooLarge = replyguard.ErrTooLarge

// ErrMalformedReply reports a reply refused because it is not RESP (an
// unknown type byte, a length that is not a number, a line not ended by
// CRLF, more than 512 attributes in a row, a push before the connection
// speaks RESP3): something other than Redis answers at the server's
// address, or the stream was corrupted. As for ErrReplyTooLarge, the
// connection is closed and the server taken for down. It also reports a
// value go-redis cannot parse (an integer that is not one, an aggregate or
// a null as a map's key), which Redis itself sends as some scripts'
// answers: that fails its command alone, and the server stays up. A
// command whose reply was refused is never sent to another server.
var ErrMalformedReply = replyguard.ErrMalformed

// ServerError is the error of a command that failed on, or could not be sent
// to, a particular server. It unwraps to the cause and, where the server is
// considered down, to ErrServerDown.
type ServerError struct {
	Node    string // node the command was routed to
	Server  string // host:port of the server; empty for the node as a whole: no server up, or each failed
	Err     error  // what went wrong
	down    bool
	refusal bool // a command's own refusal (see nameRefusal)
}

// nameRefusal returns a refusal of Redis that passes (OOM, READONLY, BUSY,
// LOADING...) of a command that s of node ran as a *ServerError that names
// them, which matches ErrTemporary; any other error as it is. A refusal is
// the command's own answer, not a failure of its server or of the rest of
// its pipeline.
func nameRefusal(node string, s *server, err error) error {
	var se *ServerError
	if !journal.IsTemporaryReply(err) || errors.As(err, &se) {
		return err
	}
	return &ServerError{Node: node, Server: s.addr, Err: err, refusal: true}
}

// Error names the node, the server when there was one, and the cause.
func (e *ServerError) Error() string {
	if e.Server == "" {
		return fmt.Sprintf("federated: node %s: %v", e.Node, e.Err)
	}
	return fmt.Sprintf("federated: node %s, server %s: %v", e.Node, e.Server, e.Err)
}

// Unwrap returns the cause and, for a server that is down, ErrServerDown;
// for a refusal of Redis that passes (OOM, LOADING, BUSY, READONLY,
// MASTERDOWN, MISCONF...), ErrTemporary.
func (e *ServerError) Unwrap() []error {
	switch {
	case e.down && !errors.Is(e.Err, ErrServerDown):
		return []error{ErrServerDown, e.Err}
	case journal.IsTemporaryReply(e.Err):
		return []error{ErrTemporary, e.Err}
	}
	return []error{e.Err}
}
