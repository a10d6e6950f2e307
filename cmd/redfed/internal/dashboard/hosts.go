package dashboard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/redfed/federated/cmd/redfed/internal/natural"
)

// The Host check. A browser sends the name it resolved in the Host header.
// A web page on another site cannot read the dashboard (the same-origin
// policy), unless it makes its own name resolve to the dashboard's loopback
// address after the page has loaded (DNS rebinding): then the browser
// counts the dashboard as the page's own origin, and the requests carry the
// page's name. Serving only the names the dashboard is really reached by
// closes that. With a token the check is not needed: the rebound page's
// origin holds no cookie of the dashboard and does not know the token.

// ValidateHostName refuses a name for Options.AllowedHosts that is not a
// host name, with or without a port: empty, or with a scheme, a user, a
// path or spaces.
func ValidateHostName(name string) error {
	if hostName(name) == "" || strings.ContainsAny(name, "/@?#%\\ \t\r\n") {
		return errors.New("want a host name such as dash.example.com, with no scheme, user or path")
	}
	return nil
}

// allowedHosts normalizes Options.AllowedHosts, refusing entries that are
// not host names.
func allowedHosts(names []string) (map[string]bool, error) {
	out := make(map[string]bool, len(names))
	for i, name := range names {
		if err := ValidateHostName(name); err != nil {
			return nil, fmt.Errorf("dashboard: Options.AllowedHosts[%d] %q: %w", i, name, err)
		}
		out[hostName(name)] = true
	}
	return out, nil
}

// hostName returns the name of a Host header or an allowed host: without
// its port, brackets around an IPv6 address or a final dot, in lower case.
func hostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// hostAllowed reports whether a request's Host names the dashboard: a
// loopback name or address, or one of Options.AllowedHosts.
func (h *handler) hostAllowed(hostport string) bool {
	host := hostName(hostport)
	if host == "localhost" || h.allowedHosts[host] {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// misdirected answers a request for a name the dashboard does not serve.
func (h *handler) misdirected(w http.ResponseWriter, r *http.Request) {
	cutBody(w, r)
	msg := fmt.Sprintf("host %q: this dashboard has no token, so it answers only to localhost, 127.0.0.1, [::1] "+
		"and the names it is given (redfed serve --allow-host NAME); open it by one of those names, or give it a token", r.Host)
	h.opts.Logger.Warn("dashboard: request for another host name refused", "host", r.Host, "path", r.URL.Path)
	refuse(w, r, http.StatusMisdirectedRequest, errorReply{Error: msg})
}

// inNaturalOrder returns a sorted copy of names, digits compared as
// numbers (cache3 before cache27), leaving the Source's slice alone.
func inNaturalOrder(names []string) []string {
	return slices.SortedFunc(slices.Values(names), natural.Compare)
}
