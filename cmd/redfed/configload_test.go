package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every command reports a broken federation file by its path, the field
// or the YAML problem, and the line, and exits 2.
func TestBrokenFederationFiles(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"indentation", "nodes:\n  a: {address: \"127.0.0.1:7001\"}\n b: {address: \"127.0.0.1:7002\"}\n",
			"not YAML: did not find expected key: is this line indented as the keys beside it? (line 3)"},
		{"a duration in words", "nodes:\n  a: {address: \"127.0.0.1:7001\"}\noptions:\n  command_timeout: 1 sec\n",
			`options.command_timeout: cannot unmarshal "1 sec" into a duration ("1s", "250ms") or a number of seconds (line 4)`},
		{"one server by two names", "nodes:\n  a: {address: \"127.0.0.1:7001\"}\n  b: {address: \"localhost:7001\"}\n",
			"nodes.b.address: server localhost:7001 is already in node a (as 127.0.0.1:7001) (line 3)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.doc)
			code, out, errOut := runCLI(t, "", "check", "--config", path)
			assert.Equal(t, 2, code)
			assert.Empty(t, out)
			assert.Equal(t, "redfed check: "+path+": federated: invalid configuration: "+tt.want+"\n", errOut)
		})
	}
}
