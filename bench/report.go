package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// environment describes where the figures come from.
type environment struct {
	CPUs           int    `json:"cpus"`
	GOMAXPROCS     int    `json:"gomaxprocs"`
	GoVersion      string `json:"go_version"`
	OS             string `json:"os"`
	Arch           string `json:"arch"`
	RedisVersion   string `json:"redis_server_version"`
	Servers        int    `json:"servers"`
	StartedServers bool   `json:"started_servers"` // false with -addrs
}

// newEnvironment describes this process and the fleet.
func newEnvironment(ctx context.Context, f *fleet) (environment, error) {
	version, err := f.version(ctx)
	if err != nil {
		return environment{}, err
	}
	return environment{
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		RedisVersion: version, Servers: len(f.addrs), StartedServers: f.procs != nil,
	}, nil
}

// settings are the workload flags of the run.
type settings struct {
	Rounds    int   `json:"rounds"`
	W1Ops     int   `json:"w1_ops"`
	W1Batches []int `json:"w1_batches"`
	Points    int64 `json:"points"`
	W2Batches []int `json:"w2_batches"`
	W2Writers []int `json:"w2_writers"`
}

// row is one line of the report: a cell's figures over every round.
type row struct {
	Workload  string `json:"workload"`
	Batch     int    `json:"batch"` // 0: the contender batches by itself ("auto")
	Writers   int    `json:"writers"`
	Contender string `json:"contender"`
	Redfed    bool   `json:"redfed"`
	Unit      string `json:"unit"` // what one op is: "SET" or "point"

	OpsPerSecMedian float64   `json:"ops_per_sec_median"`
	OpsPerSecMin    float64   `json:"ops_per_sec_min"`
	OpsPerSecMax    float64   `json:"ops_per_sec_max"`
	OpsPerSecRounds []float64 `json:"ops_per_sec_rounds"`
	AllocsPerOp     float64   `json:"allocs_per_op"`
	BytesPerOp      float64   `json:"bytes_per_op"`
	// ServerCPUMicros is the CPU time of every server per op, and
	// ClientCPUMicros that of the whole benchmark process, each the median
	// over the rounds; ClientCPUMicros is absent where the process's CPU
	// time is not measured (see processCPU).
	ServerCPUMicros float64 `json:"server_cpu_us_per_op"`
	ClientCPUMicros float64 `json:"client_cpu_us_per_op,omitempty"`
	LatencyOf       string  `json:"latency_of"` // "batch", or "script call" for the Recorder
	LatencyP50Micro float64 `json:"latency_p50_us"`
	LatencyP99Micro float64 `json:"latency_p99_us"`

	// For redfed rows: the peer with the highest median in the same
	// workload, writers and batch (any batch for the Recorder), and this
	// row's median divided by that peer's.
	BestPeer        string  `json:"best_peer,omitempty"`
	RatioToBestPeer float64 `json:"ratio_to_best_peer,omitempty"`
	// RatioToSharded is the median divided by that of plain go-redis
	// clients sharded by hand (the best of its batch sizes for the
	// Recorder): the bar the Pipeline is held to.
	RatioToSharded float64 `json:"ratio_to_go_redis_sharded,omitempty"`
}

// report is the whole result, as -json prints it.
type report struct {
	Environment environment `json:"environment"`
	Settings    settings    `json:"settings"`
	Smoke       bool        `json:"smoke"` // fewer rounds than minRounds: not figures to quote
	Rows        []row       `json:"rows"`
	Notes       []string    `json:"notes"`
}

