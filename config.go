package federated

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
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
	// DefaultHealthCheckInterval is how often up servers are pinged: a
	// server that dies is marked down within about this plus the command
	// timeout, whether or not commands go to it.
	DefaultHealthCheckInterval = time.Second
)

// Floors of the duration options. A duration that is set (zero means the
// default) must be at least its floor: below it the client cannot do what
// the option asks, and would spin or fail instead.
const (
	// MinTimeout is the floor of CommandTimeout, DialTimeout, ReadTimeout
	// and WriteTimeout. Below a millisecond not even a round trip to a
	// server on the same host fits with the scheduling delays of a busy
	// one, so every command would time out and mark its server down.
	MinTimeout = time.Millisecond
	// MinRetryInterval is the floor of BaseRetryInterval and
	// MaxRetryInterval. A down server is dialed, and its failure logged,
	// once an interval; with an interval of a nanosecond the re-check loop
	// spins, with thousands of dials and log lines a second per server.
	MinRetryInterval = 10 * time.Millisecond
	// MinIdleTimeout is the floor of IdleTimeout. A connection unused for
	// less is between two commands of one burst, not idle, and closing it
	// would cost a dial for nearly every command.
	MinIdleTimeout = 100 * time.Millisecond
)

// MaxPoolSize bounds PoolSize. go-redis sets aside a slot for every
// connection of a pool when it makes a server's client, before any dial
// (a pool of 50 million took 763 MB for two servers), and panics above
// 2^31-1; and a Redis server takes 10000 clients by default (maxclients),
// so a larger pool to one server could not be filled anyway.
const MaxPoolSize = 10_000

// Names of the rings a federation can hash keys with.
const (
	// RingConsistent is the default ring: bounded-load consistent hashing
	// over xxhash, placing keys as github.com/buraksezer/consistent does.
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
	// A name is printed in every log line about its servers, so it must
	// read as what it is: not blank, no white space at either end, valid
	// UTF-8, and none of the characters a metric's host may not hold
	// (controls, invisible and bidirectional format characters, line and
	// paragraph separators, spaces other than U+0020). Names are
	// compared, and hashed, byte for byte, as the Perl module does: case
	// counts ("redis_1" and "Redis_1" are two nodes, so a name's case
	// changed in a file moves its keys), and there is no Unicode
	// normalisation: "café" written with U+00E9 (NFC) and with "e" and
	// the combining U+0301 (NFD) look alike but are two nodes, placed
	// apart on the ring.
	Nodes map[string]Node `yaml:"nodes" json:"nodes"`
	// Options tune timeouts, retries and connections.
	Options Options `yaml:"options" json:"options"`
}

