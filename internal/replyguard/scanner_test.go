package replyguard

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// honestReplies are replies of every RESP2 and RESP3 type, as Redis writes
// them, by name.
var honestReplies = []struct{ name, reply string }{
	{"status", "+OK\r\n"},
	{"empty status", "+\r\n"},
	{"error", "-ERR unknown command 'FOO', with args beginning with: \r\n"},
	{"integer", ":-9223372036854775808\r\n"},
	{"largest integer", ":9223372036854775807\r\n"},
	{"bulk", "$5\r\nhello\r\n"},
	{"bulk with CRLF inside", "$8\r\n\r\n$1\r\n\r\n\r\n"},
	{"empty bulk", "$0\r\n\r\n"},
	{"null bulk", "$-1\r\n"},
	{"null array", "*-1\r\n"},
	{"empty array", "*0\r\n"},
	{"ZRANGE WITHSCORES", "*4\r\n$15\r\n1732550400:42.5\r\n$10\r\n1732550400\r\n$12\r\n1732550401:7\r\n$10\r\n1732550401\r\n"},
	{"nested arrays", "*3\r\n*2\r\n:1\r\n*1\r\n$1\r\na\r\n*0\r\n$-1\r\n"},
	{"array of errors and nulls", "*3\r\n-WRONGTYPE x\r\n$-1\r\n*-1\r\n"},
	{"null", "_\r\n"},
	{"double", ",3.14\r\n"},
	{"infinite double", ",-inf\r\n"},
	{"doubles", "*5\r\n,inf\r\n,nan\r\n,-nan\r\n,1.7976931348623157e+308\r\n,-0\r\n"},
	{"true", "#t\r\n"},
	{"false", "#f\r\n"},
	{"big number", "(3492890328409238509324850943850943825024385\r\n"},
	{"negative big number", "(-3492890328409238509324850943850943825024385\r\n"},
	{"verbatim", "=15\r\ntxt:Some string\r\n"},
	{"null verbatim", "=-1\r\n"},
	{"blob error", "!21\r\nSYNTAX invalid syntax\r\n"},
	{"map", "%2\r\n+first\r\n:1\r\n+second\r\n*2\r\n:2\r\n:3\r\n"},
	{"empty map", "%0\r\n"},
	{"map of every scalar key", "%7\r\n+a\r\n:1\r\n$1\r\nb\r\n*0\r\n:2\r\n%0\r\n,1.5\r\n_\r\n#t\r\n-ERR x\r\n(12\r\n$-1\r\n=5\r\ntxt:c\r\n:3\r\n"},
	{"map keys after attributes", "%1\r\n|1\r\n+ttl\r\n:1\r\n$1\r\nk\r\n~1\r\n:2\r\n"},
	{"set", "~3\r\n+a\r\n+b\r\n,1.5\r\n"},
	{"push after HELLO 3", helloRESP3 + ">3\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n_\r\n"},
	{"push in an array", "*1\r\n>1\r\n:1\r\n"}, // go-redis reads it as an array
	{"attribute before a value", "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n:9543892\r\n"},
	{"attribute inside an array", "*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n"},
	{"empty attribute", "|0\r\n:1\r\n"},
	{"HELLO 3", helloRESP3},
	{"pipelined", "+OK\r\n:1\r\n$3\r\nfoo\r\n*2\r\n:1\r\n:2\r\n"},
}

// helloRESP3 is Redis 7's answer to HELLO 3, after which it speaks RESP3.
const helloRESP3 = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n" +
	"$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"

// honestStream is every honest reply back to back, as a pipeline answers.
func honestStream() string {
	var b strings.Builder
	for _, r := range honestReplies {
		b.WriteString(r.reply)
	}
	return b.String()
}

func newTestScanner(t testing.TB, l Limits) *Scanner {
	t.Helper()
	s, err := NewScanner(l)
	require.NoError(t, err)
	return s
}

