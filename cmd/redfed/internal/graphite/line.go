package graphite

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redfed/federated/internal/metric"
)

// Why a line is refused. Every error of ParseLine and Template.Map wraps
// one of them.
var (
	// ErrMalformed reports a line that is not PATH VALUE TIMESTAMP: another
	// number of fields, or a value or timestamp that is not a decimal
	// number in the range of a float64.
	ErrMalformed = errors.New("graphite: malformed line")
	// ErrNotFinite reports a value of NaN or infinity, which a series
	// cannot hold. collectd sends "nan" for a rate it cannot compute yet,
	// such as a CPU counter's first interval.
	ErrNotFinite = errors.New("graphite: value not finite")
	// ErrBadTimestamp reports a timestamp before 1970 or in year 10000 or
	// later. It is the library's own (federated: bad timestamp), whose
	// rule this is.
	ErrBadTimestamp = metric.ErrBadTimestamp
	// ErrUnmapped reports a path that the Template does not map to a valid
	// host and metric name.
	ErrUnmapped = errors.New("graphite: path not mapped")
)

// ParseLine parses one line of the plaintext protocol, without its end of
// line: PATH VALUE TIMESTAMP, separated by spaces or tabs, VALUE a decimal
// number and TIMESTAMP Unix seconds, with a fraction if need be, or -1
// for now, as carbon reads it. The path is returned as it is; Template.Map
// checks it.
func ParseLine(line string, now time.Time) (path string, value float64, t time.Time, err error) {
	// Only ' ' and '\t' separate, as carbon reads a line: another space
	// (U+00A0, U+3000, '\v', '\f') stays in its field, for the checks
	// to refuse.
	fields := strings.FieldsFunc(line, isFieldSeparator)
	if len(fields) != 3 {
		return "", 0, time.Time{}, fmt.Errorf("%w: %d fields, want 3: PATH VALUE TIMESTAMP", ErrMalformed, len(fields))
	}
	value, err = parseDecimal("value", fields[1])
	if err != nil {
		return "", 0, time.Time{}, err
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return "", 0, time.Time{}, fmt.Errorf("%w: %s", ErrNotFinite, fields[1])
	}
	ts, err := parseDecimal("timestamp", fields[2])
	if err != nil {
		return "", 0, time.Time{}, err
	}
	if ts == -1 {
		return fields[0], value, now, nil
	}
	if err := metric.ValidateTimestamp(ts); err != nil {
		return "", 0, time.Time{}, err
	}
	return fields[0], value, metric.Time(ts), nil
}

// isFieldSeparator reports whether r separates the fields of a line: a
// space or a tab.
func isFieldSeparator(r rune) bool { return r == ' ' || r == '\t' }

// parseDecimal reads a decimal number, or NaN or infinity as Go spells
// them. Hexadecimal, digits separated by '_' and numbers beyond the range
// of a float64 (too large, or too small to be told from 0) are refused.
func parseDecimal(field, s string) (float64, error) {
	if strings.ContainsAny(s, "xX_") {
		return 0, fmt.Errorf("%w: %s %s is not a decimal number", ErrMalformed, field, quote(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) || err == nil && metric.Underflows(s):
		return 0, fmt.Errorf("%w: %s %s is out of the range of a float64", ErrMalformed, field, quote(s))
	case err != nil:
		return 0, fmt.Errorf("%w: %s %s is not a number", ErrMalformed, field, quote(s))
	}
	return f, nil
}

// maxQuoted is how many bytes of a line's field an error quotes.
const maxQuoted = 128

// quote quotes s for an error message, cut short if it is long.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + "..."
}

// cut returns s, or its first maxQuoted bytes and "..." if it is longer.
func cut(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
