package metric

import (
	"fmt"
	"strings"
	"time"
)

// Key returns the key of the sorted set that holds samples of metric on host
// in the period p that contains t: "$period:$host:$metric", for example
// "2026-11-25:web1.sfo:cpu.user". It validates host and metric
// (ValidateHost, ValidateMetric) and t, which must lie between 1970 and
// the end of 9999; the error wraps ErrBadHost, ErrBadMetric or
// ErrBadTimestamp.
func Key(p Period, t time.Time, host, metric string) (string, error) {
	if err := ValidateHost(host); err != nil {
		return "", err
	}
	if err := ValidateMetric(metric); err != nil {
		return "", err
	}
	if err := validateTime(t); err != nil {
		return "", err
	}
	var period [len(hourLayout)]byte
	var b strings.Builder
	b.Grow(len(hourLayout) + 2 + len(host) + len(metric))
	b.Write(p.AppendFormat(period[:0], t))
	b.WriteByte(':')
	b.WriteString(host)
	b.WriteByte(':')
	b.WriteString(metric)
	return b.String(), nil
}

// AppendKey appends the key of metric on host in the period that starts at
// start to dst and returns the extended slice. It is the write path's Key:
// it validates nothing, so the caller validates host and metric once (with
// ValidateHost and ValidateMetric) and then formats as many keys as it
// likes. It does not allocate when dst has room. A start that is not the
// beginning of a period formats as the period that contains it.
func AppendKey(dst []byte, p Period, start time.Time, host, metric string) []byte {
	dst = p.AppendFormat(dst, start)
	dst = append(dst, ':')
	dst = append(dst, host...)
	dst = append(dst, ':')
	return append(dst, metric...)
}

// ParseKey splits a metric key written for period p into the start of its
// period, its host and its metric name. The period ends at the first ':',
// the host at the second, and the metric name is the rest, colons and all.
// Every part is checked as Key checks it, so a key that parses is one Key
// could have written and AppendKey formats it back to the same string. It
// does not allocate unless it fails. The error wraps ErrBadKey and, when
// one part is at fault, ErrBadPeriod, ErrBadHost or ErrBadMetric as well.
func ParseKey(p Period, key string) (start time.Time, host, metric string, err error) {
	period, rest, ok := strings.Cut(key, ":")
	if !ok {
		return time.Time{}, "", "", fmt.Errorf("%w %s: no ':' after the period", ErrBadKey, quote(key))
	}
	host, metric, ok = strings.Cut(rest, ":")
	if !ok {
		return time.Time{}, "", "", fmt.Errorf("%w %s: no ':' between host and metric", ErrBadKey, quote(key))
	}
	if start, err = p.Parse(period); err != nil {
		return time.Time{}, "", "", fmt.Errorf("%w %s: %w", ErrBadKey, quote(key), err)
	}
	if err = ValidateHost(host); err != nil {
		return time.Time{}, "", "", fmt.Errorf("%w %s: %w", ErrBadKey, quote(key), err)
	}
	if err = ValidateMetric(metric); err != nil {
		return time.Time{}, "", "", fmt.Errorf("%w %s: %w", ErrBadKey, quote(key), err)
	}
	return start, host, metric, nil
}
