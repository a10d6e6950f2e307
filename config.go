package federated

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"reflect"
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
	// CommandTimeout bounds every command, and every round trip of a Poll,
	// when the context has no earlier deadline. A server that does not
	// answer in time is marked down. Default 1s.
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
	// QueryAll sends every pipelined command to every server of its node's
	// group instead of the current one (as DoAll does: a server marked down
	// is not asked, and its callback gets its ErrServerDown). Default off.
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
	// user). The password is redacted wherever Options are printed or
	// logged (String, GoString, LogValue).
	Username string `yaml:"username" json:"username"`
	Password string `yaml:"password" json:"password"`
	// TLS, when set, makes every connection use TLS configured from files:
	// in a configuration file, options.tls (an empty "tls: {}" means TLS
	// with the system's roots). New builds TLSConfig from it; a TLSConfig
	// set in Go wins and the files are then not read.
	TLS *TLSFiles `yaml:"tls,omitempty" json:"tls,omitempty"`
	// DialTimeout bounds a connection attempt. Default: CommandTimeout.
	DialTimeout time.Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound socket reads and writes of a call
	// whose context has no deadline. Default: CommandTimeout.
	ReadTimeout  time.Duration `yaml:"read_timeout" json:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout" json:"write_timeout"`
	// PoolSize is the most connections kept to each server, pipelines'
	// included; a down server's re-check dials one of its own. Default:
	// go-redis's (10 per GOMAXPROCS).
	PoolSize int `yaml:"pool_size" json:"pool_size"`

	// Metrics configures the metric schema that writers, readers, syncers
	// and retention share.
	Metrics MetricsOptions `yaml:"metrics" json:"metrics"`

	// TLSConfig, when set, makes every connection use TLS. It takes
	// precedence over TLS.
	TLSConfig *tls.Config `yaml:"-" json:"-"`
	// Hooks are added to the go-redis client of every server, after the
	// client's own health hook (for tracing or metrics: redisotel and
	// friends work unchanged).
	Hooks []redis.Hook `yaml:"-" json:"-"`
	// Logger receives server down and up events. Default: slog.Default().
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// TLSFiles configure TLS from PEM files, for configuration files, which
// cannot hold a *tls.Config. The zero value is TLS that checks the servers'
// certificates against the system's roots and the host of each server's
// address, with no client certificate.
type TLSFiles struct {
	// CAFile holds the certificates of the authorities that sign the
	// servers' certificates. Default: the system's roots.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// CertFile and KeyFile hold a client certificate and its private key,
	// for servers that check clients (tls-auth-clients). Set both or
	// neither.
	CertFile string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// ServerName is the name the servers' certificates must carry. Default:
	// the host of each server's address.
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// InsecureSkipVerify accepts any server certificate: the connection is
	// encrypted but the server is not authenticated. For tests.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// maxPEMFile bounds what is read of a TLS file: certificates and keys are a
// few kilobytes, a CA bundle a few hundred.
const maxPEMFile = 4 << 20

// tlsConfig reads the files and builds the *tls.Config they describe. Its
// errors wrap ErrInvalidConfig and name the field at fault.
func (f TLSFiles) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify,
	}
	if f.CAFile != "" {
		pem, err := readPEMFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: options.tls.ca_file: %v", ErrInvalidConfig, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: options.tls.ca_file: %s holds no PEM certificate", ErrInvalidConfig, f.CAFile)
		}
	}
	switch {
	case f.CertFile == "" && f.KeyFile == "":
		return cfg, nil
	case f.KeyFile == "":
		return nil, fmt.Errorf("%w: options.tls.key_file: not set, but cert_file is (%s)", ErrInvalidConfig, f.CertFile)
	case f.CertFile == "":
		return nil, fmt.Errorf("%w: options.tls.cert_file: not set, but key_file is (%s)", ErrInvalidConfig, f.KeyFile)
	}
	certPEM, err := readPEMFile(f.CertFile)
	if err != nil {
		return nil, fmt.Errorf("%w: options.tls.cert_file: %v", ErrInvalidConfig, err)
	}
	keyPEM, err := readPEMFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: options.tls.key_file: %v", ErrInvalidConfig, err)
	}
	// The error of X509KeyPair describes the PEM blocks, never their bytes.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: options.tls.cert_file, options.tls.key_file: %s and %s: %v",
			ErrInvalidConfig, f.CertFile, f.KeyFile, err)
	}
	cfg.Certificates = []tls.Certificate{pair}
	return cfg, nil
}

