package replyguard

import (
	"bytes"
	"fmt"
)

// maxDigits is the most digits a length may have: 18 digits never overflow
// an int64, and a length of 19 is over any limit worth setting.
const maxDigits = 18

// scanState is where in the framing of a value the next byte falls.
type scanState uint8

const (
	atType      scanState = iota // the type byte of the next value
	inLength                     // the sign or digits of a length header
	atLengthLF                   // the LF after a length header's CR
	inLine                       // a line reply, up to its LF
	inPayload                    // the payload of a bulk value
	atPayloadCR                  // the CR after a bulk payload
	atPayloadLF                  // the LF after a bulk payload
)

// mapSlotsPerPair is what one pair of a map counts against
// MaxAggregateLen, in slots of an array. go-redis makes a Go map of a map
// reply, make(map[interface{}]interface{}, n), and its typed commands a
// map[string]string, where an array gets 16 bytes a slot; with Go 1.26 a
// map of n pairs takes from 41 to 91 bytes a pair (80 at 1<<23 pairs, 91
// just past a doubling of its tables). Six slots, 96 bytes, a pair keeps
// a map within what the limit allows an array.
const mapSlotsPerPair = 6

// frame is an aggregate open in the stream.
type frame struct {
	left int64 // values still to be read: a map or attribute has two a pair
	kind byte  // its type byte; an attribute ('|') decorates the value after it and fills no slot of its parent
	run  int32 // for an attribute, the attributes in a row it ends, itself included
}

// Scanner follows a stream of RESP2/RESP3 replies through any split into
// chunks, and stops it at the first header over its limits or the first
// byte that breaks the framing. Build one with NewScanner.
type Scanner struct {
	limits Limits

	state   scanState
	kind    byte  // type byte of the value being read
	neg     bool  // its length has a minus sign
	digits  int   // digits of its length read so far
	length  int64 // its length, as far as read
	lineLen int   // bytes of the line reply read so far
	cr      bool  // the last byte of the line so far was a CR
	payload int64 // bulk payload bytes still to pass

	// The content of a number line, as far as read, checked at its end
	// (see values.go).
	num       [maxNumberLen]byte // the content of a ':', ',' or '#' line
	numLen    int                // its bytes so far, CR included
	numBad    bool               // a byte so far makes it no number
	numCR     bool               // a '(' line: the last byte so far was a CR
	numDigits bool               // a '(' line: it has a digit

	// The innermost open aggregate is kept in fields of its own, the
	// others in open, so that counting a value touches two fields.
	depth int      // aggregates open
	inner frame    // the innermost one
	outer int64    // slots still to be filled in the others, summed (see slots)
	open  []frame  // the others, innermost last
	stack [8]frame // backing for open, so that common nesting allocates nothing

	// attrs is how many attributes in a row have ended just before the
	// next value, at the level of that value. go-redis's reader recurses
	// once for each, as it does for each level of nesting, and a chain of
	// them is never more than one level deep.
	attrs int32

	// resp3 is set once a map has passed at the top level. Redis answers
	// only in RESP2 until a client's HELLO 3, which it answers with a map,
	// and pushes only to a client in RESP3. go-redis, set to RESP3, takes a
	// push for a notification on a connection that fell back to RESP2 too,
	// skips it and waits for the reply.
	resp3 bool

	err error // the first failure; final
}

// NewScanner returns a Scanner at the start of a stream.
func NewScanner(l Limits) (*Scanner, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	s := &Scanner{}
	s.init(l)
	return s, nil
}

// init sets s up in place: open uses the array inside s, so that the
// nesting of common replies needs no allocation.
func (s *Scanner) init(l Limits) {
	*s = Scanner{limits: l.withDefaults()}
	s.open = s.stack[:0]
}

