package main

import (
	"context"
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

// clientLogger is the logger of the command's client: newLogger's at Warn,
// less go-redis's own lines, which the client passes to it (a failed
// dial, each time go-redis redials a server that is down): the client's
// own warnings say what matters once, and a sync with a peer down printed
// four lines a second of go-redis's beside its one (sync keeps them with
// --verbose).
func clientLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(withoutGoRedis{newLogger(cmd, slog.LevelWarn).Handler()})
}

// withoutGoRedis is a handler that drops the records whose source is
// go-redis.
type withoutGoRedis struct{ slog.Handler }

func (h withoutGoRedis) Handle(ctx context.Context, r slog.Record) error {
	goRedis := false
	r.Attrs(func(a slog.Attr) bool {
		goRedis = a.Key == "source" && a.Value.String() == "go-redis"
		return !goRedis
	})
	if goRedis {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h withoutGoRedis) WithAttrs(attrs []slog.Attr) slog.Handler {
	return withoutGoRedis{h.Handler.WithAttrs(attrs)}
}

func (h withoutGoRedis) WithGroup(name string) slog.Handler {
	return withoutGoRedis{h.Handler.WithGroup(name)}
}
