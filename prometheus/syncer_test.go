package redfedprom_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	redfedprom "github.com/redfed/federated/prometheus"
	"github.com/redfed/federated/syncer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSyncerCollector(t *testing.T) {
	servers := redistest.StartN(t, 2)
	addrs := redistest.Addrs(servers)
	cfg := federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: addrs}},
		Options: federated.Options{Logger: slog.New(slog.DiscardHandler)},
	}
	s, err := syncer.New(cfg, addrs, syncer.Options{NoAntiEntropy: true})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; _ = s.Close() })

	c, err := federated.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	for i := range 20 {
		require.NoError(t, c.Record(ctx, "prom", fmt.Sprintf("m%d", i%4), time.Now(), float64(i)))
	}
	require.Eventually(t, func() bool {
		var added int64
		for _, p := range s.Stats().Peers {
			added += p.Added
		}
		return added >= 20
	}, 5*time.Second, 20*time.Millisecond)

	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(redfedprom.NewSyncerCollector(s)))
	n, err := testutil.GatherAndCount(reg, "redfed_syncer_members_added_total", "redfed_syncer_lag_seconds")
	require.NoError(t, err)
	assert.Equal(t, 4, n, "two links, two series each")

	// The delays of the batches that merged the points are a histogram
	// per link, with every batch counted.
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var batches uint64
	for _, mf := range mfs {
		if mf.GetName() != "redfed_syncer_replication_delay_seconds" {
			continue
		}
		require.Len(t, mf.GetMetric(), 2, "one histogram per link")
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			require.Len(t, h.GetBucket(), len(syncer.DelayBounds))
			last := h.GetBucket()[len(h.GetBucket())-1]
			assert.LessOrEqual(t, last.GetCumulativeCount(), h.GetSampleCount(), "buckets are cumulative")
			batches += h.GetSampleCount()
		}
	}
	assert.Positive(t, batches, "the batches that merged the points are counted")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