// Scan follows the framing through p, the next bytes of the stream, which it
// does not change. It returns len(p) and nil when p is within the limits.
// Otherwise it returns how many bytes of p come before the value at fault,
// so that the values complete before it can still be read, and an error
// wrapping ErrTooLarge or ErrMalformed; from then on it returns 0 and that
// error.
func (s *Scanner) Scan(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	start := 0 // where in p the value being read began; 0 when before p
	i := 0
	for i < len(p) {
		switch s.state {
		case atType:
			start = i
			if n := s.wholeBulk(p[i:]); n > 0 {
				i += n
				s.attrs = 0
				s.valueDone()
				break
			}
			s.kind = p[i]
			i++
			if s.kind != '|' {
				s.attrs = 0 // a value begins: the attributes before it end their run
			}
			switch s.kind {
			case '$', '=', '!', '*', '~', '>', '%', '|':
				s.state, s.neg, s.digits, s.length = inLength, false, 0, 0
			case '+', '-', ':', '_', ',', '#', '(':
				s.state, s.lineLen, s.cr = inLine, 1, false
				s.numLen, s.numBad, s.numCR, s.numDigits = 0, false, false, false
			default:
				return s.fail(start, fmt.Errorf("%w: type byte %q", ErrMalformed, s.kind))
			}
			if s.atMapKey() {
				if err := s.checkMapKey(); err != nil {
					return s.fail(start, err)
				}
			}
			if s.depth == 0 {
				switch {
				case s.kind == '%':
					s.resp3 = true
				case s.kind == '>' && !s.resp3:
					return s.fail(start, fmt.Errorf("%w: a push ('>') before the connection switched to RESP3 (HELLO 3, answered with a map): go-redis would skip it and wait for a reply",
						ErrMalformed))
				}
			}

		case inLength:
			length, digits := s.length, s.digits
			for i < len(p) && p[i]-'0' <= 9 {
				if digits == maxDigits {
					s.length, s.digits = length, digits
					return s.fail(start, fmt.Errorf("%w: header %q... has a length of more than %d digits",
						ErrTooLarge, s.header(), maxDigits))
				}
				length = length*10 + int64(p[i]-'0')
				digits++
				i++
			}
			s.length, s.digits = length, digits
			if i == len(p) {
				break
			}
			switch c := p[i]; {
			case c == '\r' && s.digits > 0:
				if i+1 < len(p) && p[i+1] == '\n' {
					i += 2
					if err := s.endHeader(); err != nil {
						return s.fail(start, err)
					}
				} else {
					i++
					s.state = atLengthLF
				}
			case c == '-' && s.digits == 0 && !s.neg:
				s.neg = true
				i++
			default:
				return s.fail(start, fmt.Errorf("%w: header %q followed by %q, not a digit or CRLF",
					ErrMalformed, s.header(), c))
			}

		case atLengthLF:
			if p[i] != '\n' {
				return s.fail(start, fmt.Errorf("%w: header %q ends in CR without LF", ErrMalformed, s.header()))
			}
			i++
			if err := s.endHeader(); err != nil {
				return s.fail(start, err)
			}

		case inLine:
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				s.lineBytes(p[i:])
				s.lineLen += len(p) - i
				s.cr = p[len(p)-1] == '\r'
				i = len(p)
				if s.lineLen > s.limits.MaxLineLen {
					return s.fail(start, s.lineTooLong())
				}
				break
			}
			cr := s.cr
			if j > 0 {
				cr = p[i+j-1] == '\r'
			}
			s.lineBytes(p[i : i+j])
			s.lineLen += j + 1
			i += j + 1
			if s.lineLen > s.limits.MaxLineLen {
				return s.fail(start, s.lineTooLong())
			}
			if !cr {
				return s.fail(start, fmt.Errorf("%w: a %q line ends in LF without CR", ErrMalformed, s.kind))
			}
			if err := s.lineEnd(); err != nil {
				return s.fail(start, err)
			}
			s.state = atType
			s.valueDone()

		case inPayload:
			n := len(p) - i
			if int64(n) > s.payload {
				n = int(s.payload)
			}
			if s.kind == '=' {
				if err := s.checkVerbatim(p[i : i+n]); err != nil {
					return s.fail(start, err)
				}
			}
			i += n
			s.payload -= int64(n)
			if s.payload > 0 {
				break
			}
			s.state = atPayloadCR
			if i+1 < len(p) && p[i] == '\r' && p[i+1] == '\n' {
				i += 2
				s.state = atType
				s.valueDone()
			}

		case atPayloadCR:
			if p[i] != '\r' {
				return s.fail(start, s.payloadUnended())
			}
			i++
			s.state = atPayloadLF

		case atPayloadLF:
			if p[i] != '\n' {
				return s.fail(start, s.payloadUnended())
			}
			i++
			s.state = atType
			s.valueDone()
		}
	}
	return len(p), nil
}

// wholeBulk returns the length of the bulk string at the start of b when b
// holds all of it, header, payload and CRLFs, and it is within the limit;
// otherwise 0, and the state machine reads it. Most values of a reply are
// short bulk strings read whole: this is their fast path.
func (s *Scanner) wholeBulk(b []byte) int {
	if len(b) < 6 || b[0] != '$' { // $0\r\n\r\n is the shortest
		return 0
	}
	var n int64
	i := 1
	for ; i < len(b) && b[i]-'0' <= 9; i++ {
		if i > maxDigits {
			return 0
		}
		n = n*10 + int64(b[i]-'0')
	}
	if i == 1 || n > s.limits.MaxBulkLen {
		return 0
	}
	end := int64(i) + 2 + n + 2
	if end > int64(len(b)) || b[i] != '\r' || b[i+1] != '\n' || b[end-2] != '\r' || b[end-1] != '\n' {
		return 0
	}
	return int(end)
}

