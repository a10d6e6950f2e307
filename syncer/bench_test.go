package syncer_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

var (
	lagRate   = flag.Int("syncer.rate", 100000, "points per second written by BenchmarkSyncerLag")
	outage    = flag.Duration("syncer.outage", 60*time.Second, "how long BenchmarkSyncerCatchUp keeps a server down")
	byCommand = flag.Bool("syncer.commands", false, "BenchmarkSyncerLag logs the servers' commands per point written, by command")
)

// fourGroups starts 8 servers as 4 replica groups of 2, as two hosts of 4
// processes each would be laid out.
func fourGroups(b *testing.B) ([]*redistest.Server, federated.Config) {
	servers := redistest.StartN(b, 8)
	nodes := make(map[string]federated.Node)
	for i := range 4 {
		nodes[fmt.Sprintf("redis_%d", i+1)] = federated.Node{Addresses: []string{servers[i].Addr(), servers[i+4].Addr()}}
	}
	return servers, federated.Config{Nodes: nodes, Options: quiet()}
}

// replicatedGroups starts 4 groups of 2 servers, a client, and a syncer of
// every server; stop ends the syncer. The client closes with the benchmark.
func replicatedGroups(b *testing.B) (servers []*redistest.Server, c *federated.Client, s *syncer.Syncer, stop func()) {
	servers, cfg := fourGroups(b)
	c, err := federated.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	s, err = syncer.NewFromClient(c, redistest.Addrs(servers), syncer.Options{NoAntiEntropy: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	b.Cleanup(stop)
	return servers, c, s, stop
}

// pace writes n points through r at rate points per second over 100,000
// series (1,000 hosts × 100 metrics), stamped with the current second, as
// metrics sampled once a second are: at 100,000 points/s every series gets
// one point a second.
func pace(b *testing.B, r *metrics.Recorder, n, rate int) {
	hosts := make([]string, 1000)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("web%d", i)
	}
	metrics := make([]string, 100)
	for i := range metrics {
		metrics[i] = fmt.Sprintf("m%d", i)
	}
	start := time.Now()
	for i := range n {
		if i%1000 == 0 {
			if ahead := time.Duration(i)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		if err := r.Add(context.Background(), hosts[i%1000], metrics[i/1000%100], time.Now().Truncate(time.Second), float64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyncerLag writes points through a Recorder at a fixed rate
// (-syncer.rate) to 4 groups of 2 servers while syncers replicate every
// server, and reports the replication lag: the time from a change's journal
// entry on one server to its merge into the other, p50 and p99 over the
// links. One op is one point. Beside the target rate it reports the rate
// written, the points the Recorder wrote over the time from the first Add
// to the end of its closing flush: a writer that falls behind the target
// shows there, and its lag figures are those of a lower rate. It also
// reports the servers' CPU time per point written, the writes and their
// replication together: what sets the rate a fleet can replicate; and this
// process's CPU time per point, the Recorder, the loop that feeds it and
// the syncers of all 8 servers together.
func BenchmarkSyncerLag(b *testing.B) {
	servers, c, s, stop := replicatedGroups(b)
	r, err := newStore(b, c).NewRecorder(metrics.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var mem0, mem runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0, client0 := serversCPU(b, servers), processCPU(b)
	if *byCommand {
		for _, sv := range servers {
			if err := direct(b, sv.Addr()).ConfigResetStat(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	start := time.Now()
	pace(b, r, b.N, *lagRate)
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	wrote := time.Since(start)
	b.StopTimer()
	time.Sleep(time.Second) // let the last changes replicate
	stop()
	cpu, client := serversCPU(b, servers)-cpu0, processCPU(b)-client0
	runtime.ReadMemStats(&mem)
	if *byCommand {
		logCommands(b, servers, r.Stats().Written)
	}

	var p50, p99 []time.Duration
	for _, p := range s.Stats().Peers {
		p50 = append(p50, p.LagP50)
		p99 = append(p99, p.LagP99)
	}
	b.ReportMetric(float64(slices.Max(p50).Milliseconds()), "lag-p50-ms")
	b.ReportMetric(float64(slices.Max(p99).Milliseconds()), "lag-p99-ms")
	b.ReportMetric(float64(*lagRate), "target-points/s")
	b.ReportMetric(float64(r.Stats().Written)/wrote.Seconds(), "written-points/s")
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(r.Stats().Written), "server-µs/point")
	b.ReportMetric(float64(client)/float64(time.Microsecond)/float64(r.Stats().Written), "client-µs/point")
	// The process's allocations over the same span, per point written: a
	// sixth of its CPU goes to collecting them.
	b.ReportMetric(float64(mem.Mallocs-mem0.Mallocs)/float64(r.Stats().Written), "client-allocs/point")
	b.ReportMetric(float64(mem.TotalAlloc-mem0.TotalAlloc)/float64(r.Stats().Written), "client-B/point")
}

// logCommands logs, for each command the servers ran since their stats
// were reset, its calls and its time per point written. Scripts' calls of
// commands count as those commands' calls, and a script's time includes
// theirs: what a script spends apart from its commands (Lua, its
// arguments and replies) is its time less theirs. The times are Redis's
// own, by the clock: where servers share cores, a server made to wait
// in a command counts the wait. Run with -test.v: a benchmark's log is
// cut to its first lines otherwise.
func logCommands(b *testing.B, servers []*redistest.Server, points int64) {
	total := make(map[string]redistest.CommandStat)
	for _, sv := range servers {
		info, err := direct(b, sv.Addr()).Info(context.Background(), "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		for name, st := range redistest.ParseCommandStats(info) {
			t := total[name]
			t.Calls += st.Calls
			t.Usec += st.Usec
			total[name] = t
		}
	}
	names := slices.SortedFunc(maps.Keys(total), func(x, y string) int { return cmp.Compare(total[y].Usec, total[x].Usec) })
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-20s %14s %14s\n", "command", "calls/point", "µs/point")
	for _, name := range names {
		t := total[name]
		fmt.Fprintf(&sb, "%-20s %14.3f %14.3f\n", name, float64(t.Calls)/float64(points), float64(t.Usec)/float64(points))
	}
	b.Logf("servers' commands over %d points written:\n%s", points, sb.String())
}

// processCPU returns the CPU time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	d, err := redistest.ProcessCPU()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// serversCPU returns the CPU time the servers have used so far, summed.
func serversCPU(b *testing.B, servers []*redistest.Server) time.Duration {
	d, err := redistest.CPUTime(servers)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkSyncerCatchUp kills one server of a group, keeps writing for
// -syncer.outage, restarts it empty, and times how long its syncer takes to
// pull everything its peer holds back. It reports the catch-up rate in
// points per second. One op is one point written before or during the
// outage; run it with -benchtime 1x.
func BenchmarkSyncerCatchUp(b *testing.B) {
	servers, c, _, stop := replicatedGroups(b)
	defer stop()
	r, err := newStore(b, c).NewRecorder(metrics.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()

	// The victim is redis_1's replica that is not current.
	current, err := c.NodeToServer("redis_1")
	if err != nil {
		b.Fatal(err)
	}
	victim := servers[4]
	if victim.Addr() == current {
		victim = servers[0]
	}
	if err := victim.Kill(); err != nil {
		b.Fatal(err)
	}
	rate := 20000
	pace(b, r, int(outage.Seconds())*rate, rate)
	if err := r.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	peer := servers[0]
	if victim == servers[0] {
		peer = servers[4]
	}
	want := countAll(b, peer.Addr())

	b.ResetTimer()
	start := time.Now()
	if err := victim.Restart(); err != nil {
		b.Fatal(err)
	}
	for countAll(b, victim.Addr()) < want {
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(want)/took.Seconds(), "catch-up-points/s")
	b.ReportMetric(float64(want), "points-restored")
	b.ReportMetric(took.Seconds(), "catch-up-s")
}

// countAll counts the members of every metric key on a server, a page of
// SCAN at a time with their ZCARDs in one pipeline, so that polling it
// costs the server little beside the catch-up it measures.
func countAll(b *testing.B, addr string) int64 {
	ctx := context.Background()
	rc := direct(b, addr)
	var total int64
	var cursor uint64
	for {
		keys, next, err := rc.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			b.Fatal(err)
		}
		pipe := rc.Pipeline()
		var cards []*redis.IntCmd
		for _, k := range keys {
			if _, _, _, err := federated.ParseMetricKey(k); err == nil {
				cards = append(cards, pipe.ZCard(ctx, k))
			}
		}
		if len(cards) > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range cards {
			total += c.Val()
		}
		if cursor = next; cursor == 0 {
			return total
		}
	}
}
