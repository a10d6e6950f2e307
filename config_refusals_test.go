package federated_test

import (
	"encoding/base64"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
)

// A configuration the client cannot honour is refused, by New as by
// ParseConfig, with an error that names the field and says what is wrong.

// refuseConfig checks that New refuses cfg with an error that wraps
// ErrInvalidConfig and holds every piece of want.
func refuseConfig(t *testing.T, cfg federated.Config, want ...string) {
	t.Helper()
	c, err := federated.New(cfg)
	require.ErrorIs(t, err, federated.ErrInvalidConfig, "New: got %v, want ErrInvalidConfig", err)
	require.Nil(t, c)
	for _, w := range want {
		assert.Contains(t, err.Error(), w, "error: got %q, want it to hold %q", err, w)
	}
}

func TestDurationFloors(t *testing.T) {
	one := map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}}
	tests := []struct {
		name string
		opts federated.Options
		want []string
	}{
		{"base retry interval of 1ns", federated.Options{BaseRetryInterval: time.Nanosecond},
			[]string{"options.base_retry_interval: 1ns is below the floor of 10ms (0 means the default)"}},
		{"base retry interval under the floor", federated.Options{BaseRetryInterval: federated.MinRetryInterval - 1},
			[]string{"options.base_retry_interval: 9.999999ms is below the floor of 10ms"}},
		{"max retry interval under the floor", federated.Options{BaseRetryInterval: time.Millisecond, MaxRetryInterval: time.Millisecond},
			[]string{"options.base_retry_interval: 1ms"}},
		{"max retry interval alone under the floor", federated.Options{MaxRetryInterval: 5 * time.Millisecond},
			[]string{"options.max_retry_interval: 5ms is below the floor of 10ms"}},
		{"command timeout", federated.Options{CommandTimeout: time.Microsecond},
			[]string{"options.command_timeout: 1µs is below the floor of 1ms"}},
		{"dial timeout", federated.Options{DialTimeout: 999 * time.Microsecond},
			[]string{"options.dial_timeout: 999µs is below the floor of 1ms"}},
		{"read timeout", federated.Options{ReadTimeout: 1}, []string{"options.read_timeout: 1ns is below the floor of 1ms"}},
		{"write timeout", federated.Options{WriteTimeout: 1}, []string{"options.write_timeout: 1ns is below the floor of 1ms"}},
		{"idle timeout", federated.Options{IdleTimeout: time.Millisecond},
			[]string{"options.idle_timeout: 1ms is below the floor of 100ms"}},
		{"max below base", federated.Options{BaseRetryInterval: 5 * time.Second, MaxRetryInterval: time.Second},
			[]string{"options.max_retry_interval: 1s is below base_retry_interval (5s)"}},
		{"max below the default base", federated.Options{MaxRetryInterval: time.Second},
			[]string{"options.max_retry_interval: 1s is below base_retry_interval (2s, its default)"}},
		{"base above the default max", federated.Options{BaseRetryInterval: 20 * time.Minute},
			[]string{"options.base_retry_interval: 20m0s is above max_retry_interval (10m0s, its default)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refuseConfig(t, federated.Config{Nodes: one, Options: tt.opts}, tt.want...)
		})
	}
}

// Zero is the default, and a value at its floor is taken.
func TestDurationFloorsAccepted(t *testing.T) {
	one := map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}}
	for name, opts := range map[string]federated.Options{
		"all zero": {},
		"at the floors": {
			CommandTimeout: federated.MinTimeout, DialTimeout: federated.MinTimeout,
			ReadTimeout: federated.MinTimeout, WriteTimeout: federated.MinTimeout,
			BaseRetryInterval: federated.MinRetryInterval, MaxRetryInterval: federated.MinRetryInterval,
			IdleTimeout: federated.MinIdleTimeout,
		},
		"max equal to the default base":       {MaxRetryInterval: federated.DefaultBaseRetryInterval},
		"base equal to the default max":       {BaseRetryInterval: federated.DefaultMaxRetryInterval},
		"base above the default max, max set": {BaseRetryInterval: time.Hour, MaxRetryInterval: 2 * time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, federated.Config{Nodes: one, Options: opts}.Validate())
		})
	}
}

