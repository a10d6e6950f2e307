package main

import (
	"bufio"
	"context"
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
seconds taken, points per second. On a terminal a progress line is shown
while points are read. Ctrl-C stops the reading: the points read so far
are written and summed up, and a line cut by the interrupt is dropped.`,
		Example: `  redfed record web1.sfo cpu.user 42
  redfed record web1.sfo cpu.user 42 --time 2026-11-25T10:00:00Z
  redfed record web1.sfo temp.delta -3.5
  printf 'web1.sfo cpu.user 1795600800 42\n' | redfed record
  redfed record --strict < points.txt`,
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 3 {
				return fmt.Errorf("got %d arguments, want HOST METRIC VALUE, or none to read standard input", len(args))
			}
			return nil
		}),
	}
	at := cmd.Flags().String("time", "", "time of the point given by arguments: "+timeArgForms+" (default now)")
	strict := cmd.Flags().Bool("strict", false, "check all of standard input first; write nothing if any line is bad")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 3 {
			if *strict {
				return usagef("--strict applies to points read from standard input, not to one given by arguments")
			}
			return recordOne(cmd, args[0], args[1], args[2], *at)
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
		return recordLines(cmd.Context(), client, in, con, *strict)
	}
	return cmd
}

// recordOne writes the point given by record's arguments.
func recordOne(cmd *cobra.Command, host, metricName, value, at string) error {
	if err := metric.ValidateHost(host); err != nil {
		return usageError{err}
	}
	if err := metric.ValidateMetric(metricName); err != nil {
		return usageError{err}
	}
	v, err := parseValue(value)
	if err != nil {
		return usageError{err}
	}
	t := time.Now()
	if at != "" {
		if t, err = parseTimeArg(at, t); err != nil {
			return usagef("--time %w", err)
		}
	}
	client, err := newClient(cmd)
	if err != nil {
		return err
	}
	defer client.Close()
	return client.Record(cmd.Context(), host, metricName, t, v)
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
func recordLines(ctx context.Context, client *federated.Client, in io.Reader, con *console, strict bool) error {
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
		return err
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

	if strict && skipped > 0 {
		return errors.Join(stopped, fmt.Errorf("%d bad lines; nothing written", skipped))
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
	return errors.Join(errs...)
}
