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

	descLag       = prometheus.NewDesc("redfed_syncer_lag_seconds", "How old the local copy of the peer's changes may be: the time since the last pass that left nothing after the cursor began.", peerLabels, nil)
	descDelay     = prometheus.NewDesc("redfed_syncer_replication_delay_seconds", "Replication delay of each batch that merged something: when it was applied, less the peer journal time of its newest change.", peerLabels, nil)
	descCursor    = prometheus.NewDesc("redfed_syncer_cursor_timestamp_seconds", "Peer journal time, Unix seconds, up to which changes are merged.", peerLabels, nil)
	descSynced    = prometheus.NewDesc("redfed_syncer_synced_timestamp_seconds", "Unix time before which every change the peer acknowledged is in the local server (0 until known).", peerLabels, nil)
	descPasses    = prometheus.NewDesc("redfed_syncer_passes_total", "Passes made.", peerLabels, nil)
	descKeys      = prometheus.NewDesc("redfed_syncer_keys_total", "Changed keys fetched from the peer.", peerLabels, nil)
	descAdded     = prometheus.NewDesc("redfed_syncer_members_added_total", "Members added to the local server.", peerLabels, nil)
	descSkipped   = prometheus.NewDesc("redfed_syncer_keys_skipped_total", "Keys of dropped periods left alone.", peerLabels, nil)
	descErrors    = prometheus.NewDesc("redfed_syncer_errors_total", "Passes that failed.", peerLabels, nil)
	descEchoes    = prometheus.NewDesc("redfed_syncer_echoes_total", "Journal entries of the peer not fetched, merges of the local server's own changes.", peerLabels, nil)
	descResets    = prometheus.NewDesc("redfed_syncer_resets_total", "Times the local server came back empty or with an older cursor and the peer was pulled again from the start.", peerLabels, nil)
	descContended = prometheus.NewDesc("redfed_syncer_contended_total", "Passes that found the link's cursor saved by another syncer of the same server and peer.", peerLabels, nil)

	descAERuns     = prometheus.NewDesc("redfed_antientropy_runs_total", "Anti-entropy runs.", nil, nil)
	descAEFull     = prometheus.NewDesc("redfed_antientropy_full_checks_total", "Anti-entropy comparisons of every key of a group, done or failed.", nil, nil)
	descAERepaired = prometheus.NewDesc("redfed_antientropy_keys_repaired_total", "Keys repaired by anti-entropy.", nil, nil)
	descAEAdded    = prometheus.NewDesc("redfed_antientropy_members_added_total", "Members added by anti-entropy.", nil, nil)
)

func (syncerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descDelay, descCursor, descSynced, descPasses, descKeys, descAdded,
		descSkipped, descEchoes, descErrors, descResets, descContended, descAERuns, descAEFull, descAERepaired, descAEAdded} {
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
		ch <- delayHistogram(p)
		gauge(descCursor, p.Cursor)
		synced := 0.0
		if !p.SyncedTo.IsZero() {
			synced = float64(p.SyncedTo.UnixMicro()) / 1e6
		}
		gauge(descSynced, synced)
		counter(descPasses, p.Passes)
		counter(descKeys, p.Keys)
		counter(descAdded, p.Added)
		counter(descSkipped, p.Skipped)
		counter(descErrors, p.Errors)
		counter(descResets, p.Resets)
		counter(descContended, p.Contended)
		counter(descEchoes, p.Echoes)
	}
	ch <- prometheus.MustNewConstMetric(descAERuns, prometheus.CounterValue, float64(st.AntiEntropy.Runs))
	ch <- prometheus.MustNewConstMetric(descAEFull, prometheus.CounterValue, float64(st.AntiEntropy.FullChecks))
	ch <- prometheus.MustNewConstMetric(descAERepaired, prometheus.CounterValue, float64(st.AntiEntropy.Repaired))
	ch <- prometheus.MustNewConstMetric(descAEAdded, prometheus.CounterValue, float64(st.AntiEntropy.Added))
}

// delayHistogram returns a link's replication delays as a Prometheus
// histogram.
func delayHistogram(p syncer.PeerStats) prometheus.Metric {
	buckets := make(map[float64]uint64, len(syncer.DelayBounds))
	for i, bound := range syncer.DelayBounds {
		var n uint64
		if i < len(p.Delays.Buckets) {
			n = p.Delays.Buckets[i]
		}
		buckets[bound.Seconds()] = n
	}
	return prometheus.MustNewConstHistogram(descDelay, p.Delays.Count, p.Delays.Sum.Seconds(), buckets, p.Local, p.Peer)
}
