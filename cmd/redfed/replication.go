package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/syncer"
)

func newSyncCmd() *cobra.Command {
	var (
		local        []string
		listen       string
		opts         syncer.Options
		statusEvery  time.Duration
		verboseLevel bool
		allowNoPeers bool
	)
	cmd := &cobra.Command{
		Use:   "sync --local ADDR[,ADDR...]",
		Short: "Run the syncer: replicate the local servers' replica groups",
		Long: `Run the replication daemon for the local servers (host:port addresses from
the federation file): each pulls the changes of every other server of its
replica group through their journals and merges them, and anti-entropy
compares and repairs the keys changed (--anti-entropy) and every key
(--anti-entropy-full) now and then. One daemon runs per host. It
connects to the servers of its local servers' groups only, not to the
rest of the federation. It stops on Ctrl-C or SIGTERM.

A local server alone in its node has no peer. When none has one there is
nothing to replicate, and sync refuses to start (exit 2) unless
--allow-no-peers is given.

` + reloadHelp + ` The syncer's links follow the new nodes: a server
that joined a --local server's group is pulled from the cursor the local
server keeps, one that left is not; a --local server no longer in the
file is not replicated until a file has it again, and a file that keeps
none is refused.

With --metrics-listen it serves Prometheus metrics at /metrics, and
probes: /healthz (200 while the process runs) and /readyz (200 while
every node of a --local server has a server up, else 503 naming the
nodes with none; the other nodes are not this daemon's to replicate).`,
		Example: `  redfed sync --config fed.yaml --local db1:6379,db1:6380,db1:6381,db1:6382
  redfed sync --local db1:6379 --metrics-listen 127.0.0.1:9121`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGHUP is taken from the start: its default would end the
			// process, which systemd does not restart, and a reload that
			// comes while it starts is done once it runs.
			reloads, stopReloads := reloadRequests()
			defer stopReloads()
			survivePipes()
			if len(local) == 0 {
				return usagef("--local is required: the host:port of each server this daemon replicates")
			}
			if statusEvery < time.Second {
				return usagef("--status-every %v: want 1s or more", statusEvery)
			}
			for _, name := range []string{"anti-entropy", "anti-entropy-full"} {
				if opts.NoAntiEntropy && cmd.Flags().Changed(name) {
					return usagef("--%s with --no-anti-entropy: give one of them", name)
				}
			}
			for _, f := range []struct {
				name               string
				d, fallback, floor time.Duration
			}{
				{"poll", opts.PollInterval, syncer.DefaultPollInterval, syncer.MinPollInterval},
				{"overlap", opts.Overlap, syncer.DefaultOverlap, 0},
				{"anti-entropy", opts.AntiEntropyInterval, syncer.DefaultAntiEntropyInterval, syncer.MinAntiEntropyInterval},
				{"anti-entropy-full", opts.AntiEntropyFull, syncer.DefaultAntiEntropyFull, syncer.MinAntiEntropyInterval},
			} {
				switch {
				case f.d < 0:
					return usagef("--%s %v: want 0 or more (0 means the default, %v)", f.name, f.d, f.fallback)
				case f.d > 0 && f.d < f.floor:
					return usagef("--%s %v: want %v or more (0 means the default, %v)", f.name, f.d, f.floor, f.fallback)
				}
			}
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if verboseLevel {
				level = slog.LevelDebug
			}
			logger := newLogger(cmd, level)
			cfg.Options.Logger = logger
			if !verboseLevel { // go-redis's own lines too with --verbose
				cfg.Options.Logger = slog.New(withoutGoRedis{logger.Handler()})
			}
			opts.Logger = logger
			client, err := federated.New(localConfig(cfg, local))
			if err != nil {
				return err
			}
			defer client.Close()
			for i, addr := range local {
				// As the file spells it: DB1:6379 names db1:6379 there.
				if j := slices.IndexFunc(client.Servers(), func(s string) bool { return federated.SameServer(s, addr) }); j >= 0 {
					addr = client.Servers()[j]
					local[i] = addr
				}
				switch _, _, err := client.ReplicaGroup(addr); {
				case addr == "":
					return usagef("--local: an empty address in %q", strings.Join(local, ","))
				case err != nil:
					return usagef("--local %s: not a server of the federation file", addr)
				case slices.Contains(local[:i], addr):
					return usagef("--local %s: named twice", addr)
				}
			}
			if err := checkPeers(cfg, local, allowNoPeers, logger); err != nil {
				return err
			}
			s, err := syncer.NewFromClient(client, local, opts)
			if err != nil {
				return err
			}
			defer s.Close()
			r := &syncReloader{cmd: cmd, client: client, local: local, started: cfg.Options,
				allowNoPeers: allowNoPeers, logger: logger}
			return runSyncer(cmd.Context(), s, client, local, listen, statusEvery, logger, reloads, r.reload)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&local, "local", nil, "local servers to replicate, host:port, comma-separated")
	f.StringVar(&listen, "metrics-listen", "", "serve Prometheus metrics (/metrics) and health probes (/healthz, /readyz) on this address (off by default)")
	f.DurationVar(&opts.PollInterval, "poll", syncer.DefaultPollInterval, "pause between passes that found nothing")
	f.DurationVar(&opts.Overlap, "overlap", syncer.DefaultOverlap, "how far behind the peer's clock a writer journalling with its own clock (the Perl module) may be")
	f.DurationVar(&opts.AntiEntropyInterval, "anti-entropy", syncer.DefaultAntiEntropyInterval, "interval of anti-entropy runs, which compare the keys changed since the last full run")
	f.DurationVar(&opts.AntiEntropyFull, "anti-entropy-full", syncer.DefaultAntiEntropyFull, "interval of anti-entropy runs that compare every key")
	f.BoolVar(&opts.NoAntiEntropy, "no-anti-entropy", false, "run no anti-entropy (the passes only)")
	f.DurationVar(&statusEvery, "status-every", time.Minute, "interval of the status log line")
	f.BoolVar(&verboseLevel, "verbose", false, "log debug messages too")
	f.BoolVar(&allowNoPeers, "allow-no-peers", false, "run even when no --local server has a peer to replicate with (until a reload gives one)")
	return cmd
}

