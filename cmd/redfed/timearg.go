package main

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redfed/federated/internal/metric"
)

// Times on the command line and in record's input.

// timeArgForms names what parseTimeArg accepts, for flag help and errors.
const timeArgForms = `"now", RFC 3339 (2026-11-25T10:00:00Z), Unix seconds (1795600800.5), or a duration ago (2h, -2h, 90m, 7d)`

// timeArgFormsText is timeArgForms on two lines, for a command's long help.
const timeArgFormsText = `"now", RFC 3339 (2026-11-25T10:00:00Z), Unix seconds
(1795600800.5), or a duration ago (2h, -2h, 90m, 7d)`

// parseTimeArg reads a time given on the command line: "now", an RFC 3339
// time, Unix seconds with an optional fraction, or a duration ago, with or
// without a leading '-' ("2h" and "-2h" both mean two hours before now; a
// "d" suffix counts whole days). The time must be a valid metric timestamp.
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if t, err := parseTimestamp(s); err == nil || !errors.Is(err, errNotATime) {
		return t, err
	}
	ago, ok, tooFar := parseAgo(s)
	switch {
	case tooFar:
		return time.Time{}, fmt.Errorf("%s ago: %w: before 1970-01-01", quoteField(s), metric.ErrBadTimestamp)
	case !ok:
		return time.Time{}, fmt.Errorf("%s: want %s", quoteField(s), timeArgForms)
	}
	t := now.Add(-ago)
	if err := metric.ValidateTimestamp(metric.Seconds(t)); err != nil {
		return time.Time{}, fmt.Errorf("%s ago: %w", quoteField(s), err)
	}
	return t, nil
}

// parseAgo reads a Go duration or a number of days ("7d"), with an optional
// leading '-', as a length of time before now. tooFar reports one written
// right but too long to hold, which is before 1970.
func parseAgo(s string) (ago time.Duration, ok, tooFar bool) {
	s = strings.TrimPrefix(s, "-")
	if days, found := strings.CutSuffix(s, "d"); found {
		n, err := strconv.ParseUint(days, 10, 16)
		return time.Duration(n) * 24 * time.Hour, err == nil, errors.Is(err, strconv.ErrRange)
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil, err != nil && durationShape.MatchString(s)
}

// durationShape matches what time.ParseDuration reads, whatever its size.
var durationShape = regexp.MustCompile(`^([0-9]*\.?[0-9]+(ns|us|µs|μs|ms|s|m|h))+$`)

// errNotATime reports a string that is neither Unix seconds nor RFC 3339.
var errNotATime = errors.New("want Unix seconds or an RFC 3339 time like 2026-11-25T10:00:00Z")

// parseTimestamp reads the time of a point: Unix seconds with an optional
// fraction ("1795600800", "1795600800.25") or an RFC 3339 time
// ("2026-11-25T10:00:00Z", "2026-11-25T11:00:00.5+01:00"); digits past the
// nanosecond are dropped. A time outside what a metric can hold (before
// 1970, from year 10000) fails with an error wrapping
// federated.ErrBadTimestamp; text that is neither form, with one wrapping
// errNotATime.
func parseTimestamp(s string) (time.Time, error) {
	if looksNumeric(s) {
		ts, err := parseNumber(s)
		if err != nil {
			return time.Time{}, err
		}
		if err := metric.ValidateTimestamp(ts); err != nil {
			return time.Time{}, err
		}
		return unixTime(s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", quoteField(s), errNotATime)
	}
	if metric.ValidateTimestamp(metric.Seconds(t)) != nil {
		// Named as written: its seconds, 2.53402304399e+11, say nothing
		// to the one who wrote it.
		problem := "in year 10000 or later"
		if t.Before(time.Unix(0, 0)) {
			problem = "before 1970-01-01"
		}
		return time.Time{}, fmt.Errorf("%w %s: %s", metric.ErrBadTimestamp, quoteField(s), problem)
	}
	return t, nil
}

// unixTime returns the time of s, Unix seconds that parseNumber and
// metric.ValidateTimestamp accepted, read from its digits to the
// nanosecond. The float64 that ParseFloat reads is 238 ns from the next in
// 2026, and metric.Time rounded it to the microsecond: --to
// 1795600800.4999999 was 1795600800.5 and took in the point there. Digits
// past the nanosecond, the finest a time holds, are dropped: a start of a
// range moves at most a nanosecond earlier, where no point read back to
// the microsecond lies but one at that very microsecond.
func unixTime(s string) (time.Time, error) {
	// A sign is '+', or '-' on a zero: validation refused negatives.
	mantissa, expText, _ := strings.Cut(strings.ToLower(strings.TrimLeft(s, "+-")), "e")
	intPart, fracPart, _ := strings.Cut(mantissa, ".")
	all := intPart + fracPart
	digits := strings.TrimLeft(all, "0")
	point := len(intPart) - (len(all) - len(digits)) // digits is 0.digits × 10^point
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	if expText != "" {
		exp, err := strconv.Atoi(expText)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s is not a number", quoteField(s))
		}
		point += exp
	}
	var whole, frac string
	switch {
	case point <= 0:
		frac = strings.Repeat("0", -point) + digits
	case point >= len(digits):
		whole = digits + strings.Repeat("0", point-len(digits))
	default:
		whole, frac = digits[:point], digits[point:]
	}
	// Digits past the nanosecond are dropped: a tool that prints every
	// digit of a float64 ("%.12f" of 1795600800.123457 writes
	// 1795600800.123456954956) writes the point it means.
	frac = frac[:min(len(frac), 9)]
	sec, err := strconv.ParseInt(cmp.Or(whole, "0"), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w %s: out of range", metric.ErrBadTimestamp, quoteField(s))
	}
	nsec, _ := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	return time.Unix(sec, nsec).UTC(), nil
}

// looksNumeric reports whether s is made of the characters of a decimal
// number, signs only first or after the exponent's 'e', or spells NaN or
// infinity: then parseNumber, not the time parser, should say what is wrong
// with it. "2026-11-25" does not look numeric.
func looksNumeric(s string) bool {
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "nan", "inf", "infinity":
		return true
	}
	digits := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits = true
		case c == '.', c == 'e', c == 'E':
		case c == '+', c == '-':
			if i > 0 && s[i-1] != 'e' && s[i-1] != 'E' {
				return false
			}
		default:
			return false
		}
	}
	return digits
}

// parseNumber reads a decimal number: digits, an optional sign, fraction
// and exponent, or NaN and infinities, which it returns for the library's
// validation to refuse with its own errors. Hex floats and underscores,
// which strconv.ParseFloat also accepts, are refused. So is a number too
// small for a float64 that is not written as zero ("1e-400"), which
// strconv.ParseFloat reads as 0 without an error: as a value it would store
// 0, as a time 1970, another point than the one written. It is refused as
// "1e400" is.
func parseNumber(s string) (float64, error) {
	if strings.ContainsAny(s, "xX_") {
		return 0, fmt.Errorf("%s is not a decimal number", quoteField(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s is out of the range of a float64", quoteField(s))
	case err != nil:
		return 0, fmt.Errorf("%s is not a number", quoteField(s))
	case metric.Underflows(s):
		return 0, fmt.Errorf("%s is out of the range of a float64: too small, it is not 0 but would be read as 0",
			quoteField(s))
	}
	return f, nil
}

// maxQuoted is how many bytes of a bad field an error quotes.
const maxQuoted = 64

// quoteField quotes a field of input for an error message, cut short if it
// is long.
func quoteField(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + "..."
}
