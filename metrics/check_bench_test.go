package metrics_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

var (
	checkKeys   = flag.Int("check.keys", 1000, "daily keys of each day BenchmarkCheckCost writes to the group")
	checkPoints = flag.Int("check.points", 8640, "points of each full day's key of BenchmarkCheckCost")
	checkLarge  = flag.Int("check.large", 3_000_000, "members of BenchmarkRepairLargeKey's key")
)

// fillLua writes ARGV[2] points, 10 s apart from ARGV[1], to KEYS[1] and
// journals it at ARGV[3]: a server fills a key in one call.
const fillLua = `local from, n = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 0, n - 1, 1000 do
  local a = {}
  for j = i, math.min(i + 999, n - 1) do
    a[#a + 1] = from + j * 10
    a[#a + 1] = (from + j * 10) .. ':' .. j
  end
  redis.call('ZADD', KEYS[1], unpack(a))
end
redis.call('ZADD', 'journal', ARGV[3], KEYS[1])
return 1`

// BenchmarkCheckCost is what anti-entropy costs the servers of a group of
// two: one op is one Repair that finds the servers alike. The store holds
// two days past of -check.keys daily keys of -check.points points, and a
// day half written whose keys changed now; scope=all compares every key,
// as a full run does, scope=changed the keys journalled in the last hour,
// as the runs between do. server-s/op is the two servers' CPU a run.
func BenchmarkCheckCost(b *testing.B) {
	servers := redistest.StartN(b, 2)
	c := groupClient(b, servers)
	ctx := context.Background()
	now := time.Now().UTC()
	days := []struct {
		at      time.Time
		points  int
		changed time.Time
	}{
		{now.Add(-48 * time.Hour), *checkPoints, now.Add(-47 * time.Hour)},
		{now.Add(-24 * time.Hour), *checkPoints, now.Add(-23 * time.Hour)},
		{now, *checkPoints / 2, now},
	}
	for _, s := range servers {
		rc := directClient(b, s.Addr())
		for _, d := range days {
			for k := range *checkKeys {
				key, err := c.MetricKey(d.at, fmt.Sprintf("web%d", k%100), fmt.Sprintf("m%d", k/100))
				if err != nil {
					b.Fatal(err)
				}
				start := d.at.Truncate(24*time.Hour).Unix() + 1
				if err := rc.Eval(ctx, fillLua, []string{key}, start, d.points, d.changed.Unix()).Err(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	st := newStore(b, c)
	for _, scope := range []struct {
		name  string
		since time.Time
	}{{"all", time.Time{}}, {"changed", now.Add(-time.Hour)}} {
		b.Run("scope="+scope.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := serverCPU(b, servers)
			for b.Loop() {
				report, err := st.Repair(ctx, metrics.CheckOptions{ChangedSince: scope.since})
				if err != nil || report.Divergent > 0 {
					b.Fatalf("%d divergent keys, %v", report.Divergent, err)
				}
			}
			server, err := redistest.CPUTime(cpu.servers)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric((server-cpu.server).Seconds()/float64(b.N), "server-s/op")
		})
	}
}

// BenchmarkRepairLargeKey is what anti-entropy costs for one key of
// -check.large members, at a command timeout of 1 s: one op is one Repair
// of a group of two, where case=alike finds the servers alike and
// case=gap gives the second the 1,000 members it lacks from the middle
// of the key (taken from it again between ops). server-s/op is the two
// servers' CPU an op.
func BenchmarkRepairLargeKey(b *testing.B) {
	servers := redistest.StartN(b, 2)
	opts := testOptions()
	opts.CommandTimeout = time.Second
	c := newClient(b, federated.Config{Nodes: map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}}, Options: opts})
	ctx := context.Background()
	at := time.Now().UTC().Add(-24 * time.Hour).Truncate(24 * time.Hour)
	key, err := c.MetricKey(at, "web1", "cpu")
	if err != nil {
		b.Fatal(err)
	}
	n := *checkLarge
	for _, s := range servers {
		// In calls of 100,000 points: one call of millions would hold the
		// server past its busy time.
		for from := 0; from < n; from += 100_000 {
			start := at.Unix() + int64(from)*10
			if err := directClient(b, s.Addr()).Eval(ctx, fillLua, []string{key}, start, min(100_000, n-from), at.Unix()).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
	gapFrom := at.Unix() + int64(n/2)*10
	gap := directClient(b, servers[1].Addr())
	st := newStore(b, c)
	for _, cs := range []struct {
		name  string
		added int64
	}{{"alike", 0}, {"gap", 1000}} {
		b.Run("case="+cs.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := serverCPU(b, servers)
			for b.Loop() {
				if cs.added > 0 {
					b.StopTimer()
					if err := gap.ZRemRangeByScore(ctx, key, fmt.Sprint(gapFrom), fmt.Sprint(gapFrom+10*999)).Err(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				report, err := st.Repair(ctx, metrics.CheckOptions{})
				if err != nil || report.Added != cs.added {
					b.Fatalf("%d members added, not %d: %v", report.Added, cs.added, err)
				}
			}
			server, err := redistest.CPUTime(cpu.servers)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric((server-cpu.server).Seconds()/float64(b.N), "server-s/op")
		})
	}
}
