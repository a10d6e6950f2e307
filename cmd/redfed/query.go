package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redfed/federated/cmd/redfed/internal/natural"
	"github.com/redfed/federated/cmd/redfed/internal/wire"
	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/metrics"
)

// Defaults of the reading commands.
const (
	defaultQueryRange = time.Hour          // query: the last hour
	defaultListSince  = 7 * 24 * time.Hour // hosts and metrics: the last week
)

func newQueryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "query HOST METRIC",
		Short: "Print the points of a host's metric in a time range",
		Long: `Print the points of a host's metric whose time lies in [--from, --to],
oldest first: a table of TIME (RFC 3339, UTC) and VALUE, or with --json one
object for scripts:

  {"host": "...", "metric": "...", "from": "...", "to": "...",
   "points": [{"time": "2026-11-25T10:00:00Z", "value": 42}, ...],
   "malformed": 0}

"malformed" counts stored members that do not parse as points and were
skipped. The range defaults to the last hour. --from and --to take
` + timeArgFormsText + `.

It reads every server of each replica group and merges their copies, so
a point shows as soon as any server of its group acknowledged it, before
the syncer has copied it to the others. Long ranges are read in pages of
1,000 points, which keep the servers free for writers.

When a server is down or fails, the points the others returned are
printed and the command exits 1: what that server alone acknowledged may
be missing.`,
		Example: `  redfed query web1.sfo cpu.user
  redfed query web1.sfo cpu.user --from -6h --to -5h
  redfed query web1.sfo cpu.user --from 2026-11-25T00:00:00Z --to 2026-11-26T00:00:00Z --json`,
		Args: usageArgs(cobra.ExactArgs(2)),
	}
	cmd.Flags().String("from", "", "start of the range (default an hour before --to)")
	cmd.Flags().String("to", "", "end of the range (default now)")
	asJSON := cmd.Flags().Bool("json", false, "print one JSON object instead of a table")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		host, metricName := args[0], args[1]
		if err := checkSeriesArgs(host, metricName); err != nil {
			return err
		}
		now := time.Now()
		end, err := timeFlag(cmd, "to", now, now)
		if err != nil {
			return err
		}
		start, err := timeFlag(cmd, "from", now, end.Add(-defaultQueryRange))
		if err != nil {
			return err
		}
		if start.After(end) {
			return usagef("--from %s is after --to %s", formatTime(start), formatTime(end))
		}
		client, err := newClient(cmd)
		if err != nil {
			return err
		}
		defer client.Close()
		s := metrics.Series{Host: host, Metric: metricName}
		var r metrics.RangeResult
		res, readErr := storeOf(client).Range(cmd.Context(), start, end, s)
		if errors.Is(readErr, metrics.ErrRangeTooWide) {
			// Refused before a server was asked: no answer to print.
			return usageError{readErr}
		}
		if res != nil {
			r = res[0]
		}
		if *asJSON {
			err = writeQueryJSON(cmd.OutOrStdout(), s, start, end, r)
		} else {
			err = writeQueryTable(cmd.OutOrStdout(), r)
			if r.Malformed > 0 {
				consoleOf(cmd.ErrOrStderr()).Printf("%d malformed members skipped\n", r.Malformed)
			}
		}
		return firstError(readErr, err)
	}
	return cmd
}

// checkSeriesArgs validates a host and metric name given as arguments.
func checkSeriesArgs(host, metricName string) error {
	if err := metric.ValidateHost(host); err != nil {
		return usageError{err}
	}
	if err := metric.ValidateMetric(metricName); err != nil {
		return usageError{err}
	}
	return nil
}

// timeFlag parses the value of a time flag, or returns def when the flag
// is left out; a flag given empty is a usage error.
func timeFlag(cmd *cobra.Command, name string, now, def time.Time) (time.Time, error) {
	value, err := cmd.Flags().GetString(name)
	if err != nil {
		return time.Time{}, err
	}
	if value == "" {
		if cmd.Flags().Changed(name) {
			// --time "$T" with T unset: not the default, which might
			// write or read another time than the one meant.
			return time.Time{}, usagef("--%s: empty: give a time, or leave the flag out for its default", name)
		}
		return def, nil
	}
	t, err := parseTimeArg(value, now)
	if err != nil {
		return time.Time{}, usagef("--%s %w", name, err)
	}
	return t, nil
}

