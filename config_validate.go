package federated

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate reports the first problem of the configuration, naming the field
// and the value. It does not change the configuration. It reads the TLS
// files, unless Options.TLSConfig is set, as New does.
func (cfg Config) Validate() error {
	if len(cfg.Nodes) == 0 {
		return fmt.Errorf("%w: nodes: no nodes configured", ErrInvalidConfig)
	}
	owner := make(serverOwners)
	for _, name := range sortedNodeNames(cfg.Nodes) {
		if err := validateNode(name, cfg.Nodes[name], owner); err != nil {
			return err
		}
	}
	return cfg.Options.validate()
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

// validateNode checks one node and records its servers in owner.
func validateNode(name string, n Node, owner serverOwners) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w: nodes: empty node name %q", ErrInvalidConfig, name)
	}
	field := "nodes." + name
	switch {
	case n.Address == "" && len(n.Addresses) == 0:
		return fmt.Errorf("%w: %s: neither address nor addresses is set", ErrInvalidConfig, field)
	case n.Address != "" && len(n.Addresses) > 0:
		return fmt.Errorf("%w: %s: both address (%q) and addresses are set; use one", ErrInvalidConfig, field, n.Address)
	}
	for i, addr := range n.Servers() {
		f := field + ".address"
		if n.Address == "" {
			f = fmt.Sprintf("%s.addresses[%d]", field, i)
		}
		canonical, err := canonicalAddr(addr)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, f, err)
		}
		if prev, dup := owner[canonical]; dup {
			spelt := ""
			if prev.addr != addr {
				spelt = fmt.Sprintf(" (as %s)", prev.addr)
			}
			if prev.node == name {
				return fmt.Errorf("%w: %s: server %s is listed twice in node %s%s", ErrInvalidConfig, f, addr, name, spelt)
			}
			return fmt.Errorf("%w: %s: server %s is already in node %s%s", ErrInvalidConfig, f, addr, prev.node, spelt)
		}
		owner[canonical] = serverOwner{node: name, addr: addr}
	}
	return nil
}

// canonicalAddr checks a server address and returns the form that two
// spellings of one server share: the host in lower case, an IP address in
// its shortest form (IPv4 for an IPv4-mapped IPv6 address), the port without
// leading zeros. Different names of one host (localhost and 127.0.0.1) are
// not caught: that would need DNS.
func canonicalAddr(addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("empty address")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", addr)
	}
	if i := strings.IndexFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return "", fmt.Errorf("%q: host has a space or control character at byte %d", addr, i)
	}
	// Digits only: Atoi would take "+6379", which no dialer does.
	p, err := strconv.Atoi(port)
	if err != nil || strings.Trim(port, "0123456789") != "" || p < 1 || p > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	host = strings.ToLower(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

func (o Options) validate() error {
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"command_timeout", o.CommandTimeout},
		{"base_retry_interval", o.BaseRetryInterval},
		{"max_retry_interval", o.MaxRetryInterval},
		{"idle_timeout", o.IdleTimeout},
		{"dial_timeout", o.DialTimeout},
		{"read_timeout", o.ReadTimeout},
		{"write_timeout", o.WriteTimeout},
	}
	for _, d := range durations {
		if d.d < 0 {
			return fmt.Errorf("%w: options.%s: negative duration %v", ErrInvalidConfig, d.name, d.d)
		}
	}
	if o.MaxHostRetries < 0 {
		return fmt.Errorf("%w: options.max_host_retries: negative value %d", ErrInvalidConfig, o.MaxHostRetries)
	}
	if m := o.RetryIntervalMult; math.IsNaN(m) || math.IsInf(m, 0) || (m != 0 && m < 1) {
		return fmt.Errorf("%w: options.retry_interval_mult: %v is not a number of at least 1", ErrInvalidConfig, m)
	}
	if o.PipelineAutoFlush < 0 {
		return fmt.Errorf("%w: options.pipeline_auto_flush: negative value %d", ErrInvalidConfig, o.PipelineAutoFlush)
	}
	if o.PoolSize < 0 {
		return fmt.Errorf("%w: options.pool_size: negative value %d", ErrInvalidConfig, o.PoolSize)
	}
	for i, h := range o.Hooks {
		if h == nil {
			return fmt.Errorf("%w: options.hooks[%d] is nil", ErrInvalidConfig, i)
		}
	}
	if err := o.Metrics.validate(); err != nil {
		return err
	}
	switch o.Ring {
	case "", RingConsistent, RingPerl:
	default:
		return fmt.Errorf("%w: options.ring: unknown ring %q (want %q or %q)", ErrInvalidConfig, o.Ring, RingConsistent, RingPerl)
	}
	if o.TLS != nil && o.TLSConfig == nil {
		if _, err := o.TLS.tlsConfig(); err != nil {
			return err
		}
	}
	return nil
}
