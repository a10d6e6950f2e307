package demo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

// Summary is what the demo's script showed.
type Summary struct {
	Mode         string
	Written      int64 // points acknowledged by Redis
	Failed       int64 // points whose write failed
	Found        int64 // points found on the replicas at the end
	Elapsed      time.Duration
	Rate         float64       // live points per second during the script
	LagP99       time.Duration // worst p99 replication lag of the syncers' links
	Killed       string        // the server killed
	FailedOverTo string        // the server its node failed over to
	Check        metrics.CheckReport
}

// Lost is the number of acknowledged points not found on the replicas.
func (s Summary) Lost() int64 { return max(0, s.Written-s.Found) }

// Script runs the demo's story: writes flow, the current server of a group
// is killed and its group fails over, the server comes back empty and the
// syncers restore it, and a check compares every replica. It returns when
// the replicas agree (or SettleTime passes), leaving the writers running.
func (d *Demo) Script(ctx context.Context) (Summary, error) {
	start := time.Now()
	before := d.rec.Stats().Written
	sum := Summary{Mode: d.fleet.Mode()}
	d.printf("writing %d points/s from %d hosts through a Recorder; syncers replicating each group\n",
		int(float64(d.opts.Hosts*len(metricNames))/d.opts.Interval.Seconds()), d.opts.Hosts)
	if err := sleep(ctx, 2*time.Second); err != nil {
		return sum, err
	}

	// Stop the server the way an operator would, so that the kill loses
	// nothing that was acknowledged: fence the writers off it, then wait
	// until its peer's link from it is synced past the fence.
	victim, err := d.client.NodeToServer("redis_1")
	if err != nil {
		return sum, err
	}
	if err := d.client.MarkServerDown(victim); err != nil {
		return sum, err
	}
	fenced := time.Now()
	if err := d.waitSynced(ctx, victim, fenced); err != nil {
		return sum, err
	}
	idx := slices.Index(d.fleet.Addrs(), victim)
	sum.Killed = victim
	if err := d.fleet.Kill(idx); err != nil {
		return sum, err
	}
	d.printf("killed %s, the current server of redis_1, once its peer was synced past the writers' move off it\n", victim)
	if err := sleep(ctx, 3*time.Second); err != nil {
		return sum, err
	}
	sum.FailedOverTo, _ = d.client.NodeToServer("redis_1")
	d.printf("redis_1 failed over to %s; writes go on (%d points failed so far)\n", sum.FailedOverTo, d.rec.Stats().Failed)

	if err := d.fleet.Restart(idx); err != nil {
		return sum, err
	}
	d.printf("restarted %s empty; its syncer pulls everything back\n", victim)
	if err := sleep(ctx, 2*time.Second); err != nil {
		return sum, err
	}

	// The writers stay paused until the points are counted, so that the
	// count and the acknowledgements cover the same points.
	d.pause.Lock()
	report, err := d.settleLocked(ctx)
	if err != nil {
		d.pause.Unlock()
		return sum, err
	}
	sum.Check = report
	st := d.rec.Stats()
	sum.Written, sum.Failed = st.Written, st.Failed
	sum.Found, err = d.countPoints(ctx)
	d.pause.Unlock()
	if err != nil {
		return sum, err
	}
	for _, p := range d.SyncerStats().Peers {
		sum.LagP99 = max(sum.LagP99, p.LagP99)
	}
	sum.Elapsed = time.Since(start)
	sum.Rate = float64(sum.Written-before) / sum.Elapsed.Seconds()
	return sum, nil
}

// waitSynced waits until every link that pulls from server reports
// SyncedTo after t: everything the server acknowledged before t is on its
// peers. It gives up after SettleTime.
func (d *Demo) waitSynced(ctx context.Context, server string, t time.Time) error {
	deadline := time.Now().Add(d.opts.SettleTime)
	for {
		synced, links := true, 0
		for _, p := range d.SyncerStats().Peers {
			if p.Peer == server {
				links++
				synced = synced && p.SyncedTo.After(t)
			}
		}
		if synced && links > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			d.printf("the peers of %s are not synced past its fence after %v; stopping it all the same\n", server, d.opts.SettleTime)
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// settleLocked flushes and runs checks until every replica group agrees
// or SettleTime passes; the caller pauses the writers.
func (d *Demo) settleLocked(ctx context.Context) (metrics.CheckReport, error) {
	if err := d.rec.Flush(ctx); err != nil {
		d.printf("flush: %v\n", err)
	}
	deadline := time.Now().Add(d.opts.SettleTime)
	for {
		report, err := d.store.Check(ctx, metrics.CheckOptions{})
		if err == nil && report.OK() || time.Now().After(deadline) {
			d.mu.Lock()
			d.lastCheck, d.checkedAt, d.checked = report, time.Now(), true
			d.mu.Unlock()
			d.printf("check: %d keys in %d groups, %d divergent\n", report.Keys, len(report.Groups), report.Divergent)
			return report, nil
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return report, err
		}
	}
}

// countPoints counts the members of every metric key on the current server
// of every node.
func (d *Demo) countPoints(ctx context.Context) (int64, error) {
	var total int64
	for _, node := range d.client.Nodes() {
		addr, err := d.client.NodeToServer(node)
		if err != nil {
			return 0, err
		}
		rc, err := d.client.ServerClient(addr)
		if err != nil {
			return 0, err
		}
		iter := rc.Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			if _, _, _, err := federated.ParseMetricKey(iter.Val()); err != nil {
				continue
			}
			n, err := rc.ZCard(ctx, iter.Val()).Result()
			if err != nil {
				return 0, err
			}
			total += n
		}
		if err := iter.Err(); err != nil {
			return 0, err
		}
	}
	return total, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Print writes the summary.
func (s Summary) Print(out func(format string, args ...any)) {
	out("\nsummary, %s:\n", s.Mode)
	out("  points acknowledged  %d (%d failed)\n", s.Written, s.Failed)
	out("  points on replicas   %d (%d lost)\n", s.Found, s.Lost())
	out("  live write rate      %.0f points/s over %v\n", s.Rate, s.Elapsed.Round(time.Second))
	out("  replication lag p99  %v\n", s.LagP99.Round(time.Millisecond))
	out("  failover             %s → %s\n", s.Killed, s.FailedOverTo)
	verdict := "every replica agrees"
	if !s.Check.OK() {
		verdict = fmt.Sprintf("%d divergent keys", s.Check.Divergent)
	}
	out("  check                %d keys: %s\n", s.Check.Keys, verdict)
}