// notes explain what the rows measure; the table prints them as footnotes.
var notes = []string{
	"W1: one writer; one op is one SET; a batch is that many SETs sent, then every answer awaited.",
	"W2: one op is one point: ZADD KEY ts \"ts:value\" and its journal entry; a batch of N points is 2N commands, but for \"rueidis grouped\", which sends one per key and one per server.",
	"Journal: the redfed Pipeline and the peers write each point's journal entry to \"journal{KEY}\", routed with KEY (hash tag for redfed and the Ring, KEY's server for hand sharding), since key routing cannot name a per-server journal through a Ring; the Recorder writes the real per-server journal, one entry per changed key per script call, scored by the server's clock; \"rueidis grouped\" writes that journal too, one entry per changed key per batch, scored by the client's clock.",
	"rueidis grouped (W2 only): the rueidis peer grouping each batch by key by hand, as the Recorder does: per server, one ZADD per key with all its points of the batch and one ZADD of the changed keys to the server's journal, sent with DoMulti, all servers at once.",
	"Recorder: default options, it batches by itself (a flush starts at 20,000 points or after 100ms and takes up to 300,000 under load, at most 10,000 points a script call), so batch is \"auto\"; its ratio is against the best peer at any batch size with as many writers, and its latency is one script call to one node, not a whole flush.",
	"Hand sharding: \"go-redis sharded\", \"rueidis sharded\" and \"rueidis grouped\" place each key with redfed's ring (Client.KeyToNode), one pipeline (go-redis) or DoMulti (rueidis, auto-pipelining on) per server, all servers at once; the Ring places keys with its own hash.",
	"CPU µs/op: server is used_cpu_sys + used_cpu_user of INFO cpu, summed over every server, client is the whole benchmark process's user + system time (getrusage), each read just before and just after a run, ÷ its ops; median over the rounds. Client CPU includes the garbage collections during a run, not that of the garbage left at its end, which the next run's forced collection clears outside its interval.",
	"allocs/op and B/op: the whole process's runtime.MemStats (Mallocs, TotalAlloc) over the runs ÷ ops, all rounds together; they include each peer's member string per point, made by the harness as a caller would.",
	"ops/s: median and min–max over the rounds; latency percentiles: every batch of every round together.",
}

// buildReport aggregates the samples into rows.
func buildReport(b *bench, env environment) report {
	cfg := b.cfg
	rep := report{
		Environment: env,
		Settings: settings{Rounds: cfg.rounds, W1Ops: cfg.w1Ops, W1Batches: cfg.w1Batches,
			Points: cfg.points, W2Batches: cfg.w2Batches, W2Writers: cfg.w2Writers},
		Smoke: cfg.smoke(),
		Notes: notes,
	}
	for _, c := range b.order {
		if ss := b.samples[c]; len(ss) > 0 {
			rep.Rows = append(rep.Rows, aggregate(c, ss))
		}
	}
	for i := range rep.Rows {
		r := &rep.Rows[i]
		if !r.Redfed {
			continue
		}
		best, sharded := 0.0, 0.0
		for _, p := range rep.Rows {
			if p.Redfed || p.Workload != r.Workload || p.Writers != r.Writers || (r.Batch != 0 && p.Batch != r.Batch) {
				continue
			}
			if p.OpsPerSecMedian > best {
				best, r.BestPeer = p.OpsPerSecMedian, p.Contender
			}
			if p.Contender == nameRaw {
				sharded = max(sharded, p.OpsPerSecMedian)
			}
		}
		if best > 0 {
			r.RatioToBestPeer = r.OpsPerSecMedian / best
		}
		if sharded > 0 {
			r.RatioToSharded = r.OpsPerSecMedian / sharded
		}
	}
	return rep
}

