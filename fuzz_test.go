package federated_test

import (
	"errors"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
)

// The fuzz targets check properties that hold for any input: nothing
// panics; a configuration is either refused with an error that wraps
// ErrInvalidConfig and says what is wrong, or accepted, and then New takes
// it and it survives a round trip through YAML; HashTag agrees with Redis
// Cluster's rule; the public metric wrappers give back what they parse.
// Interesting inputs live in testdata/fuzz/<FuzzName>/ and run with every
// go test. internal/metric fuzzes the schema's parsers themselves.

func FuzzParseConfig(f *testing.F) {
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		`{"nodes": {"a": {"address": "h:1"}, "b": {"addresses": ["h:2", "h:3"]}}, "options": {"command_timeout": 1.5}}`,
		"nodes:\n  a: {address: \"127.0.0.1:6379\"}\noptions:\n  command_timeout: 250ms\n  base_retry_interval: 0.5\n  ring: perl\n  hash_tags: true\n",
		"nodes:\n  a: {address: \"[::1]:6379\"}\noptions:\n  tls: {}\n  password: x\n  username: u\n  pool_size: 3\n",
		"nodes:\n  a: {address: \"h:1\"}\noptions:\n  tls: {ca_file: /nonexistent, server_name: x, insecure_skip_verify: true}\n",
		"nodes:\n  a: {address: \"h:1\"}\noptions:\n  metrics: {period: hour, journal: j, retention: 24}\n  pipeline_auto_flush: 100\n",
		"nodes:\n  a: {address: \"h:1\"}\noptions:\n  retry_interval_mult: 1e300\n  max_retry_interval: 1e9\n",
		"x: &x {address: \"h:1\"}\nnodes:\n  a: *x\n",
		"nodes:\n  a: {address: \"h:1\", addresses: []}\n",
		"nodes:\n  a: {address: \"H:01\"}\n  b: {address: \"h:1\"}\n",
		"nodes: {~: {address: \"h:1\"}}\n",
		"nodes: {1: {address: \"h:1\"}, true: {address: \"h:2\"}}\n",
		"---\n", "", "null", "[]", "{}", "nodes: [\n", "\t", "nodes: {a: {address: \"h:1\"}}\noptions: {command_timeout: .nan}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		cfg, err := federated.ParseConfig(doc)
		if err != nil {
			checkConfigError(t, doc, err)
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig(%q) accepted a configuration that Validate refuses: %v", doc, err)
		}
		cfg.Options.Logger = slog.New(slog.DiscardHandler)
		c, err := federated.New(cfg)
		if err != nil {
			t.Fatalf("ParseConfig(%q) accepted a configuration that New refuses: %v", doc, err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		// What was accepted is written back as YAML and read again the same.
		cfg.Options.Logger = nil
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("yaml.Marshal of the configuration parsed from %q: %v", doc, err)
		}
		back, err := federated.ParseConfig(out)
		if err != nil {
			t.Fatalf("ParseConfig of %q, the YAML of the configuration parsed from %q: %v", out, doc, err)
		}
		if got, want := normalize(back), normalize(cfg); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip through %q: got %#v, want %#v", out, got, want)
		}
	})
}

// checkConfigError checks a refusal: it wraps ErrInvalidConfig and says
// more than that.
func checkConfigError(t *testing.T, doc []byte, err error) {
	t.Helper()
	if !errors.Is(err, federated.ErrInvalidConfig) {
		t.Fatalf("ParseConfig(%q): error %v does not wrap ErrInvalidConfig", doc, err)
	}
	detail, ok := strings.CutPrefix(err.Error(), federated.ErrInvalidConfig.Error()+": ")
	if !ok || len(strings.TrimSpace(detail)) < 5 || detail == "EOF" || detail == "unexpected EOF" {
		t.Fatalf("ParseConfig(%q): error %q does not say what is wrong", doc, err)
	}
}

// normalize makes an empty list of addresses nil: YAML omits both alike.
func normalize(cfg federated.Config) federated.Config {
	for name, n := range cfg.Nodes {
		if len(n.Addresses) == 0 {
			n.Addresses = nil
			cfg.Nodes[name] = n
		}
	}
	return cfg
}

