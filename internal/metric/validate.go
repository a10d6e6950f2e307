package metric

import (
	"fmt"
	"math"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on the parts of a metric key. A key is at most
// len("2006-01-02T15") + 2 + MaxHostLen + MaxMetricLen = 783 bytes, small
// enough to be cheap as a Redis key and as a member of the journal. The
// longest names seen in the Perl system are well under a hundred bytes.
const (
	MaxHostLen   = 256 // bytes; a DNS name is at most 253
	MaxMetricLen = 512 // bytes
)

// Timestamps are Unix seconds in [0, maxTimestamp): from the epoch up to,
// but not including, the first second of year 10000. Beyond that a period
// no longer formats as four digits of year and could not be parsed back.
const maxTimestamp = 253402300800 // 10000-01-01T00:00:00Z

var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(maxTimestamp, 0).UTC()
)

// ValidateHost reports whether host can be the host part of a metric key.
// It must be 1 to MaxHostLen bytes of valid UTF-8 with no ':' and no
// character that is invisible or that changes how the text around it is
// shown, since two series whose names differ only by such a character look
// the same in every list, graph and log. The characters refused are those
// of the Unicode categories
//
//   - Cc, the controls: bytes below 0x20 (tab, newline and carriage return
//     among them), DEL 0x7f, and U+0080 to U+009F;
//   - Cf, the format characters: the soft hyphen U+00AD, the zero-width
//     space, joiners and direction marks U+200B to U+200F, the
//     bidirectional embeddings and overrides U+202A to U+202E and isolates
//     U+2066 to U+2069, the word joiner U+2060, the byte order mark U+FEFF,
//     the tag characters U+E0001 to U+E007F, and the rest of Cf;
//   - Zl and Zp, the line and paragraph separators U+2028 and U+2029;
//   - Zs but the ASCII space: the no-break space U+00A0, the spaces of
//     other widths U+2000 to U+200A, U+202F, U+205F, U+3000 and the rest.
//
// The ASCII space U+0020 is allowed, as the Perl writers allow it. Letters
// and marks of every script, symbols and unassigned code points are
// allowed. The error wraps ErrBadHost and names the character as U+XXXX and
// its byte offset.
func ValidateHost(host string) error {
	return checkName(host, "host", ErrBadHost, MaxHostLen, false)
}

// ValidateMetric reports whether metric can be the metric part of a metric
// key. It must be 1 to MaxMetricLen bytes of valid UTF-8 and may hold the
// characters a host may (see ValidateHost) and ':' too. The error wraps
// ErrBadMetric.
func ValidateMetric(metric string) error {
	return checkName(metric, "metric name", ErrBadMetric, MaxMetricLen, true)
}

// Unreadable describes the first character of s that a host or metric name
// may not hold (see ValidateHost), with its byte offset ("format character
// U+200B at byte 3", "invalid UTF-8 at byte 1"), and returns "" when there
// is none; ':' is allowed. Other names that end up in keys and logs, such as
// a federation's node names and its journal key, are held to the same rule
// with it.
func Unreadable(s string) string {
	return nameProblem(s, true)
}

// checkName does the work of ValidateHost and ValidateMetric.
func checkName(name, what string, sentinel error, maxLen int, colonOK bool) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty %s", sentinel, what)
	case len(name) > maxLen:
		return fmt.Errorf("%w %s: %d bytes, longer than the limit of %d",
			sentinel, quote(name), len(name), maxLen)
	}
	if problem := nameProblem(name, colonOK); problem != "" {
		return fmt.Errorf("%w %s: %s", sentinel, quote(name), problem)
	}
	return nil
}

// nameProblem says what is wrong with the first character of name that it
// may not hold, and where, or returns "". The loop looks at ASCII bytes only
// and decodes runes only past the first non-ASCII byte, because names are
// nearly always ASCII and are checked on the write path.
func nameProblem(name string, colonOK bool) string {
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20 || c == 0x7f:
				return fmt.Sprintf("control character U+%04X at byte %d", c, i)
			case c == ':' && !colonOK:
				return fmt.Sprintf("contains ':' at byte %d", i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(name[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Sprintf("invalid UTF-8 at byte %d", i)
		}
		if kind := hiddenKind(r); kind != "" {
			return fmt.Sprintf("%s U+%04X at byte %d", kind, r, i)
		}
		i += size
	}
	return ""
}

// hiddenKind names the kind of a non-ASCII character that ValidateHost
// refuses, or returns "".
func hiddenKind(r rune) string {
	switch {
	case unicode.Is(unicode.Cc, r):
		return "control character"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case unicode.Is(unicode.Zs, r):
		return "non-ASCII space"
	case unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
		return "line or paragraph separator"
	}
	return ""
}

// ValidateValue reports whether v can be stored as a sample value: any
// float64 but NaN, +Inf and -Inf. A float64 cannot tell a value written as
// "1e-400" from 0, so a parser of text refuses that before it gets here
// (ParseMember does; see Underflows). The error wraps ErrBadValue.
func ValidateValue(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%w %s: not a finite number", ErrBadValue, formatFloat(v))
	}
	return nil
}

// ValidateTimestamp reports whether ts, in Unix seconds, can be the time of
// a sample: finite, not negative (before 1970) and before year 10000. The
// error wraps ErrBadTimestamp.
func ValidateTimestamp(ts float64) error {
	if problem := timestampProblem(ts); problem != "" {
		return fmt.Errorf("%w %s: %s", ErrBadTimestamp, formatFloat(ts), problem)
	}
	return nil
}

// timestampProblem says what is wrong with ts, or returns "".
func timestampProblem(ts float64) string {
	switch {
	case math.IsNaN(ts) || math.IsInf(ts, 0):
		return "not a finite number"
	case ts < 0:
		return "negative, before 1970-01-01"
	case ts >= maxTimestamp:
		return "in year 10000 or later"
	}
	return ""
}

// validateTime is ValidateTimestamp for a time.Time.
func validateTime(t time.Time) error {
	if t.Before(minTime) || !t.Before(maxTime) {
		return fmt.Errorf("%w %s: outside 1970-01-01 to 9999-12-31",
			ErrBadTimestamp, t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