// Node is one slot on the ring: a single server (Address) or a replica group
// of servers holding copies of the same data (Addresses). Exactly one of the
// two is set. A server is in one node only, however its address is spelt:
// host names compare without case or a trailing dot, IP addresses by
// value, and localhost, 127.0.0.1 and ::1 are one host; other names are
// not resolved (no DNS at New), so a name and its IP address are two
// servers to Validate.
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
	// answer in time is marked down. Default 1s; at least MinTimeout.
	CommandTimeout time.Duration `yaml:"command_timeout" json:"command_timeout"`
	// MaxHostRetries is how many times a down server is re-checked at
	// BaseRetryInterval before the interval starts to grow. Default 3.
	MaxHostRetries int `yaml:"max_host_retries" json:"max_host_retries"`
	// BaseRetryInterval is the first interval between checks of a down
	// server. Default 2s; at least MinRetryInterval, and at most
	// MaxRetryInterval.
	BaseRetryInterval time.Duration `yaml:"base_retry_interval" json:"base_retry_interval"`
	// RetryIntervalMult multiplies the interval after each further failed
	// check; it must be at least 1. Default 2.
	RetryIntervalMult float64 `yaml:"retry_interval_mult" json:"retry_interval_mult"`
	// MaxRetryInterval caps the interval between checks. Default 600s; at
	// least MinRetryInterval and BaseRetryInterval.
	MaxRetryInterval time.Duration `yaml:"max_retry_interval" json:"max_retry_interval"`
	// QueryAll sends every command to every server of its node's group
	// instead of the current one (as DoAll does: a server marked down is
	// not asked, and its callback gets its ErrServerDown), but for a
	// transaction, which goes to the current server only (see
	// Client.SetQueryAll). Default off.
	QueryAll bool `yaml:"query_all" json:"query_all"`
	// PipelineAutoFlush makes a pipeline send its queue as soon as one node
	// has this many commands queued, so memory stays bounded however much
	// is queued between two Polls. Default 0: only Poll sends.
	PipelineAutoFlush int `yaml:"pipeline_auto_flush" json:"pipeline_auto_flush"`
	// IdleTimeout closes connections idle for longer. Default 0: no limit,
	// as in the Perl module, so that the connections a burst opened (up
	// to PoolSize a server) stay open; go-redis's own default is 30
	// minutes. At least MinIdleTimeout when set.
	IdleTimeout time.Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// HealthCheckInterval is how often every up server is sent a PING in
	// the background (as go-redis's Ring does), so that a server that
	// dies, or stops answering, is marked down within about the interval
	// plus CommandTimeout even when no command goes to it: a group's
	// standby, an idle node. Default 1s; at least MinRetryInterval.
	HealthCheckInterval time.Duration `yaml:"health_check_interval" json:"health_check_interval"`
	// NoHealthCheck turns the background PINGs off: a server is then
	// marked down only when a command finds it failing.
	NoHealthCheck bool `yaml:"no_health_check" json:"no_health_check"`

	// Ring names the hash ring: RingConsistent (default) or RingPerl.
	Ring string `yaml:"ring" json:"ring"`
	// NewRing, if set, builds the ring over the names of the nodes, in
	// place of the one Ring names: a placement of your own, as go-redis's
	// RingOptions.NewConsistentHash. It is called by New and again, with
	// the new names, by AddNode, RemoveNode and SetNodes (when the names
	// change); it must place a key the
	// same way whatever order the names come in. Ring must then be empty.
	NewRing func(nodes []string) (Ring, error) `yaml:"-" json:"-"`
	// HashTags makes a key's {tag}, as in Redis Cluster, the string that is
	// hashed, so "{user1}.a" and "{user1}.b" share a node. A metric key
	// ($period:$host:$metric) is hashed whole all the same: a Prometheus
	// series names its labels in braces. Off by default, since the Perl
	// module does not do it.
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
	// DialTimeout bounds a connection attempt. Default: CommandTimeout; at
	// least MinTimeout.
	DialTimeout time.Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound socket reads and writes of a call
	// whose context has no deadline. Default: CommandTimeout; at least
	// MinTimeout.
	ReadTimeout  time.Duration `yaml:"read_timeout" json:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout" json:"write_timeout"`
	// PoolSize is the most connections kept to each server, pipelines'
	// included; a down server's re-check dials one of its own. Default:
	// go-redis's (10 per GOMAXPROCS); at most MaxPoolSize.
	PoolSize int `yaml:"pool_size" json:"pool_size"`

	// Metrics configures the metric schema that writers, readers, syncers
	// and retention share.
	Metrics MetricsOptions `yaml:"metrics" json:"metrics"`

	// TLSConfig, when set, makes every connection use TLS. It takes
	// precedence over TLS.
	TLSConfig *tls.Config `yaml:"-" json:"-"`
	// Hooks are added to the go-redis client of every server, after the
	// client's own health hook, the clients made when servers come back up
	// included: each sees every server a command is sent to (see
	// Client.AddHook).
	Hooks []redis.Hook `yaml:"-" json:"-"`
	// OnNewClient, if set, is called with every go-redis client the client
	// makes for a server's commands: one per new server at New, AddNode,
	// ReplaceNode and SetNodes, and a fresh one each time a server comes
	// back up (not the client of a server's subscriptions, made at its
	// first, which Hooks reach). Instrument it there, e.g. with
	// redisotel.InstrumentTracing, so that what recovered servers run is
	// instrumented too. The client it replaces is closed; redisotel's
	// InstrumentMetrics goes on reporting a closed client until the
	// channel given to its WithCloseChan is closed, so close the previous
	// one's when a new client comes for the same address (and that of an
	// address no longer in Client.Servers, and all after Close). For an
	// address, the last client it was given is the one in use. It must not
	// block, nor call the client's AddNode, RemoveNode, ReplaceNode,
	// SetNodes, MarkServerUp, MarkServerDown, AddHook, AddServerHook or
	// Close, which wait for it.
	OnNewClient func(addr string, rc *redis.Client) `yaml:"-" json:"-"`
	// Logger receives server down and up events. Default: slog.Default().
	// When set, go-redis's own log lines (a failed dial, a pool's
	// trouble) go there too, at Warn level with source "go-redis": go-redis
	// has one logger per process, so the Logger of the client made last
	// takes them.
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
	v := validator{}
	cfg, err := f.build(v)
	return cfg, v.finish(err, nil)
}

