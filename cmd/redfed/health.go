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

// localNodes is the health of the nodes of a sync daemon's --local
// servers: its /readyz says whether what it replicates can be read, not
// the rest of the fleet, which it does not replicate. Every daemon of a
// fleet answered 503 when any node anywhere had no server up.
type localNodes struct {
	c     *federated.Client
	local []string
}

// Status returns the client's status of the servers of the nodes that
// hold a local server, as the nodes are now (a reload may move them).
func (l localNodes) Status() []federated.ServerStatus {
	nodes := make(map[string]bool)
	for _, addr := range l.local {
		if node, _, err := l.c.ReplicaGroup(addr); err == nil {
			nodes[node] = true
		}
	}
	return slices.DeleteFunc(l.c.Status(), func(s federated.ServerStatus) bool { return !nodes[s.Node] })
}

// handleHealth adds the probes of a service manager or a load balancer to
// mux: GET /healthz answers 200 "ok" while the process serves; GET /readyz
// answers 200 "ok" while every node of c's status has a server up, as the
// client's background PINGs find them, and otherwise 503 with a line for
// each node that has none. Neither needs a token: they tell no metric, only node
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