// readPEMFile reads a regular file of at most maxPEMFile bytes, so that a
// path such as /dev/zero or a FIFO fails instead of hanging.
func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, info.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxPEMFile)
	}
	return data, nil
}

// redacted stands in for a password wherever Options are printed.
const redacted = "[REDACTED]"

// plainOptions has the fields of Options without its methods, so that
// String and GoString can print the fields without calling themselves.
type plainOptions Options

// printable returns a copy of the options with the password redacted.
func (o Options) printable() plainOptions {
	if o.Password != "" {
		o.Password = redacted
	}
	return plainOptions(o)
}

// String formats the options as %+v would, with the password redacted, so
// that printing a Config or Options with any fmt verb shows no secret.
func (o Options) String() string {
	return fmt.Sprintf("%+v", o.printable())
}

// GoString formats the options as %#v would, with the password redacted.
func (o Options) GoString() string {
	return "federated.Options" + strings.TrimPrefix(fmt.Sprintf("%#v", o.printable()), "federated.plainOptions")
}

// LogValue logs the options that can be written in a configuration file,
// with the password redacted.
func (o Options) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Duration("command_timeout", o.CommandTimeout),
		slog.Int("max_host_retries", o.MaxHostRetries),
		slog.Duration("base_retry_interval", o.BaseRetryInterval),
		slog.Float64("retry_interval_mult", o.RetryIntervalMult),
		slog.Duration("max_retry_interval", o.MaxRetryInterval),
		slog.Bool("query_all", o.QueryAll),
		slog.Int("pipeline_auto_flush", o.PipelineAutoFlush),
		slog.Duration("idle_timeout", o.IdleTimeout),
		slog.String("ring", o.Ring),
		slog.Bool("hash_tags", o.HashTags),
		slog.String("username", o.Username),
		slog.String("password", o.printable().Password),
		slog.Duration("dial_timeout", o.DialTimeout),
		slog.Duration("read_timeout", o.ReadTimeout),
		slog.Duration("write_timeout", o.WriteTimeout),
		slog.Int("pool_size", o.PoolSize),
		slog.Group("metrics",
			slog.String("period", o.Metrics.Period),
			slog.String("journal", o.Metrics.Journal),
			slog.Int("retention", o.Metrics.Retention)),
		slog.Bool("tls_config", o.TLSConfig != nil),
	}
	if f := o.TLS; f != nil {
		attrs = append(attrs, slog.Group("tls",
			slog.String("ca_file", f.CAFile),
			slog.String("cert_file", f.CertFile),
			slog.String("key_file", f.KeyFile),
			slog.String("server_name", f.ServerName),
			slog.Bool("insecure_skip_verify", f.InsecureSkipVerify)))
	}
	return slog.GroupValue(attrs...)
}

// String formats the files as %+v would; a nil *TLSFiles prints as <nil>.
func (f TLSFiles) String() string {
	type plain TLSFiles
	return fmt.Sprintf("%+v", plain(f))
}

// LogValue logs the nodes and the options, with the password redacted. A
// Config printed with fmt is redacted too, by Options.String.
func (cfg Config) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("nodes", cfg.Nodes), slog.Any("options", cfg.Options))
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
	if err := secondsToDurations(root.Content[0]); err != nil {
		return Config{}, err
	}
	if err := unknownField(root.Content[0], reflect.TypeFor[Config](), "", map[aliased]bool{}); err != nil {
		return Config{}, err
	}

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
	// A document of only a null ("---", "~") re-encodes as nothing: EOF.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// unknownField returns an error that names the first key of n that no