func TestNodeNamesMustBeReadable(t *testing.T) {
	for _, tt := range []struct {
		name string
		want string
	}{
		{"a\x07", `nodes["a\a"]: the node name has control character U+0007 at byte 1`},
		{"a\nb", `nodes["a\nb"]: the node name has control character U+000A at byte 1`},
		{"redis\u200b1", `nodes["redis\u200b1"]: the node name has invisible format character U+200B at byte 5`},
		{"\u202eredis_1", `nodes["\u202eredis_1"]: the node name has invisible format character U+202E at byte 0`},
		{"redis_1\u2066", "invisible format character U+2066 at byte 7"},
		{"redis\u00a01", "non-ASCII space U+00A0 at byte 5"},
		{"redis\u20281", "line or paragraph separator U+2028 at byte 5"},
		{"\ufeffredis_1", "invisible format character U+FEFF at byte 0"},
		{"a\xff", "invalid UTF-8 at byte 1"},
		{" redis_1", `nodes[" redis_1"]: the node name begins or ends with white space`},
		{"redis_1 ", `nodes["redis_1 "]: the node name begins or ends with white space`},
	} {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			refuseConfig(t, federated.Config{Nodes: map[string]federated.Node{tt.name: {Address: "127.0.0.1:7000"}}}, tt.want)
		})
	}
	// A name a node could be added under at run time is held to the rule too.
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}}, Options: quiet(federated.Options{})})
	err := c.AddNode("b\u200b", federated.Node{Address: "127.0.0.1:7001"})
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "U+200B", "AddNode: got %v, want the character named", err)
}

func TestJournalKeyCollisions(t *testing.T) {
	one := map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}}
	for _, tt := range []struct {
		journal string
		want    string
	}{
		{journal.CursorKey, `options.metrics.journal: "syncer:cursors" is the syncer's hash of cursors`},
		{journal.MarksKey, `options.metrics.journal: "syncer:marks" is the syncer's hash of what it knows`},
		{"2026-11-25:web1:cpu", `options.metrics.journal: "2026-11-25:web1:cpu" begins with a period as a metric key`},
		{"2026-11-25T13:web1:cpu", "begins with a period as a metric key"},
		{"2026-11-25:web1", `so it, "2026-11-25:web1:horizon" and "2026-11-25:web1:origin" would be taken for metric data`},
		{"2026-11-25", `"2026-11-25:horizon"`},
		{"2026-13-45:x", "begins with a period"}, // no real date, but the shape retention looks for
		{"journal\u200b", `options.metrics.journal: "journal\u200b" has invisible format character U+200B at byte 7`},
		{"jour\x00nal", "control character U+0000 at byte 4"},
		{"journal\n", "control character U+000A at byte 7"},
	} {
		t.Run(tt.journal, func(t *testing.T) {
			refuseConfig(t, federated.Config{Nodes: one, Options: federated.Options{Metrics: federated.MetricsOptions{Journal: tt.journal}}}, tt.want)
		})
	}
	for _, journal := range []string{"", "journal", "metrics:journal", "journal:horizon", "syncer:journal", "2026", "j 1"} {
		cfg := federated.Config{Nodes: one, Options: federated.Options{Metrics: federated.MetricsOptions{Journal: journal}}}
		assert.NoError(t, cfg.Validate(), "journal %q", journal)
	}
}

