package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

// Exit codes shared by every command.
const (
	exitOK      = 0 // done, nothing wrong
	exitProblem = 1 // the command ran and found a problem
	exitUsage   = 2 // bad flags, arguments or configuration
	exitUnknown = 3 // check: a server could not be read, so the answer is not known
)

// unknownError marks a check that could not tell whether the replicas
// agree. It maps to exit code 3.
type unknownError struct{ err error }

func (e unknownError) Error() string { return e.err.Error() }
func (e unknownError) Unwrap() error { return e.err }

// usageError marks an error that is the caller's: bad flags, arguments or
// configuration. It maps to exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// usageArgs makes the errors of a positional-argument check usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// discardRedisLog silences go-redis's own logger, which would print dial
// failures to standard error in its own format; the client reports what
// matters through its slog logger.
type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// run builds the command tree and executes it with the given arguments and
// streams, returning the process exit code. Cancelling ctx interrupts the
// command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	redis.SetLogger(discardRedisLog{})
	con := newConsole(stderr)
	root := newRootCmd()
	root.SetArgs(numberArgs(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(con)
	addCompletionCmd(root)
	cmd, err := root.ExecuteContextC(ctx)
	con.ClearStatus()
	if err == nil {
		return exitOK
	}
	prefix := "redfed"
	if cmd != nil {
		prefix = cmd.CommandPath()
	}
	if format, _ := root.PersistentFlags().GetString("log-format"); format == logFormatJSON {
		// One object, as every line of a JSON log is: a daemon's failure
		// to start is the line a collector must not drop.
		slog.New(slog.NewJSONHandler(con, nil)).Error(prefix+" failed", "err", err.Error())
	} else {
		// A joined error has a line per failure, a server each say:
		// prefix every one, and escape what a server answered that
		// would not print.
		for line := range strings.Lines(err.Error()) {
			fmt.Fprintf(con, "%s: %s\n", prefix, printableLine(strings.TrimSuffix(line, "\n")))
		}
	}
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, federated.ErrInvalidConfig) {
		return exitUsage
	}
	var unknown unknownError
	if errors.As(err, &unknown) {
		return exitUnknown
	}
	return exitProblem
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "redfed",
		Short: "Run metrics and other fast-moving data on a fleet of plain Redis processes",
		Long: `redfed inspects and feeds a federation of Redis servers described by a
federation file (--config, or $REDFED_CONFIG). The Redis password comes
from --password-file (its first line), else $REDFED_PASSWORD, else the
federation file's options.password.

Exit codes: 0 done, 1 a problem found (a bad input line, a server that
failed, replicas that differ, an interrupted record, check or repair), 2 a
usage or configuration error; check exits 3 when a server could not be
read and no key was found to differ. sync and serve run until Ctrl-C or
SIGTERM and then exit 0, the failures they met logged; demo exits 0 when
stopped at its dashboard.`,
		Example: `  redfed config init --hosts db1,db2 --ports 6379-6386 --out fed.yaml
  export REDFED_CONFIG=fed.yaml
  redfed record web1.sfo cpu.user 42
  redfed query web1.sfo cpu.user --from -2h`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	groupCommand(root)
	root.Version = readBuildVersion().String()
	root.SetVersionTemplate("redfed {{.Version}}\n")
	root.PersistentFlags().String("config", "", "federation file, YAML or JSON (default $REDFED_CONFIG)")
	root.PersistentFlags().String("password-file", "", "read the Redis password from this file's first line (default $"+passwordEnv+", else the federation file's)")
	root.PersistentFlags().String("log-format", logFormatText, "format of log lines on standard error: text (key=value) or json (one object a line)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return checkLogFormat(cmd) }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRouteCmd(), newRecordCmd(), newQueryCmd(), newHostsCmd(), newMetricsCmd(),
		newSyncCmd(), newCheckCmd(), newRepairCmd(), newServeCmd(), newDemoCmd(), newConfigCmd(), newVersionCmd())
	addCompletions(root)
	return root
}

// groupCommand makes a command that only holds subcommands print its help
// when called alone and fail with a usage error when called with an unknown
// subcommand. Left to itself cobra prints help and succeeds for the second.
func groupCommand(cmd *cobra.Command) {
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usagef("%s", msg)
	}
}

// loadConfig reads the federation named by --config or $REDFED_CONFIG, with
// the Redis password of --password-file or $REDFED_PASSWORD when given.
func loadConfig(cmd *cobra.Command) (federated.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("REDFED_CONFIG")
	}
	if path == "" {
		return federated.Config{}, usagef("no federation file: pass --config FILE or set REDFED_CONFIG")
	}
	cfg, err := federated.LoadConfig(path)
	if err != nil {
		return cfg, err
	}
	return cfg, applyPassword(cmd, &cfg)
}

// newClient returns a client of the federation named by --config or
// $REDFED_CONFIG that logs warnings, such as a server going down, on
// standard error and nothing below them.
// storeOf returns the metrics store of a client that newClient made: its
// configuration, validated by federated.New, is one metrics.New takes.
func storeOf(c *federated.Client) *metrics.Store {
	st, err := metrics.New(c)
	if err != nil {
		panic(fmt.Sprintf("redfed: the metrics store of a valid client: %v", err))
	}
	return st
}

func newClient(cmd *cobra.Command) (*federated.Client, error) {
	c, _, err := newClientConfig(cmd)
	return c, err
}

// newClientConfig is newClient that also returns the configuration the
// client was made from.
func newClientConfig(cmd *cobra.Command) (*federated.Client, federated.Config, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, cfg, err
	}
	cfg.Options.Logger = clientLogger(cmd)
	c, err := federated.New(cfg)
	return c, cfg, err
}