// build does the work of tlsConfig; a refusal is a *fieldError worded by v.
func (f TLSFiles) build(v validator) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify,
	}
	field := func(name string) fieldPath { return fieldPath{"options", "tls", name} }
	if f.CAFile != "" {
		pem, err := readPEMFile(f.CAFile)
		if err != nil {
			return nil, v.fail(field("ca_file"), "%s: %v", v.quote(f.CAFile), err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, v.fail(field("ca_file"), "%s holds no PEM certificate", v.quote(f.CAFile))
		}
	}
	switch {
	case f.CertFile == "" && f.KeyFile == "":
		return cfg, nil
	case f.KeyFile == "":
		return nil, v.fail(field("key_file"), "not set, but cert_file is (%s)", v.quote(f.CertFile))
	case f.CertFile == "":
		return nil, v.fail(field("cert_file"), "not set, but key_file is (%s)", v.quote(f.KeyFile))
	}
	certPEM, err := readPEMFile(f.CertFile)
	if err != nil {
		return nil, v.fail(field("cert_file"), "%s: %v", v.quote(f.CertFile), err)
	}
	keyPEM, err := readPEMFile(f.KeyFile)
	if err != nil {
		return nil, v.fail(field("key_file"), "%s: %v", v.quote(f.KeyFile), err)
	}
	// The error of X509KeyPair describes the PEM blocks, never their bytes.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, v.fail(field("key_file"), "%s is not the key of options.tls.cert_file %s: %v",
			v.quote(f.KeyFile), v.quote(f.CertFile), err)
	}
	cfg.Certificates = []tls.Certificate{pair}
	return cfg, nil
}

// openFile opens path for reading without waiting for a writer: open(2)
// of a FIFO that nobody writes waits for one, where no cancel, and no
// SIGTERM handled by the process, reaches. Reads then block again (Fd
// clears O_NONBLOCK), so that a FIFO or pipe with a writer (a shell's
// <(...)) is read as it comes, and one without reads as empty.
func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	f.Fd()
	return f, nil
}

// readPEMFile reads a regular file of at most maxPEMFile bytes, so that a
// path such as /dev/zero or a FIFO fails instead of hanging. Its errors do
// not repeat the path, which the caller prints.
func readPEMFile(path string) ([]byte, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, withoutPath(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, withoutPath(err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", info.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, withoutPath(err)
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("larger than %d bytes", maxPEMFile)
	}
	return data, nil
}

// withoutPath returns the cause of a file error without the path that
// *fs.PathError prints.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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

// durationOption is an option that is a duration: its key in a file, where
// it may be a number of seconds as in the Perl configuration, its field,
// and the least value it may be set to.
type durationOption struct {
	key   string
	field func(*Options) *time.Duration
	floor time.Duration
}

// durationOptions are every duration option.
var durationOptions = []durationOption{
	{"command_timeout", func(o *Options) *time.Duration { return &o.CommandTimeout }, MinTimeout},
	{"base_retry_interval", func(o *Options) *time.Duration { return &o.BaseRetryInterval }, MinRetryInterval},
	{"max_retry_interval", func(o *Options) *time.Duration { return &o.MaxRetryInterval }, MinRetryInterval},
	{"idle_timeout", func(o *Options) *time.Duration { return &o.IdleTimeout }, MinIdleTimeout},
	{"health_check_interval", func(o *Options) *time.Duration { return &o.HealthCheckInterval }, MinRetryInterval},
	{"dial_timeout", func(o *Options) *time.Duration { return &o.DialTimeout }, MinTimeout},
	{"read_timeout", func(o *Options) *time.Duration { return &o.ReadTimeout }, MinTimeout},
	{"write_timeout", func(o *Options) *time.Duration { return &o.WriteTimeout }, MinTimeout},
}

// durationOptionOf returns the duration option of an Options key in a
// file, and false for a key that is not a duration.
func durationOptionOf(key string) (durationOption, bool) {
	i := slices.IndexFunc(durationOptions, func(o durationOption) bool { return o.key == key })
	if i < 0 {
		return durationOption{}, false
	}
	return durationOptions[i], true
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
		slog.Duration("health_check_interval", o.HealthCheckInterval),
		slog.Bool("no_health_check", o.NoHealthCheck),
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
			slog.Int("retention", o.Metrics.Retention),
			slog.Int("copies", o.Metrics.Copies)),
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

// withDefaults returns a copy of the options with every zero field set to its
// default.
func (o Options) withDefaults() Options {
	if o.CommandTimeout == 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.HealthCheckInterval == 0 {
		o.HealthCheckInterval = DefaultHealthCheckInterval
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
	if o.Ring == "" && o.NewRing == nil {
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
