package federated_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
)

func TestParseConfigYAMLAndJSON(t *testing.T) {
	yamlDoc := `
nodes:
  redis_1: { address: "db1:63790" }
  redis_2: { addresses: ["db1:63791", "db2:63791"] }
options:
  command_timeout: 1.5
  max_host_retries: 4
  base_retry_interval: 250ms
  retry_interval_mult: 3
  max_retry_interval: 600
  query_all: true
  idle_timeout: 0
  ring: perl
`
	jsonDoc := `{
  "nodes": {
    "redis_1": {"address": "db1:63790"},
    "redis_2": {"addresses": ["db1:63791", "db2:63791"]}
  },
  "options": {"command_timeout": 1.5, "max_host_retries": 4, "base_retry_interval": "250ms",
              "retry_interval_mult": 3, "max_retry_interval": 600, "query_all": true, "ring": "perl"}
}`
	want := federated.Config{
		Nodes: map[string]federated.Node{
			"redis_1": {Address: "db1:63790"},
			"redis_2": {Addresses: []string{"db1:63791", "db2:63791"}},
		},
		Options: federated.Options{
			CommandTimeout:    1500 * time.Millisecond,
			MaxHostRetries:    4,
			BaseRetryInterval: 250 * time.Millisecond,
			RetryIntervalMult: 3,
			MaxRetryInterval:  600 * time.Second,
			QueryAll:          true,
			Ring:              federated.RingPerl,
		},
	}
	// The Perl configuration writes booleans as 0 and 1.
	perlDoc := strings.Replace(yamlDoc, "query_all: true", "query_all: 1", 1)
	for name, doc := range map[string]string{"yaml": yamlDoc, "json": jsonDoc, "perl": perlDoc} {
		t.Run(name, func(t *testing.T) {
			got, err := federated.ParseConfig([]byte(doc))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
	off, err := federated.ParseConfig([]byte(strings.Replace(yamlDoc, "query_all: true", "query_all: 0", 1)))
	require.NoError(t, err)
	assert.False(t, off.Options.QueryAll)
	_, err = federated.ParseConfig([]byte(strings.Replace(yamlDoc, "query_all: true", "query_all: 2", 1)))
	require.ErrorContains(t, err, "query_all", "a number other than 0 and 1 is no boolean")
}

func TestLoadConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fed.yaml")
	require.NoError(t, os.WriteFile(path, []byte("nodes:\n  a: {address: \"127.0.0.1:1\"}\n"), 0o600))
	cfg, err := federated.LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1", cfg.Nodes["a"].Address)

	_, err = federated.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "missing.yaml")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("nodes:\n  a: {address: \"127.0.0.1:1\"}\noptions:\n  comand_timeout: 1\n"), 0o600))
	_, err = federated.LoadConfig(bad)
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "bad.yaml")
	assert.Contains(t, err.Error(), "comand_timeout")
	assert.Contains(t, err.Error(), "line 4")
}

