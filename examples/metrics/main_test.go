package main

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/redfed/federated/internal/fedtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The program runs on the federation $REDFED_CONFIG names, a replicated
// one, and its metric keys are the store's sorted sets.
func TestMetricsOnRedfedConfig(t *testing.T) {
	out, servers := fedtest.RunExample(t, run)
	assert.Contains(t, out, "web1.example cpu.user: 5 points\n")
	assert.Contains(t, out, "db1.example mem.used: 5 points\n")
	assert.NotContains(t, out, "latest: none")
	// 6 series in one period, on one server of their group each (two
	// when the five minutes cross midnight).
	assert.GreaterOrEqual(t, fedtest.MetricKeysAreSortedSets(t, servers), 6)

	t.Setenv("REDFED_CONFIG", "")
	assert.EqualError(t, run(context.Background(), nil, io.Discard), "usage: metrics -config FILE (or set $REDFED_CONFIG)")
}
