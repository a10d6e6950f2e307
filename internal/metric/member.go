package metric

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Point is one sample of a metric.
type Point struct {
	Time  float64 // Unix seconds, fractions allowed; also the member's score
	Value float64
}

// AppendMember appends the sorted-set member "ts:value" to dst and returns
// the extended slice. It is the write path's FormatMember: it validates
// nothing, and it does not allocate when dst has room.
//
// The form is canonical, because the sorted set deduplicates members by
// their bytes: ts prints in decimal, never with an exponent, with as few
// digits as read back exactly (whole seconds as an integer, "1290000000",
// "1290000000.25"); value prints in as few digits as read back exactly, in
// %g style: plain from 1e-4 up to 1e6, with an exponent outside that ("0.5",
// "12", "-3e-05", "1.5e+06"); negative zero prints as "0".
func AppendMember(dst []byte, ts, value float64) []byte {
	// Whole numbers are the common case (Perl writes time(), counters
	// count) and AppendInt prints them faster than the shortest-float
	// search, with the same bytes: below 2⁵³ every whole float64 is exact,
	// 'f' prints it in full, and 'g' does so below 10⁶, where it switches
	// to an exponent. The one difference is on purpose: AppendFloat
	// prints -0 as "-0", AppendInt as "0".
	if ts >= 0 && ts < 1<<53 && ts == math.Trunc(ts) {
		dst = strconv.AppendInt(dst, int64(ts), 10)
	} else {
		dst = strconv.AppendFloat(dst, ts, 'f', -1, 64)
	}
	dst = append(dst, ':')
	if value > -1e6 && value < 1e6 && value == math.Trunc(value) {
		return strconv.AppendInt(dst, int64(value), 10)
	}
	return strconv.AppendFloat(dst, value, 'g', -1, 64)
}

// FormatMember returns the member AppendMember would write after validating
// ts and value. The error wraps ErrBadTimestamp or ErrBadValue.
func FormatMember(ts, value float64) (string, error) {
	if err := ValidateTimestamp(ts); err != nil {
		return "", err
	}
	if err := ValidateValue(value); err != nil {
		return "", err
	}
	var buf [64]byte
	return string(AppendMember(buf[:0], ts, value)), nil
}

// ParseMember reads a sorted-set member "ts:value" written by AppendMember
// or by the Perl writers: "1290000000:0.5", "1290000000:12",
// "1290000000.25:-3e-5". Either number may have a sign, a fraction and an
// exponent. ParseMember refuses what neither writer produces and
// strconv.ParseFloat would otherwise let through: NaN and infinities however
// spelled, hex floats, underscores, white space, and a number that is not
// zero but too small for a float64 ("1e-400", which ParseFloat reads as 0;
// see Underflows). It also refuses an empty part, a missing or second ':',
// numbers too large for a float64, and numbers out of range (see
// ValidateTimestamp and ValidateValue). It does not allocate unless it fails.
// The error quotes the member and wraps ErrBadMember, and ErrBadTimestamp or
// ErrBadValue when a number is readable but out of range.
func ParseMember(member string) (ts, value float64, err error) {
	tsText, valueText, ok := strings.Cut(member, ":")
	switch {
	case !ok:
		return 0, 0, memberError(member, "no ':' between timestamp and value")
	case tsText == "":
		return 0, 0, memberError(member, "empty timestamp")
	case valueText == "":
		return 0, 0, memberError(member, "empty value")
	}
	if i := strings.IndexByte(valueText, ':'); i >= 0 {
		return 0, 0, memberError(member, fmt.Sprintf("second ':' at byte %d", len(tsText)+1+i))
	}
	if ts, err = parseNumber(member, tsText, 0, "timestamp"); err != nil {
		return 0, 0, err
	}
	if problem := timestampProblem(ts); problem != "" {
		return 0, 0, fmt.Errorf("%w %s: %w %s: %s",
			ErrBadMember, quote(member), ErrBadTimestamp, tsText, problem)
	}
	if value, err = parseNumber(member, valueText, len(tsText)+1, "value"); err != nil {
		return 0, 0, err
	}
	// parseNumber refuses "Inf" and overflow, so value is finite here.
	return ts, value, nil
}

// parseNumber reads text, which starts at byte offset of member, as a
// decimal float64. Only digits, signs, '.', 'e' and 'E' may appear, which
// shuts out everything strconv.ParseFloat accepts beyond plain decimals;
// ParseFloat then checks the grammar and the range.
func parseNumber(member, text string, offset int, what string) (float64, error) {
	// Plain digits, the usual timestamp, are read here: fifteen of them
	// stay below 2⁵³, so the float64 is exact, as ParseFloat's would be.
	whole, onlyDigits := uint64(0), len(text) <= 15
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case '0' <= c && c <= '9':
			whole = whole*10 + uint64(c-'0')
		case c == '.', c == '-', c == '+', c == 'e', c == 'E':
			onlyDigits = false
		default:
			r, _ := utf8.DecodeRuneInString(text[i:])
			return 0, memberError(member, fmt.Sprintf("%s has %q at byte %d, want a decimal number",
				what, r, offset+i))
		}
	}
	if onlyDigits {
		return float64(whole), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, memberError(member, fmt.Sprintf("%s %s is out of float64 range", what, text))
	case err != nil:
		return 0, memberError(member, fmt.Sprintf("%s %s is not a decimal number", what, text))
	case f == 0 && !zeroMantissa(text):
		return 0, memberError(member, fmt.Sprintf("%s %s is out of float64 range: too small, it is not 0 but would be read as 0",
			what, text))
	}
	return f, nil
}

// Underflows reports whether text is a number that strconv.ParseFloat reads
// as 0, without an error, although its digits are not all zeros: "1e-400",
// or a fraction with hundreds of zeros before its first other digit. Such a
// number is too small for a float64, and taken as 0 it would store another
// value than the one written, or a time in 1970. ParseMember refuses it as
// it refuses "1e400"; parsers of other input call Underflows to do the same.
func Underflows(text string) bool {
	f, err := strconv.ParseFloat(text, 64)
	return err == nil && f == 0 && !zeroMantissa(text)
}

// zeroMantissa reports whether the digits of a number before its exponent
// are all zeros, so that it is written as zero ("0", "-0.0", "0e5", and
// in ParseFloat's other syntax "0x0p3" and "0_0").
func zeroMantissa(text string) bool {
	text = strings.TrimLeft(text, "+-")
	mantissa, exp := text, "eE"
	if len(text) > 1 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X') {
		mantissa, exp = text[2:], "pP"
	}
	if i := strings.IndexAny(mantissa, exp); i >= 0 {
		mantissa = mantissa[:i]
	}
	return strings.Trim(mantissa, "0._") == ""
}

// memberError returns an error about member that wraps ErrBadMember.
func memberError(member, problem string) error {
	return fmt.Errorf("%w %s: %s", ErrBadMember, quote(member), problem)
}

// ParseMembers parses members as ZRANGEBYSCORE returns them, appends a Point
// for each one that ParseMember accepts to dst, and returns the extended
// slice with the number of members it skipped as malformed. Pass dst[:0] to
// reuse a slice. Points come out in the order of members, which for one key
// is score order.
func ParseMembers(members []string, dst []Point) (points []Point, malformed int) {
	dst = slices.Grow(dst, len(members))
	for _, m := range members {
		ts, value, err := ParseMember(m)
		if err != nil {
			malformed++
			continue
		}
		dst = append(dst, Point{Time: ts, Value: value})
	}
	return dst, malformed
}
