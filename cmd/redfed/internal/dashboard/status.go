package dashboard

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/cmd/redfed/internal/natural"
)

// statusReply is the body of GET /api/status and the data of the status
// page.
type statusReply struct {
	Now string `json:"now"` // RFC 3339, UTC
	// Servers are grouped by node, nodes in natural order (redis_2 before
	// redis_10), each node's servers in its configuration order.
	Servers []serverStatus `json:"servers"`
	Syncer  *syncerStatus  `json:"syncer"` // null when no syncer runs here
	Check   *checkStatus   `json:"check"`  // null before the first check, or without one
}

// serverStatus is one server's health.
type serverStatus struct {
	Node      string  `json:"node"`
	Address   string  `json:"address"`
	Current   bool    `json:"current"` // its node's commands go to it
	Down      bool    `json:"down"`
	DownSince *string `json:"down_since"` // RFC 3339; null when up
	LastError string  `json:"last_error"` // why it is down; empty when up
}

// syncerStatus is the syncer's state: one entry per pair of local server
// and peer.
type syncerStatus struct {
	Peers       []peerStatus      `json:"peers"`
	AntiEntropy antiEntropyStatus `json:"anti_entropy"`
}

// peerStatus is a local server's pulls from one peer. Durations are in
// milliseconds.
type peerStatus struct {
	Local  string  `json:"local"`
	Peer   string  `json:"peer"`
	LagMS  float64 `json:"lag_ms"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	Added  int64   `json:"added"`
	Errors int64   `json:"errors"` // failed passes, since the syncer started
	// LastError is why the link fails, and LastErrorAt (RFC 3339) when
	// it did: both empty while the link works, also once a pass after
	// the error succeeded.
	LastError   string  `json:"last_error"`
	LastErrorAt *string `json:"last_error_at"`
}

// antiEntropyStatus counts the syncer's anti-entropy runs.
type antiEntropyStatus struct {
	Runs      int64   `json:"runs"`
	Repaired  int64   `json:"repaired"`
	Added     int64   `json:"added"`
	LastRun   *string `json:"last_run"` // RFC 3339; null before the first
	LastError string  `json:"last_error"`
}

// checkStatus sums up the last replica check.
type checkStatus struct {
	OK        bool          `json:"ok"`
	Keys      int           `json:"keys"`
	Divergent int           `json:"divergent"`
	Repaired  int           `json:"repaired"`
	At        string        `json:"at"` // RFC 3339, when it finished
	Groups    []groupStatus `json:"groups"`
}

// groupStatus is one replica group's part of the last check.
type groupStatus struct {
	Node      string   `json:"node"`
	Servers   []string `json:"servers"`
	Keys      int      `json:"keys"`
	Divergent int      `json:"divergent"`
	Error     string   `json:"error"`
}

// status gathers the health of the servers, the syncer and the last check.
func (h *handler) status() statusReply {
	st := statusReply{Now: formatTime(h.now()), Servers: []serverStatus{}}
	for _, s := range h.serversByNode() {
		ss := serverStatus{Node: s.Node, Address: s.Address, Current: s.Current, Down: s.Down}
		if s.Down && !s.DownSince.IsZero() {
			ss.DownSince = timeOrNil(s.DownSince)
		}
		if s.Down && s.LastError != nil {
			ss.LastError = s.LastError.Error()
		}
		st.Servers = append(st.Servers, ss)
	}
	if h.opts.Syncer != nil {
		if stats := h.opts.Syncer(); stats != nil {
			sy := &syncerStatus{Peers: []peerStatus{}}
			for _, p := range stats.Peers {
				ps := peerStatus{
					Local: p.Local, Peer: p.Peer,
					LagMS: millis(p.Lag), P50MS: millis(p.LagP50), P99MS: millis(p.LagP99),
					Added: p.Added, Errors: p.Errors,
				}
				if p.LastError != "" && !p.LastSuccess.After(p.LastErrorAt) {
					ps.LastError, ps.LastErrorAt = p.LastError, timeOrNil(p.LastErrorAt)
				}
				sy.Peers = append(sy.Peers, ps)
			}
			ae := stats.AntiEntropy
			sy.AntiEntropy = antiEntropyStatus{Runs: ae.Runs, Repaired: ae.Repaired, Added: ae.Added,
				LastRun: timeOrNil(ae.LastRun), LastError: ae.LastError}
			st.Syncer = sy
		}
	}
	if h.opts.LastCheck != nil {
		if report, at, ok := h.opts.LastCheck(); ok {
			c := &checkStatus{OK: report.OK(), Keys: report.Keys, Divergent: report.Divergent,
				Repaired: report.Repaired, At: formatTime(at), Groups: []groupStatus{}}
			for _, g := range report.Groups {
				c.Groups = append(c.Groups, groupStatus{Node: g.Node, Servers: nonNil(g.Servers),
					Keys: g.Keys, Divergent: g.Divergent, Error: g.Error})
			}
			st.Check = c
		}
	}
	return st
}

// serversByNode returns the Source's servers grouped by node, nodes in
// natural order, each node's servers in the order of its configuration
// (by address when the Source cannot say).
func (h *handler) serversByNode() []federated.ServerStatus {
	servers := h.opts.Source.Status()
	rank := make(map[string]int, len(servers))
	nodes := make(map[string]bool)
	for _, s := range servers {
		if nodes[s.Node] {
			continue
		}
		nodes[s.Node] = true
		addrs, err := h.opts.Source.AllServers(s.Node)
		if err != nil {
			continue // removed meanwhile: by address
		}
		for i, a := range addrs {
			rank[a] = i
		}
	}
	return slices.SortedStableFunc(slices.Values(servers), func(a, b federated.ServerStatus) int {
		if c := natural.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return cmp.Compare(rank[a.Address], rank[b.Address])
	})
}

// timeOrNil formats t for the API, or returns nil when t is zero.
func timeOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

// formatTime formats t for the API: RFC 3339 in UTC, to the millisecond.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// millis converts d to milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
