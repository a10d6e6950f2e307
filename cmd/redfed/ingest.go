package main

import (
	"log/slog"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

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