// checkPeers refuses a syncer with nothing to do: every local server alone
// in its node, so no link to pull through; allow runs it anyway (a file
// that will gain replicas, reloaded with SIGHUP). A local server without
// a peer among others with one is logged.
func checkPeers(cfg federated.Config, local []string, allow bool, logger *slog.Logger) error {
	var alone []string
	for _, addr := range local {
		if node, size, ok := nodeOfServer(cfg, addr); ok && size < 2 {
			alone = append(alone, addr+" (node "+node+")")
		}
	}
	switch {
	case len(alone) < len(local):
		for _, a := range alone {
			logger.Warn("local server has no peer: nothing to replicate for it", "server", a)
		}
	case !allow:
		return usagef("--local: no server has a peer to replicate with: each is alone in its node (%s); "+
			"give the nodes several addresses (redfed config init --replicas 2), or pass --allow-no-peers to run anyway",
			strings.Join(alone, ", "))
	default:
		logger.Warn("no local server has a peer: the syncer waits for a reload that gives one", "servers", strings.Join(alone, ", "))
	}
	return nil
}

// localConfig returns cfg with only the nodes that hold one of the local
// servers, those a sync daemon replicates: a client of every node held a
// connection to every server of the fleet and sent each a PING a second
// (2,400 of each a daemon at 300 hosts of 8 servers), and logged the
// failures of servers the daemon has nothing to do with. It returns cfg as
// it is when it holds none of them, for the check of --local to say so.
func localConfig(cfg federated.Config, local []string) federated.Config {
	isLocal := func(addr string) bool {
		return slices.ContainsFunc(local, func(l string) bool { return federated.SameServer(addr, l) })
	}
	nodes := make(map[string]federated.Node)
	for name, n := range cfg.Nodes {
		if slices.ContainsFunc(n.Servers(), isLocal) {
			nodes[name] = n
		}
	}
	if len(nodes) > 0 {
		cfg.Nodes = nodes
	}
	return cfg
}