// aggregate computes a cell's figures from its samples.
func aggregate(c cell, ss []sample) row {
	r := row{Workload: c.workload, Batch: c.batch, Writers: c.writers, Contender: c.contender,
		Redfed: c.redfed, Unit: unit(c.workload), LatencyOf: "batch"}
	if c.contender == nameRecorder {
		r.LatencyOf = "script call"
	}
	var ops int64
	var mallocs, bytes uint64
	var latencies []time.Duration
	var serverCPU, clientCPU []float64
	for _, s := range ss {
		r.OpsPerSecRounds = append(r.OpsPerSecRounds, rate(s))
		serverCPU = append(serverCPU, perOp(s.serverCPU, s.ops))
		clientCPU = append(clientCPU, perOp(s.clientCPU, s.ops))
		ops += s.ops
		mallocs += s.mallocs
		bytes += s.bytes
		latencies = append(latencies, s.latencies...)
	}
	r.OpsPerSecMedian, r.OpsPerSecMin, r.OpsPerSecMax = median(r.OpsPerSecRounds)
	r.ServerCPUMicros, _, _ = median(serverCPU)
	r.ClientCPUMicros, _, _ = median(clientCPU)
	if ops > 0 {
		r.AllocsPerOp = float64(mallocs) / float64(ops)
		r.BytesPerOp = float64(bytes) / float64(ops)
	}
	slices.Sort(latencies)
	r.LatencyP50Micro = micros(percentile(latencies, 0.50))
	r.LatencyP99Micro = micros(percentile(latencies, 0.99))
	return r
}

// perOp returns a CPU time per op in microseconds, 0 for no ops.
func perOp(cpu time.Duration, ops int64) float64 {
	if ops <= 0 {
		return 0
	}
	return micros(cpu) / float64(ops)
}

// percentile returns the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// writeJSON prints the report as one indented JSON object.
func writeJSON(w io.Writer, rep any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeTable prints the report for people.
func writeTable(w io.Writer, rep report) error {
	env := rep.Environment
	origin := "started here"
	if !env.StartedServers {
		origin = "given with -addrs"
	}
	fmt.Fprintf(w, "%d redis-server %s (%s) · %s %s/%s · %d CPUs, GOMAXPROCS %d · %d rounds\n",
		env.Servers, env.RedisVersion, origin, env.GoVersion, env.OS, env.Arch, env.CPUs, env.GOMAXPROCS, rep.Settings.Rounds)
	if rep.Smoke {
		fmt.Fprintf(w, "SMOKE RUN: fewer than %d rounds; do not quote these figures.\n", minRounds)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tbatch\twriters\tcontender\tops/s\tmin–max\tserver µs/op\tclient µs/op\tallocs/op\tB/op\tp50\tp99\t÷ best peer\t÷ go-redis sharded\t")
	last := ""
	for _, r := range rep.Rows {
		group := fmt.Sprint(r.Workload, r.Writers, r.Batch)
		if last != "" && group != last {
			fmt.Fprintln(tw, strings.Repeat("\t", 14))
		}
		last = group
		ratio, toSharded := "", ""
		if r.BestPeer != "" {
			ratio = fmt.Sprintf("%.2f× %s", r.RatioToBestPeer, r.BestPeer)
		}
		if r.RatioToSharded > 0 {
			toSharded = fmt.Sprintf("%.2f×", r.RatioToSharded)
		}
		star := ""
		if r.LatencyOf != "batch" {
			star = "†"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s–%s\t%s\t%s\t%.1f\t%.0f\t%s%s\t%s%s\t%s\t%s\t\n",
			r.Workload, batchLabel(r.Batch), r.Writers, r.Contender,
			humanRate(r.OpsPerSecMedian), humanRate(r.OpsPerSecMin), humanRate(r.OpsPerSecMax),
			cpuLabel(r.ServerCPUMicros), cpuLabel(r.ClientCPUMicros), r.AllocsPerOp, r.BytesPerOp,
			humanMicros(r.LatencyP50Micro), star, humanMicros(r.LatencyP99Micro), star, ratio, toSharded)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "† latency of one script call to one node (see the Recorder note).")
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "- "+n)
	}
	return nil
}

// humanRate prints a rate with three significant digits.
func humanRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// cpuLabel prints a CPU time per op, in microseconds, "–" where it was
// not measured.
func cpuLabel(us float64) string {
	if us == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", us)
}

// humanMicros prints a duration given in microseconds.
func humanMicros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.0fµs", us)
}
