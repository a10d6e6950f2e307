package dashboard

import (
	"strings"
)

// unit is what a metric's values measure, read from the end of its name,
// so that the charts can say "12 MiB" or "340 ms" rather than a bare
// number.
type unit struct {
	// Kind is "bytes", "seconds", "percent", "bits/s" or "" for a plain
	// number.
	Kind string `json:"kind"`
	// Scale turns a value into Kind's base unit: 1048576 for a metric in
	// MB, 0.001 for one in ms.
	Scale float64 `json:"scale"`
}

// unitSuffixes maps the last word of a metric name to its unit.
var unitSuffixes = map[string]unit{
	"bytes": {"bytes", 1}, "byte": {"bytes", 1},
	"kb": {"bytes", 1 << 10}, "kib": {"bytes", 1 << 10}, "kbytes": {"bytes", 1 << 10},
	"mb": {"bytes", 1 << 20}, "mib": {"bytes", 1 << 20}, "mbytes": {"bytes", 1 << 20},
	"gb": {"bytes", 1 << 30}, "gib": {"bytes", 1 << 30}, "gbytes": {"bytes", 1 << 30},
	"tb": {"bytes", 1 << 40}, "tib": {"bytes", 1 << 40},
	"seconds": {"seconds", 1}, "second": {"seconds", 1}, "secs": {"seconds", 1}, "sec": {"seconds", 1}, "s": {"seconds", 1},
	"ms": {"seconds", 1e-3}, "millis": {"seconds", 1e-3}, "milliseconds": {"seconds", 1e-3}, "msec": {"seconds", 1e-3},
	"us": {"seconds", 1e-6}, "micros": {"seconds", 1e-6}, "microseconds": {"seconds", 1e-6}, "usec": {"seconds", 1e-6},
	"ns": {"seconds", 1e-9}, "nanos": {"seconds", 1e-9}, "nanoseconds": {"seconds", 1e-9},
	"percent": {"percent", 1}, "pct": {"percent", 1}, "percentage": {"percent", 1},
	"bps": {"bits/s", 1}, "kbps": {"bits/s", 1e3}, "mbps": {"bits/s", 1e6}, "gbps": {"bits/s", 1e9},
}

// unitOf returns the unit the name of a metric gives: its last word, after
// the last '.', '_', '-', '/' or ':', in any case (mem.used_mb,
// http_request_duration_seconds, cpu.user.pct). A Prometheus counter's
// "_total" is passed over (bytes_sent_bytes_total). A name without a unit
// gives the zero unit: a plain number.
func unitOf(metric string) unit {
	words := strings.FieldsFunc(strings.ToLower(metric), func(r rune) bool {
		return r == '.' || r == '_' || r == '-' || r == '/' || r == ':'
	})
	if n := len(words); n > 1 && words[n-1] == "total" {
		words = words[:n-1]
	}
	if len(words) < 2 {
		return unit{} // a name of one word is a name, not a unit: "s", "ms"
	}
	return unitSuffixes[words[len(words)-1]]
}
