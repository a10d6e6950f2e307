package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redfed/federated"
	"github.com/redfed/federated/cmd/redfed/internal/graphite"
	redfedprom "github.com/redfed/federated/prometheus"
	"github.com/redfed/federated/prometheus/remote"
)

// serveRegistry returns the registry serve's /metrics serves: the client's
// collector (servers up, failovers, call latencies), the counts of what
// the Graphite listener and remote write took in and refused, when they
// run (nil otherwise), redfed_build_info, and the Go and process
// collectors.
func serveRegistry(c *federated.Client, g *graphite.Server, w *remote.WriteHandler, v buildVersion) *prometheus.Registry {
	reg := processRegistry(v)
	reg.MustRegister(redfedprom.NewClientCollector(c))
	if g != nil {
		reg.MustRegister(graphiteCollector{g})
	}
	if w != nil {
		reg.MustRegister(remoteWriteCollector{w})
	}
	return reg
}

var (
	descGraphiteLines   = prometheus.NewDesc("redfed_graphite_lines_total", "Graphite lines received, good and bad.", nil, nil)
	descGraphiteBad     = prometheus.NewDesc("redfed_graphite_bad_lines_total", "Graphite lines refused, by reason.", []string{"reason"}, nil)
	descGraphiteWritten = prometheus.NewDesc("redfed_graphite_points_written_total", "Points of Graphite lines written and acknowledged by Redis.", nil, nil)
	descGraphiteFailed  = prometheus.NewDesc("redfed_graphite_points_failed_total", "Points of Graphite lines whose write failed: a server down or refusing, a key of another type, a period retention dropped.", nil, nil)
	descGraphiteRetried = prometheus.NewDesc("redfed_graphite_writes_retried_total", "Writes of a Graphite batch again after a failure that may pass, reading nothing more from its connection meanwhile.", nil, nil)
	descGraphiteConns   = prometheus.NewDesc("redfed_graphite_connections", "Graphite TCP connections open.", nil, nil)
	descGraphiteRefused = prometheus.NewDesc("redfed_graphite_connections_refused_total", "Graphite TCP connections closed at once because the most were open.", nil, nil)

	descRemoteRequests = prometheus.NewDesc("redfed_remote_write_requests_total", "Prometheus remote write requests answered, by outcome: ok, refused (4xx, dropped by Prometheus: a bad request, nothing of it written, or one with a series that can never be stored, its other series written) or failed (5xx, sent again by Prometheus).", []string{"outcome"}, nil)
	descRemoteSamples  = prometheus.NewDesc("redfed_remote_write_samples_total", "Prometheus remote write samples written and acknowledged by Redis, also those of requests refused or failed in part (a request sent again counts again).", nil, nil)
	descRemoteSkipped  = prometheus.NewDesc("redfed_remote_write_skipped_total", "Prometheus remote write samples and exemplars not stored, by what they were: dropped_period is a sample of a period that retention dropped.", []string{"kind"}, nil)
)

// graphiteCollector exports a Graphite listener's Stats.
type graphiteCollector struct{ s *graphite.Server }

func (graphiteCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGraphiteLines, descGraphiteBad, descGraphiteWritten, descGraphiteFailed, descGraphiteRetried, descGraphiteConns, descGraphiteRefused} {
		ch <- d
	}
}

func (c graphiteCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descGraphiteLines, st.Lines)
	for reason, n := range map[string]int64{
		"malformed": st.Bad.Malformed, "not_finite": st.Bad.NotFinite, "timestamp": st.Bad.Timestamp,
		"unmapped": st.Bad.Unmapped, "too_long": st.Bad.TooLong, "cut": st.Bad.Cut,
	} {
		counter(descGraphiteBad, n, reason)
	}
	counter(descGraphiteWritten, st.Written)
	counter(descGraphiteFailed, st.Failed)
	counter(descGraphiteRetried, st.Retried)
	ch <- prometheus.MustNewConstMetric(descGraphiteConns, prometheus.GaugeValue, float64(st.Conns))
	counter(descGraphiteRefused, st.Refused)
}

// remoteWriteCollector exports a remote write handler's Stats.
type remoteWriteCollector struct{ h *remote.WriteHandler }

func (remoteWriteCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRemoteRequests, descRemoteSamples, descRemoteSkipped} {
		ch <- d
	}
}

func (c remoteWriteCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descRemoteRequests, st.Stored, "ok")
	counter(descRemoteRequests, st.Refused, "refused")
	counter(descRemoteRequests, st.Failed, "failed")
	counter(descRemoteSamples, st.Samples)
	counter(descRemoteSkipped, st.Dropped, "dropped_period")
	counter(descRemoteSkipped, st.StaleMarkers, "stale_marker")
	counter(descRemoteSkipped, st.NonFinite, "non_finite")
	counter(descRemoteSkipped, st.Ahead, "ahead")
	counter(descRemoteSkipped, st.Histograms, "histogram")
	counter(descRemoteSkipped, st.Exemplars, "exemplar")
}
