package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redfed/federated"
)

// serverStatuser is the client's view of its servers' health that /readyz
// reads; *federated.Client is one.
type serverStatuser interface {
	Status() []federated.ServerStatus
}

var _ serverStatuser = (*federated.Client)(nil)

// handleHealth adds the probes of a service manager or a load balancer to
// mux: GET /healthz answers 200 "ok" while the process serves; GET /readyz
// answers 200 "ok" while every node of c has a server up, as the client's
// background PINGs find them, and otherwise 503 with a line for each node
// that has none. Neither needs a token: they tell no metric, only node
// names and server addresses of the federation file.
func handleHealth(mux *http.ServeMux, c serverStatuser) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if down := nodesDown(c.Status()); len(down) > 0 {
			writeText(w, http.StatusServiceUnavailable, strings.Join(down, "\n")+"\n")
			return
		}
		writeText(w, http.StatusOK, "ok\n")
	})
}

// nodesDown returns, sorted, a line for each node none of whose servers
// is up: "node redis_2: no server up (127.0.0.1:7002 down since
// 2026-11-25T10:00:00Z)".
func nodesDown(status []federated.ServerStatus) []string {
	up := make(map[string]bool)
	downs := make(map[string][]string)
	for _, s := range status {
		if !s.Down {
			up[s.Node] = true
			continue
		}
		d := s.Address + " down"
		if !s.DownSince.IsZero() {
			d += " since " + s.DownSince.UTC().Format(time.RFC3339)
		}
		downs[s.Node] = append(downs[s.Node], d)
	}
	var lines []string
	for node, d := range downs {
		if !up[node] {
			lines = append(lines, fmt.Sprintf("node %s: no server up (%s)", node, strings.Join(d, ", ")))
		}
	}
	slices.Sort(lines)
	return lines
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}
