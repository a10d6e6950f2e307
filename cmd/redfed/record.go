package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/metrics"
)

func newRecordCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "record [HOST METRIC VALUE]",
		Short: "Write metric points: one from the arguments, or many from standard input",
		Long: `Write metric points.

With HOST METRIC VALUE, write one point, at --time or now, and wait for Redis
to acknowledge it. A negative VALUE may stand as it is (-3.5).

With no arguments, read points from standard input, one per line:

  HOST METRIC TIMESTAMP VALUE

separated by spaces or tabs, TIMESTAMP in Unix seconds (fractions allowed) or
RFC 3339. Blank lines and lines starting with '#' are ignored. Points are
written in batches as they are read. A bad line (wrong number of fields, a
bad name, number or time, NaN or infinity) is reported on standard error
with its line number and skipped, and the command exits 1 once the rest is
written. With --strict the whole input is read and checked first, and
nothing is written if any line is bad; it is held in memory meanwhile.

At the end a summary goes to standard error: points written and failed,
seconds taken, points per second; with --json it also goes to standard
output as one object:

  {"lines": 12, "written": 10, "failed": 0, "skipped": 1, "seconds": 0.004}

"lines" counts the lines read (blank lines and comments too), "skipped"
the bad ones. A point given by arguments counts as one line. On a terminal
a progress line is shown
while points are read. Ctrl-C stops the reading: the points read so far
are written and summed up, and a line cut by the interrupt is dropped.`,
		Example: `  redfed record web1.sfo cpu.user 42
  redfed record web1.sfo cpu.user 42 --time 2026-11-25T10:00:00Z
  redfed record web1.sfo temp.delta -3.5
  printf 'web1.sfo cpu.user 1795600800 42\n' | redfed record
  redfed record --strict < points.txt
  redfed record --json < points.txt | jq .written`,
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 3 {
				return fmt.Errorf("got %d arguments, want HOST METRIC VALUE, or none to read standard input", len(args))
			}
			return nil
		}),
	}
	cmd.Flags().String("time", "", "time of the point given by arguments: "+timeArgForms+" (default now)")
	strict := cmd.Flags().Bool("strict", false, "check all of standard input first; write nothing if any line is bad")
	asJSON := cmd.Flags().Bool("json", false, `also print the summary as {"lines", "written", "failed", "skipped", "seconds"}`)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		printSummary := func(sum recordSummary, err error) error {
			if *asJSON && (err == nil || sum.Lines > 0) { // else nothing was tried
				err = firstError(err, json.NewEncoder(cmd.OutOrStdout()).Encode(sum))
			}
			return err
		}
		if len(args) == 3 {
			if *strict {
				return usagef("--strict applies to points read from standard input, not to one given by arguments")
			}
			return printSummary(recordOne(cmd, args[0], args[1], args[2]))
		}
		if cmd.Flags().Changed("time") {
			return usagef("--time applies to a point given by arguments; lines of standard input carry their own time")
		}
		client, err := newClient(cmd)
		if err != nil {
			return err
		}
		defer client.Close()
		in := cmd.InOrStdin()
		con := consoleOf(cmd.ErrOrStderr())
		if isTerminal(in) {
			con.Printf("reading HOST METRIC TIMESTAMP VALUE lines from standard input; end with Ctrl-D\n")
		}
		return printSummary(recordLines(cmd.Context(), client, in, con, *strict))
	}
	return cmd
}

// recordSummary is what record did: its --json output.
type recordSummary struct {
	Lines   int64   `json:"lines"`   // lines read, blank ones and comments too
	Written int64   `json:"written"` // points Redis acknowledged
	Failed  int64   `json:"failed"`  // points whose write failed
	Skipped int     `json:"skipped"` // bad lines, not written
	Seconds float64 `json:"seconds"`
}

// recordOne writes the point given by record's arguments. The summary is
// zero when the write was not tried.
func recordOne(cmd *cobra.Command, host, metricName, value string) (recordSummary, error) {
	if err := metric.ValidateHost(host); err != nil {
		return recordSummary{}, usageError{err}
	}
	if err := metric.ValidateMetric(metricName); err != nil {
		return recordSummary{}, usageError{err}
	}
	v, err := parseValue(value)
	if err != nil {
		return recordSummary{}, usageError{err}
	}
	now := time.Now()
	t, err := timeFlag(cmd, "time", now, now)
	if err != nil {
		return recordSummary{}, err
	}
	client, err := newClient(cmd)
	if err != nil {
		return recordSummary{}, err
	}
	defer client.Close()
	start := time.Now()
	err = client.Record(cmd.Context(), host, metricName, t, v)
	sum := recordSummary{Lines: 1, Written: 1, Seconds: time.Since(start).Seconds()}
	if err != nil {
		sum.Written, sum.Failed = 0, 1
	}
	return sum, err
}

