package main

import (
	"fmt"
	"strconv"
	"time"
)

// The workloads' data, shared by every contender so that each sends the
// same keys, members and values.

// day is the period every key of the benchmark belongs to.
var day = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

const (
	// universe is the number of keys of each workload: W1's keys and W2's
	// series (500 hosts × 20 metrics).
	universe = 10000
	w2Hosts  = 500

	// w1Value is the value of every W1 SET.
	w1Value = "42"
)

// w1Keys returns W1's keys, "2026-11-25:webI.sfo:mJ" as in
// pipeline_bench_test.go; SET n goes to key n mod universe.
func w1Keys() []string {
	keys := make([]string, universe)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:web%d.sfo:m%d", day.Format(time.DateOnly), i/100, i%100)
	}
	return keys
}

// w2Data is W2's universe: series k is host k mod 500 and metric k ÷ 500,
// key "2026-11-25:$host:$metric", as recorder_bench_test.go lays it out.
type w2Data struct {
	hosts    []string
	metrics  []string
	keys     []string // the series' keys
	journals []string // "journal{KEY}": each series' own journal set
}

func newW2Data() *w2Data {
	d := &w2Data{keys: make([]string, universe), journals: make([]string, universe)}
	for i := range w2Hosts {
		d.hosts = append(d.hosts, fmt.Sprintf("web%d.sfo", i))
	}
	for i := range universe / w2Hosts {
		d.metrics = append(d.metrics, fmt.Sprintf("cpu.m%d", i))
	}
	for k := range d.keys {
		d.keys[k] = day.Format(time.DateOnly) + ":" + d.hosts[k%w2Hosts] + ":" + d.metrics[k/w2Hosts]
		d.journals[k] = "journal{" + d.keys[k] + "}"
	}
	return d
}

// w2Point returns the series, the time (Unix seconds) and the value of the
// n-th point. The series take turns and each is sampled once a second, so
// every point is new to its key; whole seconds keep the scores integers,
// which the servers compare without parsing (see BENCHMARKS.md).
func w2Point(n int64) (series int64, sec int64, value float64) {
	return n % universe, day.Unix() + n/universe%86400, float64(n % 1000)
}

// appendMember appends the member "ts:value" of a point with whole-number
// time and value, byte for byte what the Recorder writes for it.
func appendMember(dst []byte, sec int64, value float64) []byte {
	dst = strconv.AppendInt(dst, sec, 10)
	return strconv.AppendInt(append(dst, ':'), int64(value), 10)
}

// journalScore is the score of a journal entry written now: the client's
// clock, where the Recorder's script uses the server's.
func journalScore() float64 {
	return float64(time.Now().UnixMicro()) / 1e6
}

// expectedMembers returns how many members series 0 holds after points
// points: one per point n with n mod universe = 0.
func expectedMembers(points int64) int64 {
	return (points + universe - 1) / universe
}
