package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/redfed/federated"
)

// Exit codes shared by every command.
const (
	exitOK      = 0 // done, nothing wrong
	exitProblem = 1 // the command ran and found a problem
	exitUsage   = 2 // bad flags, arguments or configuration
)

// usageError marks an error that is the caller's: bad flags, arguments or
// configuration. It maps to exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run builds the command tree and executes it with the given arguments and
// streams, returning the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "redfed:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, federated.ErrInvalidConfig) {
		return exitUsage
	}
	return exitProblem
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "redfed",
		Short:         "Run metrics and other fast-moving data on a fleet of plain Redis processes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "federation file, YAML or JSON (default $REDFED_CONFIG)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRouteCmd(), newVersionCmd())
	return root
}

// loadConfig reads the federation named by --config or $REDFED_CONFIG.
func loadConfig(cmd *cobra.Command) (federated.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("REDFED_CONFIG")
	}
	if path == "" {
		return federated.Config{}, usagef("no federation file: pass --config FILE or set REDFED_CONFIG")
	}
	return federated.LoadConfig(path)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of redfed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			version := "(devel)"
			if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
				version = info.Main.Version
			}
			fmt.Fprintln(cmd.OutOrStdout(), "redfed", version)
			return nil
		},
	}
}
