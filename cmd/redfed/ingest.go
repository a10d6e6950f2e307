package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/redfed/federated"
	"github.com/redfed/federated/cmd/redfed/internal/graphite"
	"github.com/redfed/federated/metrics"
)

// ingestFlags are serve's flags for taking in metrics from other programs.
type ingestFlags struct {
	graphiteListen   string
	graphiteTemplate string
	graphiteMaxConns int
}

// addIngestFlags defines serve's ingest flags on f.
func addIngestFlags(f *pflag.FlagSet) *ingestFlags {
	fl := &ingestFlags{}
	f.StringVar(&fl.graphiteListen, "graphite-listen", "", "take Graphite plaintext lines (collectd's write_graphite) on this address, TCP and UDP (default: off)")
	f.StringVar(&fl.graphiteTemplate, "graphite-template", graphite.DefaultTemplate, "how a Graphite path maps to host and metric: words host, metric, metric* (the rest), * (any, dropped) or a word the path must have")
	f.IntVar(&fl.graphiteMaxConns, "graphite-max-conns", graphite.DefaultMaxConns, "the most Graphite TCP connections served at once (one for each collectd host); one more is closed at once")
	return fl
}

// startIngest starts the listeners that fl asks for, writing through one
// Recorder, and returns the function that stops them and then flushes and
// closes the Recorder. With none asked for it starts nothing.
func startIngest(cmd *cobra.Command, recorder *ingestRecorder, fl *ingestFlags) (srv *graphite.Server, stop func(), err error) {
	tmpl, err := graphite.Parse(fl.graphiteTemplate)
	if err != nil {
		return nil, nil, usagef("--graphite-template: %v", err)
	}
	if fl.graphiteMaxConns < 1 {
		return nil, nil, usagef("--graphite-max-conns %d: at least 1", fl.graphiteMaxConns)
	}
	if fl.graphiteListen == "" {
		return nil, func() {}, nil
	}
	if _, _, err := net.SplitHostPort(fl.graphiteListen); err != nil {
		return nil, nil, usagef("--graphite-listen %q: %v", fl.graphiteListen, err)
	}
	rec, err := recorder.get()
	if err != nil {
		return nil, nil, err
	}
	srv, err = graphite.Listen(fl.graphiteListen, graphite.Options{Writer: rec, Template: tmpl, MaxConns: fl.graphiteMaxConns, Logger: newLogger(cmd, slog.LevelWarn)})
	if err != nil {
		return nil, nil, usagef("--graphite-listen %s: %v", fl.graphiteListen, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "graphite: %s, TCP and UDP, paths as %s\n", srv.TCPAddr(), tmpl)
	logger := newLogger(cmd, slog.LevelInfo)
	return srv, func() {
		_ = srv.Close() // waits for the batches read to be written
		logStopped(logger, srv.Stats())
	}, nil
}

// logStopped logs a stopped listener's totals: the failures of its last
// moments, rate-limited in the log and counted in /metrics, which go with
// the process, are said once more. It is a warning when points failed.
func logStopped(logger *slog.Logger, st graphite.Stats) {
	level := slog.LevelInfo
	if st.Failed > 0 {
		level = slog.LevelWarn
	}
	logger.Log(context.Background(), level, "graphite: stopped", "lines", st.Lines, "written", st.Written,
		"failed", st.Failed, "bad", st.Bad.Total(), "retried", st.Retried)
}

// ingestRecorder is the one Recorder that serve writes the metrics it takes
// in through (Graphite lines, Prometheus remote write), made at the first
// use, so that their points share flushes. serve's set-up alone calls
// get, from one goroutine.
type ingestRecorder struct {
	client *federated.Client
	logger *slog.Logger
	rec    *metrics.Recorder
}

// get returns the Recorder, made at the first call. Its failures are
// logged by the callers of its Write, which know their source and
// rate-limit their warnings (the Graphite listener with the sender's
// address, remote write with the request's): a warning per failed flush
// and node here as well made thousands of lines a second while a server
// was down, none saying where the points came from.
func (r *ingestRecorder) get() (*metrics.Recorder, error) {
	if r.rec != nil {
		return r.rec, nil
	}
	rec, err := storeOf(r.client).NewRecorder(metrics.RecorderOptions{})
	if err != nil {
		return nil, err
	}
	r.rec = rec
	return rec, nil
}

// close flushes and closes the Recorder, if it was made. Its callers
// write with Write, whose failures they log; Close returns only those of
// points added otherwise, logged in case one ever is.
func (r *ingestRecorder) close() {
	if r.rec == nil {
		return
	}
	if err := r.rec.Close(); err != nil {
		r.logger.Warn("ingest: write failed", "error", err)
	}
}