func TestBadConfigs(t *testing.T) {
	one := map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}}
	tests := []struct {
		name string
		cfg  federated.Config
		want []string // substrings of the error
	}{
		{"no nodes", federated.Config{}, []string{"no nodes"}},
		{"neither address", federated.Config{Nodes: map[string]federated.Node{"a": {}}}, []string{"nodes.a", "neither"}},
		{"both addresses", federated.Config{Nodes: map[string]federated.Node{"a": {Address: "h:1", Addresses: []string{"h:2"}}}}, []string{"nodes.a", "both"}},
		{"empty node name", federated.Config{Nodes: map[string]federated.Node{"": {Address: "h:1"}}}, []string{"empty node name"}},
		{"empty address in group", federated.Config{Nodes: map[string]federated.Node{"a": {Addresses: []string{"h:1", ""}}}}, []string{"nodes.a.addresses[1]", "empty address"}},
		{"no port", federated.Config{Nodes: map[string]federated.Node{"a": {Address: "localhost"}}}, []string{"nodes.a.address", `"localhost"`}},
		{"no host", federated.Config{Nodes: map[string]federated.Node{"a": {Address: ":6379"}}}, []string{"nodes.a.address", "no host"}},
		{"zero-width space in the host", federated.Config{Nodes: map[string]federated.Node{"a": {Address: "127.0.0.1\u200b:6379"}}},
			[]string{"nodes.a.address", "the host has an unreadable character: invisible format character U+200B at byte 9"}},
		{"no-break space in the host", federated.Config{Nodes: map[string]federated.Node{"a": {Address: "db1\u00a0:6379"}}},
			[]string{"nodes.a.address", "non-ASCII space U+00A0 at byte 3"}},
		{"bad port", federated.Config{Nodes: map[string]federated.Node{"a": {Address: "h:99999"}}}, []string{"nodes.a.address", `port "99999" is not a number`}},
		{"word port", federated.Config{Nodes: map[string]federated.Node{"a": {Address: "h:redis"}}}, []string{"nodes.a.address", `port "redis" is not a number`}},
		{"URL with credentials", federated.Config{Nodes: map[string]federated.Node{"a": {Address: "redis://u:pw@h:1"}}}, []string{"nodes.a.address", `"[REDACTED]@h:1"`, "credentials", "options.password"}},
		{"URL", federated.Config{Nodes: map[string]federated.Node{"a": {Address: "redis://h:1"}}}, []string{"nodes.a.address", `"redis://h:1": not host:port: a URL`}},
		{"server in two nodes", federated.Config{Nodes: map[string]federated.Node{
			"a": {Address: "h:1"}, "b": {Addresses: []string{"h:2", "h:1"}}}}, []string{"nodes.b.addresses[1]", "h:1", "already in node a"}},
		{"server twice in a group", federated.Config{Nodes: map[string]federated.Node{
			"a": {Addresses: []string{"h:1", "h:1"}}}}, []string{"nodes.a.addresses[1]", "listed twice"}},
		{"negative timeout", federated.Config{Nodes: one, Options: federated.Options{CommandTimeout: -time.Second}}, []string{"options.command_timeout", "-1s"}},
		{"negative retry interval", federated.Config{Nodes: one, Options: federated.Options{BaseRetryInterval: -1}}, []string{"options.base_retry_interval"}},
		{"negative max interval", federated.Config{Nodes: one, Options: federated.Options{MaxRetryInterval: -1}}, []string{"options.max_retry_interval"}},
		{"negative idle", federated.Config{Nodes: one, Options: federated.Options{IdleTimeout: -1}}, []string{"options.idle_timeout"}},
		{"negative retries", federated.Config{Nodes: one, Options: federated.Options{MaxHostRetries: -2}}, []string{"options.max_host_retries", "-2"}},
		{"multiplier below 1", federated.Config{Nodes: one, Options: federated.Options{RetryIntervalMult: 0.5}}, []string{"options.retry_interval_mult", "0.5"}},
		{"unknown ring", federated.Config{Nodes: one, Options: federated.Options{Ring: "ketama"}}, []string{"options.ring", `"ketama"`}},
		{"negative pool", federated.Config{Nodes: one, Options: federated.Options{PoolSize: -1}}, []string{"options.pool_size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := federated.New(tt.cfg)
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			require.Nil(t, c)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestBadConfigFiles(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"empty", "", "empty document"},
		{"unknown top key", "nodez: {}\n", "nodez: unknown field (line 1)"},
		{"unknown node key", "nodes:\n  a: {adress: \"h:1\"}\n", "nodes.a.adress: unknown field (line 2)"},
		{"unknown option", "# the fleet\nnodes:\n  a: {address: \"h:1\"}\n\noptions:\n  command_timeout: 1\n  bogus: 1\n", "options.bogus: unknown field (line 7)"},
		{"unknown TLS key", "nodes:\n  a: {address: \"h:1\"}\noptions:\n  tls:\n    ca_fle: x\n", "options.tls.ca_fle: unknown field (line 5)"},
		{"unknown metrics key", "nodes:\n  a: {address: \"h:1\"}\noptions: {metrics: {perod: day}}\n", "options.metrics.perod: unknown field (line 3)"},
		{"unknown key merged into a node", "nodes:\n  a: {<<: {bogus: 1}, address: \"h:1\"}\n", "nodes.a.bogus: unknown field (line 2)"},
		{"a list as a key", "nodes: {<<: {}, [x]: {address: \"h:1\"}}\n", "nodes: the key at line 1 is not a string"},
		{"a mapping as a key", "<<: {}\n? {x: 1}\n: 1\n", "top level: the key at line 2 is not a string"},
		{"a node name with a dot", "nodes:\n  a.b: {address: \"h:1\", bogus: 1}\n", `nodes["a.b"].bogus: unknown field (line 2)`},
		{"a null key", "~: 1\nnodes:\n  a: {address: \"h:1\"}\n", "top level: the key at line 1 is empty (null) (line 1)"},
		{"unknown key in JSON", `{"nodes": {"a": {"address": "h:1"}}, "options": {"pool_sise": 3}}`, "options.pool_sise: unknown field (line 1)"},
		{"bad duration", "nodes:\n  a: {address: \"h:1\"}\noptions:\n  command_timeout: soon\n", "soon"},
		{"not yaml", "nodes: [\n", "did not find expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := federated.ParseConfig([]byte(tt.doc))
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// Anchors, aliases and merge keys are YAML, and a file may use them.
func TestConfigWithMergeKeys(t *testing.T) {
	cfg, err := federated.ParseConfig([]byte("nodes:\n  a: &a {address: \"h:1\"}\n  b: {<<: *a, address: \"h:2\"}\n"))
	require.NoError(t, err)
	assert.Equal(t, "h:2", cfg.Nodes["b"].Address)

	// A merge into the map of nodes, and a key given by an alias.
	cfg, err = federated.ParseConfig([]byte("nodes:\n  a: {address: \"h:1\"}\n  <<: {b: {address: \"h:2\"}}\n" +
		"options: {metrics: {journal: &k pool_size}, *k : 3}\n"))
	require.NoError(t, err)
	assert.Equal(t, "h:2", cfg.Nodes["b"].Address)
	assert.Equal(t, 3, cfg.Options.PoolSize)
}

func TestDefaults(t *testing.T) {
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}}})
	o := c.Options()
	assert.Equal(t, federated.DefaultCommandTimeout, o.CommandTimeout)
	assert.Equal(t, 3, o.MaxHostRetries)
	assert.Equal(t, 2*time.Second, o.BaseRetryInterval)
	assert.Equal(t, 2.0, o.RetryIntervalMult)
	assert.Equal(t, 600*time.Second, o.MaxRetryInterval)
	assert.Equal(t, time.Duration(0), o.IdleTimeout)
	assert.False(t, o.QueryAll)
	assert.Equal(t, federated.RingConsistent, o.Ring)
	assert.NotNil(t, o.Logger)
}

