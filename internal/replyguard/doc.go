// Package replyguard bounds what a Redis reply can make a client allocate.
//
// go-redis trusts the lengths a reply declares: it allocates make([]byte,
// n+2) for a bulk string, verbatim string or blob error of declared length n
// ($, =, !), make([]interface{}, n) for an array, set or push of n elements
// (*, ~, >), make(map[interface{}]interface{}, n) for a map of n pairs (%),
// and its typed commands do the same (make([]string, n), make([]Z, n), ...),
// all before a byte of the elements has arrived. Its line reader grows a
// line until it meets a newline, and its reader recurses once per level of
// nesting and once per attribute before a value. A server, or anyone between
// it and the client on a connection without TLS, that answers *2000000000
// makes the process allocate tens of gigabytes or die of an out-of-memory
// error, which no read timeout can stop: the allocation comes before the
// next read.
//
// Wrap puts a Conn between go-redis and the network. Its Read passes every
// byte through unchanged, and follows the RESP2 and RESP3 framing as it
// goes, just enough to see every length header: a type byte, a header line
// up to CRLF, then for $, = and ! exactly the declared payload and its
// CRLF. Aggregate headers are counted, not parsed further. It also checks
// the few values go-redis parses where the framing alone would pass them:
// the content of an integer, double, boolean or big number line, the
// format of a verbatim string, and the type of a map's key. And it refuses
// a push until a map has passed at the top level, the answer to HELLO 3:
// Redis pushes only to a client in RESP3. The Scanner
// that does this keeps its state across reads, so a header or a payload
// split over any number of reads is followed the same as one read whole,
// and pipelined replies back to back are followed one after the other.
// Limits says what a reply may declare; see its fields for the defaults
// and why they are what they are.
//
// Concurrency: a Conn, like any net.Conn, may be read in one goroutine while
// it is written, closed or given deadlines in others; Read itself must not
// be called by two goroutines at once (no stream reader does that). A
// Scanner is not safe for concurrent use.
//
// Failure behaviour: a header over a limit (ErrTooLarge) or a stream that is
// not RESP (ErrMalformed: an unknown type byte, a length that is not a
// number, a missing CRLF, more attributes in a row than MaxDepth, a value
// go-redis cannot parse (ErrUnreadable), a push before RESP3) fails the Read
// with an error that names the header and the limit and unwraps to a
// *net.OpError, as a failed read of any connection does. The bytes of the
// values complete before the offending one are still returned with that
// error, so a reply read in the same chunk as a bad one is read normally.
// The failure is final: every later Read returns the same error without
// reading. go-redis takes a failed read for a broken connection and closes
// it, so a server that sends such a reply is treated as one whose connection
// broke. What passes is still allocated by go-redis as it was declared: up
// to MaxBulkLen bytes for one string, up to MaxAggregateLen slots for the
// aggregates open at once, a map's pair counting six (see
// DefaultMaxAggregateLen for a typed command that makes a map of an array).
// Those bounds hold whoever sends the reply; against a man in the middle who
// sends replies within them, TLS is the remedy.
package replyguard
