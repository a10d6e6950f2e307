package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	redfedprom "github.com/redfed/federated/prometheus"
	"github.com/redfed/federated/syncer"
)

// syncerRegistry returns the registry sync's /metrics serves: the syncer's
// collector, redfed_build_info, and the Go runtime's and the process's
// collectors that every Prometheus exporter is expected to have.
func syncerRegistry(s *syncer.Syncer, v buildVersion) *prometheus.Registry {
	reg := processRegistry(v)
	reg.MustRegister(redfedprom.NewSyncerCollector(s))
	return reg
}

// processRegistry returns a registry with what every redfed process
// serves: redfed_build_info and the Go runtime's and the process's
// collectors, which every Prometheus exporter is expected to have.
func processRegistry(v buildVersion) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		buildInfoCollector(v),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// buildInfoCollector returns the gauge redfed_build_info, always 1, whose
// labels say which build runs, for joining with other series or alerting
// on a fleet that runs mixed versions.
func buildInfoCollector(v buildVersion) prometheus.Collector {
	revision := v.Revision
	if revision == "" {
		revision = "unknown"
	} else if v.Modified {
		revision += "-modified"
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "redfed_build_info",
		Help: "Always 1; the labels name the redfed build: module version, VCS revision (-modified when the tree had changes) and Go version.",
		ConstLabels: prometheus.Labels{
			"version":   v.Version,
			"revision":  revision,
			"goversion": v.GoVersion,
		},
	}, func() float64 { return 1 })
}