// maxLineLen bounds a line of record's input. A point's line is well under
// a kilobyte; a longer one is reported and skipped, not buffered.
const maxLineLen = 64 << 10

// maxWriteErrors is how many failed writes record reports one by one.
const maxWriteErrors = 10

// recordedPoint is a point parsed from record's input.
type recordedPoint struct {
	host, metric string
	time         time.Time
	value        float64
}

// recordLines writes the points of in, one per line, through a Recorder,
// reporting bad lines on con. With strict, every line is parsed before
// anything is written, and nothing is if a line is bad.
func recordLines(ctx context.Context, client *federated.Client, in io.Reader, con *console, strict bool) (recordSummary, error) {
	var writeErrors atomic.Int64
	rec, err := storeOf(client).NewRecorder(metrics.RecorderOptions{
		OnError: func(err error, points int) {
			switch n := writeErrors.Add(1); {
			case n <= maxWriteErrors:
				con.Printf("write failed, %d points lost: %v\n", points, err)
			case n == maxWriteErrors+1:
				con.Printf("further write failures are counted, not shown\n")
			}
		},
	})
	if err != nil {
		return recordSummary{}, err
	}
	start := time.Now()
	var lines atomic.Int64
	stopProgress := startProgress(con, progressInterval, func(elapsed time.Duration) string {
		written := rec.Stats().Written
		return fmt.Sprintf("%d lines read, %d points written, %.0f points/s",
			lines.Load(), written, float64(written)/elapsed.Seconds())
	})

	var (
		skipped int
		held    []recordedPoint // the points of a strict run, until all are checked
		stopped error           // why reading or writing stopped early
	)
	in, stopInput := interruptible(ctx, in)
	defer stopInput()
	r := bufio.NewReaderSize(in, maxLineLen)
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			stopped = fmt.Errorf("interrupted at line %d: %w", lineNo, err)
			break
		}
		line, err := readLine(r, maxLineLen)
		switch {
		case errors.Is(err, io.EOF):
		case errors.Is(err, errLineTooLong):
			lines.Add(1)
			con.Printf("line %d: longer than %d bytes\n", lineNo, maxLineLen)
			skipped++
			continue
		case err != nil && errors.Is(err, ctx.Err()): // the reader returns ctx's own error
			stopped = fmt.Errorf("interrupted at line %d: %w", lineNo, err)
		case err != nil:
			stopped = fmt.Errorf("reading line %d: %w", lineNo, err)
		}
		if err != nil {
			break
		}
		lines.Add(1)
		host, metricName, t, v, err := parseRecordLine(line)
		switch {
		case errors.Is(err, errNoPoint):
			continue
		case err != nil:
			con.Printf("line %d: %v\n", lineNo, err)
			skipped++
			continue
		case strict:
			held = append(held, recordedPoint{host, metricName, t, v})
			continue
		}
		if err := rec.Add(context.Background(), host, metricName, t, v); err != nil {
			stopped = fmt.Errorf("line %d: %w", lineNo, err)
			break
		}
	}
	if strict && skipped == 0 && stopped == nil {
		for _, p := range held {
			if err := ctx.Err(); err != nil {
				stopped = fmt.Errorf("interrupted while writing: %w", err)
				break
			}
			if err := rec.Add(context.Background(), p.host, p.metric, p.time, p.value); err != nil {
				stopped = err
				break
			}
		}
	}
	// Write what was read even when interrupted: the summary then says
	// exactly how much made it. Close's errors are those OnError has
	// reported and Stats counts.
	_ = rec.Close()
	stopProgress()
	elapsed := time.Since(start)
	stats := rec.Stats()
	sum := recordSummary{Lines: lines.Load(), Written: stats.Written, Failed: stats.Failed, Skipped: skipped, Seconds: elapsed.Seconds()}

	if strict && skipped > 0 {
		return sum, errors.Join(stopped, fmt.Errorf("%d bad lines; nothing written", skipped))
	}
	con.Printf("%d points written, %d failed, in %.3f s, %.0f points/s\n",
		stats.Written, stats.Failed, elapsed.Seconds(), float64(stats.Written)/elapsed.Seconds())
	var errs []error
	if stopped != nil {
		errs = append(errs, stopped)
	}
	if skipped > 0 {
		errs = append(errs, fmt.Errorf("%d lines skipped", skipped))
	}
	if stats.Failed > 0 {
		errs = append(errs, fmt.Errorf("%d points failed to write", stats.Failed))
	}
	return sum, errors.Join(errs...)
}
