package main

import (
	"log/slog"
	"net/http"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/redfed/federated"
	"github.com/redfed/federated/prometheus/remote"
)

// The paths of Prometheus's remote write and remote read on serve's
// listener, those Prometheus's own receiver uses.
const (
	remoteWritePath = "/api/v1/write"
	remoteReadPath  = "/api/v1/read"
)

// remoteFlags are serve's flags for Prometheus's remote write and read.
type remoteFlags struct {
	write     bool
	hostLabel string
}

// addRemoteFlags defines serve's remote flags on f.
func addRemoteFlags(f *pflag.FlagSet) *remoteFlags {
	fl := &remoteFlags{}
	f.BoolVar(&fl.write, "remote-write", true, "take Prometheus's remote write on "+remoteWritePath+"; false leaves serve read-only")
	f.StringVar(&fl.hostLabel, "remote-host-label", remote.DefaultHostLabel, "the Prometheus label whose value is a series' host")
	return fl
}

// remoteRoutes returns the routes of remote read, and of remote write
// through recorder unless fl turns it off, for the dashboard to serve
// behind its checks, and the write handler (nil when off).
func remoteRoutes(cmd *cobra.Command, client *federated.Client, recorder *ingestRecorder, fl *remoteFlags) (map[string]http.Handler, *remote.WriteHandler, error) {
	if fl.hostLabel == "" {
		return nil, nil, usagef("--remote-host-label: empty: name a label, or leave the flag out for %q", remote.DefaultHostLabel)
	}
	opts := remote.Options{HostLabel: fl.hostLabel, Logger: newLogger(cmd, slog.LevelWarn)}
	read, err := remote.NewReadHandler(storeOf(client), opts)
	if err != nil {
		return nil, nil, usagef("--remote-host-label: %v", err)
	}
	routes := map[string]http.Handler{remoteReadPath: read}
	if !fl.write {
		return routes, nil, nil
	}
	rec, err := recorder.get()
	if err != nil {
		return nil, nil, err
	}
	write, err := remote.NewWriteHandler(rec, opts)
	if err != nil {
		return nil, nil, err
	}
	routes[remoteWritePath] = write
	return routes, write, nil
}
