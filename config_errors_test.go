package federated_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
)

// Every refusal of a file names the field, or the YAML problem, and the
// line where it is, and says what was wanted.
func TestConfigFileErrorLines(t *testing.T) {
	const node = "nodes:\n  a: {address: \"127.0.0.1:6379\"}\n"
	tests := []struct {
		name, doc, want string
	}{
		{"a duration in words", node + "options:\n  command_timeout: 1 sec\n",
			`options.command_timeout: cannot unmarshal "1 sec" into a duration ("1s", "250ms") or a number of seconds (line 4)`},
		{"a field by half its name", node + "options:\n  timeout: 1 sec\n",
			"options.timeout: unknown field (line 4); did you mean command_timeout, dial_timeout, idle_timeout, read_timeout or write_timeout? " +
				`"1 sec" is not a duration either: write a duration ("1s", "250ms") or a number of seconds`},
		{"a field by half its name, with a duration", node + "options:\n  timeout: 2s\n",
			"options.timeout: unknown field (line 4); did you mean command_timeout, dial_timeout, idle_timeout, read_timeout or write_timeout?"},
		{"a misspelt field", "nodes:\n  a: {adress: \"h:1\"}\n", "nodes.a.adress: unknown field (line 2); did you mean address?"},
		{"a key indented one space too few", "nodes:\n  a: {address: \"h:1\"}\n b: {address: \"h:2\"}\n",
			"not YAML: did not find expected key: is this line indented as the keys beside it? (line 3)"},
		{"a key indented one space too few, further down", "nodes:\n  a:\n    address: \"h:1\"\n   addresses: [\"h:2\"]\n",
			"not YAML: did not find expected key: is this line indented as the keys beside it? (line 4)"},
		{"a key indented too far", "nodes:\n  a: {address: \"h:1\"}\noptions:\n  pool_size: 3\n    ring: perl\n",
			"not YAML: mapping values are not allowed in this context: is this line indented as the keys beside it? (line 5)"},
		{"a tab", "nodes:\n\ta: {address: \"h:1\"}\n",
			"not YAML: found character that cannot start any token: a tab indents this line; YAML indents with spaces (line 2)"},
		{"an unclosed brace", "# fleet\nnodes:\n  a: {address: \"h:1\"\noptions: {}\n", "not YAML: did not find expected ',' or '}' (line 3)"},
		{"an unclosed quote", "nodes:\n  a: {address: \"h:1}\n", "not YAML: found unexpected end of stream (line 2)"},
		{"a list item out of line", "nodes:\n  a:\n    addresses:\n      - h:1\n     - h:2\n",
			"not YAML: did not find expected key: is this line indented as the keys beside it? (line 5)"},
		{"a number for a list", node + "options:\n  hooks: 3\n", "options.hooks: unknown field (line 4)"},
		{"an unknown period", node + "options:\n  metrics:\n    period: week\n",
			`options.metrics.period: "week" is not a period: want "day" or "hour" (line 5)`},
		{"a negative retention", node + "options:\n  metrics: {retention: -1}\n",
			"options.metrics.retention: -1 periods, want 0 (keep everything) to 100000 (line 4)"},
		{"a second document", node + "---\nnodes: {}\n", "a second YAML document begins at line 3; a federation file holds one"},
		// The decoder drops a null entry or key: a server or a node would
		// vanish without a word.
		{"an empty list item", "nodes:\n  a:\n    addresses:\n      - h:1\n      -\n", "nodes.a.addresses[1]: empty entry (line 5)"},
		{"a null list item", "nodes:\n  a: {addresses: [h:1, ~, h:2]}\n", "nodes.a.addresses[1]: empty entry (line 2)"},
		{"a null node name", "nodes:\n  a: {address: h:1}\n  ~: {address: h:2}\n", "nodes: the key at line 3 is empty (null) (line 3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := federated.ParseConfig([]byte(tt.doc))
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assert.Equal(t, "federated: invalid configuration: "+tt.want, err.Error())
		})
	}
}
