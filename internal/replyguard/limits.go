package replyguard

import (
	"errors"
	"fmt"
)

// DefaultMaxBulkLen is the default of Limits.MaxBulkLen: 512 MiB, the
// default of Redis's own proto-max-bulk-len, the largest string a server
// takes. An honest GET of the largest value a default server holds still
// passes.
const DefaultMaxBulkLen = 512 << 20

// DefaultMaxAggregateLen is the default of Limits.MaxAggregateLen: 1<<24
// (16,777,216) slots. go-redis pre-allocates a 16-byte interface slot per
// declared element of an array, set or push (make([]interface{}, n)), 24
// bytes for a []redis.Z, and up to 91 bytes per pair of a map, counted as
// six slots, so this bounds what the aggregates open at once can make it
// allocate ahead of their data to 256 MiB of interface slots, 384 MiB of
// Z, where an unbounded count reaches tens of gigabytes. An honest reply is
// far smaller: a day of one-second points in one metric key is 86,400
// members (172,800 elements WITHSCORES), and a reply of 1<<24 elements
// would be at least 48 MiB on the wire (3 bytes per element at the least).
//
// A typed command that makes a Go map of an array or a set is not bounded
// as tightly: the guard sees the reply, not the command, and counts an
// array alike whatever reads it. HGETALL or CONFIG GET answered with an
// array of 1<<24 elements, as over RESP2, make a map of 1<<23 pairs (641
// MiB), and SMEMBERSMAP one of 1<<24 members (853 MiB).
const DefaultMaxAggregateLen = 1 << 24

// DefaultMaxDepth is the default of Limits.MaxDepth: 512 levels of nested
// aggregates, and 512 attributes in a row before one value. Redis's own
// replies nest a few levels deep and put at most one attribute before a
// value; 512 leaves room for the nested tables of a script, while
// go-redis's reader, which recurses once per level and once per attribute
// before a value, stays within a small goroutine stack. Without a bound,
// *1\r\n repeated ten million times (40 MB) would recurse ten million deep
// and exceed the 1 GB stack limit, a fatal error, and so would |0\r\n
// repeated twenty million times, though it never nests.
const DefaultMaxDepth = 512

// DefaultMaxLineLen is the default of Limits.MaxLineLen: 64 KiB for a line
// reply (+ - : , # _ and the big number), its type byte and CRLF included.
// Redis's own status and error messages are a few hundred bytes at most, and
// a script's status or error reply of more is unusual. go-redis grows a line
// until it meets a newline, so a line that never ends would grow as long as
// the sender keeps sending; 64 KiB is two of go-redis's read buffers, and a
// big number of that many digits parses in milliseconds.
const DefaultMaxLineLen = 64 << 10

// ErrTooLarge reports a reply that declares more than the limits allow: a
// string longer than MaxBulkLen, more aggregate slots pending than
// MaxAggregateLen, aggregates nested deeper than MaxDepth, or a line longer
// than MaxLineLen. The error names the header and the limit.
var ErrTooLarge = errors.New("federated: reply over a size limit")

// ErrMalformed reports a stream that is not RESP: an unknown type byte, a
// length that is not a number, a line or payload not ended by CRLF, more
// attributes in a row before one value than MaxDepth, or a value go-redis
// cannot parse (ErrUnreadable), or a push before the connection switched
// to RESP3.
var ErrMalformed = errors.New("federated: malformed reply")

// ErrUnreadable, which wraps ErrMalformed, reports a value go-redis cannot
// parse: an integer, double, boolean or big number line that is not one, a
// verbatim string without its format, an aggregate, error or null as a map
// key. Redis itself sends some as a script's or a module's answer (a
// script's {big_number='abc'}, a map with a table as a key): the server is
// not broken, and the command ran.
var ErrUnreadable = fmt.Errorf("%w: a value go-redis cannot read", ErrMalformed)

// Limits bounds what a reply may declare. A zero field takes its default,
// so the zero Limits is the defaults; a negative field is an error.
type Limits struct {
	// MaxBulkLen bounds the declared length, in bytes, of a bulk string
	// ($), a verbatim string (=) or a blob error (!), which go-redis
	// allocates whole before reading it. Zero means DefaultMaxBulkLen.
	MaxBulkLen int64
	// MaxAggregateLen bounds the slots declared and not yet filled,
	// summed over the aggregates open at any moment: an array, set or push
	// of n declares n, an attribute of n pairs 2n (as HGETALL's RESP2
	// array does; go-redis skips it without allocating), a map of n pairs
	// 6n (go-redis makes a Go map of it, up to 91 bytes a pair against 16
	// a slot), and a nested aggregate adds its slots to its parents', less
	// the one of the parent it fills. So nesting cannot multiply what a
	// reply makes go-redis pre-allocate: each open aggregate's slots are
	// counted once. Zero means DefaultMaxAggregateLen.
	MaxAggregateLen int64
	// MaxDepth bounds how many aggregates may be open inside one another,
	// and how many attributes may come in a row before one value (more is
	// malformed, not too large: Redis sends at most one). Zero means
	// DefaultMaxDepth.
	MaxDepth int
	// MaxLineLen bounds the length of a line reply, its type byte and CRLF
	// included. Zero means DefaultMaxLineLen.
	MaxLineLen int
}

// Validate reports a negative field.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name  string
		value int64
	}{
		{"MaxBulkLen", l.MaxBulkLen},
		{"MaxAggregateLen", l.MaxAggregateLen},
		{"MaxDepth", int64(l.MaxDepth)},
		{"MaxLineLen", int64(l.MaxLineLen)},
	} {
		if f.value < 0 {
			return fmt.Errorf("federated: reply limit %s is %d, want 0 (the default) or more", f.name, f.value)
		}
	}
	return nil
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	if l.MaxBulkLen == 0 {
		l.MaxBulkLen = DefaultMaxBulkLen
	}
	if l.MaxAggregateLen == 0 {
		l.MaxAggregateLen = DefaultMaxAggregateLen
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxLineLen == 0 {
		l.MaxLineLen = DefaultMaxLineLen
	}
	return l
}
