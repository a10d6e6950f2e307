package federated

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"
)

// Defaults of the Options fields, the same as the Perl module's where it has
// one.
const (
	DefaultCommandTimeout    = time.Second
	DefaultMaxHostRetries    = 3
	DefaultBaseRetryInterval = 2 * time.Second
	DefaultRetryIntervalMult = 2.0
	DefaultMaxRetryInterval  = 600 * time.Second
	DefaultRing              = RingConsistent
)

// Names of the rings a federation can hash keys with.
const (
	// RingConsistent is the default ring: bounded-load consistent hashing
	// (github.com/buraksezer/consistent) over xxhash.
	RingConsistent = "consistent"
	// RingPerl places keys exactly as the Perl module AnyEvent::Redis::Federated
	// does, so Go and Perl clients can share a fleet.
	RingPerl = "perl"
)

// Config describes a federation: its nodes and the client options. It has the
// shape of the Perl module's configuration and loads from YAML or JSON with
// LoadConfig.
type Config struct {
	// Nodes maps a node name, the string hashed on the ring, to its servers.
	Nodes map[string]Node `yaml:"nodes" json:"nodes"`
	// Options tune timeouts, retries and connections.
	Options Options `yaml:"options" json:"options"`
}

// Node is one slot on the ring: a single server (Address) or a replica group
// of servers holding copies of the same data (Addresses). Exactly one of the
// two is set.
type Node struct {
	// Address is the host:port of a node with a single server.
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Addresses lists the host:port of every server of a replica group. The
	// client writes to one of them and fails over to the next.
	Addresses []string `yaml:"addresses,omitempty" json:"addresses,omitempty"`
}

// Servers returns the node's server addresses: Address, or Addresses.
func (n Node) Servers() []string {
	if n.Address != "" {
		return []string{n.Address}
	}
	return n.Addresses
}

// Options tune the client. The zero value of every field means its default.
// In a file, durations are Go duration strings ("1s", "250ms") or numbers of
// seconds, as in the Perl module.
type Options struct {
	// CommandTimeout bounds every command and every Poll when the context has
	// no earlier deadline. A server that does not answer in time is marked
	// down. Default 1s.
	CommandTimeout time.Duration `yaml:"command_timeout" json:"command_timeout"`
	// MaxHostRetries is how many times a down server is re-checked at
	// BaseRetryInterval before the interval starts to grow. Default 3.
	MaxHostRetries int `yaml:"max_host_retries" json:"max_host_retries"`
	// BaseRetryInterval is the first interval between checks of a down
	// server. Default 2s.
	BaseRetryInterval time.Duration `yaml:"base_retry_interval" json:"base_retry_interval"`
	// RetryIntervalMult multiplies the interval after each further failed
	// check; it must be at least 1. Default 2.
	RetryIntervalMult float64 `yaml:"retry_interval_mult" json:"retry_interval_mult"`
	// MaxRetryInterval caps the interval between checks. Default 600s.
	MaxRetryInterval time.Duration `yaml:"max_retry_interval" json:"max_retry_interval"`
	// QueryAll sends every pipelined command to every up server of its
	// node's group instead of the current one. Default off.
	QueryAll bool `yaml:"query_all" json:"query_all"`
	// PipelineAutoFlush makes a pipeline send its queue as soon as one node
	// has this many commands queued, so memory stays bounded however much
	// is queued between two Polls. Default 0: only Poll sends.
	PipelineAutoFlush int `yaml:"pipeline_auto_flush" json:"pipeline_auto_flush"`
	// IdleTimeout closes connections idle for longer. Default 0: no limit.
	IdleTimeout time.Duration `yaml:"idle_timeout" json:"idle_timeout"`

	// Ring names the hash ring: RingConsistent (default) or RingPerl.
	Ring string `yaml:"ring" json:"ring"`
	// HashTags makes a key's {tag}, as in Redis Cluster, the string that is
	// hashed, so "{user1}.a" and "{user1}.b" share a node. Off by default,
	// since the Perl module does not do it.
	HashTags bool `yaml:"hash_tags" json:"hash_tags"`

	// Username and Password authenticate every connection (AUTH, or an ACL
	// user).
	Username string `yaml:"username" json:"username"`
	Password string `yaml:"password" json:"password"`
	// DialTimeout bounds a connection attempt. Default: CommandTimeout.
	DialTimeout time.Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound socket reads and writes of a call
	// whose context has no deadline. Default: CommandTimeout.
	ReadTimeout  time.Duration `yaml:"read_timeout" json:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout" json:"write_timeout"`
	// PoolSize is the most connections kept to each server. Default: go-redis's
	// (10 per GOMAXPROCS).
	PoolSize int `yaml:"pool_size" json:"pool_size"`

	// Metrics configures the metric schema that writers, readers, syncers
	// and retention share.
	Metrics MetricsOptions `yaml:"metrics" json:"metrics"`

	// TLSConfig, when set, makes every connection use TLS.
	TLSConfig *tls.Config `yaml:"-" json:"-"`
	// Hooks are added to the go-redis client of every server, after the
	// client's own health hook (for tracing or metrics: redisotel and
	// friends work unchanged).
	Hooks []redis.Hook `yaml:"-" json:"-"`
	// Logger receives server down and up events. Default: slog.Default().
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// durationOptions are the Options keys whose file values may be numbers of
// seconds.
var durationOptions = []string{
	"command_timeout", "base_retry_interval", "max_retry_interval",
	"idle_timeout", "dial_timeout", "read_timeout", "write_timeout",
}

// LoadConfig reads a federation from a YAML or JSON file. Unknown keys are
// errors. The configuration is validated as New would validate it.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses a federation from YAML or JSON (JSON is YAML too) and
// validates it.
func ParseConfig(data []byte) (Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if len(root.Content) == 0 {
		return Config{}, fmt.Errorf("%w: empty document", ErrInvalidConfig)
	}
	secondsToDurations(root.Content[0])

	// Re-encode the adjusted tree so the strict decoder can report unknown
	// keys; yaml.Node.Decode has no KnownFields switch.
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&root); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// secondsToDurations rewrites numeric duration options (seconds, as in the
// Perl configuration) into duration strings.
func secondsToDurations(doc *yaml.Node) {
	options := mappingValue(doc, "options")
	if options == nil || options.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(options.Content); i += 2 {
		key, val := options.Content[i], options.Content[i+1]
		if !slices.Contains(durationOptions, key.Value) || val.Kind != yaml.ScalarNode {
			continue
		}
		if val.Tag != "!!int" && val.Tag != "!!float" {
			continue
		}
		if secs, err := strconv.ParseFloat(val.Value, 64); err == nil {
			val.Value = time.Duration(secs * float64(time.Second)).String()
			val.Tag = "!!str"
			val.Style = 0
		}
	}
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Validate reports the first problem of the configuration, naming the field
// and the value. It does not change the configuration.
func (cfg Config) Validate() error {
	if len(cfg.Nodes) == 0 {
		return fmt.Errorf("%w: nodes: no nodes configured", ErrInvalidConfig)
	}
	owner := make(map[string]string) // server address -> node name
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

// validateNode checks one node and records its servers in owner, so that a
// server listed twice anywhere in the federation is caught.
func validateNode(name string, n Node, owner map[string]string) error {
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
		if err := validateAddr(addr); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, f, err)
		}
		if prev, dup := owner[addr]; dup {
			if prev == name {
				return fmt.Errorf("%w: %s: server %s is listed twice in node %s", ErrInvalidConfig, f, addr, name)
			}
			return fmt.Errorf("%w: %s: server %s is already in node %s", ErrInvalidConfig, f, addr, prev)
		}
		owner[addr] = name
	}
	return nil
}