// runSyncer runs s until ctx ends, serving its metrics and the health of
// client if asked, and logging its lag now and then; reload applies each
// reload request.
func runSyncer(ctx context.Context, s *syncer.Syncer, client *federated.Client, local []string, listen string, every time.Duration, logger *slog.Logger,
	reloads <-chan os.Signal, reload func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if listen != "" {
		reg := syncerRegistry(s, readBuildVersion())
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return usagef("--metrics-listen %s: %v", listen, err)
		}
		// Only the paths it serves: anything else is 404, so that a
		// mistyped probe fails instead of reading the metrics as "ok".
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		})
		handleHealth(mux, localNodes{c: client, local: local})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = srv.Serve(ln)
		}()
		defer func() {
			_ = srv.Close()
			<-served
		}()
		logger.Info("serving Prometheus metrics", "addr", ln.Addr().String())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, p := range s.Stats().Peers {
					logger.Info("syncer status", "local", p.Local, "peer", p.Peer, "lag", p.Lag.Round(time.Millisecond),
						"p99", p.LagP99.Round(time.Millisecond), "added", p.Added, "errors", p.Errors)
				}
			}
		}
	}()
	logger.Info("syncer running", "links", len(s.Stats().Peers))
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	var err error
	for running := true; running; {
		select {
		case err = <-ran:
			running = false
		case <-reloads:
			reload()
		}
	}
	cancel() // Run failed: the status log stops too
	<-done
	if errors.Is(err, context.Canceled) {
		logger.Info("syncer stopped")
		return nil
	}
	return err
}

