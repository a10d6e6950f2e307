package remote_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/prometheus/remote"
)

// A sender that trickles its body gets 408 after BodyTimeout, whatever the
// http.Server's own timeouts (httptest's has none); a request whose body
// came in time may then wait for Redis longer than that.
func TestSlowBodyTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := startEndpoints(t, 1, remote.Options{BodyTimeout: timeout})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("POST /write HTTP/1.1\r\nHost: redfed\r\nContent-Type: application/x-protobuf\r\n" +
		"Content-Encoding: snappy\r\nContent-Length: 1000\r\n\r\n"))
	require.NoError(t, err)
	start := time.Now()
	go func() {
		for range 200 {
			if _, err := c.Write([]byte{0}); err != nil {
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(4*time.Second)))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "no answer to a body trickled for 4s")
	_ = res.Body.Close()
	assert.Equal(t, http.StatusRequestTimeout, res.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), timeout)

	require.NoError(t, e.servers[0].Pause())
	resumed := make(chan error, 1)
	go func() {
		time.Sleep(3 * timeout)
		resumed <- e.servers[0].Resume()
	}()
	code, reply := e.writeSeries(t, series([]string{"__name__", "up"}, prompb.Sample{Timestamp: t0, Value: 1}))
	require.NoError(t, <-resumed)
	assert.Equal(t, http.StatusNoContent, code, "a write that waits for Redis past BodyTimeout: %s", reply)
}
