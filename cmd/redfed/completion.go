package main

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redfed/federated"
	"github.com/redfed/federated/cmd/redfed/internal/natural"
)

// completionTimeout bounds the reads of a shell completion: a server that
// is down or does not answer costs at most this long at a <TAB> (and half
// as long again to close its connections), and the names the others
// returned are still offered.
const completionTimeout = time.Second

// addCompletions teaches the shell completion of root's commands (redfed
// completion bash|zsh|fish) the names of the federation: hosts and their
// metrics from the servers' journals, nodes and servers from the
// federation file, metric keys for route.
func addCompletions(root *cobra.Command) {
	_ = root.MarkPersistentFlagFilename("config", "yaml", "yml", "json")
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions(
		[]cobra.Completion{logFormatText, logFormatJSON}, cobra.ShellCompDirectiveNoFileComp))
	for _, cmd := range root.Commands() {
		switch cmd.Name() {
		case "query", "record", "metrics":
			cmd.ValidArgsFunction = completeSeries
		case "route":
			cmd.ValidArgsFunction = completeKey
		case "check", "repair":
			_ = cmd.RegisterFlagCompletionFunc("node", completeNodes)
		case "sync":
			_ = cmd.RegisterFlagCompletionFunc("local", completeLocal)
		}
		for _, name := range []string{"from", "to", "since", "time"} {
			if cmd.Flags().Lookup(name) != nil {
				_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(timeArgExamples, cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveKeepOrder))
			}
		}
	}
}

// timeArgExamples are offered for a time flag: the forms parseTimeArg
// takes that read the same on any day.
var timeArgExamples = []cobra.Completion{
	cobra.CompletionWithDesc("now", "the time of the command"),
	cobra.CompletionWithDesc("1h", "an hour ago"),
	cobra.CompletionWithDesc("6h", "6 hours ago"),
	cobra.CompletionWithDesc("1d", "a day ago"),
	cobra.CompletionWithDesc("7d", "7 days ago"),
}

// completionConfig loads the federation file of cmd's flags. An error is
// for the completion's debug log only: the shell shows nothing.
func completionConfig(cmd *cobra.Command) (federated.Config, bool) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		cobra.CompDebugln("redfed completion: "+err.Error(), false)
		return cfg, false
	}
	return cfg, true
}

// withCompletionClient runs f with a client of the federation of cmd's
// flags and a context that ends after completionTimeout. The client logs
// nothing: a server down is no news at a <TAB>, and the shells' scripts
// drop standard error; failures go to cobra's completion debug log.
func withCompletionClient(cmd *cobra.Command, f func(ctx context.Context, c *federated.Client) ([]cobra.Completion, cobra.ShellCompDirective)) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg, ok := completionConfig(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cfg.Options.Logger = slog.New(slog.DiscardHandler)
	// A server that accepts connections but does not answer holds the
	// client's probe of it, and so its Close, for a command timeout: half
	// the completion's keeps the whole under 1.5 times completionTimeout.
	cfg.Options.CommandTimeout = completionTimeout / 2
	cfg.Options.DialTimeout = completionTimeout / 2
	c, err := federated.New(cfg)
	if err != nil {
		cobra.CompDebugln("redfed completion: "+err.Error(), false)
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	return f(ctx, c)
}

// hostNames returns the hosts written to in the last week that start with
// prefix, in natural order; when a server fails, those of the others.
func hostNames(ctx context.Context, c *federated.Client, prefix string) []string {
	hosts, err := storeOf(c).Hosts(ctx, time.Now().Add(-defaultListSince))
	if err != nil {
		cobra.CompDebugln("redfed completion: hosts: "+err.Error(), false)
	}
	return withPrefix(hosts, prefix)
}

// metricNames returns host's metrics written to in the last week that
// start with prefix, in natural order.
func metricNames(ctx context.Context, c *federated.Client, host, prefix string) []string {
	names, err := storeOf(c).Metrics(ctx, host, time.Now().Add(-defaultListSince))
	if err != nil {
		cobra.CompDebugln("redfed completion: metrics: "+err.Error(), false)
	}
	return withPrefix(names, prefix)
}

// withPrefix returns the names that start with prefix, in natural order.
func withPrefix(names []string, prefix string) []string {
	names = slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, prefix) })
	slices.SortFunc(names, natural.Compare)
	return names
}

// completeSeries completes HOST METRIC: hosts first, then the metrics of
// the host given. metrics takes the HOST alone.
func completeSeries(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 1 || (len(args) == 1 && cmd.Name() == "metrics") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return withCompletionClient(cmd, func(ctx context.Context, c *federated.Client) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return hostNames(ctx, c, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return metricNames(ctx, c, args[0], toComplete), cobra.ShellCompDirectiveNoFileComp
	})
}

// completeKey completes a metric key of the current period, a part at a
// time: "$period:", then "$period:$host:", then "$period:$host:$metric".
func completeKey(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return withCompletionClient(cmd, func(ctx context.Context, c *federated.Client) ([]cobra.Completion, cobra.ShellCompDirective) {
		const partial = cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		parts := strings.SplitN(toComplete, ":", 3)
		var out []cobra.Completion
		switch len(parts) {
		case 1:
			key, err := c.MetricKey(time.Now(), "host", "metric")
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			period, _, _ := strings.Cut(key, ":") // a period holds no ':'
			if strings.HasPrefix(period, toComplete) {
				out = append(out, period+":")
			}
			return out, partial
		case 2:
			for _, h := range hostNames(ctx, c, parts[1]) {
				out = append(out, parts[0]+":"+h+":")
			}
			return out, partial
		}
		for _, m := range metricNames(ctx, c, parts[1], parts[2]) {
			out = append(out, parts[0]+":"+parts[1]+":"+m)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}

// completeNodes offers the nodes of the federation file, with their
// servers as descriptions. It contacts no server.
func completeNodes(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg, ok := completionConfig(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, name := range withPrefix(nodeNames(cfg), toComplete) {
		n := cfg.Nodes[name]
		out = append(out, cobra.CompletionWithDesc(name, strings.Join(n.Servers(), ",")))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeLocal offers the servers of the federation file for sync's
// --local, a comma-separated list: after the servers already given.
func completeLocal(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg, ok := completionConfig(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	given, last := "", toComplete
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		given, last = toComplete[:i+1], toComplete[i+1:]
	}
	var servers []string
	for _, n := range cfg.Nodes {
		servers = append(servers, n.Servers()...)
	}
	done := strings.Split(given, ",")
	var out []cobra.Completion
	for _, s := range withPrefix(servers, last) {
		if !slices.Contains(done, s) {
			out = append(out, given+s)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// nodeNames returns the names of cfg's nodes.
func nodeNames(cfg federated.Config) []string {
	names := make([]string, 0, len(cfg.Nodes))
	for name := range cfg.Nodes {
		names = append(names, name)
	}
	return names
}

// addCompletionCmd adds cobra's completion command, which cobra would add
// as it runs, to a root whose output is set (the command writes its
// scripts where the root wrote then): added so, it refuses a shell it
// does not know (exit 2) as the other groups refuse a command, rather
// than print its help on stdout, for a shell to source.
func addCompletionCmd(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, cmd := range root.Commands() {
		if cmd.Name() == "completion" {
			groupCommand(cmd)
		}
	}
}
