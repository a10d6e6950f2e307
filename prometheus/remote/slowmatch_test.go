package remote_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/prometheus/remote"
)

// writeLongLabels writes n series of one sample whose label v is 485
// bytes, each its own.
func writeLongLabels(t *testing.T, e *endpoints, n int) {
	t.Helper()
	var all []prompb.TimeSeries
	for i := range n {
		v := strings.Repeat("abcdefghij", 48) + fmt.Sprintf("%05d", i)
		all = append(all, series([]string{"__name__", "m", "v", v}, prompb.Sample{Timestamp: t0, Value: 1}))
	}
	code, reply := e.writeSeries(t, all...)
	require.Equal(t, http.StatusNoContent, code, reply)
}

// slowMatchRead is a read whose regular expression, 45 KB and within the
// size allowed, matches no series and takes about 70 ms to tell so of one
// of writeLongLabels's on 2 vCPU.
func slowMatchRead(t *testing.T) []byte {
	t.Helper()
	re := strings.Repeat("[a-z0-9]?", 5000) + "[YZ]"
	body, err := (&prompb.ReadRequest{Queries: []*prompb.Query{
		query(t0, t0, matcher(prompb.LabelMatcher_RE, "v", re)),
	}}).Marshal()
	require.NoError(t, err)
	return body
}

// A read whose matchers take longer than BodyTimeout to select its series
// is answered 503 at BodyTimeout, and the next read is served. (200 series
// took 14.5 s, and a store of thousands would take minutes, all the while
// holding the request's turn.)
func TestReadGivesUpSelectingAtBodyTimeout(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{MaxRequests: 1, BodyTimeout: 500 * time.Millisecond})
	writeLongLabels(t, e, 200)
	start := time.Now()
	code, reply := post(t, e.url+"/read", slowMatchRead(t), false)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, string(reply), "series not selected within 500ms (Options.BodyTimeout): narrow the matchers")
	assert.Less(t, time.Since(start), 3*time.Second)

	got := e.read(t, query(t0, t0, matcher(prompb.LabelMatcher_EQ, "v", strings.Repeat("abcdefghij", 48)+"00007")))[0]
	assert.Len(t, got, 1)
}

// A reader that goes away stops the selection of its series and gives its
// turn up: with one turn, the read after it is answered at once, not once
// the first has matched every series.
func TestReadWhoseReaderLeftStopsSelecting(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{MaxRequests: 1})
	writeLongLabels(t, e, 200)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/read", strings.NewReader(string(snappy.Encode(nil, slowMatchRead(t)))))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		res.Body.Close()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded, "the reader gives up first")

	start := time.Now()
	got := e.read(t, query(t0, t0, matcher(prompb.LabelMatcher_EQ, "v", strings.Repeat("abcdefghij", 48)+"00007")))[0]
	assert.Len(t, got, 1)
	assert.Less(t, time.Since(start), 3*time.Second, "the next read waited for the first to match every series")
}

// A read whose listing of a host's metrics failed on one server and
// answered on the other is a 503, not the series found: a partial answer
// would look like a gap in the data.
func TestReadWhoseListingFailedInPartFails(t *testing.T) {
	e := startEndpoints(t, 2, remote.Options{})
	var all []prompb.TimeSeries
	for i := range 20 {
		all = append(all, series([]string{"__name__", fmt.Sprintf("m%d", i), "instance", "a:1"}, prompb.Sample{Timestamp: t0, Value: 1}))
	}
	code, reply := e.writeSeries(t, all...)
	require.Equal(t, http.StatusNoContent, code, reply)
	require.NoError(t, e.servers[1].Kill())
	body, err := (&prompb.ReadRequest{Queries: []*prompb.Query{
		query(t0, t0, matcher(prompb.LabelMatcher_EQ, "instance", "a:1")),
	}}).Marshal()
	require.NoError(t, err)
	code, got := post(t, e.url+"/read", body, false)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, string(got), e.servers[1].Addr())
}

// The queries of one read share its time to select their series: 50
// queries whose matchers each take a fraction of BodyTimeout (about 40 ms
// on 2 vCPU; together within the size allowed) are answered 503 at about
// BodyTimeout, not after all of them ran.
func TestReadQueriesShareTheTimeToSelect(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{BodyTimeout: 500 * time.Millisecond})
	writeLongLabels(t, e, 50)
	re := strings.Repeat("[a-z0-9]?", 300) + "[YZ]"
	var queries []*prompb.Query
	for range 50 {
		queries = append(queries, query(t0, t0, matcher(prompb.LabelMatcher_RE, "v", re)))
	}
	body, err := (&prompb.ReadRequest{Queries: queries}).Marshal()
	require.NoError(t, err)
	start := time.Now()
	code, reply := post(t, e.url+"/read", body, false)
	assert.Equal(t, http.StatusServiceUnavailable, code, "%s", reply)
	assert.Contains(t, string(reply), "series not selected within 500ms")
	assert.Less(t, time.Since(start), 5*time.Second)
}
