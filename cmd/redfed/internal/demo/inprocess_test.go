package demo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

// The demo's in-process servers run the syncer's scripts with gopher-lua,
// whose stack is smaller than Redis's: a journal page of thousands of
// entries of one time, and a fetch of thousands of members, replicate
// there too.
func TestInProcessServersReplicateLargePagesAndFetches(t *testing.T) {
	ctx := context.Background()
	a, b := miniredis.RunT(t), miniredis.RunT(t)
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"n": {Addresses: []string{a.Addr(), b.Addr()}}}})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	st, err := metrics.New(c)
	require.NoError(t, err)
	r, err := st.NewRecorder(metrics.RecorderOptions{})
	require.NoError(t, err)
	// 3,000 series of one point, journalled by one call at one time: one
	// page (a link's page takes a block of one time whole, beyond its batch
	// of 1,000 entries); and one series of 3,000 points, all of one day (noon
	// yesterday and the 50 minutes before): one fetch.
	noon := time.Now().UTC().Truncate(24 * time.Hour).Add(-12 * time.Hour)
	const n = 3000
	for i := range n {
		require.NoError(t, r.Add(ctx, fmt.Sprint("host", i), "one", noon, float64(i)))
		require.NoError(t, r.Add(ctx, "host", "many", noon.Add(-time.Duration(i)*time.Second), float64(i)))
	}
	require.NoError(t, r.Close())

	// Every series the Recorder wrote to the group's current server is
	// replicated to the other, whole.
	ra := redis.NewClient(&redis.Options{Addr: a.Addr()})
	rb := redis.NewClient(&redis.Options{Addr: b.Addr()})
	defer func() { _ = ra.Close(); _ = rb.Close() }()
	points := func(m *miniredis.Miniredis, rc *redis.Client) int64 {
		var total int64
		for _, k := range m.Keys() {
			if card, err := rc.ZCard(ctx, k).Result(); err == nil && k[0] >= '0' && k[0] <= '9' {
				total += card
			}
		}
		return total
	}
	require.Equal(t, int64(2*n), points(a, ra)+points(b, rb), "what the Recorder wrote, in all")

	s, err := syncer.NewFromClient(c, []string{a.Addr(), b.Addr()}, syncer.Options{})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}()

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(2*n), points(a, ra), "points on %s; links: %+v", a.Addr(), s.Stats().Peers)
		assert.Equal(ct, int64(2*n), points(b, rb), "points on %s", b.Addr())
	}, 10*time.Second, 50*time.Millisecond)
}