// options.metrics.copies asks every metric write to be applied by that
// many servers of its node's group: more than a node has would fail every
// write to it, and is refused, in Go and in a file, naming the field, the
// node and its servers. Zero is the default, one.
func TestCopiesRefusals(t *testing.T) {
	pair := federated.Node{Addresses: []string{"127.0.0.1:7001", "127.0.0.1:7002"}}
	single := federated.Node{Address: "127.0.0.1:7000"}
	copies := func(n int) federated.Options {
		return federated.Options{Metrics: federated.MetricsOptions{Copies: n}}
	}
	for _, tt := range []struct {
		name  string
		nodes map[string]federated.Node
		opts  federated.Options
		want  string
	}{
		{"negative", map[string]federated.Node{"a": pair}, copies(-1),
			"options.metrics.copies: negative value -1 (0 means the default, 1)"},
		{"a single server", map[string]federated.Node{"a": single}, copies(2),
			"options.metrics.copies: 2 copies of every metric write, but the largest group, node a, has 1 server"},
		{"above the largest group", map[string]federated.Node{"a": single, "b": pair}, copies(3),
			"options.metrics.copies: 3 copies of every metric write, but the largest group, node b, has 2 servers"},
		{"above a smaller group", map[string]federated.Node{"a": pair, "b": single}, copies(2),
			"options.metrics.copies: 2 copies of every metric write, but node b has 1 server, so it could take none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			refuseConfig(t, federated.Config{Nodes: tt.nodes, Options: tt.opts}, tt.want)
		})
	}
	for _, n := range []int{0, 1, 2} {
		other := federated.Node{Addresses: []string{"127.0.0.1:7003", "127.0.0.1:7004"}}
		cfg := federated.Config{Nodes: map[string]federated.Node{"a": pair, "b": other}, Options: copies(n)}
		assert.NoError(t, cfg.Validate(), "copies %d of pairs", n)
	}
	assert.NoError(t, federated.Config{Nodes: map[string]federated.Node{"a": single}, Options: copies(1)}.Validate())

	const nodes = "nodes:\n  a: {addresses: [\"h:1\", \"h:2\"]}\n  b: {address: \"h:3\"}\n"
	for _, tt := range []struct{ doc, want string }{
		{nodes + "options:\n  metrics:\n    copies: 2\n",
			"options.metrics.copies: 2 copies of every metric write, but node b has 1 server, so it could take none (line 6)"},
		{nodes + "options:\n  metrics: {copies: 3}\n",
			"options.metrics.copies: 3 copies of every metric write, but the largest group, node a, has 2 servers (line 5)"},
		{nodes + "options:\n  metrics:\n    copies: -2\n", "options.metrics.copies: negative value -2 (0 means the default, 1) (line 6)"},
		{nodes + "options:\n  metrics:\n    copies: two\n", `options.metrics.copies: cannot unmarshal "two" into an integer (line 6)`},
	} {
		_, err := federated.ParseConfig([]byte(tt.doc))
		require.ErrorIs(t, err, federated.ErrInvalidConfig, "ParseConfig(%q)", tt.doc)
		assert.Contains(t, err.Error(), tt.want, "ParseConfig(%q)", tt.doc)
	}
	cfg, err := federated.ParseConfig([]byte("nodes:\n  a: {addresses: [\"h:1\", \"h:2\"]}\noptions: {metrics: {copies: 2}}\n"))
	require.NoError(t, err)
	assert.Equal(t, 2, cfg.Options.Metrics.Copies)
}

