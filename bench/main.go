// Command bench compares redfed with its peers on the same redis-server
// processes in one run: workload W1 (batches of SETs, the Perl module's own
// test) and W2 (metric points with their journal entries), through a redfed
// Pipeline and Recorder, go-redis's Ring, plain go-redis clients sharded by
// hand and rueidis clients sharded by hand, as they come and, on W2,
// grouping each batch by key. Contenders alternate round by round and each
// run starts on empty servers; each run reports its rate and the CPU time
// the servers and the process spent per op. BENCHMARKS.md says how to run
// it; `go run . -h` lists the flags.
//
// It is a module of its own so that the library never depends on rueidis.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "curves" {
		cfg, err := parseCurvesFlags(os.Args[2:], os.Stderr)
		exit("bench curves", err, func(ctx context.Context) error { return runCurves(ctx, cfg, os.Stdout, os.Stderr) })
		return
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	exit("bench", err, func(ctx context.Context) error { return run(ctx, cfg, os.Stdout, os.Stderr) })
}

// exit runs fn unless parsing the flags failed or asked for help, and exits
// with 2 for bad flags and 1 when fn fails. Ctrl-C cancels fn's context; the
// servers are stopped on the way out.
func exit(name string, flagErr error, fn func(ctx context.Context) error) {
	if errors.Is(flagErr, flag.ErrHelp) {
		return
	}
	if flagErr != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, flagErr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := fn(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// run starts or connects to the servers, runs every round and prints the
// report on out, progress on progress.
func run(ctx context.Context, cfg config, out, progress io.Writer) error {
	var f *fleet
	var err error
	if cfg.addrs != nil {
		f, err = useFleet(ctx, cfg.addrs, cfg.force)
	} else {
		fmt.Fprintf(progress, "starting %d redis-server processes\n", cfg.servers)
		f, err = startFleet(ctx, cfg.servers)
	}
	if err != nil {
		return err
	}
	defer f.stop()

	env, err := newEnvironment(ctx, f)
	if err != nil {
		return err
	}
	c, err := newClients(f.addrs)
	if err != nil {
		return err
	}
	defer c.close()

	b := &bench{cfg: cfg, fleet: f, clients: c, progress: progress}
	if err := b.run(ctx); err != nil {
		return err
	}
	rep := buildReport(b, env)
	if cfg.json {
		return writeJSON(out, rep)
	}
	return writeTable(out, rep)
}
