package main

import (
	"log/slog"

	"github.com/spf13/cobra"
)

// Values of --log-format.
const (
	logFormatText = "text" // slog's key=value lines, the default
	logFormatJSON = "json" // one JSON object a line, for a log collector
)

// checkLogFormat refuses a --log-format other than text or json.
func checkLogFormat(cmd *cobra.Command) error {
	switch format, _ := cmd.Flags().GetString("log-format"); format {
	case logFormatText, logFormatJSON:
		return nil
	default:
		return usagef("--log-format %q: want %s or %s", format, logFormatText, logFormatJSON)
	}
}

// newLogger returns a logger that writes records at level and above to
// the command's standard error, in the format --log-format names.
func newLogger(cmd *cobra.Command, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	w := cmd.ErrOrStderr()
	if format, _ := cmd.Flags().GetString("log-format"); format == logFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