// A file's refusals name the field by its path and its line in the file,
// not in a re-encoded copy.
func TestConfigFileRefusalsSayWhere(t *testing.T) {
	const node = "nodes:\n  a: {address: \"h:1\"}\n"
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"second document", node + "---\noptions: {pool_size: -1}\n",
			"invalid configuration: a second YAML document begins at line 3; a federation file holds one"},
		{"second document after a start marker", "---\n" + node + "---\n", "a second YAML document begins at line 4"},
		{"second document not YAML", node + "--- [\n", "a second YAML document follows the first, and is not YAML"},
		{"retry interval of 1ns", node + "options:\n  base_retry_interval: 1ns\n",
			"options.base_retry_interval: 1ns is below the floor of 10ms (0 means the default) (line 4)"},
		{"retry interval in seconds", node + "options:\n  # Perl style\n  base_retry_interval: 0.000000001\n",
			"options.base_retry_interval: 1ns is below the floor of 10ms (0 means the default) (line 5)"},
		{"max below base", node + "options:\n  base_retry_interval: 5s\n  max_retry_interval: 1s\n",
			"options.max_retry_interval: 1s is below base_retry_interval (5s); the cap must be at least the first interval (line 5)"},
		{"node name", "nodes:\n  a: {address: \"h:1\"}\n  \"b\\u200b\": {address: \"h:2\"}\n",
			`nodes["b\u200b"]: the node name has invisible format character U+200B at byte 1 (line 3)`},
		{"journal", node + "options:\n  metrics:\n    journal: syncer:cursors\n", `options.metrics.journal: "syncer:cursors" is the syncer's hash of cursors on every server (line 5)`},
		{"journal through a merge", node + "options:\n  metrics:\n    <<:\n      journal: \"2026-11-25:h\"\n",
			"options.metrics.journal: \"2026-11-25:h\" begins with a period as a metric key ($period:$host:$metric) does, " +
				"so it, \"2026-11-25:h:horizon\" and \"2026-11-25:h:origin\" would be taken for metric data (line 6)"},
		{"server of a group", "nodes:\n  a: {address: \"h:1\"}\n  b:\n    addresses:\n      - h:2\n      - H:1\n",
			"nodes.b.addresses[1]: server H:1 is already in node a (as h:1) (line 6)"},
		{"a loopback server by two names", "nodes:\n  a: {address: \"127.0.0.1:6379\"}\n  b: {address: \"localhost:6379\"}\n",
			"nodes.b.address: server localhost:6379 is already in node a (as 127.0.0.1:6379) (line 3)"},
		{"a loopback server as the unspecified address", "nodes:\n  a:\n    addresses:\n      - 127.0.0.1:6379\n      - 0.0.0.0:6379\n",
			"nodes.a.addresses[1]: server 0.0.0.0:6379 is listed twice in node a (as 127.0.0.1:6379) (line 5)"},
		{"a loopback server as the unspecified IPv6 address", "nodes:\n  a: {address: \"[::1]:6379\"}\n  b: {address: \"[::]:6379\"}\n",
			"nodes.b.address: server [::]:6379 is already in node a (as [::1]:6379) (line 3)"},
		{"an integer", node + "options:\n\n  pool_size: ten\n", `options.pool_size: cannot unmarshal "ten" into an integer (line 5)`},
		{"a list for a string", node + "options:\n  ring: [perl]\n", "options.ring: cannot unmarshal a list into a string (line 4)"},
		{"a string for a mapping", "nodes:\n  a: h:1\n", `nodes.a: cannot unmarshal "h:1" into a mapping (line 2)`},
		{"a string for a list", "nodes:\n  a: {addresses: h:1}\n", `nodes.a.addresses: cannot unmarshal "h:1" into a list (line 2)`},
		{"a duration", node + "options: {command_timeout: soon}\n", `options.command_timeout: cannot unmarshal "soon" into a duration ("1s", "250ms") or a number of seconds (line 3)`},
		{"a tag that does not fit", node + "options: {pool_size: !!int many}\n", `options.pool_size: cannot unmarshal "many" tagged !!int into an integer (line 3)`},
		{"a key twice", "nodes:\n  a: {address: \"h:1\"}\n  a: {address: \"h:2\"}\n", "nodes.a: already defined at line 2 (line 3)"},
		// Refused where the alias uses it, not at the anchor, which is
		// right where it stands.
		{"a node through an alias", "nodes:\n  a: &n {address: \"h:1\"}\n  b: *n\n", "nodes.b.address: server h:1 is already in node a (line 3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := federated.ParseConfig([]byte(tt.doc))
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want, "ParseConfig(%q)", tt.doc)
		})
	}
}

// One document, with or without its markers, is taken.
func TestConfigFileOneDocument(t *testing.T) {
	for _, doc := range []string{
		"---\nnodes: {a: {address: \"h:1\"}}\n",
		"nodes: {a: {address: \"h:1\"}}\n...\n",
		"# the fleet\n---\nnodes: {a: {address: \"h:1\"}}\n...\n# the end\n",
	} {
		cfg, err := federated.ParseConfig([]byte(doc))
		require.NoError(t, err, "ParseConfig(%q)", doc)
		assert.Equal(t, "h:1", cfg.Nodes["a"].Address)
	}
}

// The password appears in no error, whatever carries it to the field at
// fault: a tag that does not fit it, an alias into a field of another type,
// credentials in an address, a node name, a ring, a period, a file name. A
// short password is tried, since the YAML decoder quotes values of up to
// ten bytes whole, and a long one, whose first bytes it would quote.
func TestConfigErrorsHideThePassword(t *testing.T) {
	for name, secret := range map[string]string{"short": "Sw0rdf1sh", "long": "Sw0rdf1sh-with-a-longer-tail"} {
		t.Run(name, func(t *testing.T) { testConfigErrorsHide(t, secret) })
	}
}

