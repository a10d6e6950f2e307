package redfedprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redfed/federated/syncer"
)

// NewSyncerCollector returns a Prometheus collector of a syncer's Stats,
// for a daemon to register and serve:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(redfedprom.NewSyncerCollector(s))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
func NewSyncerCollector(s *syncer.Syncer) prometheus.Collector { return syncerCollector{s} }

type syncerCollector struct{ s *syncer.Syncer }

var (
	peerLabels = []string{"local", "peer"}

	descLag     = prometheus.NewDesc("redfed_syncer_lag_seconds", "How old the local copy of the peer's changes may be: the time since the last pass that left nothing after the cursor began.", peerLabels, nil)
	descLagP99  = prometheus.NewDesc("redfed_syncer_lag_p99_seconds", "99th percentile of the replication delay of the last 1,024 batches that merged something.", peerLabels, nil)
	descCursor  = prometheus.NewDesc("redfed_syncer_cursor_seconds", "Peer journal time up to which changes are merged.", peerLabels, nil)
	descPasses  = prometheus.NewDesc("redfed_syncer_passes_total", "Passes made.", peerLabels, nil)
	descKeys    = prometheus.NewDesc("redfed_syncer_keys_total", "Changed keys fetched from the peer.", peerLabels, nil)
	descAdded   = prometheus.NewDesc("redfed_syncer_members_added_total", "Members added to the local server.", peerLabels, nil)
	descSkipped = prometheus.NewDesc("redfed_syncer_keys_skipped_total", "Keys of dropped periods left alone.", peerLabels, nil)
	descErrors  = prometheus.NewDesc("redfed_syncer_errors_total", "Passes that failed.", peerLabels, nil)
	descEchoes  = prometheus.NewDesc("redfed_syncer_echoes_total", "Journal entries of the peer not fetched, merges of the local server's own changes.", peerLabels, nil)
	descResets  = prometheus.NewDesc("redfed_syncer_resets_total", "Times the local server came back empty or with an older cursor and the peer was pulled again from the start.", peerLabels, nil)

	descAERuns     = prometheus.NewDesc("redfed_antientropy_runs_total", "Anti-entropy runs.", nil, nil)
	descAERepaired = prometheus.NewDesc("redfed_antientropy_keys_repaired_total", "Keys repaired by anti-entropy.", nil, nil)
	descAEAdded    = prometheus.NewDesc("redfed_antientropy_members_added_total", "Members added by anti-entropy.", nil, nil)
)

func (syncerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descLagP99, descCursor, descPasses, descKeys, descAdded,
		descSkipped, descEchoes, descErrors, descResets, descAERuns, descAERepaired, descAEAdded} {
		ch <- d
	}
}

func (c syncerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for _, p := range st.Peers {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, p.Local, p.Peer)
		}
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), p.Local, p.Peer)
		}
		gauge(descLag, p.Lag.Seconds())
		gauge(descLagP99, p.LagP99.Seconds())
		gauge(descCursor, p.Cursor)
		counter(descPasses, p.Passes)
		counter(descKeys, p.Keys)
		counter(descAdded, p.Added)
		counter(descSkipped, p.Skipped)
		counter(descErrors, p.Errors)
		counter(descResets, p.Resets)
		counter(descEchoes, p.Echoes)
	}
	ch <- prometheus.MustNewConstMetric(descAERuns, prometheus.CounterValue, float64(st.AntiEntropy.Runs))
	ch <- prometheus.MustNewConstMetric(descAERepaired, prometheus.CounterValue, float64(st.AntiEntropy.Repaired))
	ch <- prometheus.MustNewConstMetric(descAEAdded, prometheus.CounterValue, float64(st.AntiEntropy.Added))
}
