package federated

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/internal/ring"
)

// Validate reports the first problem of the configuration, naming the field
// and the value. It does not change the configuration. It reads the TLS
// files, unless Options.TLSConfig is set, as New does. No error shows the
// password, even where another field holds it.
func (cfg Config) Validate() error {
	v := validator{}.withSecret(cfg.Options.Password)
	return v.finish(v.config(cfg), nil)
}

// config does the work of Validate; a refusal of a field of the
// configuration is a *fieldError that still has its path.
func (v validator) config(cfg Config) error {
	if err := v.nodes(cfg); err != nil {
		return err
	}
	return v.options(cfg.Options)
}

// nodes checks the nodes of cfg, by themselves and against its options.
func (v validator) nodes(cfg Config) error {
	if len(cfg.Nodes) == 0 {
		return v.fail(fieldPath{"nodes"}, "no nodes configured")
	}
	owner := make(serverOwners)
	for _, name := range sortedNodeNames(cfg.Nodes) {
		if err := v.node(name, cfg.Nodes[name], owner); err != nil {
			return err
		}
	}
	if err := v.ringSize(cfg); err != nil {
		return err
	}
	return v.copies(cfg)
}

// ringSize checks that the ring of cfg's options takes its nodes, as New
// would build it.
func (v validator) ringSize(cfg Config) error {
	if cfg.Options.NewRing != nil {
		return nil // its own
	}
	return v.nodeCount(len(cfg.Nodes), cfg.Options.Ring)
}

// nodeCount checks that the ring named ringName takes n nodes.
func (v validator) nodeCount(n int, ringName string) error {
	limit, why := ring.MaxConsistentNodes, "the consistent ring (options.ring) takes at most %d, one to each of its partitions"
	if ringName == RingPerl {
		limit, why = ring.MaxNodes, "the perl ring (options.ring) takes at most %d"
	}
	if n > limit {
		return v.fail(fieldPath{"nodes"}, "%d nodes: "+why, n, limit)
	}
	return nil
}

// copies checks options.metrics.copies against the nodes: a metric write
// is acknowledged once that many servers of its node's group applied it,
// so a node of fewer servers could never take one.
func (v validator) copies(cfg Config) error {
	path := fieldPath{"options", "metrics", "copies"}
	copies := cfg.Options.Metrics.Copies
	if copies < 0 {
		return v.fail(path, "negative value %s (0 means the default, %d)", v.show(strconv.Itoa(copies)), DefaultCopies)
	}
	size := func(name string) int { return len(cfg.Nodes[name].Servers()) }
	smallest, largest := "", ""
	for _, name := range sortedNodeNames(cfg.Nodes) {
		if smallest == "" || size(name) < size(smallest) {
			smallest = name
		}
		if largest == "" || size(name) > size(largest) {
			largest = name
		}
	}
	switch {
	case copies > size(largest):
		return v.fail(path, "%s copies of every metric write, but the largest group, node %s, has %s",
			v.show(strconv.Itoa(copies)), v.show(largest), serverCount(size(largest)))
	case copies > size(smallest):
		return v.fail(path, "%s copies of every metric write, but node %s has %s, so it could take none",
			v.show(strconv.Itoa(copies)), v.show(smallest), serverCount(size(smallest)))
	}
	return nil
}

// serverCount says "1 server" or "n servers".
func serverCount(n int) string {
	if n == 1 {
		return "1 server"
	}
	return strconv.Itoa(n) + " servers"
}