// testConfigErrorsHide is TestConfigErrorsHideThePassword for one
// password; no name of a test or a file holds it.
func testConfigErrorsHide(t *testing.T, secret string) {
	encoded := base64.StdEncoding.EncodeToString([]byte(secret))
	hidden := []string{secret, secret[:7], encoded}
	const node = "nodes: {a: {address: \"h:1\"}}\n"
	docs := map[string]string{
		"a tag on the password":          node + "options:\n  password: !!int " + secret + "\n",
		"a float tag on the password":    node + "options:\n  password: !!float " + secret + "\n",
		"an alias into an integer":       node + "options:\n  password: &p " + secret + "\n  pool_size: *p\n",
		"an alias into a duration":       node + "options:\n  password: &p " + secret + "\n  command_timeout: *p\n",
		"an alias into a bool":           node + "options:\n  password: &p " + secret + "\n  query_all: *p\n",
		"an alias into a list":           node + "options:\n  password: &p " + secret + "\n  hash_tags: [*p]\n",
		"credentials in an address":      "nodes: {a: {address: \"redis://user:" + secret + "@h:1\"}}\n",
		"credentials in a group":         "nodes: {a: {addresses: [\"h:1\", \"user:" + secret + "@h:2\"]}}\n",
		"an alias into an address":       "options: {password: &p " + secret + "}\nnodes: {a: {address: *p}}\n",
		"the password in a port":         "options: {password: \"" + secret + "\"}\nnodes: {a: {address: \"h:" + secret + "\"}}\n",
		"an alias for a node name":       "options: {password: &p " + secret + "}\nnodes: {*p : {}}\n",
		"a node name with the password":  "options: {password: " + secret + "}\nnodes: {\"" + secret + "\\u200b\": {address: \"h:1\"}}\n",
		"an alias into the ring":         node + "options: {password: &p " + secret + ", ring: *p}\n",
		"an alias into the period":       node + "options: {password: &p " + secret + ", metrics: {period: *p}}\n",
		"an alias into the journal":      node + "options: {password: &p \"" + secret + "\\0\", metrics: {journal: *p}}\n",
		"an alias into a TLS file":       node + "options: {password: &p " + secret + ", tls: {ca_file: *p}}\n",
		"the password merged in":         node + "options: {<<: {password: " + secret + "}, ring: " + secret + "}\n",
		"binary password, decoded ring":  node + "options: {password: !!binary " + encoded + ", ring: !!binary " + encoded + "}\n",
		"the password twice":             node + "options:\n  password: " + secret + "\n  password: " + secret + "\n",
		"the password in a second doc":   node + "options: {password: " + secret + "}\n---\npassword: " + secret + "\n",
		"the password as a key":          node + "options: {password: &p " + secret + ", *p : 1}\n",
		"the password in an unknown key": node + "options: {password: " + secret + "}\n" + secret + ": 1\n",
		"broken YAML after it":           node + "options: {password: " + secret + ", ring: [}\n",
	}
	dir := t.TempDir()
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			_, err := federated.ParseConfig([]byte(doc))
			require.ErrorIs(t, err, federated.ErrInvalidConfig, "ParseConfig(%q)", doc)
			assertHidden(t, err, hidden...)

			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
			_, err = federated.LoadConfig(path)
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assertHidden(t, err, hidden...)
		})
	}

	// Go callers: the password set in Options, and found in another field.
	one := map[string]federated.Node{"a": {Address: "h:1"}}
	for name, cfg := range map[string]federated.Config{
		"address":   {Nodes: map[string]federated.Node{"a": {Address: secret}}, Options: federated.Options{Password: secret}},
		"URL":       {Nodes: map[string]federated.Node{"a": {Address: "redis://u:" + secret + "@h:1"}}},
		"node name": {Nodes: map[string]federated.Node{secret: {}}, Options: federated.Options{Password: secret}},
		"ring":      {Nodes: one, Options: federated.Options{Password: secret, Ring: secret}},
		"period":    {Nodes: one, Options: federated.Options{Password: secret, Metrics: federated.MetricsOptions{Period: secret}}},
		"journal":   {Nodes: one, Options: federated.Options{Password: secret, Metrics: federated.MetricsOptions{Journal: secret + "\n"}}},
		"TLS file":  {Nodes: one, Options: federated.Options{Password: secret, TLS: &federated.TLSFiles{CAFile: filepath.Join(dir, secret)}}},
		"server twice": {Nodes: map[string]federated.Node{"a": {Address: "h" + secret + ":1"}, "b": {Address: "h" + secret + ":01"}},
			Options: federated.Options{Password: secret}},
	} {
		t.Run("New/"+name, func(t *testing.T) {
			_, err := federated.New(cfg)
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assertHidden(t, err, secret, secret[:7])
		})
	}
}

// assertHidden checks that an error shows none of the secrets, printed or
// dumped, and still says more than ErrInvalidConfig.
func assertHidden(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, out := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			assert.NotContains(t, out, s, "the error shows (part of) the password")
		}
	}
	assert.NotEqual(t, federated.ErrInvalidConfig.Error(), err.Error(), "the error says no more than ErrInvalidConfig")
}

