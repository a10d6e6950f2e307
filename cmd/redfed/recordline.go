package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redfed/federated/internal/metric"
)

// errNoPoint is returned by parseRecordLine for a line that holds no point
// and is no mistake: a blank line, or a comment.
var errNoPoint = errors.New("blank or comment line")

// parseRecordLine parses one line of record's input: HOST METRIC TIMESTAMP
// VALUE, separated by spaces or tabs, where TIMESTAMP is Unix seconds with an
// optional fraction or an RFC 3339 time. A line that is blank, or whose
// first non-blank character is '#', returns errNoPoint. Anything else that
// is not a valid point returns an error that names the field at fault;
// names, timestamps and values are checked as the library checks them, so
// those errors wrap federated.ErrBadHost, ErrBadMetric, ErrBadTimestamp and
// ErrBadValue.
func parseRecordLine(line string) (host, metricName string, t time.Time, v float64, err error) {
	// Only ' ' and '\t' separate: another space (U+00A0, U+3000, '\v',
	// '\f') stays in its field, for the checks to name. A '\r' left of a
	// "\r\n" ends the line.
	fields := strings.FieldsFunc(strings.TrimSuffix(line, "\r"), isFieldSeparator)
	if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
		return "", "", time.Time{}, 0, errNoPoint
	}
	if len(fields) != 4 {
		return "", "", time.Time{}, 0, fmt.Errorf("%d fields, want 4: HOST METRIC TIMESTAMP VALUE", len(fields))
	}
	host, metricName = fields[0], fields[1]
	if err := metric.ValidateHost(host); err != nil {
		return "", "", time.Time{}, 0, err
	}
	if err := metric.ValidateMetric(metricName); err != nil {
		return "", "", time.Time{}, 0, err
	}
	if t, err = parseTimestamp(fields[2]); err != nil {
		return "", "", time.Time{}, 0, fieldError("timestamp", err)
	}
	if v, err = parseValue(fields[3]); err != nil {
		return "", "", time.Time{}, 0, err
	}
	return host, metricName, t, v, nil
}

// isFieldSeparator reports whether r separates the fields of a line of
// record's input: a space or a tab.
func isFieldSeparator(r rune) bool { return r == ' ' || r == '\t' }

// parseValue reads the value of a point: a decimal number, finite.
func parseValue(s string) (float64, error) {
	v, err := parseNumber(s)
	if err != nil {
		return 0, fieldError("value", err)
	}
	return v, metric.ValidateValue(v)
}

// fieldError names the field of an error of this package's parsers. The
// library's errors already say what they are about ("federated: bad
// timestamp ...") and are returned as they are.
func fieldError(field string, err error) error {
	if errors.Is(err, metric.ErrBadTimestamp) || errors.Is(err, metric.ErrBadValue) {
		return err
	}
	return fmt.Errorf("%s %w", field, err)
}
