package remote_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/prometheus/remote"
)

// At most MaxRequests requests are served at once: with one, a write that
// waits for a paused Redis keeps the next from being served until it is
// answered, and both are then written.
func TestRequestsTakeTurns(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{MaxRequests: 1})
	require.NoError(t, e.servers[0].Pause())
	codes := make(chan int, 2)
	go func() {
		code, _ := e.writeSeries(t, series([]string{"__name__", "up", "instance", "a"}, prompb.Sample{Timestamp: t0, Value: 1}))
		codes <- code
	}()
	require.Eventually(t, func() bool { return e.write.Stats().Requests == 1 }, 5*time.Second, 5*time.Millisecond,
		"the first request is served")
	go func() {
		code, _ := e.writeSeries(t, series([]string{"__name__", "up", "instance", "b"}, prompb.Sample{Timestamp: t0, Value: 1}))
		codes <- code
	}()
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, int64(1), e.write.Stats().Requests, "the second waits for its turn")
	assert.Empty(t, codes, "no answer while Redis is paused")

	require.NoError(t, e.servers[0].Resume())
	for range 2 {
		select {
		case code := <-codes:
			assert.Equal(t, http.StatusNoContent, code)
		case <-time.After(10 * time.Second):
			t.Fatal("a write was not answered once Redis was back")
		}
	}
	assert.Equal(t, int64(2), e.write.Stats().Samples)
}