// scanChunks scans in in chunks of the given sizes, cycling through them,
// and returns how many bytes it passed and the error that stopped it.
func scanChunks(s *Scanner, in []byte, sizes ...int) (int, error) {
	passed := 0
	for k := 0; len(in) > 0; k++ {
		n := min(sizes[k%len(sizes)], len(in))
		chunk := in[:n]
		in = in[n:]
		ok, err := s.Scan(chunk)
		passed += ok
		if err != nil {
			return passed, err
		}
		if ok != len(chunk) {
			return passed, fmt.Errorf("Scan passed %d of %d bytes with no error", ok, len(chunk))
		}
	}
	return passed, nil
}

// assertIdle checks that s stands between values, with nothing open.
func assertIdle(t *testing.T, s *Scanner) {
	t.Helper()
	assert.Equal(t, atType, s.state, "state after a complete stream")
	assert.Zero(t, s.depth, "aggregates left open")
	assert.Empty(t, s.open, "aggregates left open")
	assert.Zero(t, s.outer+s.inner.left, "elements left outstanding")
}

func TestScannerPassesHonestReplies(t *testing.T) {
	cases := append(honestReplies, struct{ name, reply string }{"all back to back", honestStream()})
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.reply)
			orig := strings.Clone(tt.reply)
			for _, sizes := range [][]int{{len(in)}, {1}, {2}, {3, 1, 7}} {
				s := newTestScanner(t, Limits{})
				n, err := scanChunks(s, in, sizes...)
				require.NoError(t, err, "chunks of %v", sizes)
				assert.Equal(t, len(in), n, "chunks of %v", sizes)
				assertIdle(t, s)
			}
			// Every split in two, the way a read can end anywhere.
			for cut := range len(in) {
				s := newTestScanner(t, Limits{})
				n, err := scanChunks(s, in, cut+1, len(in))
				require.NoError(t, err, "split at %d", cut+1)
				require.Equal(t, len(in), n)
				assertIdle(t, s)
			}
			assert.Equal(t, orig, string(in), "the bytes are not changed")
		})
	}
}

