package metric

import (
	"errors"
	"strconv"
)

// ErrBadHost reports a host name that cannot be part of a metric key: empty,
// too long, containing ':', invalid UTF-8, or a character that is invisible
// or changes how text is shown (see ValidateHost). The error quotes the host
// and says where the problem is.
var ErrBadHost = errors.New("federated: bad host")

// ErrBadMetric reports a metric name that cannot be part of a metric key:
// empty, too long, invalid UTF-8, or a character that is invisible or
// changes how text is shown (see ValidateHost). The error quotes the name
// and says where the problem is.
var ErrBadMetric = errors.New("federated: bad metric name")

// ErrBadValue reports a sample value that is NaN or ±Inf.
var ErrBadValue = errors.New("federated: bad value")

// ErrBadTimestamp reports a sample time that is NaN, ±Inf, before the Unix
// epoch, or in year 10000 or later.
var ErrBadTimestamp = errors.New("federated: bad timestamp")

// ErrBadPeriod reports a period name that ParsePeriod does not know, or a
// period string that Period.Parse cannot turn back into a time.
var ErrBadPeriod = errors.New("federated: bad period")

// ErrBadKey reports a metric key that ParseKey cannot split into a period,
// host and metric. Where one part is at fault the error also wraps
// ErrBadPeriod, ErrBadHost or ErrBadMetric.
var ErrBadKey = errors.New("federated: bad metric key")

// ErrBadMember reports a sorted-set member that ParseMember cannot read as
// "timestamp:value", or whose number is too large or too small for a
// float64. Where the number is a float64 but out of range the error also
// wraps ErrBadTimestamp or ErrBadValue.
var ErrBadMember = errors.New("federated: bad member")

// maxQuoted is how many bytes of an offending string an error message
// quotes. Names within the limits are quoted whole; a megabyte of garbage
// read back from Redis is not.
const maxQuoted = 1024

// quote returns s quoted as by %q, cut after maxQuoted bytes with a note of
// the full length.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// formatFloat prints f for an error message: shortest form, exponent for
// large and small numbers, "NaN", "+Inf" and "-Inf" as such.
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}