func TestConfigIsCopied(t *testing.T) {
	nodes := map[string]federated.Node{"a": {Addresses: []string{"127.0.0.1:7000", "127.0.0.1:7001"}}}
	c := newClient(t, federated.Config{Nodes: nodes})
	nodes["a"].Addresses[0] = "127.0.0.1:9999"
	nodes["b"] = federated.Node{Address: "127.0.0.1:7002"}
	got, err := c.AllServers("a")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:7000", "127.0.0.1:7001"}, got)
	assert.Equal(t, []string{"a"}, c.Nodes())
}

// A number of seconds, or 0 and 1 for a boolean, is taken however the
// decoder reaches it: through a merge key, a key given by an alias, or a
// value that is an alias of a number another field holds too.
func TestConfigNumbersThroughMergesAndAliases(t *testing.T) {
	const node = "nodes:\n  a: {address: \"h:1\"}\n"
	for _, tt := range []struct {
		doc  string
		want federated.Options
	}{
		{node + "options: {<<: {command_timeout: 5}}\n", federated.Options{CommandTimeout: 5 * time.Second}},
		{node + "options:\n  <<: [{query_all: 1}, {max_retry_interval: 2.5}]\n  hash_tags: 1\n",
			federated.Options{QueryAll: true, MaxRetryInterval: 2500 * time.Millisecond, HashTags: true}},
		{node + "options:\n  <<: {<<: {read_timeout: 0.25}}\n", federated.Options{ReadTimeout: 250 * time.Millisecond}},
		{node + "options: {metrics: {journal: &k command_timeout}, *k : 3}\n",
			federated.Options{CommandTimeout: 3 * time.Second, Metrics: federated.MetricsOptions{Journal: "command_timeout"}}},
		{node + "options: {metrics: {journal: &k no_health_check}, *k : 1}\n",
			federated.Options{NoHealthCheck: true, Metrics: federated.MetricsOptions{Journal: "no_health_check"}}},
		{node + "options: {pool_size: &n 5, command_timeout: *n, dial_timeout: *n}\n",
			federated.Options{PoolSize: 5, CommandTimeout: 5 * time.Second, DialTimeout: 5 * time.Second}},
		{node + "options: {max_host_retries: &one 1, query_all: *one}\n", federated.Options{MaxHostRetries: 1, QueryAll: true}},
		{node + "options: {command_timeout: &t 2, read_timeout: *t}\n", federated.Options{CommandTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second}},
		// Options' own key wins over a merged one, and the first merged
		// mapping over the next: what they override is not read, not even
		// to refuse it.
		{node + "options: {<<: {command_timeout: 5}, command_timeout: 7}\n", federated.Options{CommandTimeout: 7 * time.Second}},
		{node + "options: {<<: {command_timeout: -1}, command_timeout: 2}\n", federated.Options{CommandTimeout: 2 * time.Second}},
		{node + "options: {<<: [{read_timeout: 3}, {read_timeout: 1e-10}]}\n", federated.Options{ReadTimeout: 3 * time.Second}},
		{node + "options: {<<: {dial_timeout: 1e30}, dial_timeout: 1}\n", federated.Options{DialTimeout: time.Second}},
	} {
		cfg, err := federated.ParseConfig([]byte(tt.doc))
		require.NoError(t, err, "ParseConfig(%q)", tt.doc)
		assert.Equal(t, tt.want, cfg.Options, "ParseConfig(%q)", tt.doc)
	}
}