func TestScannerRefuses(t *testing.T) {
	deep := strings.Repeat("*1\r\n", DefaultMaxDepth)
	tests := []struct {
		name   string
		in     string
		want   error
		msg    string
		passed int // bytes passed when scanned whole
	}{
		{"huge array", "*2000000000\r\n", ErrTooLarge,
			`header "*2000000000" declares 2000000000 elements, over the limit of 16777216 elements`, 0},
		{"huge bulk", "$2000000000\r\n", ErrTooLarge,
			`header "$2000000000" declares a string of 2000000000 bytes, over the limit of 536870912`, 0},
		{"bulk one byte over", fmt.Sprintf("$%d\r\n", DefaultMaxBulkLen+1), ErrTooLarge, "over the limit of 536870912", 0},
		{"huge map", "%1000000000\r\n", ErrTooLarge,
			`header "%1000000000" declares 1000000000 pairs, over the limit of 2796202 pairs`, 0},
		// go-redis makes a Go map of it, 641 MiB where the limit allows
		// arrays 256 MiB of slots.
		{"map of as many elements as the limit", "%8388608\r\n", ErrTooLarge,
			`header "%8388608" declares 8388608 pairs, over the limit of 2796202 pairs`, 0},
		{"map one pair over", fmt.Sprintf("%%%d\r\n", DefaultMaxAggregateLen/6+1), ErrTooLarge, "2796203 pairs, over the limit", 0},
		{"largest map in an array", "*6\r\n%2796202\r\n", ErrTooLarge,
			"brings the slots declared and not yet filled to 16777217, over the limit of 16777216", 4},
		{"huge set", "~16777217\r\n", ErrTooLarge, "declares 16777217 elements", 0},
		{"huge push", "%0\r\n>16777217\r\n", ErrTooLarge, "declares 16777217 elements", 4},
		{"huge attribute", "|9000000\r\n", ErrTooLarge, "declares 9000000 pairs", 0},
		{"huge verbatim", "=2000000000\r\n", ErrTooLarge, "string of 2000000000 bytes", 0},
		{"huge blob error", "!2000000000\r\n", ErrTooLarge, "string of 2000000000 bytes", 0},
		{"nested big arrays", "*16777216\r\n*16777216\r\n", ErrTooLarge,
			`header "*16777216" inside 1 open aggregates brings the slots declared and not yet filled to 33554431, over the limit of 16777216`, 11},
		{"nested after elements", "*3\r\n:1\r\n*16777216\r\n", ErrTooLarge, "to 16777217, over the limit", 8},
		{"too deep", deep + "*1\r\n", ErrTooLarge,
			`header "*1" opens an aggregate inside 512 others, over the limit of 512 levels`, len(deep)},
		{"attributes in a row", strings.Repeat("|0\r\n", DefaultMaxDepth+1) + "+OK\r\n", ErrMalformed,
			`header "|0" makes 513 attributes in a row before one value, over the limit of 512`, 4 * DefaultMaxDepth},
		{"attributes with pairs in a row", strings.Repeat("|1\r\n+k\r\n+v\r\n", DefaultMaxDepth+1), ErrMalformed,
			`header "|1" makes 513 attributes in a row`, 12 * DefaultMaxDepth},
		{"attributes in a row inside an array", "*1\r\n" + strings.Repeat("|0\r\n", DefaultMaxDepth+1), ErrMalformed,
			"513 attributes in a row", 4 + 4*DefaultMaxDepth},
		{"attributes holding attributes in a row", strings.Repeat("|1\r\n|0\r\n+k\r\n+v\r\n", DefaultMaxDepth+1), ErrMalformed,
			`header "|1" makes 513 attributes in a row`, 16 * DefaultMaxDepth},
		{"integer not a number", ":abc\r\n", ErrMalformed, `a ':' line "abc" is not a 64-bit integer`, 0},
		{"integer over 64 bits", ":9223372036854775808\r\n", ErrMalformed, "is not a 64-bit integer", 0},
		{"empty integer", ":\r\n", ErrMalformed, `a ':' line "" is not a 64-bit integer`, 0},
		{"integer of leading zeros", ":" + strings.Repeat("0", maxNumberLen) + "1\r\n", ErrMalformed,
			"a ':' line of 516 bytes is not a 64-bit integer", 0},
		{"double out of range", ",1e400\r\n", ErrMalformed, `a ',' line "1e400" is not a double`, 0},
		{"double not a number", ",1.5x\r\n", ErrMalformed, "is not a double", 0},
		{"boolean", "#x\r\n", ErrMalformed, `a '#' line "x" is not t or f`, 0},
		{"long boolean", "#true\r\n", ErrMalformed, "is not t or f", 0},
		{"big number not a number", "(12a\r\n", ErrMalformed, "a '(' line of 6 bytes is not a decimal integer", 0},
		{"big number with a CR inside", "(1\r2\r\n", ErrMalformed, "is not a decimal integer", 0},
		{"big number of a sign", "(-\r\n", ErrMalformed, "is not a decimal integer", 0},
		{"verbatim too short", "=3\r\nabc\r\n", ErrMalformed,
			`header "=3" declares a verbatim string of 3 bytes, too short for its format (as txt:)`, 0},
		{"verbatim without format", "=7\r\ntxtabcd\r\n", ErrMalformed,
			`header "=7" declares a verbatim string without its format (as txt:)`, 0},
		{"array as a map key", "%1\r\n*1\r\n:1\r\n:2\r\n", ErrMalformed, `an aggregate ('*') as a map key`, 4},
		{"set as a map key", "%1\r\n~0\r\n:2\r\n", ErrMalformed, `an aggregate ('~') as a map key`, 4},
		{"map as a map key", "%1\r\n%0\r\n:2\r\n", ErrMalformed, `an aggregate ('%') as a map key`, 4},
		{"array as a later map key", "%2\r\n+a\r\n:1\r\n>0\r\n:2\r\n", ErrMalformed, `an aggregate ('>') as a map key`, 12},
		{"array as a map key after an attribute", "%1\r\n|1\r\n+a\r\n+b\r\n*0\r\n:1\r\n", ErrMalformed, "as a map key", 16},
		{"error as a map key", "%1\r\n-ERR x\r\n:1\r\n", ErrMalformed, `an error or null ('-') as a map key`, 4},
		{"blob error as a map key", "%1\r\n!1\r\nx\r\n:1\r\n", ErrMalformed, `an error or null ('!') as a map key`, 4},
		{"null as a map key", "%1\r\n_\r\n:1\r\n", ErrMalformed, `an error or null ('_') as a map key`, 4},
		{"null string as a map key", "%1\r\n$-1\r\n:1\r\n", ErrMalformed, `header "$-1" is a null map key`, 4},
		{"push before HELLO 3", ">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", ErrMalformed,
			`a push ('>') before the connection switched to RESP3`, 0},
		{"push after RESP2 replies", "-ERR unknown command 'HELLO'\r\n+OK\r\n*1\r\n%0\r\n>1\r\n:1\r\n", ErrMalformed,
			"a push ('>') before", 43},
		{"19 digits", "$1234567890123456789\r\n", ErrTooLarge, `header "$123456789012345678"... has a length of more than 18 digits`, 0},
		{"endless line", "-" + strings.Repeat("x", DefaultMaxLineLen), ErrTooLarge,
			`a '-' line longer than 65536 bytes`, 0},
		{"long line", "+" + strings.Repeat("x", DefaultMaxLineLen-2) + "\r\n", ErrTooLarge, "line longer than 65536 bytes", 0},
		{"unknown type", "?\r\n", ErrMalformed, `type byte '?'`, 0},
		{"inline command", "PING\r\n", ErrMalformed, `type byte 'P'`, 0},
		{"no digits", "$\r\n", ErrMalformed, `header "$" followed by '\r', not a digit or CRLF`, 0},
		{"letters", "*abc\r\n", ErrMalformed, "not a digit or CRLF", 0},
		{"plus sign", "$+5\r\nhello\r\n", ErrMalformed, "not a digit or CRLF", 0},
		{"two minus signs", "$--1\r\n", ErrMalformed, "not a digit or CRLF", 0},
		{"streamed string", "$?\r\n;4\r\nHell\r\n;0\r\n", ErrMalformed, "not a digit or CRLF", 0},
		{"negative length", "*-2\r\n", ErrMalformed, `header "*-2" declares a negative length`, 0},
		{"CR without LF", "$5\rhello\r\n", ErrMalformed, "ends in CR without LF", 0},
		{"LF without CR", "+OK\n", ErrMalformed, `a '+' line ends in LF without CR`, 0},
		{"payload too long", "$3\r\nhello\r\n", ErrMalformed, `a '$' payload not followed by CRLF`, 0},
		{"payload too short", "$5\r\nhi\r\n:1\r\n", ErrMalformed, "payload not followed by CRLF", 0},
		{"after honest replies", "+OK\r\n:1\r\n*2000000000\r\n", ErrTooLarge, "declares 2000000000", 9},
		{"inside an honest array", "*2\r\n:1\r\n$2000000000\r\n", ErrTooLarge, "2000000000 bytes", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			s := newTestScanner(t, Limits{})
			n, err := s.Scan(in)
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.msg)
			assert.Equal(t, tt.passed, n, "bytes passed before the bad value")

			// The failure is final.
			n, again := s.Scan([]byte("+OK\r\n"))
			assert.Zero(t, n)
			assert.Equal(t, err, again)

			// Split anywhere, the same failure.
			for _, size := range []int{1, 2, 3, 5} {
				s := newTestScanner(t, Limits{})
				n, split := scanChunks(s, in, size)
				require.Error(t, split, "chunks of %d", size)
				assert.Equal(t, err.Error(), split.Error(), "chunks of %d", size)
				assert.GreaterOrEqual(t, n, tt.passed, "chunks of %d: the values before the bad one pass", size)
			}
		})
	}
}

