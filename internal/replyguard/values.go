package replyguard

import (
	"fmt"
	"strconv"
)

// go-redis parses some values where the framing alone would pass them, and
// fails the reply with a bare parse error (strconv.ParseInt: parsing
// "abc": invalid syntax) that names no server and does not tell a broken
// server from an answer. The scanner refuses those values as malformed, so
// that they fail the read like any stream that is not RESP: a number line
// go-redis cannot parse, a verbatim string without its format, and a map key
// go-redis cannot keep.

// maxNumberLen is the most content a ':', ',' or '#' line may have, CR
// included, for the scanner keeps it to parse at the line's end. The
// longest Redis writes is a double from a module's long double, written in
// full: 309 digits before the point and 17 after, with sign and point.
const maxNumberLen = 512

// verbatimPrefix is the length of a verbatim string's format and its colon
// (txt:), which go-redis requires and strips.
const verbatimPrefix = 4

// lineBytes takes the next bytes of a line reply's content, up to its LF
// and not including it, for lineEnd. It fails nothing itself, so that a
// line too long is refused as such whatever it holds.
func (s *Scanner) lineBytes(b []byte) {
	switch s.kind {
	case ':', ',', '#':
		if !s.numBad && s.numLen+len(b) <= len(s.num) {
			copy(s.num[s.numLen:], b)
		} else {
			s.numBad = true
		}
		s.numLen += len(b)
	case '(':
		// A big number may be longer than num: check it byte by byte.
		for _, c := range b {
			switch {
			case s.numCR: // a CR before the end of the line
				s.numBad = true
			case '0' <= c && c <= '9':
				s.numDigits = true
			case c == '\r':
				s.numCR = true
			case (c == '+' || c == '-') && s.numLen == 0:
			default:
				s.numBad = true
			}
			s.numLen++
		}
	}
}

// lineEnd checks the content of a complete line reply, ended by CRLF, the
// way go-redis parses it.
func (s *Scanner) lineEnd() error {
	var want string
	switch s.kind {
	case ':':
		if !s.numBad {
			if _, err := strconv.ParseInt(string(s.num[:s.numLen-1]), 10, 64); err == nil {
				return nil
			}
		}
		want = "a 64-bit integer"
	case ',':
		if !s.numBad {
			switch v := string(s.num[:s.numLen-1]); v {
			case "inf", "-inf", "nan", "-nan":
				return nil
			default:
				if _, err := strconv.ParseFloat(v, 64); err == nil {
					return nil
				}
			}
		}
		want = "a double"
	case '#':
		if s.numLen == 2 && (s.num[0] == 't' || s.num[0] == 'f') {
			return nil
		}
		want = "t or f"
	case '(':
		if !s.numBad && s.numDigits {
			return nil
		}
		want = "a decimal integer"
	default:
		return nil
	}
	if s.numBad || s.kind == '(' { // its content is not kept
		return fmt.Errorf("%w: a %q line of %d bytes is not %s", ErrUnreadable, s.kind, s.lineLen, want)
	}
	return fmt.Errorf("%w: a %q line %q is not %s", ErrUnreadable, s.kind, s.num[:s.numLen-1], want)
}

// checkVerbatim checks b, the next bytes of a verbatim string's payload,
// for the colon after its three-byte format.
func (s *Scanner) checkVerbatim(b []byte) error {
	at := s.length - s.payload // offset of b[0] in the payload
	colon := verbatimPrefix - 1 - at
	if colon < 0 || colon >= int64(len(b)) || b[colon] == ':' {
		return nil
	}
	return fmt.Errorf("%w: header %q declares a verbatim string without its format (as txt:)", ErrUnreadable, s.header())
}

// atMapKey reports whether the value being read is a key of a map.
func (s *Scanner) atMapKey() bool {
	return s.depth > 0 && s.inner.kind == '%' && s.inner.left%2 == 0
}

// checkMapKey refuses a map key by its type byte: go-redis makes a Go map
// of a map reply, fails it on a key that cannot be one (an aggregate), and
// fails the whole map with the key's error or redis.Nil for an error or a
// null, leaving the rest of the map unread.
func (s *Scanner) checkMapKey() error {
	switch s.kind {
	case '*', '~', '>', '%':
		return fmt.Errorf("%w: an aggregate (%q) as a map key, which go-redis cannot make a Go map key of", ErrUnreadable, s.kind)
	case '-', '!', '_':
		return fmt.Errorf("%w: an error or null (%q) as a map key, which go-redis reads as the answer to the whole map", ErrUnreadable, s.kind)
	}
	return nil
}
