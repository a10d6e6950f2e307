package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// minRounds is the fewest rounds whose figures are worth quoting; fewer
// make a smoke run, which the report marks as such.
const minRounds = 5

// config holds the command line, validated.
type config struct {
	servers   int      // redis-server processes to start, without -addrs
	addrs     []string // servers to use instead of starting them
	force     bool     // use -addrs servers that already hold keys
	rounds    int
	w1Ops     int   // SETs per W1 run
	w1Batches []int // SETs per W1 batch
	points    int64 // points per W2 run
	w2Batches []int // points per W2 batch
	w2Writers []int // concurrent W2 writers
	json      bool
}

// parseFlags reads the command line. Every error names the flag.
func parseFlags(args []string, usageOut io.Writer) (config, error) {
	var cfg config
	var addrs, w1Batches, w2Batches, w2Writers string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.Usage = func() {
		fmt.Fprint(usageOut, `Usage: go run . [flags]

Compares redfed with go-redis (Ring, hand-sharded pipelines) and rueidis on
the same redis-server processes in one run, contenders alternating round by
round, each run on freshly flushed servers. Each contender's rate is
reported with the CPU time per op of the servers (INFO cpu) and of this
process (getrusage) over the same runs.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.servers, "servers", 8, "redis-server processes to start on free 127.0.0.1 ports")
	fs.StringVar(&addrs, "addrs", "", "use these servers (host:port,...) instead of starting any; EVERY DATABASE OF THEM IS ERASED (FLUSHALL)")
	fs.BoolVar(&cfg.force, "force", false, "with -addrs, erase servers that already hold keys")
	fs.IntVar(&cfg.rounds, "rounds", minRounds, fmt.Sprintf("rounds; each runs every contender once per setting (fewer than %d is a smoke run)", minRounds))
	fs.IntVar(&cfg.w1Ops, "w1-ops", 200000, "SETs per W1 run")
	fs.StringVar(&w1Batches, "w1-batches", "20,100", "W1 batch sizes, in SETs")
	fs.Int64Var(&cfg.points, "points", 500000, "points per W2 run")
	fs.StringVar(&w2Batches, "w2-batches", "100,1000", "W2 batch sizes, in points (two commands each)")
	fs.StringVar(&w2Writers, "w2-writers", "1,4,16", "W2 concurrent writers")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object instead of the table")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var err error
	if cfg.w1Batches, err = parseCounts("w1-batches", w1Batches); err != nil {
		return cfg, err
	}
	if cfg.w2Batches, err = parseCounts("w2-batches", w2Batches); err != nil {
		return cfg, err
	}
	if cfg.w2Writers, err = parseCounts("w2-writers", w2Writers); err != nil {
		return cfg, err
	}
	if addrs != "" {
		if cfg.addrs, err = parseAddrs(addrs); err != nil {
			return cfg, err
		}
	}
	switch {
	case cfg.servers < 1:
		return cfg, fmt.Errorf("-servers %d: want at least 1", cfg.servers)
	case cfg.rounds < 1:
		return cfg, fmt.Errorf("-rounds %d: want at least 1 (%d for figures to quote)", cfg.rounds, minRounds)
	case cfg.w1Ops < 1:
		return cfg, fmt.Errorf("-w1-ops %d: want at least 1", cfg.w1Ops)
	case cfg.points < 1:
		return cfg, fmt.Errorf("-points %d: want at least 1", cfg.points)
	case cfg.force && cfg.addrs == nil:
		return cfg, errors.New("-force: only meaningful with -addrs")
	}
	return cfg, nil
}

// smoke reports whether the run has too few rounds to quote.
func (c config) smoke() bool { return c.rounds < minRounds }

// parseCounts reads a comma-separated list of positive integers.
func parseCounts(name, s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s %q: %q is not a positive integer", name, s, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseAddrs reads a comma-separated list of host:port, without duplicates.
func parseAddrs(s string) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	for f := range strings.SplitSeq(s, ",") {
		addr := strings.TrimSpace(f)
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("-addrs %q: %q is not host:port", s, addr)
		}
		if seen[addr] {
			return nil, fmt.Errorf("-addrs %q: %s is listed twice", s, addr)
		}
		seen[addr] = true
		out = append(out, addr)
	}
	return out, nil
}