func FuzzHashTag(f *testing.F) {
	for _, seed := range []string{
		"", "{", "}", "{}", "{}}", "}{", "{{}}", "{a}", "{a}{b}", "x{}y{z}", "{user1}.following",
		"foo{bar}{zap}", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{\x00}", "{\xff}", "é{ü}", "{{", "a{b",
		`2026-11-25:web1:up{job="node"}`, "2026-11-25T13:h:{m}", "{2026-11-25:h}m", "2026-11-2x:h:{m}",
	} {
		f.Add(seed)
	}
	// A client that hashes tags; New connects to nothing.
	nodes := map[string]federated.Node{}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		nodes[name] = federated.Node{Address: name + ":6379"}
	}
	c, err := federated.New(federated.Config{Nodes: nodes, Options: federated.Options{HashTags: true}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = c.Close() })
	whole, err := federated.New(federated.Config{Nodes: nodes})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = whole.Close() })

	f.Fuzz(func(t *testing.T, key string) {
		tag := federated.HashTag(key)
		if want := clusterHashTag(key); tag != want {
			t.Fatalf("HashTag(%q) = %q, want %q as Redis Cluster hashes", key, tag, want)
		}
		if !strings.Contains(key, tag) {
			t.Fatalf("HashTag(%q) = %q, not a substring", key, tag)
		}
		if (tag == "") != (key == "") {
			t.Fatalf("HashTag(%q) = %q: empty exactly when the key is", key, tag)
		}
		if again := federated.HashTag(tag); again != tag {
			t.Fatalf("HashTag(HashTag(%q)) = %q, want %q: not idempotent", key, again, tag)
		}
		if tag != key && (strings.Contains(tag, "}") || !strings.Contains(key, "{"+tag+"}")) {
			t.Fatalf("HashTag(%q) = %q: a tag is the text between braces, without '}'", key, tag)
		}
		// Routing follows the tag: a key, its tag and any key with the same
		// first tag land on one node; but a metric key is placed whole.
		if period, _, ok := strings.Cut(key, ":"); ok && periodShaped.MatchString(period) {
			if c.KeyToNode(key) != whole.KeyToNode(key) {
				t.Fatalf("KeyToNode(%q) = %s, but %s for the whole metric key", key, c.KeyToNode(key), whole.KeyToNode(key))
			}
		} else if c.KeyToNode(key) != c.KeyToNode(tag) {
			t.Fatalf("KeyToNode(%q) = %s but KeyToNode(%q) = %s", key, c.KeyToNode(key), tag, c.KeyToNode(tag))
		}
		if !strings.ContainsRune(key, '}') && key != "" {
			wrapped := "{" + key + "}" + key
			if got := federated.HashTag(wrapped); got != key {
				t.Fatalf("HashTag(%q) = %q, want %q", wrapped, got, key)
			}
			if c.KeyToNode(wrapped) != c.KeyToNode(key) {
				t.Fatalf("%q and %q share a tag but not a node", wrapped, key)
			}
		}
	})
}

// clusterHashTag is keyHashSlot of Redis Cluster (cluster.c), returning the
// bytes hashed instead of the slot.
func clusterHashTag(key string) string {
	s := 0
	for s < len(key) && key[s] != '{' {
		s++
	}
	if s == len(key) {
		return key
	}
	e := s + 1
	for e < len(key) && key[e] != '}' {
		e++
	}
	if e == len(key) || e == s+1 {
		return key
	}
	return key[s+1 : e]
}

func FuzzParseMetricKey(f *testing.F) {
	for _, seed := range []string{
		"2026-11-25:web1.sfo:cpu.user", "2026-11-25T13:web1.sfo:cpu.user", "2026-11-25:db1:disk:/var:used",
		"2026-11-25T24:h:m", "2026-02-30:h:m", "1969-12-31:h:m", "9999-12-31T23:h:m", "2026-11-25:h", "2026-11-25::m",
		"2026-11-25:{web1}:<b>cpu</b> user", "2026-1-25:h:m", "2026-11-25T1:h:m", "",
	} {
		f.Add(seed)
	}
	hourly, err := federated.New(federated.Config{
		Nodes:   map[string]federated.Node{"a": {Address: "a:6379"}},
		Options: federated.Options{Metrics: federated.MetricsOptions{Period: "hour"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = hourly.Close() })

	f.Fuzz(func(t *testing.T, key string) {
		start, host, metricName, err := federated.ParseMetricKey(key)
		if err != nil {
			if !errors.Is(err, federated.ErrBadKey) {
				t.Fatalf("ParseMetricKey(%q): error %v does not wrap ErrBadKey", key, err)
			}
			return
		}
		if start.Location() != time.UTC {
			t.Fatalf("ParseMetricKey(%q): period start %v is not UTC", key, start)
		}
		// The key comes back from the period, host and metric, by the
		// client of the period its prefix has.
		rebuilt, err := dayKey(start, host, metricName)
		if journal.PeriodOf(key) != journal.PeriodOf(rebuilt) {
			rebuilt, err = hourly.MetricKey(start, host, metricName)
		}
		if err != nil || rebuilt != key {
			t.Fatalf("ParseMetricKey(%q) = %v, %q, %q; the key of those is %q, %v", key, start, host, metricName, rebuilt, err)
		}
	})
}

func FuzzParseMember(f *testing.F) {
	for _, seed := range []string{
		"1290000000:0.5", "1290000000.25:-3e-5", "1290000000.1234567:1", "1290000000.9999999:1", "0:-0",
		"1290000000:1e999", "1290000000:NaN", "253402300799.9999999:1", "-1:1", ":", "1:2:3", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, member string) {
		at, value, err := federated.ParseMember(member)
		if err != nil {
			if !errors.Is(err, federated.ErrBadMember) {
				t.Fatalf("ParseMember(%q): error %v does not wrap ErrBadMember", member, err)
			}
			return
		}
		if at.Location() != time.UTC {
			t.Fatalf("ParseMember(%q): time %v is not UTC", member, at)
		}
		// The point formats to a member that parses to the same point.
		formatted, err := federated.FormatMember(at, value)
		if err != nil {
			t.Fatalf("FormatMember(%v, %v) of ParseMember(%q): %v", at, value, member, err)
		}
		at2, value2, err := federated.ParseMember(formatted)
		if err != nil || !at2.Equal(at) || value2 != value {
			t.Fatalf("ParseMember(%q) = %v, %v; FormatMember gives %q, which parses to %v, %v, %v",
				member, at, value, formatted, at2, value2, err)
		}
		if again, _ := federated.FormatMember(at2, value2); again != formatted {
			t.Fatalf("FormatMember is not stable on %q: %q then %q", member, formatted, again)
		}
	})
}

// periodShaped matches a period string of either length, as the metrics
// store's keys begin.
var periodShaped = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2})?$`)