func TestScannerLimits(t *testing.T) {
	// At a limit passes; one over fails.
	limits := Limits{MaxBulkLen: 4, MaxAggregateLen: 6, MaxDepth: 2, MaxLineLen: 6}
	tests := []struct {
		name     string
		ok, over string
	}{
		{"bulk", "$4\r\nabcd\r\n", "$5\r\nabcde\r\n"},
		{"verbatim", "=4\r\ntxt:\r\n", "=5\r\ntxt:a\r\n"},
		{"array", "*6\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n", "*7\r\n"},
		{"map", "%1\r\n:1\r\n:2\r\n", "%2\r\n"}, // six slots a pair
		{"map in an array", "*1\r\n%1\r\n:1\r\n:2\r\n", "*2\r\n%1\r\n"},
		{"array as a map's value", "%1\r\n:1\r\n*6\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n", "%1\r\n:1\r\n*7\r\n"},
		{"nested", "*2\r\n*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n", "*2\r\n*6\r\n"},
		{"attribute in an array", "*2\r\n|2\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n", "*3\r\n|2\r\n"},
		{"depth", "*1\r\n*1\r\n:1\r\n", "*1\r\n*1\r\n*1\r\n"},
		{"line", "+abc\r\n", "+abcd\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestScanner(t, limits)
			n, err := s.Scan([]byte(tt.ok))
			require.NoError(t, err)
			require.Equal(t, len(tt.ok), n)
			assertIdle(t, s)
			_, err = newTestScanner(t, limits).Scan([]byte(tt.over))
			require.ErrorIs(t, err, ErrTooLarge)
		})
	}

	for _, l := range []Limits{{MaxBulkLen: -1}, {MaxAggregateLen: -1}, {MaxDepth: -1}, {MaxLineLen: -1}} {
		_, err := NewScanner(l)
		require.ErrorContains(t, err, "want 0 (the default) or more")
	}
	assert.Equal(t, Limits{DefaultMaxBulkLen, DefaultMaxAggregateLen, DefaultMaxDepth, DefaultMaxLineLen},
		Limits{}.withDefaults())
}