// endHeader acts on the complete length header of the value being read:
// it checks the length against the limits and opens the payload or the
// aggregate it declares.
func (s *Scanner) endHeader() error {
	n := s.length
	if s.neg {
		n = -n
	}
	if n < -1 {
		return fmt.Errorf("%w: header %q declares a negative length", ErrMalformed, s.header())
	}
	switch s.kind {
	case '$', '=', '!':
		switch {
		case n == -1: // a null: no payload
			if s.atMapKey() {
				return fmt.Errorf("%w: header %q is a null map key, which go-redis reads as redis.Nil for the whole map",
					ErrMalformed, s.header())
			}
			s.state = atType
			s.valueDone()
		case n > s.limits.MaxBulkLen:
			return fmt.Errorf("%w: header %q declares a string of %d bytes, over the limit of %d",
				ErrTooLarge, s.header(), n, s.limits.MaxBulkLen)
		case s.kind == '=' && n < verbatimPrefix:
			return fmt.Errorf("%w: header %q declares a verbatim string of %d bytes, too short for its format (as txt:)",
				ErrUnreadable, s.header(), n)
		case n == 0:
			s.state = atPayloadCR
		default:
			s.state, s.payload = inPayload, n
		}
		return nil
	}

	s.state = atType
	attr := s.kind == '|'
	var run int32
	if attr {
		run = s.attrs + 1
		if int(run) > s.limits.MaxDepth {
			return fmt.Errorf("%w: header %q makes %d attributes in a row before one value, over the limit of %d",
				ErrMalformed, s.header(), run, s.limits.MaxDepth)
		}
	}
	if n <= 0 { // empty or null: complete already
		if attr {
			s.attrs = run
		} else {
			s.valueDone()
		}
		return nil
	}
	opened, what := frame{left: n, kind: s.kind, run: run}, "elements"
	if s.kind == '%' || attr {
		opened.left, what = 2*n, "pairs"
	}
	limit := s.limits.MaxAggregateLen
	if slots := opened.slots(); slots > limit { // n has at most 18 digits: slots cannot overflow
		return fmt.Errorf("%w: header %q declares %d %s, over the limit of %d %s",
			ErrTooLarge, s.header(), n, what, limit/(slots/n), what)
	}
	pending := s.outer + s.inner.slots() + opened.slots()
	if s.depth > 0 && !attr {
		pending -= s.inner.slotsPerValue() // it fills a slot of its parent, counted already
	}
	if pending > limit {
		return fmt.Errorf("%w: header %q inside %d open aggregates brings the slots declared and not yet filled to %d, over the limit of %d",
			ErrTooLarge, s.header(), s.depth, pending, limit)
	}
	if s.depth >= s.limits.MaxDepth {
		return fmt.Errorf("%w: header %q opens an aggregate inside %d others, over the limit of %d levels",
			ErrTooLarge, s.header(), s.depth, s.limits.MaxDepth)
	}
	if s.depth > 0 {
		s.open = append(s.open, s.inner)
		s.outer += s.inner.slots()
	}
	s.depth++
	s.inner = opened
	s.attrs = 0 // its contents are a level of their own
	return nil
}

// valueDone counts a complete value against the aggregates it completes.
func (s *Scanner) valueDone() {
	for s.depth > 0 {
		s.inner.left--
		if s.inner.left > 0 {
			return
		}
		done := s.inner
		s.depth--
		s.inner = frame{}
		if s.depth > 0 {
			s.inner = s.open[len(s.open)-1]
			s.open = s.open[:len(s.open)-1]
			s.outer -= s.inner.slots()
		}
		if done.kind == '|' { // complete, but not a value of its parent
			s.attrs = done.run
			return
		}
		s.attrs = 0
	}
}

// slotsPerValue is what each value of f counts against MaxAggregateLen.
func (f frame) slotsPerValue() int64 {
	if f.kind == '%' {
		return mapSlotsPerPair / 2
	}
	return 1
}

// slots is what the values of f still to be read count against
// MaxAggregateLen.
func (f frame) slots() int64 { return f.left * f.slotsPerValue() }

// header is the length header being read, as far as read, for errors.
func (s *Scanner) header() string {
	sign := ""
	if s.neg {
		sign = "-"
	}
	if s.digits == 0 {
		return string(s.kind) + sign
	}
	return fmt.Sprintf("%c%s%d", s.kind, sign, s.length)
}

func (s *Scanner) lineTooLong() error {
	return fmt.Errorf("%w: a %q line longer than %d bytes", ErrTooLarge, s.kind, s.limits.MaxLineLen)
}

func (s *Scanner) payloadUnended() error {
	return fmt.Errorf("%w: a %q payload not followed by CRLF", ErrMalformed, s.kind)
}

func (s *Scanner) fail(n int, err error) (int, error) {
	s.err = err
	return n, err
}