// queryJSON is query's --json output: the series in the shape the
// dashboard's API shares, and the members skipped.
type queryJSON struct {
	wire.Series
	Malformed int `json:"malformed"`
}

func writeQueryJSON(w io.Writer, s metrics.Series, from, to time.Time, r metrics.RangeResult) error {
	return json.NewEncoder(w).Encode(queryJSON{Series: wire.NewSeries(s, from, to, r.Points), Malformed: r.Malformed})
}

func writeQueryTable(w io.Writer, r metrics.RangeResult) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tVALUE")
	for _, p := range r.Points {
		fmt.Fprintf(tw, "%s\t%s\n", formatTime(p.Time), formatValue(p.Value))
	}
	return tw.Flush()
}

// formatTime prints a time as query does: RFC 3339 in UTC, with as many
// fraction digits as it has.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// formatValue prints a value in as few digits as read back exactly, plain
// for everyday magnitudes and with an exponent for very large and small
// ones.
func formatValue(v float64) string {
	if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e15) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func newHostsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List the hosts that have metrics",
		Long: `List, one per line in natural order (cache3 before cache27), the hosts
with a metric written at or after --since (default 7 days ago), as the
journals of every server record it.
--since takes ` + timeArgFormsText + `.
When a server fails, the hosts the others listed are printed and the
command exits 1.`,
		Example: `  redfed hosts
  redfed hosts --since 1h
  redfed hosts --json | jq -r '.hosts[]'`,
		Args: usageArgs(cobra.NoArgs),
	}
	cmd.Flags().String("since", "", "list hosts written at or after this time (default 7d)")
	asJSON := cmd.Flags().Bool("json", false, `print {"since": TIME, "hosts": [...]}`)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		now := time.Now()
		from, err := timeFlag(cmd, "since", now, now.Add(-defaultListSince))
		if err != nil {
			return err
		}
		client, err := newClient(cmd)
		if err != nil {
			return err
		}
		defer client.Close()
		hosts, listErr := storeOf(client).Hosts(cmd.Context(), from)
		slices.SortFunc(hosts, natural.Compare)
		out := struct {
			Since time.Time `json:"since"`
			Hosts []string  `json:"hosts"`
		}{from.UTC(), nonNil(hosts)}
		return firstError(listErr, writeList(cmd.OutOrStdout(), *asJSON, out, hosts))
	}
	return cmd
}

func newMetricsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metrics HOST",
		Short: "List the metrics of a host",
		Long: `List, one per line in natural order (disk2 before disk10), the metrics
of HOST written at or after --since (default 7 days ago), as the journals
of every server record them.
--since takes ` + timeArgFormsText + `.
When a server fails, the metrics the others listed are printed and the
command exits 1. A host with no metric in that time, such as a name that
is not a host, is an error too (exit 1).`,
		Example: `  redfed metrics web1.sfo
  redfed metrics web1.sfo --since 2026-11-25T00:00:00Z --json`,
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	cmd.Flags().String("since", "", "list metrics written at or after this time (default 7d)")
	asJSON := cmd.Flags().Bool("json", false, `print {"host": HOST, "since": TIME, "metrics": [...]}`)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		host := args[0]
		if err := metric.ValidateHost(host); err != nil {
			return usageError{err}
		}
		now := time.Now()
		from, err := timeFlag(cmd, "since", now, now.Add(-defaultListSince))
		if err != nil {
			return err
		}
		client, err := newClient(cmd)
		if err != nil {
			return err
		}
		defer client.Close()
		names, listErr := storeOf(client).Metrics(cmd.Context(), host, from)
		slices.SortFunc(names, natural.Compare)
		out := struct {
			Host    string    `json:"host"`
			Since   time.Time `json:"since"`
			Metrics []string  `json:"metrics"`
		}{host, from.UTC(), nonNil(names)}
		if err := firstError(listErr, writeList(cmd.OutOrStdout(), *asJSON, out, names)); err != nil {
			return err
		}
		if len(names) == 0 {
			// Most often a typo in the host's name: say so rather than
			// print nothing and succeed.
			return fmt.Errorf("host %s: no metric written since %s; redfed hosts lists the hosts", host, formatTime(from))
		}
		return nil
	}
	return cmd
}

// writeList prints names one per line, or asJSON the JSON of obj.
func writeList(w io.Writer, asJSON bool, obj any, names []string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(obj)
	}
	for _, n := range names {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

// nonNil returns s, or an empty slice for nil, which JSON prints as [].
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// firstError returns the first error that is not nil.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
