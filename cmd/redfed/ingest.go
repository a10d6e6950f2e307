package main

import (
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
}

// addIngestFlags defines serve's ingest flags on f.
func addIngestFlags(f *pflag.FlagSet) *ingestFlags {
	fl := &ingestFlags{}
	f.StringVar(&fl.graphiteListen, "graphite-listen", "", "take Graphite plaintext lines (collectd's write_graphite) on this address, TCP and UDP (default: off)")
	f.StringVar(&fl.graphiteTemplate, "graphite-template", graphite.DefaultTemplate, "how a Graphite path maps to host and metric: words host, metric, metric* (the rest), * (any, dropped) or a word the path must have")
	return fl
}

// startIngest starts the listeners that fl asks for, writing through one
// Recorder, and returns the function that stops them and then flushes and
// closes the Recorder. With none asked for it starts nothing.
func startIngest(cmd *cobra.Command, client *federated.Client, fl *ingestFlags) (stop func(), err error) {
	tmpl, err := graphite.Parse(fl.graphiteTemplate)
	if err != nil {
		return nil, usagef("--graphite-template: %v", err)
	}
	if fl.graphiteListen == "" {
		return func() {}, nil
	}
	if _, _, err := net.SplitHostPort(fl.graphiteListen); err != nil {
		return nil, usagef("--graphite-listen %q: %v", fl.graphiteListen, err)
	}
	logger := newLogger(cmd, slog.LevelWarn)
	rec, err := newIngestRecorder(client, logger)
	if err != nil {
		return nil, err
	}
	srv, err := graphite.Listen(fl.graphiteListen, graphite.Options{Writer: rec, Template: tmpl, Logger: logger})
	if err != nil {
		_ = rec.Close()
		return nil, usagef("--graphite-listen %s: %v", fl.graphiteListen, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "graphite: %s, TCP and UDP, paths as %s\n", srv.TCPAddr(), tmpl)
	return func() {
		_ = srv.Close() // waits for the batches read to be written
		_ = rec.Close() // its failures went to OnError
	}, nil
}

// newIngestRecorder returns the Recorder that serve writes the metrics it
// takes in through. A failed write is logged as a warning with the number
// of points lost.
func newIngestRecorder(client *federated.Client, logger *slog.Logger) (*metrics.Recorder, error) {
	return storeOf(client).NewRecorder(metrics.RecorderOptions{
		OnError: func(err error, points int) {
			logger.Warn("ingest: write failed", "points", points, "error", err)
		},
	})
}