func validateAddr(addr string) error {
	if addr == "" {
		return fmt.Errorf("empty address")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
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
	if o.RetryIntervalMult != 0 && o.RetryIntervalMult < 1 {
		return fmt.Errorf("%w: options.retry_interval_mult: %v is less than 1", ErrInvalidConfig, o.RetryIntervalMult)
	}
	if o.PipelineAutoFlush < 0 {
		return fmt.Errorf("%w: options.pipeline_auto_flush: negative value %d", ErrInvalidConfig, o.PipelineAutoFlush)
	}
	if o.PoolSize < 0 {
		return fmt.Errorf("%w: options.pool_size: negative value %d", ErrInvalidConfig, o.PoolSize)
	}
	if err := o.Metrics.validate(); err != nil {
		return err
	}
	switch o.Ring {
	case "", RingConsistent, RingPerl:
	default:
		return fmt.Errorf("%w: options.ring: unknown ring %q (want %q or %q)", ErrInvalidConfig, o.Ring, RingConsistent, RingPerl)
	}
	return nil
}

// withDefaults returns a copy of the options with every zero field set to its
// default.
func (o Options) withDefaults() Options {
	if o.CommandTimeout == 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.MaxHostRetries == 0 {
		o.MaxHostRetries = DefaultMaxHostRetries
	}
	if o.BaseRetryInterval == 0 {
		o.BaseRetryInterval = DefaultBaseRetryInterval
	}
	if o.RetryIntervalMult == 0 {
		o.RetryIntervalMult = DefaultRetryIntervalMult
	}
	if o.MaxRetryInterval == 0 {
		o.MaxRetryInterval = DefaultMaxRetryInterval
	}
	if o.Ring == "" {
		o.Ring = DefaultRing
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = o.CommandTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = o.CommandTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = o.CommandTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Metrics = o.Metrics.withDefaults()
	o.Hooks = slices.Clone(o.Hooks)
	return o
}

// clone returns a deep copy, so that the caller's maps and slices can change
// without touching a running client.
func (cfg Config) clone() Config {
	nodes := make(map[string]Node, len(cfg.Nodes))
	for name, n := range cfg.Nodes {
		nodes[name] = Node{Address: n.Address, Addresses: slices.Clone(n.Addresses)}
	}
	return Config{Nodes: nodes, Options: cfg.Options}
}
