package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated/internal/fedtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The program runs on the federation $REDFED_CONFIG names, a replicated
// one, and writes no string under a metric-shaped name.
func TestChainingOnRedfedConfig(t *testing.T) {
	out, servers := fedtest.RunExample(t, run)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 20, out)
	assert.Regexp(t, `^requests:web1\.example = 100 \(node redis_[12]\)$`, lines[0])
	assert.Regexp(t, `^requests:web20\.example = 2000 \(node redis_[12]\)$`, lines[19])
	assert.Zero(t, fedtest.MetricKeysAreSortedSets(t, servers), "metric keys written")

	// Without either, it says how to name the file; -config wins.
	t.Setenv("REDFED_CONFIG", "")
	var discard strings.Builder
	assert.EqualError(t, run(context.Background(), nil, &discard), "usage: chaining -config FILE (or set $REDFED_CONFIG)")
	assert.ErrorContains(t, run(context.Background(), []string{"-config", "/nonexistent/fed.yaml"}, &discard), "/nonexistent/fed.yaml")
}