// TestScannerCountsAttributesInARow checks that the attributes before one
// value are counted at the level of that value, whatever they hold, and
// start again at every value.
func TestScannerCountsAttributesInARow(t *testing.T) {
	limits := Limits{MaxDepth: 2}
	for _, in := range []string{
		"|0\r\n|0\r\n:1\r\n",
		"|0\r\n|0\r\n:1\r\n|0\r\n|0\r\n:2\r\n",
		"*2\r\n|0\r\n|0\r\n:1\r\n|1\r\n+k\r\n+v\r\n|0\r\n:2\r\n",
		"|1\r\n|0\r\n|0\r\n+k\r\n+v\r\n|0\r\n:1\r\n", // two in a row inside the first of two
	} {
		s := newTestScanner(t, limits)
		n, err := s.Scan([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Equal(t, len(in), n)
		assertIdle(t, s)
	}
	for _, in := range []string{
		"|0\r\n|0\r\n|0\r\n",
		"|1\r\n+k\r\n+v\r\n|0\r\n|1\r\n+k\r\n+v\r\n",
		"|1\r\n|0\r\n+k\r\n+v\r\n|1\r\n|0\r\n+k\r\n+v\r\n|0\r\n",
		"*1\r\n|0\r\n|0\r\n|0\r\n",
	} {
		_, err := newTestScanner(t, limits).Scan([]byte(in))
		require.ErrorIs(t, err, ErrMalformed, "%q", in)
		assert.ErrorContains(t, err, "3 attributes in a row before one value, over the limit of 2")
	}
}

func TestScannerAllocatesNothing(t *testing.T) {
	in := []byte(honestStream())
	s := newTestScanner(t, Limits{})
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := scanChunks(s, in, 7, 64, 1); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs, "allocations per pass over the stream")

	// A stack deeper than the array inside the scanner is allocated once.
	deep := []byte(strings.Repeat("*1\r\n", 40) + ":1\r\n")
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := s.Scan(deep); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs, "allocations per deep reply, once the stack has grown")
	assert.False(t, errors.Is(s.err, ErrTooLarge))
}