// Node names are compared byte for byte, as Config.Nodes documents: "café"
// in NFC and in NFD look alike but are two nodes. (The module does not
// depend on golang.org/x/text, which normalising them would take.)
func TestNodeNamesComparedByteForByte(t *testing.T) {
	const nfc, nfd = "caf\u00e9", "cafe\u0301"
	cfg, err := federated.ParseConfig([]byte("nodes:\n  " + nfc + ": {address: \"h:1\"}\n  " + nfd + ": {address: \"h:2\"}\n"))
	require.NoError(t, err)
	assert.Len(t, cfg.Nodes, 2, "got %q, want the NFC and the NFD name apart", cfg.Nodes)
	assert.Equal(t, "h:1", cfg.Nodes[nfc].Address)
	assert.Equal(t, "h:2", cfg.Nodes[nfd].Address)
}

// SameServer compares addresses as Validate does where it refuses a server
// in two nodes.
func TestSameServer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"db1:6379", "DB1:6379", true},
		{"db1.:6379", "db1:06379", true},
		{"localhost:7000", "127.0.0.1:7000", true},
		{"[::1]:7000", "127.0.0.1:7000", true},
		{"[::ffff:10.0.0.1]:1", "10.0.0.1:1", true},
		{"db1:6379", "db1:6380", false},
		{"db1:6379", "10.0.0.1:6379", false}, // no DNS
		{"db1", "db1", false},                // not host:port
	} {
		assert.Equal(t, tc.same, federated.SameServer(tc.a, tc.b), "%s %s", tc.a, tc.b)
		assert.Equal(t, tc.same, federated.SameServer(tc.b, tc.a), "%s %s", tc.b, tc.a)
	}
}

// A FIFO nobody writes, given for the federation file or a TLS file,
// fails at once: open(2) waited for a writer, which no cancel nor handled
// SIGTERM ended. One with a writer is read as ever.
func TestConfigFilesThatAreFIFOs(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 2)
	go func() {
		_, err := federated.LoadConfig(fifo)
		done <- err
	}()
	go func() {
		_, err := federated.ParseConfig([]byte("nodes:\n  a: {address: \"127.0.0.1:7001\"}\noptions: {tls: {ca_file: " + fifo + "}}\n"))
		done <- err
	}()
	for range 2 {
		select {
		case err := <-done:
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
		case <-time.After(5 * time.Second):
			t.Fatal("reading a FIFO nobody writes waited for a writer")
		}
	}

	// A writer waiting in open(2) counts as one: the reader waits for
	// what it writes. It writes until told to stop: one that opened as
	// a reader that found no writer was closing wrote for nobody.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			select {
			case <-stop:
				_ = w.Close()
				return
			default:
			}
			_, _ = w.WriteString("nodes:\n  a: {address: \"127.0.0.1:7001\"}\n")
			_ = w.Close()
		}
	}()
	defer func() {
		close(stop)
		if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			<-stopped // the writer waiting in open(2) is let go
			_ = r.Close()
		}
	}()
	// A read before the writer came reads nothing; the writer, waiting
	// for a reader, is there for the next.
	require.Eventually(t, func() bool {
		cfg, err := federated.LoadConfig(fifo)
		return err == nil && cfg.Nodes["a"].Address == "127.0.0.1:7001"
	}, 5*time.Second, 20*time.Millisecond, "a FIFO with a writer is read")
}
