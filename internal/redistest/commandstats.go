package redistest

import (
	"strconv"
	"strings"
)

// CommandStat is one command's line of INFO commandstats.
type CommandStat struct {
	Calls    int64 // every call, scripts' own calls of it included
	Failed   int64 // calls that ran and answered an error
	Rejected int64 // calls refused before running (an unknown script, say)
	Usec     int64 // µs spent running it, by the clock: a script's includes its calls'
}

// Completed is the calls that ran to the end.
func (s CommandStat) Completed() int64 { return s.Calls - s.Failed - s.Rejected }

// ParseCommandStats reads the reply of INFO commandstats, by command name
// in lower case. A command never called has no entry.
func ParseCommandStats(info string) map[string]CommandStat {
	out := make(map[string]CommandStat)
	for _, line := range strings.Split(info, "\r\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		var st CommandStat
		for _, field := range strings.Split(fields, ",") {
			key, value, _ := strings.Cut(field, "=")
			n, _ := strconv.ParseInt(value, 10, 64)
			switch key {
			case "calls":
				st.Calls = n
			case "failed_calls":
				st.Failed = n
			case "rejected_calls":
				st.Rejected = n
			case "usec":
				st.Usec = n
			}
		}
		out[name] = st
	}
	return out
}