// field of t takes, by its path ("options.tls.ca_fle") and its line in the
// document, or a key that is not a string; else nil. t is a struct, or maps,
// slices and pointers leading to one; a node of another shape than t is left
// to the decoder to report. An anchored node is walked once per type however
// many aliases name it (seen), so that a document of aliases of aliases
// takes no longer than its size.
func unknownField(n *yaml.Node, t reflect.Type, path string, seen map[aliased]bool) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if seen[aliased{n.Alias, t}] {
			return nil
		}
		seen[aliased{n.Alias, t}] = true
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var fields map[string]reflect.Type
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if err := unknownField(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), seen); err != nil {
				return err
			}
		}
		return nil
	case n.Kind != yaml.MappingNode:
		return nil
	case t.Kind() == reflect.Struct:
		fields = yamlFields(t)
	case t.Kind() != reflect.Map:
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" { // "<<: *defaults" merges mappings into this one
			sources := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				sources = v.Content
			}
			for _, src := range sources {
				if err := unknownField(src, t, path, seen); err != nil {
					return err
				}
			}
			continue
		}
		name, ok := keyName(k)
		if !ok {
			return fmt.Errorf("%w: %s: the key at line %d is not a string", ErrInvalidConfig, pathOrTop(path), k.Line)
		}
		elem := t
		if fields != nil {
			if elem, ok = fields[name]; !ok {
				return fmt.Errorf("%w: %s: unknown field (line %d)", ErrInvalidConfig, pathAt(path, name), k.Line)
			}
		} else {
			elem = t.Elem()
		}
		if err := unknownField(v, elem, pathAt(path, name), seen); err != nil {
			return err
		}
	}
	return nil
}

// keyName returns the string a mapping key stands for, through an alias,
// and false for a key that is not a scalar (a list or a mapping).
func keyName(k *yaml.Node) (string, bool) {
	if k.Kind == yaml.AliasNode {
		k = k.Alias
	}
	if k == nil || k.Kind != yaml.ScalarNode {
		return "", false
	}
	var name string
	if err := k.Decode(&name); err != nil {
		return k.Value, true
	}
	return name, true
}

// pathAt returns the path of key under path: "options.tls", or
// nodes["a.b"] for a key that is empty or holds a dot.
func pathAt(path, key string) string {
	switch {
	case key == "" || strings.Contains(key, "."):
		return fmt.Sprintf("%s[%q]", path, key)
	case path == "":
		return key
	}
	return path + "." + key
}

// pathOrTop returns path, or "top level" for the document's root.
func pathOrTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// aliased is an anchored node walked as a type.
type aliased struct {
	node *yaml.Node
	t    reflect.Type
}

// yamlFields returns the fields of struct type t by their YAML keys.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// secondsToDurations rewrites numeric duration options (seconds, as in the
// Perl configuration) into duration strings. A number of seconds beyond
// what a time.Duration holds (about 292 years) is an error.
func secondsToDurations(doc *yaml.Node) error {
	options := mappingValue(doc, "options")
	if options == nil || options.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(options.Content); i += 2 {
		key, val := options.Content[i], options.Content[i+1]
		if !slices.Contains(durationOptions, key.Value) || val.Kind != yaml.ScalarNode {
			continue
		}
		if val.Tag != "!!int" && val.Tag != "!!float" {
			continue
		}
		secs, err := strconv.ParseFloat(val.Value, 64)
		if err != nil {
			continue // the decoder reports it
		}
		if math.Abs(secs) >= maxDurationSeconds {
			return fmt.Errorf("%w: options.%s: %s seconds is out of range", ErrInvalidConfig, key.Value, val.Value)
		}
		val.Value = time.Duration(secs * float64(time.Second)).String()
		val.Tag = "!!str"
		val.Style = 0
	}
	return nil
}

// maxDurationSeconds bounds a duration given in seconds: the longest
// time.Duration, rounded down to a power of two that float64 holds exactly.
const maxDurationSeconds = 1 << 33 // 272 years

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
	opts := cfg.Options
	if opts.TLS != nil {
		files := *opts.TLS
		opts.TLS = &files
	}
	return Config{Nodes: nodes, Options: opts}
}
