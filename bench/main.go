// Command bench compares redfed with its peers on the same redis-server
// processes in one run: workload W1 (batches of SETs, the Perl module's own
// test) and W2 (metric points with their journal entries), through a redfed
// Pipeline and Recorder, go-redis's Ring, plain go-redis clients sharded by
// hand and rueidis clients sharded by hand. Contenders alternate round by
// round and each run starts on empty servers. BENCHMARKS.md says how to run
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
	"runtime"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "curves" {
		curvesMain(os.Args[2:])
		return
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	// Ctrl-C cancels the run; the servers are stopped on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// curvesMain runs the curves subcommand.
func curvesMain(args []string) {
	cfg, err := parseCurvesFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench curves:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = runCurves(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench curves:", err)
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

	version, err := f.version(ctx)
	if err != nil {
		return err
	}
	env := environment{
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		RedisVersion: version, Servers: len(f.addrs), StartedServers: cfg.addrs == nil,
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
