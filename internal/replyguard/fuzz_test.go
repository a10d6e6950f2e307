package replyguard

import (
	"bytes"
	"errors"
	"math/big"
	"strconv"
	"testing"
)

// fuzzLimits are small, so that short inputs reach every limit.
var fuzzLimits = Limits{MaxBulkLen: 64, MaxAggregateLen: 16, MaxDepth: 4, MaxLineLen: 32}

// FuzzScanner checks the scanner on any stream, cut into chunks of any size:
// it never panics, never changes a byte, gives the same verdict however the
// stream is cut, and agrees with refScan, a second reading of the rules
// written as a recursive parser over the whole input: it passes exactly
// the values that refScan finds within the limits, so no header over a
// limit is ever passed, and it refuses nothing refScan accepts.
func FuzzScanner(f *testing.F) {
	for _, r := range honestReplies {
		f.Add([]byte(r.reply), uint8(1))
	}
	f.Add([]byte(honestStream()), uint8(7))
	for _, in := range []string{":abc\r\n", ",1e400\r\n", "(1\r2\r\n", "=7\r\ntxtabcd\r\n", "%1\r\n*1\r\n:1\r\n:2\r\n", "%1\r\n$-1\r\n:1\r\n"} {
		f.Add([]byte(in), uint8(2))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		orig := bytes.Clone(in)
		whole, err := NewScanner(fuzzLimits)
		if err != nil {
			t.Fatal(err)
		}
		passed, scanErr := whole.Scan(in)
		if !bytes.Equal(in, orig) {
			t.Fatalf("Scan changed its input")
		}

		size := int(chunk%16) + 1
		split, _ := NewScanner(fuzzLimits)
		splitPassed, splitErr := scanChunks(split, in, size)
		if errString(splitErr) != errString(scanErr) {
			t.Fatalf("whole: %v; in chunks of %d: %v", scanErr, size, splitErr)
		}
		if splitPassed < passed {
			t.Fatalf("in chunks of %d, %d bytes passed; whole, %d", size, splitPassed, passed)
		}

		refEnd, refErr := refScan(in, fuzzLimits)
		refBad := errors.Is(refErr, ErrTooLarge) || errors.Is(refErr, ErrMalformed)
		switch {
		case scanErr == nil && refBad:
			t.Fatalf("passed %q; refScan: %v", in, refErr)
		case scanErr != nil && !refBad:
			t.Fatalf("refused %q: %v; refScan accepts it", in, scanErr)
		case scanErr != nil:
			if errors.Is(scanErr, ErrTooLarge) != errors.Is(refErr, ErrTooLarge) {
				t.Fatalf("%q: Scan: %v; refScan: %v", in, scanErr, refErr)
			}
			if passed != refEnd {
				t.Fatalf("%q: Scan passed %d bytes; the bad value starts at %d", in, passed, refEnd)
			}
		}
		if _, err := refScan(in[:passed], fuzzLimits); errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMalformed) {
			t.Fatalf("the %d bytes passed of %q hold a bad value: %v", passed, in, err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// errShort reports input that ends inside a value.
var errShort = errors.New("input ends inside a value")

// refScan parses every value of in, recursively, against l. It returns nil
// when in ends between values, errShort when it ends inside one, or an
// error wrapping ErrTooLarge or ErrMalformed and the offset where the bad
// value begins.
func refScan(in []byte, l Limits) (int, error) {
	r := &refParser{in: in, l: l.withDefaults()}
	for r.pos < len(r.in) {
		if err := r.value(); err != nil {
			return r.bad, err
		}
	}
	return len(in), nil
}

type refParser struct {
	in      []byte
	pos     int
	l       Limits
	open    int   // aggregates open around the current value
	pending int64 // slots declared by them and not yet filled
	perSlot int64 // the slots one value of the innermost counts; 0 at the top
	key     bool  // the next value is a map's key
	resp3   bool  // a map has passed at the top level
	bad     int   // where the bad value begins
}

func (r *refParser) fail(start int, err error) error {
	r.bad = start
	return err
}

// value reads one value, with the attributes before it.
func (r *refParser) value() error {
	key := r.key
	r.key = false
	for attrs := 0; ; {
		start := r.pos
		if r.pos == len(r.in) {
			return errShort
		}
		kind := r.in[r.pos]
		r.pos++
		switch kind {
		case '+', '-', ':', '_', ',', '#', '(':
		case '$', '=', '!', '*', '~', '>', '%', '|':
		default:
			return r.fail(start, ErrMalformed)
		}
		if key && bytes.IndexByte([]byte("*~>%-!_"), kind) >= 0 {
			return r.fail(start, ErrMalformed) // go-redis cannot key a Go map with it
		}
		if r.open == 0 {
			if kind == '>' && !r.resp3 {
				return r.fail(start, ErrMalformed) // Redis pushes only in RESP3
			}
			r.resp3 = r.resp3 || kind == '%'
		}
		switch kind {
		case '+', '-', ':', '_', ',', '#', '(':
			return r.line(start)
		}
		n, err := r.length()
		if err != nil {
			return r.fail(start, err)
		}
		if n < -1 {
			return r.fail(start, ErrMalformed)
		}
		if kind == '|' {
			if attrs++; attrs > r.l.MaxDepth {
				return r.fail(start, ErrMalformed)
			}
		}
		switch kind {
		case '$', '=', '!':
			return r.bulk(start, kind, n, key)
		}
		if n <= 0 {
			if kind == '|' {
				continue // decorates the next value
			}
			return nil
		}
		values, perSlot := n, int64(1)
		switch kind {
		case '%':
			values, perSlot = 2*n, 3 // a Go map costs six slots a pair
		case '|':
			values = 2 * n
		}
		pending := r.pending + values*perSlot
		if kind != '|' {
			pending -= r.perSlot
		}
		if values*perSlot > r.l.MaxAggregateLen || pending > r.l.MaxAggregateLen || r.open >= r.l.MaxDepth {
			return r.fail(start, ErrTooLarge)
		}
		r.open++
		r.pending += values * perSlot
		outerSlot := r.perSlot
		r.perSlot = perSlot
		for i := range values {
			r.key = kind == '%' && i%2 == 0
			if err := r.value(); err != nil {
				return err
			}
			r.pending -= perSlot
		}
		r.perSlot = outerSlot
		r.open--
		if kind != '|' {
			return nil
		}
	}
}

// length reads the length of a header, up to its CRLF.
func (r *refParser) length() (int64, error) {
	neg := false
	if r.pos < len(r.in) && r.in[r.pos] == '-' {
		neg = true
		r.pos++
	}
	var n int64
	digits := 0
	for ; r.pos < len(r.in) && '0' <= r.in[r.pos] && r.in[r.pos] <= '9'; r.pos++ {
		if digits == maxDigits {
			return 0, ErrTooLarge
		}
		n = n*10 + int64(r.in[r.pos]-'0')
		digits++
	}
	switch {
	case r.pos == len(r.in):
		return 0, errShort
	case digits == 0 || r.in[r.pos] != '\r':
		return 0, ErrMalformed
	case r.pos+1 == len(r.in):
		return 0, errShort
	case r.in[r.pos+1] != '\n':
		return 0, ErrMalformed
	}
	r.pos += 2
	if neg {
		n = -n
	}
	return n, nil
}

func (r *refParser) line(start int) error {
	end := bytes.IndexByte(r.in[start:], '\n')
	switch {
	case end < 0 && len(r.in)-start > r.l.MaxLineLen:
		return r.fail(start, ErrTooLarge)
	case end < 0:
		return errShort
	case end+1 > r.l.MaxLineLen:
		return r.fail(start, ErrTooLarge)
	case r.in[start+end-1] != '\r':
		return r.fail(start, ErrMalformed)
	case !goRedisParses(r.in[start], r.in[start+1:start+end-1]):
		return r.fail(start, ErrMalformed)
	}
	r.pos = start + end + 1
	return nil
}

// goRedisParses reports whether go-redis parses the content of a line
// reply of that kind, as its proto.Reader does, within the length the
// scanner keeps of a number.
func goRedisParses(kind byte, content []byte) bool {
	s := string(content)
	switch kind {
	case ':':
		_, err := strconv.ParseInt(s, 10, 64)
		return err == nil && len(content) < maxNumberLen
	case ',':
		if s == "inf" || s == "-inf" || s == "nan" || s == "-nan" {
			return true
		}
		_, err := strconv.ParseFloat(s, 64)
		return err == nil && len(content) < maxNumberLen
	case '#':
		return s == "t" || s == "f"
	case '(':
		_, ok := new(big.Int).SetString(s, 10)
		return ok
	}
	return true
}

func (r *refParser) bulk(start int, kind byte, n int64, key bool) error {
	if n == -1 {
		if key {
			return r.fail(start, ErrMalformed) // go-redis reads the whole map as nil
		}
		return nil
	}
	if n > r.l.MaxBulkLen {
		return r.fail(start, ErrTooLarge)
	}
	if kind == '=' {
		switch {
		case n < 4:
			return r.fail(start, ErrMalformed)
		case r.pos+3 >= len(r.in):
			return errShort
		case r.in[r.pos+3] != ':':
			return r.fail(start, ErrMalformed)
		}
	}
	end := int64(r.pos) + n
	for i, want := range []byte("\r\n") {
		switch at := end + int64(i); {
		case at >= int64(len(r.in)):
			return errShort
		case r.in[at] != want:
			return r.fail(start, ErrMalformed)
		}
	}
	r.pos = int(end) + 2
	return nil
}
