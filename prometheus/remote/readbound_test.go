package remote_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/prometheus/remote"
)

// countingStore is a Store that counts the points its range reads return.
type countingStore struct {
	*metrics.Store
	points atomic.Int64
}

func (s *countingStore) Range(ctx context.Context, from, to time.Time, series ...metrics.Series) ([]metrics.RangeResult, error) {
	results, err := s.Store.Range(ctx, from, to, series...)
	for _, r := range results {
		s.points.Add(int64(len(r.Points)))
	}
	return results, err
}

// A query that matches every series of a store with many hosts stops
// reading once it is over MaxSamples, instead of reading them all and
// then refusing; a range that is empty, reversed or reaches the ends of
// time is answered.
func TestReadStopsAtMaxSamples(t *testing.T) {
	e := startEndpoints(t, 2, remote.Options{})
	const hosts = 300
	var all []prompb.TimeSeries
	for i := range hosts {
		all = append(all, series([]string{"__name__", "up", "instance", fmt.Sprintf("host%03d:9100", i)},
			prompb.Sample{Timestamp: t0, Value: float64(i)}))
	}
	code, reply := e.writeSeries(t, all...)
	require.Equal(t, http.StatusNoContent, code, reply)

	store := &countingStore{Store: e.store}
	h, err := remote.NewReadHandler(store, remote.Options{MaxSamples: 10, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	body, err := (&prompb.ReadRequest{Queries: []*prompb.Query{
		query(t0, t0, matcher(prompb.LabelMatcher_RE, "instance", ".*")),
	}}).Marshal()
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/read", bytes.NewReader(snappy.Encode(nil, body))))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), "more than 10 samples")
	assert.LessOrEqual(t, store.points.Load(), int64(64), "one group of series read, not all %d", hosts)

	got := e.read(t,
		query(t0, t0, matcher(prompb.LabelMatcher_EQ, "__name__", "up")),
		query(t0+1, t0, matcher(prompb.LabelMatcher_EQ, "__name__", "up")),
		query(0, 0, matcher(prompb.LabelMatcher_EQ, "__name__", "up")),
	)
	assert.Len(t, got[0], hosts, "a range of one instant")
	assert.Empty(t, got[1], "a reversed range")
	assert.Empty(t, got[2], "the epoch")
	for i, ts := range got[0] {
		assert.Equal(t, fmt.Sprintf("host%03d:9100", i), ts.Labels[1].Value)
		assert.Equal(t, []prompb.Sample{{Timestamp: t0, Value: float64(i)}}, ts.Samples)
	}
}

// Points of one series within one millisecond, which redfed keeps apart
// (Graphite's timestamps have microseconds, and two writers may give one
// time two values), are one sample to Prometheus, whose series hold one
// sample a millisecond: the last.
func TestReadOneSamplePerMillisecond(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	rec := fedtest.NewRecorder(t, e.store.Client(), metrics.RecorderOptions{})
	at := time.UnixMilli(t0)
	require.NoError(t, rec.Write(t.Context(),
		metrics.Sample{Host: "h", Metric: "m", Time: at, Value: 1},
		metrics.Sample{Host: "h", Metric: "m", Time: at.Add(300 * time.Microsecond), Value: 2},
		metrics.Sample{Host: "h", Metric: "m", Time: at.Add(time.Millisecond), Value: 3},
		metrics.Sample{Host: "h", Metric: "m", Time: at.Add(time.Millisecond), Value: 4},
		metrics.Sample{Host: "h", Metric: "m", Time: at.Add(2 * time.Millisecond), Value: 5},
	))
	want := []prompb.Sample{{Timestamp: t0, Value: 2}, {Timestamp: t0 + 1, Value: 4}, {Timestamp: t0 + 2, Value: 5}}
	got := e.read(t, query(t0, t0+10, matcher(prompb.LabelMatcher_EQ, "__name__", "m")))[0]
	require.Len(t, got, 1)
	assert.Equal(t, want, got[0].Samples)
}

// A reader that does not read its reply gives its turn up once the reply
// has taken BodyTimeout, its connection cut: with one turn, an honest read
// that comes after it is answered. (The turn was held for as long as the
// connection stayed open, and 16 such readers stopped every read.)
func TestReadReplyNotReadGivesItsTurnUp(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{MaxRequests: 1, BodyTimeout: time.Second})
	const n = 600_000 // a reply of megabytes, more than the sockets hold
	samples := make([]prompb.Sample, n)
	for i := range samples {
		samples[i] = prompb.Sample{Timestamp: t0 + int64(i), Value: float64(i)}
	}
	for i := 0; i < n; i += n / 4 { // each request under the decoded limit
		code, reply := e.writeSeries(t, series([]string{"__name__", "big"}, samples[i:i+n/4]...))
		require.Equal(t, http.StatusNoContent, code, reply)
	}
	code, reply := e.writeSeries(t, series([]string{"__name__", "small"}, prompb.Sample{Timestamp: t0, Value: 1}))
	require.Equal(t, http.StatusNoContent, code, reply)

	body, err := (&prompb.ReadRequest{Queries: []*prompb.Query{
		query(t0, t0+n, matcher(prompb.LabelMatcher_EQ, "__name__", "big")),
	}}).Marshal()
	require.NoError(t, err)
	body = snappy.Encode(nil, body)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	_, err = fmt.Fprintf(conn, "POST /read HTTP/1.1\r\nHost: redfed\r\nContent-Type: application/x-protobuf\r\n"+
		"Content-Encoding: snappy\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	require.NoError(t, err)
	status, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 200 OK\r\n", status, "the reply has begun: the reader holds the turn, and reads no more")

	small, err := (&prompb.ReadRequest{Queries: []*prompb.Query{
		query(t0, t0, matcher(prompb.LabelMatcher_EQ, "__name__", "small")),
	}}).Marshal()
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, e.url+"/read", bytes.NewReader(snappy.Encode(nil, small)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err, "the honest read is answered")
	defer res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

// Regular expressions that would compile to megabytes are refused before
// any is compiled: ".{1000}" a thousand times over, 11 KB, held 42 MiB
// once compiled, and a request could hold a hundred of them. One that
// lists a thousand hosts, as a Grafana variable does, is served.
func TestReadRefusesHugeRegexps(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	huge := strings.Repeat(".{1000}", 1000)
	body, err := (&prompb.ReadRequest{Queries: []*prompb.Query{
		query(t0, t0, matcher(prompb.LabelMatcher_EQ, "__name__", "up"), matcher(prompb.LabelMatcher_RE, "instance", huge)),
	}}).Marshal()
	require.NoError(t, err)
	start := time.Now()
	code, reply := post(t, e.url+"/read", body, false)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, string(reply), "would compile to more than 100000 instructions")
	assert.Less(t, len(reply), 1024)
	assert.Less(t, time.Since(start), time.Second)

	hosts := make([]string, 1000)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("web%03d.example.com:9100", i)
	}
	code, written := e.writeSeries(t, series([]string{"__name__", "up", "instance", hosts[7]}, prompb.Sample{Timestamp: t0, Value: 1}))
	require.Equal(t, http.StatusNoContent, code, written)
	body, err = (&prompb.ReadRequest{Queries: []*prompb.Query{
		query(t0, t0, matcher(prompb.LabelMatcher_EQ, "__name__", "up"), matcher(prompb.LabelMatcher_RE, "instance", strings.Join(hosts, "|"))),
	}}).Marshal()
	require.NoError(t, err)
	code, _ = post(t, e.url+"/read", body, false)
	assert.Equal(t, http.StatusOK, code)
}

// A query of no range (Prometheus's series listing without start or end:
// from the year -292 million to +292 million) reads the last MaxRange, up
// to an hour past the present; a wider range that starts ahead of the
// present reads MaxRange from its start.
func TestReadOfNoRangeReadsTheLastMaxRange(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{MaxRange: 48 * time.Hour})
	now := time.Now()
	at := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	for _, s := range []struct {
		name string
		at   time.Duration
	}{{"recent", -time.Minute}, {"old", -72 * time.Hour}, {"soon", 30 * time.Minute}} {
		code, reply := e.writeSeries(t, series([]string{"__name__", s.name, "instance", "h:1"}, prompb.Sample{Timestamp: at(s.at), Value: 1}))
		require.Equal(t, http.StatusNoContent, code, reply)
	}
	names := func(got []*prompb.TimeSeries) []string {
		var out []string
		for _, ts := range got {
			out = append(out, ts.Labels[0].Value)
		}
		return out
	}
	all := matcher(prompb.LabelMatcher_RE, "__name__", ".+")
	got := e.read(t,
		query(math.MinInt64, math.MaxInt64, all),
		query(at(10*time.Minute), math.MaxInt64, all),
		query(at(-100*time.Hour), at(-time.Hour), all),
	)
	assert.ElementsMatch(t, []string{"recent", "soon"}, names(got[0]), "the last 48 hours, to an hour ahead")
	assert.ElementsMatch(t, []string{"soon"}, names(got[1]), "48 hours from a start ahead")
	assert.Empty(t, names(got[2]), "48 hours back from the end")
}