func sortedNodeNames(nodes map[string]Node) []string {
	names := make([]string, 0, len(nodes))
	for name := range nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// serverOwners maps the canonical address of every server (canonicalAddr)
// to the node it is in and the address as it was written, so that a server
// listed twice anywhere in the federation is caught, however it is spelt.
type serverOwners map[string]serverOwner

type serverOwner struct {
	node string
	addr string // as written
}

// node checks one node and records its servers in owner. A node's name is
// hashed on the ring and printed in every log line about its servers, so
// it must read as what it is: not blank, no space at either end, and none
// of the characters metric.Unreadable refuses (controls, invisible and
// bidirectional format characters, separators, spaces other than ' ').
func (v validator) node(name string, n Node, owner serverOwners) error {
	field := fieldPath{"nodes", name}
	unreadable := metric.Unreadable(name)
	switch {
	case strings.TrimSpace(name) == "":
		return v.fail(fieldPath{"nodes"}, "empty node name %s", v.quote(name))
	case unreadable != "":
		return v.fail(field, "the node name has %s", unreadable)
	case strings.TrimSpace(name) != name:
		return v.fail(field, "the node name begins or ends with white space")
	case n.Address == "" && len(n.Addresses) == 0:
		return v.fail(field, "neither address nor addresses is set")
	case n.Address != "" && len(n.Addresses) > 0:
		return v.fail(field, "both address (%s) and addresses are set; use one", v.quote(n.Address))
	}
	for i, addr := range n.Servers() {
		f := field.at("address")
		if n.Address == "" {
			f = field.at("addresses").at(i)
		}
		canonical, err := v.canonicalAddr(addr)
		if err != nil {
			return v.fail(f, "%s: %v", v.quoteAddr(addr), err)
		}
		if prev, dup := owner[canonical]; dup {
			spelt := ""
			if prev.addr != addr {
				spelt = fmt.Sprintf(" (as %s)", v.show(prev.addr))
			}
			if prev.node == name {
				return v.fail(f, "server %s is listed twice in node %s%s", v.show(addr), v.show(name), spelt)
			}
			return v.fail(f, "server %s is already in node %s%s", v.show(addr), v.show(prev.node), spelt)
		}
		owner[canonical] = serverOwner{node: name, addr: addr}
	}
	return nil
}

// canonicalAddr checks a server address and returns the form that two
// spellings of one server share: the host in lower case without a trailing
// dot, an IP address in its shortest form (IPv4 for an IPv4-mapped IPv6
// address), the port without leading zeros, and the loopback names
// (localhost, 127.0.0.1, ::1, and the unspecified 0.0.0.0 and ::, which a
// dial takes for loopback) one host, loopbackHost.
//
// Other names are compared as written, not resolved: New does no DNS, so
// that a federation loads the same whatever the resolver says that day,
// and db1 and its IP address in one file are not caught.
func canonicalAddr(addr string) (string, error) {
	return validator{}.canonicalAddr(addr)
}

// SameServer reports whether two host:port addresses name one server as
// Validate compares them (where it refuses a server in two nodes): host
// names without case or a trailing dot, IP addresses in their shortest
// form, ports without leading zeros, and localhost, 127.0.0.1 and ::1 as
// one host. Other names are compared as written, without DNS. An address
// that is not host:port names no server.
func SameServer(a, b string) bool {
	ca, err := canonicalAddr(a)
	if err != nil {
		return false
	}
	cb, err := canonicalAddr(b)
	return err == nil && ca == cb
}

// canonicalAddr is the function canonicalAddr, with errors that say what is
// wrong without quoting the address, which the caller prints (or redacts).
func (v validator) canonicalAddr(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("empty address")
	}
	// A URL's user:password@ would be printed by every error about the
	// address, and its scheme is no part of host:port.
	if strings.Contains(addr, "@") {
		return "", errors.New("not host:port: it holds credentials (user:password@); set options.username and options.password instead")
	}
	if strings.Contains(addr, "://") {
		return "", errors.New("not host:port: a URL; give the host and port alone")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", fmt.Errorf("not host:port: %s", ae.Err)
		}
		return "", errors.New("not host:port")
	}
	if host == "" {
		return "", errors.New("no host")
	}
	if i := strings.IndexFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return "", fmt.Errorf("the host has a space or control character at byte %d", i)
	}
	// A no-break or zero-width space looks like nothing, and makes a
	// host that never resolves.
	if problem := metric.Unreadable(host); problem != "" {
		return "", fmt.Errorf("the host has an unreadable character: %s", problem)
	}
	// Digits only: Atoi would take "+6379", which no dialer does.
	p, err := strconv.Atoi(port)
	if err != nil || strings.Trim(port, "0123456789") != "" || p < 1 || p > 65535 {
		return "", fmt.Errorf("port %s is not a number from 1 to 65535", v.quote(port))
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
		if ip.IsUnspecified() {
			// A dial of 0.0.0.0 or :: reaches this machine's loopback.
			host = loopbackHost
		}
	}
	if isLoopbackName(host) {
		host = loopbackHost
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// loopbackHost is the canonical host of a server on this machine, however
// its address names it.
const loopbackHost = "localhost"

// isLoopbackName reports whether host, in lower case, names this machine's
// loopback address as a client dials it: localhost resolves to 127.0.0.1
// and ::1, and redis-server listens on both by default ("bind 127.0.0.1
// -::1"). Other loopback IPv4 addresses (127.0.0.2...) are distinct: a
// server can listen on one alone, and tests run one server per address.
func isLoopbackName(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// quoteAddr quotes an address for an error, with what comes before an '@'
// (a URL's user:password@) redacted.
func (v validator) quoteAddr(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return v.quote(redacted + addr[i:])
	}
	return v.quote(addr)
}

func (v validator) options(o Options) error {
	if err := v.durations(o); err != nil {
		return err
	}
	if o.MaxHostRetries < 0 {
		return v.fail(fieldPath{"options", "max_host_retries"}, "negative value %s", v.show(strconv.Itoa(o.MaxHostRetries)))
	}
	if m := o.RetryIntervalMult; math.IsNaN(m) || math.IsInf(m, 0) || (m != 0 && m < 1) {
		return v.fail(fieldPath{"options", "retry_interval_mult"}, "%s is not a number of at least 1", v.show(fmt.Sprint(m)))
	}
	if o.PipelineAutoFlush < 0 {
		return v.fail(fieldPath{"options", "pipeline_auto_flush"}, "negative value %s", v.show(strconv.Itoa(o.PipelineAutoFlush)))
	}
	switch {
	case o.PoolSize < 0:
		return v.fail(fieldPath{"options", "pool_size"}, "negative value %s", v.show(strconv.Itoa(o.PoolSize)))
	case o.PoolSize > MaxPoolSize:
		return v.fail(fieldPath{"options", "pool_size"}, "%s connections to each server is above the maximum of %d (MaxPoolSize)",
			v.show(strconv.Itoa(o.PoolSize)), MaxPoolSize)
	}
	for i, h := range o.Hooks {
		if h == nil {
			return v.fail(fieldPath{"options", "hooks", i}, "nil hook")
		}
	}
	if err := v.journal(o.Metrics.Journal); err != nil {
		return err
	}
	if err := v.metricsOptions(o.Metrics); err != nil {
		return err
	}
	switch o.Ring {
	case "":
	case RingConsistent, RingPerl:
		if o.NewRing != nil {
			return v.fail(fieldPath{"options", "ring"}, "%s with Options.NewRing: give one of them", v.quote(o.Ring))
		}
	default:
		return v.fail(fieldPath{"options", "ring"}, "unknown ring %s (want %q or %q)", v.quote(o.Ring), RingConsistent, RingPerl)
	}
	if o.TLS != nil && o.TLSConfig == nil {
		if _, err := o.TLS.build(v); err != nil {
			return err
		}
	}
	return nil
}

// durations checks the duration options: none negative, each that is set at
// least its floor, and the retry intervals in order, defaults counted.
func (v validator) durations(o Options) error {
	for _, opt := range durationOptions {
		path, d := fieldPath{"options", opt.key}, *opt.field(&o)
		switch {
		case d < 0:
			return v.fail(path, "negative duration %s", v.show(d.String()))
		case d > 0 && d < opt.floor:
			return v.fail(path, "%s is below the floor of %v (0 means the default)", v.show(d.String()), opt.floor)
		}
	}
	base, baseNote := o.BaseRetryInterval, ""
	if base == 0 {
		base, baseNote = DefaultBaseRetryInterval, ", its default"
	}
	switch {
	case o.MaxRetryInterval != 0 && o.MaxRetryInterval < base:
		return v.fail(fieldPath{"options", "max_retry_interval"}, "%s is below base_retry_interval (%v%s); the cap must be at least the first interval",
			v.show(o.MaxRetryInterval.String()), base, baseNote)
	case o.MaxRetryInterval == 0 && base > DefaultMaxRetryInterval:
		return v.fail(fieldPath{"options", "base_retry_interval"}, "%s is above max_retry_interval (%v, its default); raise max_retry_interval too",
			v.show(base.String()), DefaultMaxRetryInterval)
	}
	return nil
}

// journal checks the key of each server's journal, which also names the
// keys beside it (horizonKey, OriginKey): none of them may be a key that
// something else keeps on the servers, and all must read as what they are
// in logs. The empty string means the default, DefaultJournal.
func (v validator) journal(name string) error {
	path := fieldPath{"options", "metrics", "journal"}
	prefix, _, _ := strings.Cut(name, ":")
	unreadable := metric.Unreadable(name)
	switch {
	case name == "":
		return nil
	case unreadable != "":
		return v.fail(path, "%s has %s", v.quote(name), unreadable)
	case name == journal.CursorKey:
		return v.fail(path, "%s is the syncer's hash of cursors on every server", v.quote(name))
	case name == journal.MarksKey:
		return v.fail(path, "%s is the syncer's hash of what it knows of its peers' keys on every server", v.quote(name))
	case metric.PeriodShaped(prefix):
		return v.fail(path, "%s begins with a period as a metric key ($period:$host:$metric) does, "+
			"so it, %s and %s would be taken for metric data", v.quote(name), v.quote(name+":horizon"), v.quote(name+":origin"))
	}
	return nil
}

// metricsOptions checks the period and the retention of the metrics
// options. The journal is checked by journal.
func (v validator) metricsOptions(m MetricsOptions) error {
	if _, err := metric.ParsePeriod(m.Period); err != nil {
		return v.fail(fieldPath{"options", "metrics", "period"}, "%s is not a period: want \"day\" or \"hour\"", v.quote(m.Period))
	}
	if m.Retention < 0 || m.Retention > MaxRetention {
		return v.fail(fieldPath{"options", "metrics", "retention"}, "%s periods, want 0 (keep everything) to %d",
			v.show(strconv.Itoa(m.Retention)), MaxRetention)
	}
	return nil
}
