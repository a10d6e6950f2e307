package main

import (
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/redfed/federated"
)

// reloadHelp is what the help of sync and serve says of SIGHUP.
const reloadHelp = `On SIGHUP it reads the federation file again and applies its nodes
without a restart, in one step: nodes added, removed, renamed, merged,
or given other servers (a node given other servers keeps its keys;
nodes added, removed or renamed move keys to other nodes, not what was
written to them, and the reload warns so). A file that does not load
is logged, with its line, and the running configuration kept. Options
(timeouts, password, metrics) take effect at a restart; a reload that
finds them changed says so.`

// reloadRequests returns a channel that receives SIGHUP, the request to
// read the federation file again, and the function that stops that. Until
// then SIGHUP no longer ends the process.
func reloadRequests() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// survivePipes keeps a daemon running when the reader of its standard
// output or error goes away (a "| tee" or "| logger" that exits or
// restarts), for the rest of the process: its last words, an error that
// run prints as the command returns, included. Go ends a program that
// writes to such a broken pipe unless it takes SIGPIPE: serve ended at
// its next log line, without writing the lines it had received. Taken,
// the write fails with EPIPE, and that log line is lost.
func survivePipes() {
	pipeOnce.Do(func() { signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) })
}

var pipeOnce sync.Once

// nodeChanges are the differences between a client's nodes and a
// configuration's, by node name, sorted.
type nodeChanges struct {
	added, removed, changed []string
}

func (c nodeChanges) none() bool {
	return len(c.added)+len(c.removed)+len(c.changed) == 0
}

// logAttrs describes the changes for a log line.
func (c nodeChanges) logAttrs() []any {
	return []any{"added", c.added, "removed", c.removed, "changed", c.changed}
}

// logApplied logs the changes made: a node added or removed (renamed
// too) moves keys between nodes, and what was written to them stays
// where it was, which the log says.
func (c nodeChanges) logApplied(logger *slog.Logger) {
	logger.Info("federation file reloaded", c.logAttrs()...)
	if len(c.added) > 0 || len(c.removed) > 0 {
		logger.Warn("reload: nodes added or removed move keys to other nodes; what was written to a key before stays on the servers that held it",
			"added", c.added, "removed", c.removed)
	}
}

// diffNodes compares the nodes of client with those of cfg: a node whose
// servers differ, in any way or order, is changed.
func diffNodes(client *federated.Client, cfg federated.Config) nodeChanges {
	var ch nodeChanges
	running := client.Nodes()
	for _, name := range running {
		n, ok := cfg.Nodes[name]
		servers, _ := client.AllServers(name)
		switch {
		case !ok:
			ch.removed = append(ch.removed, name)
		case !slices.Equal(servers, n.Servers()):
			ch.changed = append(ch.changed, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Nodes)) {
		if !slices.Contains(running, name) {
			ch.added = append(ch.added, name)
		}
	}
	return ch
}

// loadReload reads the federation file again for a reload: the
// configuration and how its nodes differ from the client's, or false
// where it is refused or changes no node, which it logs; keep, when set,
// picks the nodes the client is to have. Options that differ from started,
// those the process started with, are logged as waiting for a restart.
func loadReload(cmd *cobra.Command, client *federated.Client, logger *slog.Logger, started federated.Options,
	keep func(federated.Config) federated.Config) (federated.Config, nodeChanges, bool) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		logger.Error("reload refused: the running configuration is kept", "err", err)
		return cfg, nodeChanges{}, false
	}
	if keep != nil {
		cfg = keep(cfg)
	}
	if optionsDiffer(started, cfg.Options) {
		logger.Warn("reload: the options in the federation file changed; they take effect at a restart")
	}
	ch := diffNodes(client, cfg)
	if ch.none() {
		logger.Info("reload: no node changed")
		return cfg, ch, false
	}
	return cfg, ch, true
}

// optionsDiffer reports whether two files' options differ, the logger
// that the command sets aside.
func optionsDiffer(a, b federated.Options) bool {
	a.Logger, b.Logger = nil, nil
	return !reflect.DeepEqual(a, b)
}

// reloadNodes reads the federation file again and applies its nodes to
// client, logging what changed, or why nothing did; started are the
// options the process started with.
func reloadNodes(cmd *cobra.Command, client *federated.Client, logger *slog.Logger, started federated.Options) {
	cfg, ch, ok := loadReload(cmd, client, logger, started, nil)
	if !ok {
		return
	}
	if err := client.SetNodes(cfg.Nodes); err != nil { // all of them in one step, or none
		logger.Error("reload refused: the running configuration is kept", append(ch.logAttrs(), "err", err)...)
		return
	}
	ch.logApplied(logger)
}

// syncReloader reloads the federation file of a running sync.
type syncReloader struct {
	cmd          *cobra.Command
	client       *federated.Client
	local        []string // the --local servers
	started      federated.Options
	allowNoPeers bool
	logger       *slog.Logger
}

// reload reads the federation file again and applies its nodes to the
// client, whose changes the running syncer's links follow; it logs what
// changed, or why nothing did. A file that keeps no --local server is
// refused, as is one that leaves none a peer, unless --allow-no-peers. A
// --local server no longer in the file is not replicated until a file
// has it again.
func (r *syncReloader) reload() {
	cfg, ch, ok := loadReload(r.cmd, r.client, r.logger, r.started,
		func(cfg federated.Config) federated.Config { return localConfig(cfg, r.local) })
	if !ok {
		return
	}
	var local, gone []string
	for _, addr := range r.local {
		if _, _, found := nodeOfServer(cfg, addr); found {
			local = append(local, addr)
		} else {
			gone = append(gone, addr)
		}
	}
	if len(local) == 0 {
		r.logger.Error("reload refused: the running configuration is kept",
			"err", "no --local server is in the federation file", "local", r.local)
		return
	}
	if err := checkPeers(cfg, local, r.allowNoPeers, r.logger); err != nil {
		r.logger.Error("reload refused: the running configuration is kept", "err", err)
		return
	}
	if err := r.client.SetNodes(cfg.Nodes); err != nil { // all of them in one step, or none
		r.logger.Error("reload refused: the running configuration is kept", append(ch.logAttrs(), "err", err)...)
		return
	}
	ch.logApplied(r.logger)
	if len(gone) > 0 {
		r.logger.Warn("local servers no longer in the federation file are not replicated", "servers", gone)
	}
}

// nodeOfServer returns the node of cfg that has the server addr, however
// either spells it (federated.SameServer), and the number of its servers.
func nodeOfServer(cfg federated.Config, addr string) (node string, size int, ok bool) {
	for name, n := range cfg.Nodes {
		if slices.ContainsFunc(n.Servers(), func(s string) bool { return federated.SameServer(s, addr) }) {
			return name, len(n.Servers()), true
		}
	}
	return "", 0, false
}
