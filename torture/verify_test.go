package torture_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

// waitChecked waits until Check finds every replica group in agreement.
func waitChecked(ctx context.Context, c *metrics.Store, within time.Duration) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		if report, err := c.Check(ctx, metrics.CheckOptions{}); err == nil && report.OK() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// metricMembers reads every member of every metric key of a server.
func metricMembers(ctx context.Context, rc *redis.Client) (map[string][]string, error) {
	var keys []string
	iter := rc.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if _, _, _, err := federated.ParseMetricKey(iter.Val()); err == nil {
			keys = append(keys, iter.Val()) // not the journal, the horizon or the cursors
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(keys))
	for batch := range slices.Chunk(keys, 200) {
		pipe := rc.Pipeline()
		cmds := make([]*redis.StringSliceCmd, len(batch))
		for i, k := range batch {
			cmds[i] = pipe.ZRange(ctx, k, 0, -1)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for i, k := range batch {
			out[k] = cmds[i].Val()
		}
	}
	return out, nil
}

// verification is what the final read of every server found.
type verification struct {
	members             int // members read, all servers
	lost, missingCopies int
	unknown, misplaced  int
	examples            []string
}

// verify reads every member of every server, checks that each is a point
// the writers added, in its key, and that each acknowledged point is on
// both servers of its group.
func verify(ctx context.Context, t *testing.T, f *fleet, l *load) verification {
	t.Helper()
	seriesIndex := make(map[string]int64, numSeries)
	for s := range int64(numSeries) {
		host, metric := seriesOf(s)
		seriesIndex[host+":"+metric] = s
	}
	var v verification
	var present [hosts][groups][]bool
	for h := range hosts {
		for g := range groups {
			present[h][g] = make([]bool, len(l.stamps))
			all, err := metricMembers(ctx, f.direct[h][g])
			if err != nil {
				t.Fatalf("reading %s: %v", sid{h, g}, err)
			}
			for key, members := range all {
				period, host, metric, err := federated.ParseMetricKey(key)
				series, known := seriesIndex[host+":"+metric]
				switch {
				case err != nil || !known:
					v.unknown += len(members)
					continue
				case l.client.KeyToNode(key) != nodeName(g):
					v.misplaced += len(members)
					continue
				}
				day := period.UnixMicro() / microsPerDay
				for _, m := range members {
					v.members++
					at, value, err := federated.ParseMember(m)
					id := int64(value)
					if err != nil || float64(id) != value || id < 0 || id >= int64(len(l.stamps)) {
						v.unknown++
						continue
					}
					// The member is the point's: its series, day and time.
					if us := l.stamps[id]; us == 0 || id%numSeries != series || us/microsPerDay != day || at.UnixMicro() != us {
						v.unknown++
						continue
					}
					present[h][g][id] = true
				}
			}
		}
	}
	for id, acked := range l.acked {
		if !acked {
			continue
		}
		p := point{int64(id), l.stamps[id]}
		g, missing := groupOf(l.nodeOf(p)), 0
		for h := range hosts {
			if !present[h][g][id] {
				missing++
				if len(v.examples) < 10 {
					v.examples = append(v.examples, fmt.Sprintf("  point %d (key %s) missing on %s", id, l.keyOf(p), sid{h, g}))
				}
			}
		}
		if missing > 0 {
			v.lost++
			v.missingCopies += missing
		}
	}
	return v
}

// memberDiff says which members of a key each server of a group lacks.
func memberDiff(ctx context.Context, f *fleet, g int, key string) string {
	var sets [hosts]map[string]bool
	for h := range hosts {
		ms, err := f.direct[h][g].ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			return err.Error()
		}
		sets[h] = map[string]bool{}
		for _, m := range ms {
			sets[h][m] = true
		}
	}
	var b strings.Builder
	for h := range hosts {
		var lacks []string
		for m := range sets[1-h] {
			if !sets[h][m] {
				lacks = append(lacks, m)
			}
		}
		slices.Sort(lacks)
		fmt.Fprintf(&b, "%s lacks %d: %v; ", sid{h, g}, len(lacks), lacks[:min(len(lacks), 5)])
	}
	return b.String()
}