// AddNode's refusals hide the client's password as New's do: in a node's
// name, in an address that is not host:port, in a server that is already
// in another node, and in the name of a node that exists.
func TestAddNodeErrorsHideThePassword(t *testing.T) {
	const secret = "Sw0rdf1sh"
	c := newClient(t, federated.Config{
		Nodes: map[string]federated.Node{
			"a":    {Address: "h" + secret + ":1"},
			secret: {Address: "127.0.0.1:7000"},
		},
		Options: quiet(federated.Options{Password: secret}),
	})
	for name, tt := range map[string]struct {
		node string
		n    federated.Node
	}{
		"a node name with a bad address": {"x" + secret, federated.Node{Address: "h"}},
		"an unreadable node name":        {secret + "\u200b", federated.Node{Address: "127.0.0.1:7001"}},
		"a node name and no address":     {"b" + secret, federated.Node{}},
		"the password as an address":     {"b", federated.Node{Address: secret}},
		"credentials in a URL":           {"b", federated.Node{Address: "redis://u:" + secret + "@h:1"}},
		"a server already in a node":     {"b", federated.Node{Addresses: []string{"127.0.0.1:7001", "h" + secret + ":01"}}},
		"a node that exists":             {secret, federated.Node{Address: "127.0.0.1:7001"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.AddNode(tt.node, tt.n)
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assertHidden(t, err, secret)
		})
	}
}

// options.pool_size is bounded by MaxPoolSize: go-redis sets aside a slot
// for every connection of a pool as it makes a server's client (and
// panics above 2^31-1), so a pool of millions would take gigabytes at New.
func TestPoolSizeBound(t *testing.T) {
	one := map[string]federated.Node{"a": {Address: "127.0.0.1:7000"}}
	for _, size := range []int{federated.MaxPoolSize + 1, 50_000_000, math.MaxInt32 + 1, math.MaxInt} {
		refuseConfig(t, federated.Config{Nodes: one, Options: federated.Options{PoolSize: size}},
			fmt.Sprintf("options.pool_size: %d connections to each server is above the maximum of %d (MaxPoolSize)", size, federated.MaxPoolSize))
	}
	for _, size := range []int{0, 1, federated.MaxPoolSize} {
		assert.NoError(t, federated.Config{Nodes: one, Options: federated.Options{PoolSize: size}}.Validate(), "pool_size %d", size)
	}

	const node = "nodes:\n  a: {address: \"h:1\"}\n"
	_, err := federated.ParseConfig([]byte(node + "options:\n  pool_size: 50000000\n"))
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.EqualError(t, err, "federated: invalid configuration: options.pool_size: 50000000 connections to each server is above the maximum of 10000 (MaxPoolSize) (line 4)")
	cfg, err := federated.ParseConfig([]byte(node + "options: {pool_size: 10000}\n"))
	require.NoError(t, err)
	assert.Equal(t, federated.MaxPoolSize, cfg.Options.PoolSize)
}

// A number of seconds that is negative, or not 0 but under a nanosecond
// (which would read as 0, the default), is refused by the field's path and
// line, as -1 is; 0 however written is the default.
func TestSecondsRefusals(t *testing.T) {
	const node = "nodes:\n  a: {address: \"h:1\"}\n"
	for _, tt := range []struct{ doc, want string }{
		{node + "options:\n  command_timeout: 1e-10\n",
			"options.command_timeout: 1e-10 seconds is less than a nanosecond, and would mean the default: write 0 for it, or at least 1ms (line 4)"},
		{node + "options:\n  idle_timeout: 0.0000000001\n",
			"options.idle_timeout: 0.0000000001 seconds is less than a nanosecond, and would mean the default: write 0 for it, or at least 100ms (line 4)"},
		{node + "options: {dial_timeout: 1e-400}\n", "options.dial_timeout: 1e-400 seconds is less than a nanosecond"},
		{node + "options:\n  command_timeout: -1e-10\n", "options.command_timeout: negative duration of -1e-10 seconds (line 4)"},
		{node + "options:\n  base_retry_interval: -1\n", "options.base_retry_interval: negative duration of -1 seconds (line 4)"},
		{node + "options: {read_timeout: -0.5}\n", "options.read_timeout: negative duration of -0.5 seconds (line 3)"},
		{node + "options:\n  <<:\n    write_timeout: 1e-10\n", "options.write_timeout: 1e-10 seconds is less than a nanosecond"},
	} {
		_, err := federated.ParseConfig([]byte(tt.doc))
		require.ErrorIs(t, err, federated.ErrInvalidConfig, "ParseConfig(%q)", tt.doc)
		assert.Contains(t, err.Error(), tt.want, "ParseConfig(%q)", tt.doc)
	}
	for _, zero := range []string{"0", "0.0", "-0", "0e5", "0.000"} {
		cfg, err := federated.ParseConfig([]byte(node + "options: {command_timeout: " + zero + "}\n"))
		require.NoError(t, err, "command_timeout: %s", zero)
		assert.Zero(t, cfg.Options.CommandTimeout, "command_timeout: %s", zero)
	}
}

