package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
)

// Retention drops whole periods, server by server, with a script that scans
// the keyspace in steps: each call looks at a few thousand keys, so a server
// is never held for long, and every server of the federation is worked on at
// once.

// DropReport says what DropBefore removed.
type DropReport struct {
	// Cutoff is the start of the oldest period kept: every period before it
	// was dropped.
	Cutoff time.Time
	// Horizon is Cutoff as a period string, the value the horizon key of
	// every server that was reached now holds, or a later one it held
	// already.
	Horizon string
	// Removed is the number of keys removed, by server address. A server
	// that failed has the keys it removed before failing.
	Removed map[string]int64
	// Total is the number of keys removed on all servers.
	Total int64
	// Duration is how long the drop took.
	Duration time.Duration
}

// DropBefore drops every period that ended at or before t: all its metric
// keys on every server of the federation (all servers of every replica
// group, not only the current ones) and their journal entries. It first
// raises each server's horizon key to the oldest period kept, so that the
// write script refuses the dropped periods from then on and a dropped period
// never comes back. Keys of other shapes (the journal, the horizon, the
// origin hash, a syncer's cursors, anything not "$period:...") are never
// touched, nor are keys whose period string has the other length ("hour"
// keys under "day").
//
// A server that comes back empty, or a node added later, holds no horizon
// until the next DropBefore: in a replica group the syncer gives it the
// group's at once, but a node of one server accepts points of dropped
// periods until then. KeepPeriods, run in the background, closes that gap
// within its interval.
//
// A server marked down is not asked, and a server that fails stops being
// worked on: each gives an error that names it, all of them joined, and the
// report counts what was removed. Dropping again later finishes the job.
//
// DropBefore refuses a t that would drop the period in progress (by the
// client's clock).
func (st *Store) DropBefore(ctx context.Context, t time.Time) (DropReport, error) {
	began := time.Now()
	p := st.period
	if err := metric.ValidateTimestamp(metric.Seconds(t)); err != nil {
		return DropReport{}, fmt.Errorf("metrics: DropBefore %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	// The period that holds t has not ended at t: it is the oldest kept.
	cutoff := p.Start(t)
	if current := p.Start(time.Now()); cutoff.After(current) {
		return DropReport{}, fmt.Errorf("metrics: DropBefore %s would drop the current period %s",
			t.UTC().Format(time.RFC3339), p.Format(current))
	}
	report := DropReport{Cutoff: cutoff, Horizon: p.Format(cutoff), Removed: make(map[string]int64)}
	var mu sync.Mutex
	err := st.c.ForEachServer(ctx, func(ctx context.Context, addr string, rc *redis.Client) error {
		removed, err := journal.Drop(ctx, st.c, addr, st.keys, st.period, report.Horizon)
		mu.Lock()
		report.Removed[addr] = removed
		report.Total += removed
		mu.Unlock()
		return err
	})
	report.Duration = time.Since(began)
	return report, err
}

// KeepPeriods keeps the n most recent periods, the current one included,
// and drops older ones: it calls DropBefore at once and then every every,
// with the start of the (n-1)th period before the current one, until ctx
// ends, and returns ctx.Err(); or federated.ErrClosed when the client closes. n zero
// means Options.Metrics.Retention. Run it in a goroutine of your own. Each
// drop is logged to Options.Logger: at Info when keys were removed, at Debug
// when there was nothing to remove, and its failures at Warn; a failed drop
// is tried again on the next tick.
func (st *Store) KeepPeriods(ctx context.Context, n int, every time.Duration) error {
	if n == 0 {
		n = st.c.Options().Metrics.Retention
	}
	if n < 1 || n > federated.MaxRetention {
		return fmt.Errorf("metrics: KeepPeriods: keep %d periods, want 1 to %d (n, or else Options.Metrics.Retention)", n, federated.MaxRetention)
	}
	if every <= 0 {
		return fmt.Errorf("metrics: KeepPeriods: interval %v, want more than 0", every)
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	p := st.period
	for {
		// A retention longer than the time since 1970 (30,000 days, say)
		// keeps everything: no point is older than 1970.
		cutoff := p.Start(time.Now()).Add(-time.Duration(n-1) * p.Duration())
		if epoch := time.Unix(0, 0); cutoff.Before(epoch) {
			cutoff = epoch
		}
		report, err := st.DropBefore(ctx, cutoff)
		switch {
		case errors.Is(err, federated.ErrClosed):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			st.c.Options().Logger.Warn("metrics: dropping old periods failed", "before", report.Horizon,
				"removed", report.Total, "took", report.Duration, "err", err)
		case report.Total > 0:
			st.c.Options().Logger.Info("metrics: dropped old periods", "before", report.Horizon,
				"removed", report.Total, "servers", len(report.Removed), "took", report.Duration)
		default:
			st.c.Options().Logger.Debug("metrics: no old periods to drop", "before", report.Horizon)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.c.Done():
			return federated.ErrClosed
		case <-ticker.C:
		}
	}
}
