package metrics_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// w2Point returns the series and the time of the n-th W2 point: the
// series take turns, and each is sampled once a second, so every point is
// new to its key.
func w2Point(day time.Time, n int64) (series int64, t time.Time) {
	return n % 10000, day.Add(time.Duration(n/10000%86400) * time.Second)
}

// w2Series is the W2 key universe: 500 hosts × 20 metrics = 10,000 keys of
// one day.
func w2Series() (hosts, names []string) {
	for i := range 500 {
		hosts = append(hosts, fmt.Sprintf("web%d.sfo", i))
	}
	for i := range 20 {
		names = append(names, fmt.Sprintf("cpu.m%d", i))
	}
	return hosts, names
}

// BenchmarkW2 is workload W2: metric points over a universe of 10,000 keys
// of 2026-11-25 on 8 servers, each point a ZADD of "ts:value" plus its
// journal entry, from 8 writers per CPU (16 on 2). One op is one point.
//
//   - impl=recorder: redfed's Recorder (points batched per node and key,
//     one script call per node per flush, the journal in the same call);
//   - impl=ring: go-redis's Ring, each writer pipelining ZADD key and ZADD
//     of the key's journal entry per point, 1,000 points a batch. A Ring
//     cannot keep one journal per server, so the journal entry goes to a
//     key hash-tagged to the metric key's shard ("journal{KEY}"): the same
//     two commands per point, on a smaller set;
//   - impl=floor: no contender, but what storing the points costs the
//     servers at the least: the points taken 300,000 at a time, as a
//     loaded Recorder's flushes take them (DefaultPointsPerFlush), one
//     multi-member ZADD per key, pipelined to each server, with no
//     journal. Its server-µs/op is the floor under every contender's.
func BenchmarkW2(b *testing.B) {
	servers := redistest.StartN(b, 8)
	hosts, names := w2Series()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var clock atomic.Int64 // numbers the points of both contenders
	// Each contender starts from empty servers.
	flushAll := func(b *testing.B) {
		for _, s := range servers {
			if err := directClient(b, s.Addr()).FlushAll(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("impl=recorder", func(b *testing.B) {
		flushAll(b)
		c := newClient(b, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
		r, err := newStore(b, c).NewRecorder(metrics.RecorderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cpu := serverCPU(b, servers)
		start := time.Now()
		inParallel(b, &clock, addW2Points(b, r, day, hosts, names))
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "points/s")
		cpu.report(b)
	})

	b.Run("impl=ring", func(b *testing.B) {
		flushAll(b)
		addrs := make(map[string]string)
		for i, s := range servers {
			addrs[fmt.Sprintf("redis_%d", i+1)] = s.Addr()
		}
		ring := redis.NewRing(&redis.RingOptions{Addrs: addrs, DisableIdentity: true})
		defer ring.Close()
		ctx := context.Background()
		// Keys and journal keys made once, so the Ring pays only for its
		// commands.
		keys := make([]string, 10000)
		journals := make([]string, 10000)
		for n := range keys {
			keys[n] = day.Format("2006-01-02") + ":" + hosts[n%500] + ":" + names[n/500]
			journals[n] = "journal{" + keys[n] + "}"
		}
		b.ReportAllocs()
		cpu := serverCPU(b, servers)
		start := time.Now()
		inParallel(b, &clock, func(take func() (int64, int64)) {
			pipe := ring.Pipeline()
			exec := func() {
				if _, err := pipe.Exec(ctx); err != nil {
					b.Error(err)
				}
			}
			var buf []byte
			queued := 0
			for first, end := take(); first < end; first, end = take() {
				for n := first; n < end; n++ {
					k, ts := w2Point(day, n)
					sec := float64(ts.Unix())
					buf = strconv.AppendFloat(buf[:0], sec, 'f', -1, 64)
					buf = strconv.AppendFloat(append(buf, ':'), float64(n%1000), 'g', -1, 64)
					pipe.ZAdd(ctx, keys[k], redis.Z{Score: sec, Member: string(buf)})
					pipe.ZAdd(ctx, journals[k], redis.Z{Score: float64(time.Now().UnixMicro()) / 1e6, Member: keys[k]})
					if queued++; queued == 1000 {
						exec()
						queued = 0
					}
				}
			}
			if queued > 0 {
				exec()
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "points/s")
		cpu.report(b)
	})

	b.Run("impl=floor", func(b *testing.B) {
		flushAll(b)
		c := newClient(b, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
		ctx := context.Background()
		pipes := make(map[string]redis.Pipeliner)
		for i, s := range servers {
			pipes[fmt.Sprintf("redis_%d", i+1)] = directClient(b, s.Addr()).Pipeline()
		}
		keys := make([]string, 10000)
		nodes := make([]redis.Pipeliner, 10000)
		for n := range keys {
			keys[n] = day.Format("2006-01-02") + ":" + hosts[n%500] + ":" + names[n/500]
			nodes[n] = pipes[c.KeyToNode(keys[n])]
		}
		const batch = metrics.DefaultPointsPerFlush
		members := make([][]redis.Z, 10000)
		cpu := serverCPU(b, servers)
		for first := 0; first < b.N; first += batch {
			for n := first; n < min(first+batch, b.N); n++ {
				k, ts := w2Point(day, clock.Add(1))
				sec := float64(ts.Unix())
				member := strconv.FormatFloat(sec, 'f', -1, 64) + ":" + strconv.Itoa(n%1000)
				members[k] = append(members[k], redis.Z{Score: sec, Member: member})
			}
			for k, ms := range members {
				if len(ms) > 0 {
					nodes[k].ZAdd(ctx, keys[k], ms...)
					members[k] = ms[:0]
				}
			}
			var wg sync.WaitGroup
			for _, pipe := range pipes {
				wg.Go(func() {
					if _, err := pipe.Exec(ctx); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		cpu.reportServers(b) // its rate and client are no contender's: one goroutine, batch after batch
	})
}

// inParallel runs 8 writers for each CPU (GOMAXPROCS), each calling
// writer once, and shares b.N point numbers among them: take returns a
// writer's next numbers, first to end-1, 16 at a time from the b.N that
// clock gives the run, until every one is taken. (RunParallel, with
// -benchtime Nx, adds to one counter shared by every writer at every
// point: on many cores a cost of the bench, beside what it measures.
// Taking 16 at a time cuts that sixteen times and spreads a writer's
// points over the series as before, where 1,000 at a time gave each
// writer a stretch of the series of its own, and turns by the writer's
// number a fixed part of them.)
func inParallel(b *testing.B, clock *atomic.Int64, writer func(take func() (first, end int64))) {
	const block = 16
	base := clock.Add(int64(b.N)) - int64(b.N)
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range 8 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			writer(func() (int64, int64) {
				first := taken.Add(block) - block
				return base + 1 + min(first, int64(b.N)), base + 1 + min(first+block, int64(b.N))
			})
		})
	}
	wg.Wait()
}

// addW2Points returns a writer for inParallel that adds its W2 points to
// r.
func addW2Points(b *testing.B, r *metrics.Recorder, day time.Time, hosts, names []string) func(take func() (int64, int64)) {
	return func(take func() (int64, int64)) {
		for first, end := take(); first < end; first, end = take() {
			for n := first; n < end; n++ {
				k, ts := w2Point(day, n)
				if err := r.Add(context.Background(), hosts[k%500], names[k/500], ts, float64(n%1000)); err != nil {
					b.Error(err)
					return
				}
			}
		}
	}
}

// cpuMark is the CPU time of the servers and of this process at the start
// of a benchmark's timed part.
type cpuMark struct {
	servers        []*redistest.Server
	server, client time.Duration
}

// serverCPU marks the servers' and this process's CPU time now.
func serverCPU(b *testing.B, servers []*redistest.Server) cpuMark {
	m := cpuMark{servers: servers}
	var err error
	if m.server, err = redistest.CPUTime(servers); err == nil {
		m.client, err = redistest.ProcessCPU()
	}
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// report reports the servers' and this process's CPU time since the mark
// per op, in µs: with the client on the same cores, what predicts the
// rate on a machine where each has cores of its own.
func (m cpuMark) report(b *testing.B) {
	m.reportServers(b)
	client, err := redistest.ProcessCPU()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(client-m.client)/float64(time.Microsecond)/float64(b.N), "client-µs/op")
}

// reportServers reports the servers' CPU time since the mark per op, in
// µs.
func (m cpuMark) reportServers(b *testing.B) {
	server, err := redistest.CPUTime(m.servers)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(server-m.server)/float64(time.Microsecond)/float64(b.N), "server-µs/op")
}

// BenchmarkRecorderAdd is what Add costs the writers, W2's points from 8
// writers per CPU, with no flush while it is timed (the points are written
// at Close, untimed). Run it with -cpu 1,2,...: where Add's ns/op does
// not fall with more CPUs, its writers wait for each other, and that
// bounds their rate on any number of cores; cpu-ns/op is the CPU time the
// process spent per point, waits for a mutex included.
func BenchmarkRecorderAdd(b *testing.B) {
	servers := redistest.StartN(b, 1)
	hosts, names := w2Series()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	c := newClient(b, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	r, err := newStore(b, c).NewRecorder(metrics.RecorderOptions{
		BatchSize: b.N + 1, MaxBuffered: b.N + 1, FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	var clock atomic.Int64
	b.ReportAllocs()
	cpu, err := redistest.ProcessCPU()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	inParallel(b, &clock, addW2Points(b, r, day, hosts, names))
	b.StopTimer()
	end, err := redistest.ProcessCPU()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(end-cpu)/float64(b.N), "cpu-ns/op")
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
}
