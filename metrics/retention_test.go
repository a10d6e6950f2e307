package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// periodKeys returns n metric keys of the period string period: hosts
// prefix0000, prefix0001, ... with 100 metrics each.
func periodKeys(period, prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%s%04d:m%02d", period, prefix, i/100, i%100)
	}
	return keys
}

// writeKeysOn writes one member into each key on one server, and journals
// the keys, in pipelines of a few thousand commands: the fast way to fill a
// server, bypassing the write script (and its horizon).
func writeKeysOn(ctx context.Context, rc *redis.Client, keys []string, ts int64) error {
	const chunk = 1000
	member := fmt.Sprintf("%d:1", ts)
	for len(keys) > 0 {
		batch := keys[:min(chunk, len(keys))]
		keys = keys[len(batch):]
		pipe := rc.Pipeline()
		journal := make([]redis.Z, len(batch))
		for i, k := range batch {
			pipe.ZAdd(ctx, k, redis.Z{Score: float64(ts), Member: member})
			journal[i] = redis.Z{Score: float64(time.Now().Unix()), Member: k}
		}
		pipe.ZAdd(ctx, "journal", journal...)
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// writeKeys writes keys, as writeKeysOn does, on the servers that own them,
// all servers at once, and returns how many keys each server got.
func writeKeys(t testing.TB, c *federated.Client, keys []string, ts int64) map[string]int {
	t.Helper()
	byServer := map[string][]string{}
	for _, k := range keys {
		addr := mustServer(t, c, k)
		byServer[addr] = append(byServer[addr], k)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	counts := map[string]int{}
	for addr, ks := range byServer {
		counts[addr] = len(ks)
		rc := directClient(t, addr)
		wg.Go(func() {
			if err := writeKeysOn(context.Background(), rc, ks, ts); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", addr, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return counts
}

// countKeys counts the keys of a server that match a pattern.
func countKeys(t testing.TB, rc *redis.Client, pattern string) int {
	t.Helper()
	n := 0
	iter := rc.Scan(context.Background(), 0, pattern, 10_000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	require.NoError(t, iter.Err())
	return n
}

// nonMetricKeys are keys that retention must never touch.
var nonMetricKeys = []string{"user:1", "syncer:x", "2020-01-01T05:hour:shaped", "notaperiod:h:m", "20200101:h:m", "2020-01-0x:h:m", "2020-01-01"}

func TestDropBefore100kKeys(t *testing.T) {
	servers := redistest.StartN(t, 8)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	day := func(start time.Time) string { return start.Format("2006-01-02") }
	today := time.Now().UTC().Truncate(24 * time.Hour)
	periods := []struct {
		start time.Time
		n     int
		drop  bool
	}{
		{today.Add(-3 * 24 * time.Hour), 100_000, true},
		{today.Add(-5 * 24 * time.Hour), 1_000, true},
		{today.Add(-2 * 24 * time.Hour), 2_000, false},
		{today, 1_000, false},
	}
	began := time.Now()
	wantDropped := 0
	kept := map[string]int{} // keys of kept periods, by server
	for _, p := range periods {
		counts := writeKeys(t, c, periodKeys(day(p.start), "h", p.n), p.start.Add(time.Hour).Unix())
		if p.drop {
			wantDropped += p.n
			continue
		}
		for addr, n := range counts {
			kept[addr] += n
		}
	}
	for _, s := range servers {
		rc := directClient(t, s.Addr())
		for _, k := range nonMetricKeys {
			require.NoError(t, rc.Set(ctx, k, "keep me", 0).Err())
		}
	}
	t.Logf("wrote %d keys on %d servers in %v", wantDropped+3_000, len(servers), time.Since(began).Round(time.Millisecond))

	cutoff := today.Add(-2 * 24 * time.Hour)
	report, err := newStore(t, c).DropBefore(ctx, cutoff.Add(time.Hour)) // the period holding t is kept
	require.NoError(t, err)
	t.Logf("DropBefore removed %d keys on %d servers in %v", report.Total, len(report.Removed), report.Duration.Round(time.Millisecond))
	assert.Equal(t, int64(wantDropped), report.Total, "keys removed: got %d, want %d", report.Total, wantDropped)
	assert.Equal(t, cutoff, report.Cutoff)
	assert.Equal(t, day(cutoff), report.Horizon)
	require.Len(t, report.Removed, len(servers), "one count per server")
	var sum int64
	for _, n := range report.Removed {
		sum += n
	}
	assert.Equal(t, report.Total, sum, "Total is the sum of the servers' counts")
	assert.Less(t, report.Duration, 30*time.Second, "seconds, not minutes")

	for _, s := range servers {
		rc := directClient(t, s.Addr())
		left := 0
		for _, p := range periods {
			n := countKeys(t, rc, day(p.start)+":*")
			if p.drop {
				assert.Zero(t, n, "%s: keys of dropped period %s: got %d, want 0", s.Addr(), day(p.start), n)
			}
			left += n
		}
		assert.Equal(t, kept[s.Addr()], left, "%s: keys of kept periods", s.Addr())
		journal, err := rc.ZCard(ctx, "journal").Result()
		require.NoError(t, err)
		assert.Equal(t, int64(kept[s.Addr()]), journal, "%s: journal entries: got %d, want those of kept keys", s.Addr(), journal)
		for _, k := range nonMetricKeys {
			assert.Equal(t, "keep me", rc.Get(ctx, k).Val(), "%s: %s must survive", s.Addr(), k)
		}
		assert.Equal(t, day(cutoff), rc.Get(ctx, "journal:horizon").Val(), "%s: horizon", s.Addr())
	}

	// A dropped period never comes back.
	at := today.Add(-3*24*time.Hour + 2*time.Hour)
	err = c.Record(ctx, "h0001", "m01", at, 5)
	require.ErrorIs(t, err, federated.ErrPeriodDropped)
	assert.Contains(t, err.Error(), "was dropped (the oldest kept is "+day(cutoff)+")", "the error names the oldest period kept")
	key, err := c.MetricKey(at, "h0001", "m01")
	require.NoError(t, err)
	owner := directClient(t, mustServer(t, c, key))
	assert.Zero(t, owner.Exists(ctx, key).Val(), "the refused write wrote nothing")
	assert.ErrorIs(t, owner.ZScore(ctx, "journal", key).Err(), redis.Nil, "nor journalled it")
	require.NoError(t, c.Record(ctx, "h0001", "m01", cutoff.Add(2*time.Hour), 5), "a kept period takes writes")

	// The horizon only moves forward, and the current period is not dropped.
	report, err = newStore(t, c).DropBefore(ctx, today.Add(-5*24*time.Hour))
	require.NoError(t, err)
	assert.Zero(t, report.Total)
	_, err = newStore(t, c).DropBefore(ctx, time.Now().Add(48*time.Hour))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "current period")
	for _, s := range servers {
		assert.Equal(t, day(cutoff), directClient(t, s.Addr()).Get(ctx, "journal:horizon").Val(), "%s: horizon", s.Addr())
	}
}

func TestDropBeforeReplicaGroup(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{
		Nodes: map[string]federated.Node{
			"group":  {Addresses: redistest.Addrs(servers[:2])},
			"single": {Address: servers[2].Addr()},
		},
		Options: testOptions(),
	})
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	old, keep := today.Add(-3*24*time.Hour), today.Add(-24*time.Hour)
	wantRemoved := map[string]int64{}
	for i, s := range servers {
		rc := directClient(t, s.Addr())
		n := 100 * (i + 1)
		wantRemoved[s.Addr()] = int64(n)
		prefix := fmt.Sprintf("s%d-", i)
		require.NoError(t, writeKeysOn(ctx, rc, periodKeys(old.Format("2006-01-02"), prefix, n), old.Unix()))
		require.NoError(t, writeKeysOn(ctx, rc, periodKeys(keep.Format("2006-01-02"), prefix, 50), keep.Unix()))
	}

	report, err := newStore(t, c).DropBefore(ctx, today.Add(-2*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, wantRemoved, report.Removed, "every server of the group is dropped, current or not")
	for _, s := range servers {
		rc := directClient(t, s.Addr())
		assert.Equal(t, 50, countKeys(t, rc, "*"+":s?-*"), "%s: kept keys", s.Addr())
		assert.Equal(t, int64(50), rc.ZCard(ctx, "journal").Val(), "%s: journal", s.Addr())
		assert.Equal(t, today.Add(-2*24*time.Hour).Format("2006-01-02"), rc.Get(ctx, "journal:horizon").Val())
	}

	// A server that is down: its error names it, the others are dropped.
	rc0 := directClient(t, servers[0].Addr())
	require.NoError(t, writeKeysOn(ctx, rc0, periodKeys(old.Format("2006-01-02"), "again", 10), old.Unix()))
	require.NoError(t, servers[2].Kill())
	report, err = newStore(t, c).DropBefore(ctx, today.Add(-2*24*time.Hour))
	require.Error(t, err)
	assert.Contains(t, err.Error(), servers[2].Addr())
	assert.Equal(t, int64(10), report.Removed[servers[0].Addr()])
	assert.Equal(t, int64(10), report.Total)
}

func TestKeepPeriods(t *testing.T) {
	servers := redistest.StartN(t, 2)
	logs := &recordHandler{}
	opts := testOptions()
	opts.Metrics.Period = "hour"
	opts.Logger = slog.New(logs)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx := context.Background()

	t.Run("validates", func(t *testing.T) {
		tests := []struct {
			name  string
			n     int
			every time.Duration
		}{
			{"negative n", -1, time.Second},
			{"no n and no Retention", 0, time.Second},
			{"zero interval", 3, 0},
			{"negative interval", 3, -time.Second},
			{"more periods than a Duration reaches back", 1_000_000, time.Second},
		}
		for _, tt := range tests {
			err := newStore(t, c).KeepPeriods(ctx, tt.n, tt.every)
			require.Error(t, err, tt.name)
			assert.Contains(t, err.Error(), "KeepPeriods", tt.name)
		}
	})

	hour := time.Now().UTC().Truncate(time.Hour)
	keyOf := func(i int, host string) string {
		k, err := c.MetricKey(hour.Add(-time.Duration(i)*time.Hour), host, "cpu")
		require.NoError(t, err)
		return k
	}
	hosts := []string{"a", "b", "c"}
	for i := range 6 {
		for _, h := range hosts {
			require.NoError(t, c.Record(ctx, h, "cpu", hour.Add(-time.Duration(i)*time.Hour+time.Minute), float64(i)))
		}
	}

	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- newStore(t, c).KeepPeriods(kctx, 3, 50*time.Millisecond) }()

	require.Eventually(t, func() bool {
		for i := 3; i < 6; i++ {
			for _, h := range hosts {
				if c.Exists(ctx, keyOf(i, h)).Val() != 0 {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "the keys of hours 3 to 5 back are dropped")
	// The loop goes on ticking, with nothing more to drop.
	require.Eventually(t, func() bool { return len(logs.Values("metrics: no old periods to drop", "before")) >= 2 },
		10*time.Second, 20*time.Millisecond)
	// The loop ends when its context does; stopped, it cannot drop a key
	// while the kept ones are counted, should the hour turn meanwhile.
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("KeepPeriods did not return after its context was cancelled")
	}
	// n periods are kept, the current one included (one fewer if the hour
	// turned meanwhile).
	now := time.Now().UTC().Truncate(time.Hour)
	if now.Equal(hour) {
		assert.Equal(t, []any{int64(9)}, logs.Values("metrics: dropped old periods", "removed"))
	}
	oldestKept := now.Add(-2 * time.Hour)
	for i := range 3 {
		if hour.Add(-time.Duration(i) * time.Hour).Before(oldestKept) {
			continue
		}
		for _, h := range hosts {
			assert.Equal(t, int64(1), c.Exists(ctx, keyOf(i, h)).Val(), "key %s is kept", keyOf(i, h))
		}
	}

	t.Run("stops when the client closes", func(t *testing.T) {
		opts := testOptions()
		opts.Metrics.Retention = 24
		c2, err := federated.New(federated.Config{Nodes: singleNodes(servers), Options: opts})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- newStore(t, c2).KeepPeriods(context.Background(), 0, time.Hour) }()
		require.NoError(t, c2.Close())
		select {
		case err := <-done:
			require.ErrorIs(t, err, federated.ErrClosed)
		case <-time.After(10 * time.Second):
			t.Fatal("KeepPeriods did not return after the client closed")
		}
	})
}

// A fleet that moves from hourly periods to daily ones (or back) keeps the
// horizon the last retention set, of the other length: a day is dropped
// only when it ended by that hour, and an hour only when its day is before
// that day. Writes of the day the hourly horizon falls in, and the check
// of its keys, go on.
func TestHorizonOfTheOtherPeriodLength(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	for _, tt := range []struct {
		name          string
		first, then   string // the periods of the drop, and of the writes after it
		kept, dropped string
		checked       string
	}{
		{"hours, then days", "hour", "day", "the day of the hourly horizon is kept", "the day before it is dropped", "the day's key is checked"},
		{"days, then hours", "day", "hour", "an hour of the daily horizon is kept", "an hour of the day before it is dropped", "the hour's key is checked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			group := map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}}
			fo, to := testOptions(), testOptions()
			fo.Metrics.Period, to.Metrics.Period = tt.first, tt.then
			first := newClient(t, federated.Config{Nodes: group, Options: fo})
			then := newClient(t, federated.Config{Nodes: group, Options: to})
			_, err := newStore(t, first).DropBefore(ctx, now)
			require.NoError(t, err)
			require.NoError(t, then.Record(ctx, "web1", "cpu", now, 1), tt.kept)
			err = then.Record(ctx, "web1", "cpu", now.AddDate(0, 0, -1), 1)
			require.ErrorIs(t, err, federated.ErrPeriodDropped, tt.dropped)
			report, err := newStore(t, then).Check(ctx, metrics.CheckOptions{})
			require.NoError(t, err)
			assert.Equal(t, 1, report.Keys, tt.checked)
		})
	}
}

// A retention longer than the time since 1970 keeps everything: each drop
// finds nothing to drop, where it failed with a negative timestamp.
func TestKeepPeriodsLongerThanSince1970(t *testing.T) {
	servers := redistest.StartN(t, 1)
	logs := &recordHandler{}
	opts := testOptions()
	opts.Logger = slog.New(logs)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- newStore(t, c).KeepPeriods(ctx, 30000, 10*time.Millisecond) }()
	require.Eventually(t, func() bool { return len(logs.Values("metrics: no old periods to drop", "before")) >= 2 },
		5*time.Second, 10*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Empty(t, logs.Values("metrics: dropping old periods failed", "err"))
}
