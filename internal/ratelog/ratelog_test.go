package ratelog_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/ratelog"
)

// The next warning after a quiet interval says how many were left out.
func TestLogCountsWhatItLeftOut(t *testing.T) {
	logs := &fedtest.Logs{}
	l := ratelog.New(slog.New(logs), 50*time.Millisecond)
	for range 5 {
		l.Warn("w", "i", 1)
	}
	require.Len(t, logs.Values("w", "i"), 1)
	require.Eventually(t, func() bool {
		l.Warn("w", "i", 2)
		return len(logs.Values("w", "i")) == 2
	}, 5*time.Second, 10*time.Millisecond)
	left := logs.Values("w", "not_logged")
	require.Len(t, left, 1)
	assert.GreaterOrEqual(t, left[0], int64(4))
}