// A file larger than any federation file (an endless one, /dev/zero, or a
// log named by mistake) is refused once MaxConfigBytes are read, not read
// whole into memory.
func TestLoadConfigRefusesAnEndlessFile(t *testing.T) {
	_, err := federated.LoadConfig("/dev/zero")
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.ErrorContains(t, err, "/dev/zero: more than 16777216 bytes (MaxConfigBytes)")
}

// More nodes than the ring takes are refused by Validate, and so by
// ParseConfig, as New refuses them: the consistent ring gives each node
// at least one of its 8,191 partitions. A file that loads is one New
// takes.
func TestRingSizeBound(t *testing.T) {
	nodes := func(n int) map[string]federated.Node {
		out := make(map[string]federated.Node, n)
		for i := range n {
			out[fmt.Sprintf("n%05d", i)] = federated.Node{Address: fmt.Sprintf("h%d:%d", i/60000, 1+i%60000)}
		}
		return out
	}
	refuseConfig(t, federated.Config{Nodes: nodes(8192)},
		"nodes: 8192 nodes: the consistent ring (options.ring) takes at most 8191, one to each of its partitions")
	cfg := federated.Config{Nodes: nodes(8191)}
	require.NoError(t, cfg.Validate())
	c, err := federated.New(cfg)
	require.NoError(t, err, "a configuration Validate takes is one New takes")
	require.NoError(t, c.Close())
	perl := federated.Config{Nodes: nodes(8192), Options: federated.Options{Ring: federated.RingPerl}}
	assert.NoError(t, perl.Validate(), "the perl ring takes more")
}

// A password that YAML takes for syntax, unquoted: after '*' an alias,
// whose name the parser's error showed; after '&' or '!' an anchor or a
// tag on an empty value, which left the password empty without a word.
func TestPasswordThatIsYAMLSyntax(t *testing.T) {
	node := "nodes:\n  a: {address: \"127.0.0.1:1\"}\n"
	for _, pw := range []string{"*Tr0ub4dor", "&Tr0ub4dor", "!Tr0ub4dor", "!!Tr0ub4dor"} {
		_, err := federated.ParseConfig([]byte(node + "options:\n  password: " + pw + "\n"))
		require.ErrorIs(t, err, federated.ErrInvalidConfig, pw)
		assert.NotContains(t, err.Error(), "Tr0ub4dor", "the password is never shown")
		assert.Contains(t, err.Error(), "quote", pw)
		assert.Contains(t, err.Error(), "line 4", pw)
	}
	cfg, err := federated.ParseConfig([]byte(node + "options:\n  password: \"*Tr0ub4dor\"\n"))
	require.NoError(t, err)
	assert.Equal(t, "*Tr0ub4dor", cfg.Options.Password)
}

// A file of more nodes than its ring takes is refused before it is
// decoded: the decoder compares every key of a mapping with every other,
// and 100,000 nodes (1 MB) took it 54 s before the refusal.
func TestTooManyNodesAreRefusedAtOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("nodes:\n")
	for i := range 100_000 {
		fmt.Fprintf(&b, "  n%d: {address: \"127.0.0.1:%d\"}\n", i, 1+i%60000)
	}
	start := time.Now()
	_, err := federated.ParseConfig([]byte(b.String()))
	require.ErrorIs(t, err, federated.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "100000 nodes: the consistent ring (options.ring) takes at most 8191")
	// Far under the 54 s of the decoder, with room for the race detector
	// on a busy machine (16 s with GOMAXPROCS 16 on 2 cores).
	assert.Less(t, time.Since(start), 30*time.Second)
}