func newCheckCmd() *cobra.Command {
	var (
		nodes  []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Compare the replicas of every replica group",
		Long: `Compare every metric key of each replica group across its servers, by
cardinality and a digest computed on each server. Exit 0 when every group
agrees, 1 when a key differs, 3 when a server could not be read and no
key was found to differ (the answer is not known). A federation whose
nodes have one server each has no replica group: check says so, and
exits 0.`,
		Example: `  redfed check --config fed.yaml
  redfed check --node redis_1 --json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return checkOrRepair(cmd, nodes, asJSON, false)
		},
	}
	cmd.Flags().StringSliceVar(&nodes, "node", nil, "check only these nodes (default every replica group)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newRepairCmd() *cobra.Command {
	var (
		nodes  []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Give every replica the members the others hold",
		Long: `Compare the replicas like check, then give every server of a group the
members it lacks of each key that differs (the union of the group). Each
key that gains members is journalled. Exit 0 when every group was
repaired, 1 when something could not be.`,
		Example: `  redfed repair --config fed.yaml
  redfed repair --node redis_3 --json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return checkOrRepair(cmd, nodes, asJSON, true)
		},
	}
	cmd.Flags().StringSliceVar(&nodes, "node", nil, "repair only these nodes (default every replica group)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// errDiverged is the exit-1 result of a check that found differences.
var errDiverged = errors.New("replicas differ")

func checkOrRepair(cmd *cobra.Command, nodes []string, asJSON, repair bool) error {
	if cmd.Flags().Changed("node") && (len(nodes) == 0 || slices.Contains(nodes, "")) {
		return usagef("--node: empty: name a node, or leave the flag out for every replica group")
	}
	client, err := newClient(cmd)
	if err != nil {
		return err
	}
	defer client.Close()
	for i, n := range nodes {
		if _, err := client.AllServers(n); err != nil {
			return usagef("--node %s: %w", n, err)
		}
		if slices.Contains(nodes[:i], n) {
			// The group would be read, counted and repaired twice.
			return usagef("--node %s: named twice", n)
		}
	}
	if len(nodes) == 0 && !hasReplicaGroup(client) {
		verb := map[bool]string{false: "compare", true: "repair"}[repair]
		if asJSON {
			return writeCheckJSON(cmd.OutOrStdout(), metrics.CheckReport{}, repair)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "no replica groups: every node has one server, nothing to %s\n", verb)
		return nil
	}
	con := consoleOf(cmd.ErrOrStderr())
	var done, total atomic.Int64
	var group atomic.Value
	group.Store("")
	stop := startProgress(con, progressInterval, func(elapsed time.Duration) string {
		return fmt.Sprintf("%s %s: %d/%d keys, %s", map[bool]string{false: "checking", true: "repairing"}[repair],
			group.Load(), done.Load(), total.Load(), elapsed.Round(time.Second))
	})
	opts := metrics.CheckOptions{Nodes: nodes, Progress: func(node string, d, t int) {
		group.Store(node)
		done.Store(int64(d))
		total.Store(int64(t))
	}}
	var report metrics.CheckReport
	if repair {
		report, err = storeOf(client).Repair(cmd.Context(), opts)
	} else {
		report, err = storeOf(client).Check(cmd.Context(), opts)
	}
	stop()
	if asJSON {
		if jerr := writeCheckJSON(cmd.OutOrStdout(), report, repair); jerr != nil {
			return jerr
		}
	} else {
		writeCheckTable(cmd.OutOrStdout(), report, repair)
	}
	if ctxErr := cmd.Context().Err(); err != nil && ctxErr != nil {
		// Ctrl-C or SIGTERM: the servers' errors are the interrupt's.
		return fmt.Errorf("%s interrupted before it was done: %w", map[bool]string{false: "check", true: "repair"}[repair], ctxErr)
	}
	switch {
	case err != nil && !repair && report.Divergent > 0:
		return fmt.Errorf("%w: %d of %s; and %w", errDiverged, report.Divergent, counted(report.Keys, "key"), err)
	case err != nil && !repair:
		return unknownError{err}
	case err != nil:
		return err
	case repair && report.Repaired < report.Divergent:
		return fmt.Errorf("%d of %s could not be repaired", report.Divergent-report.Repaired, counted(report.Divergent, "divergent key"))
	case !repair && !report.OK() && report.Divergent == 0 && behind(report):
		return fmt.Errorf("%w: a server is behind its group's retention horizon", errDiverged)
	case !repair && !report.OK():
		return fmt.Errorf("%w: %d of %s", errDiverged, report.Divergent, counted(report.Keys, "key"))
	}
	return nil
}

// checkJSON is the --json output of check and repair.
type checkJSON struct {
	OK        bool             `json:"ok"`
	Keys      int              `json:"keys"`
	Divergent int              `json:"divergent"`
	Repaired  *int             `json:"repaired,omitempty"` // repair only
	Added     *int64           `json:"added,omitempty"`    // repair only
	Groups    []checkGroupJSON `json:"groups"`
}

// checkGroupJSON is a replica group in checkJSON.
type checkGroupJSON struct {
	Node      string        `json:"node"`
	Servers   []string      `json:"servers"`
	Keys      int           `json:"keys"`
	Divergent int           `json:"divergent"`
	Diffs     []keyDiffJSON `json:"diffs,omitempty"` // the first divergent keys
	Repaired  int           `json:"repaired,omitempty"`
	Added     int64         `json:"added,omitempty"`
	Error     string        `json:"error,omitempty"` // why the group could not be fully checked
	// Behind holds the horizon of each server behind its group's ("" for
	// none): it missed a retention drop; repair raises it.
	Behind  map[string]string `json:"behind,omitempty"`
	Dropped int64             `json:"dropped,omitempty"` // repair: keys of dropped periods removed
}

// keyDiffJSON is a divergent key in checkGroupJSON: its cardinality on
// each server that could be read.
type keyDiffJSON struct {
	Key   string            `json:"key"`
	Cards map[string]int64  `json:"cards"`
	Types map[string]string `json:"types,omitempty"` // servers where the key is not a sorted set
}

func writeCheckJSON(w io.Writer, r metrics.CheckReport, repair bool) error {
	out := checkJSON{OK: r.OK(), Keys: r.Keys, Divergent: r.Divergent, Groups: []checkGroupJSON{}}
	if repair {
		out.Repaired, out.Added = &r.Repaired, &r.Added
	}
	for _, g := range r.Groups {
		og := checkGroupJSON{Node: g.Node, Servers: g.Servers, Keys: g.Keys, Divergent: g.Divergent,
			Repaired: g.Repaired, Added: g.Added, Error: g.Error, Behind: g.Behind, Dropped: g.Dropped}
		for _, d := range g.Diffs {
			og.Diffs = append(og.Diffs, keyDiffJSON{Key: d.Key, Cards: d.Cards, Types: d.Types})
		}
		out.Groups = append(out.Groups, og)
	}
	return json.NewEncoder(w).Encode(out)
}

func writeCheckTable(w io.Writer, r metrics.CheckReport, repair bool) {
	for _, g := range r.Groups {
		state := "agree"
		switch {
		case g.Error != "":
			state = "error: " + g.Error
		case g.Divergent == 1:
			state = "1 key differs"
		case g.Divergent > 0:
			state = fmt.Sprintf("%d keys differ", g.Divergent)
		}
		keys := "keys"
		if g.Keys == 1 {
			keys = "key"
		}
		fmt.Fprintf(w, "%-12s %-48s %7d %-4s  %s\n", g.Node, strings.Join(g.Servers, ","), g.Keys, keys, state)
		for _, d := range g.Diffs[:min(len(g.Diffs), 10)] {
			var cards []string
			for _, addr := range g.Servers {
				if t := d.Types[addr]; t != "" {
					cards = append(cards, fmt.Sprintf("%s=(a %s, not a sorted set)", addr, t))
				} else if n, ok := d.Cards[addr]; ok {
					cards = append(cards, fmt.Sprintf("%s=%d", addr, n))
				}
			}
			fmt.Fprintf(w, "    %s  %s\n", printable(d.Key), strings.Join(cards, " "))
		}
		if len(g.Diffs) > 10 {
			fmt.Fprintf(w, "    … %d more\n", g.Divergent-10)
		}
		if repair && g.Divergent > 0 {
			fmt.Fprintf(w, "    repaired %s, %s added\n", counted(g.Repaired, "key"), counted(g.Added, "member"))
		}
		for _, addr := range g.Servers {
			if h, ok := g.Behind[addr]; ok {
				fmt.Fprintf(w, "    %s missed a retention drop: its horizon is %s, the group's later; it keeps dropped periods\n",
					addr, cmp.Or(h, "none"))
			}
		}
		if repair && len(g.Behind) > 0 {
			fmt.Fprintf(w, "    raised to the group's horizon, %s of dropped periods removed\n", counted(g.Dropped, "key"))
		}
	}
	verdict := "every replica group agrees"
	if !r.OK() && r.Divergent == 0 && behind(r) {
		verdict = "a server is behind its group's retention horizon"
	} else if !r.OK() {
		verb := "differ"
		if r.Divergent == 1 {
			verb = "differs"
		}
		verdict = fmt.Sprintf("%d of %s %s", r.Divergent, counted(r.Keys, "key"), verb)
	}
	if repair {
		verdict = fmt.Sprintf("%d of %s repaired, %s added", r.Repaired, counted(r.Divergent, "key"), counted(r.Added, "member"))
	}
	fmt.Fprintf(w, "%s, %s: %s\n", counted(len(r.Groups), "group"), counted(r.Keys, "key"), verdict)
}

// behind reports whether a server of a group was behind its group's
// retention horizon.
func behind(r metrics.CheckReport) bool {
	return slices.ContainsFunc(r.Groups, func(g metrics.GroupReport) bool { return len(g.Behind) > 0 })
}

// hasReplicaGroup reports whether a node of the client has more than one
// server: something for check, repair and sync to compare or copy.
func hasReplicaGroup(c *federated.Client) bool {
	for _, name := range c.Nodes() {
		if servers, _ := c.AllServers(name); len(servers) > 1 {
			return true
		}
	}
	return false
}

// counted returns "1 key" or "n keys".
func counted[N ~int | ~int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
