// Package metric holds the schema of the metric time series that Go and Perl
// writers share: how a key and a sorted-set member are formatted, parsed
// and validated, and how time is cut into periods. It does no I/O; the
// Recorder and the Lua scripts build on it.
//
// A series is one sorted set per host, metric and period, under the key
// "$period:$host:$metric", for example "2026-11-25:web1.sfo:cpu.user".
// $period is the UTC start of the period, a day ("2026-11-25", the default)
// or an hour ("2026-11-25T13"), and Period.Parse turns it back into a time,
// so retention can find and drop whole periods. A host never contains ':'
// and a metric name may, so a key splits at its first two colons. Host and
// metric names are valid UTF-8, at most MaxHostLen and MaxMetricLen bytes,
// without characters that are invisible or change how the text around them
// is shown (controls, format characters such as U+200B and the
// bidirectional overrides, line and paragraph separators, spaces other than
// the ASCII space; ValidateHost has the exact rule), so that two series
// never look alike.
//
// Each sample is a member "$timestamp:$value" with the timestamp, in Unix
// seconds with an optional fraction, also as its score: "1290000000:0.5".
// Timestamps lie between 1970 and the end of 9999; values are any finite
// float64. Members are formatted canonically, because the sorted set
// deduplicates them byte for byte: the same sample always gives the same
// bytes. ParseMember reads what the Perl writers wrote (integers, decimals,
// exponents, signs) and nothing else: no NaN or infinity, hex, underscores
// or white space, and no number too large or too small for a float64
// ("1e400", and "1e-400", which would otherwise be read as 0).
//
// Everything here is a pure function or an immutable value, safe for
// concurrent use. The Append functions (AppendKey, AppendMember,
// Period.AppendFormat) are the write path: they skip validation and do not
// allocate when the buffer has room. Their checked counterparts (Key,
// FormatMember) and the parsers return errors that quote the offending
// value, say where it is wrong, and wrap a sentinel (ErrBadHost,
// ErrBadMetric, ErrBadValue, ErrBadTimestamp, ErrBadPeriod, ErrBadKey,
// ErrBadMember) for errors.Is. Nothing panics on bad input.
package metric
