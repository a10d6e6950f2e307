package remote_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/prometheus/remote"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// endpoints is a write and a read handler on a federation of real
// redis-servers, served over HTTP.
type endpoints struct {
	servers []*redistest.Server
	store   *metrics.Store
	write   *remote.WriteHandler
	url     string // of the server; the handlers are on /write and /read
}

// startEndpoints starts n redis-servers, one node each, and the handlers
// on a test HTTP server, all stopped when the test ends.
func startEndpoints(t *testing.T, n int, opts remote.Options, serverArgs ...string) *endpoints {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	servers := redistest.StartN(t, n, redistest.Options{Args: serverArgs})
	c := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(servers), Options: fedtest.Options()})
	store := fedtest.NewStore(t, c)
	rec := fedtest.NewRecorder(t, c, metrics.RecorderOptions{})
	wh, err := remote.NewWriteHandler(rec, opts)
	require.NoError(t, err)
	rh, err := remote.NewReadHandler(store, opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/write", wh)
	mux.Handle("/read", rh)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &endpoints{servers: servers, store: store, write: wh, url: srv.URL}
}

// post sends body, snappy-compressed unless raw, and returns the status
// and the reply.
func post(t *testing.T, url string, body []byte, raw bool) (int, []byte) {
	t.Helper()
	if !raw {
		body = snappy.Encode(nil, body)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	reply, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, reply
}

// writeSeries posts a WriteRequest of series and returns the status and
// the reply.
func (e *endpoints) writeSeries(t *testing.T, series ...prompb.TimeSeries) (int, string) {
	t.Helper()
	body, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	require.NoError(t, err)
	code, reply := post(t, e.url+"/write", body, false)
	return code, string(reply)
}

// read posts a ReadRequest of queries and returns the series of each.
func (e *endpoints) read(t *testing.T, queries ...*prompb.Query) [][]*prompb.TimeSeries {
	t.Helper()
	body, err := (&prompb.ReadRequest{Queries: queries}).Marshal()
	require.NoError(t, err)
	code, reply := post(t, e.url+"/read", body, false)
	require.Equal(t, http.StatusOK, code, string(reply))
	data, err := snappy.Decode(nil, reply)
	require.NoError(t, err)
	var resp prompb.ReadResponse
	require.NoError(t, resp.Unmarshal(data))
	require.Len(t, resp.Results, len(queries))
	out := make([][]*prompb.TimeSeries, len(queries))
	for i, r := range resp.Results {
		out[i] = r.Timeseries
	}
	return out
}

// series builds a TimeSeries of label pairs and samples.
func series(lbls []string, samples ...prompb.Sample) prompb.TimeSeries {
	ts := prompb.TimeSeries{Samples: samples}
	for i := 0; i+1 < len(lbls); i += 2 {
		ts.Labels = append(ts.Labels, prompb.Label{Name: lbls[i], Value: lbls[i+1]})
	}
	return ts
}

// t0 is the time of the tests' samples, in milliseconds.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixMilli()

func query(from, to int64, ms ...*prompb.LabelMatcher) *prompb.Query {
	return &prompb.Query{StartTimestampMs: from, EndTimestampMs: to, Matchers: ms}
}

func matcher(typ prompb.LabelMatcher_Type, name, v string) *prompb.LabelMatcher {
	return &prompb.LabelMatcher{Type: typ, Name: name, Value: v}
}

// labelsOf returns a series' labels as name=value pairs.
func labelsOf(ts *prompb.TimeSeries) []string {
	var out []string
	for _, l := range ts.Labels {
		out = append(out, l.Name+"="+l.Value)
	}
	return out
}

// Samples written come back from a read with their labels, timestamps to
// the millisecond and values; values redfed cannot hold are skipped and
// counted.
func TestWriteThenRead(t *testing.T) {
	e := startEndpoints(t, 3, remote.Options{})
	up := []string{"__name__", "up", "instance", "localhost:9090", "job", "prometheus"}
	reqs := []string{"__name__", "http_requests_total", "code", "200", "instance", "web1:80", "path", "/a \"b\"\n"}
	noHost := []string{"__name__", "build_info", "version", "1.0"}
	code, reply := e.writeSeries(t,
		series(up, prompb.Sample{Timestamp: t0, Value: 1}, prompb.Sample{Timestamp: t0 + 1001, Value: 0},
			prompb.Sample{Timestamp: t0 + 2002, Value: math.Float64frombits(value.StaleNaN)}),
		series(reqs, prompb.Sample{Timestamp: t0 + 7, Value: 0.1}, prompb.Sample{Timestamp: t0 + 999, Value: math.NaN()},
			prompb.Sample{Timestamp: t0 + 1999, Value: math.Inf(1)}, prompb.Sample{Timestamp: t0 + 2999, Value: 1e300}),
		series(noHost, prompb.Sample{Timestamp: t0 + 5, Value: -2.5}),
		prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{{Timestamp: t0}}},
	)
	require.Equal(t, http.StatusNoContent, code, reply)
	assert.Equal(t, remote.WriteStats{Requests: 1, Stored: 1, Samples: 5, StaleMarkers: 1, NonFinite: 2, Histograms: 1}, e.write.Stats())

	points, err := fedtest.RangeOf(t.Context(), e.store, "localhost%3A9090", `up{job="prometheus"}`,
		time.UnixMilli(t0), time.UnixMilli(t0+10_000))
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{{Time: time.UnixMilli(t0).UTC(), Value: 1}, {Time: time.UnixMilli(t0 + 1001).UTC(), Value: 0}}, points)

	all := e.read(t, query(t0, t0+10_000, matcher(prompb.LabelMatcher_RE, "__name__", ".+")))[0]
	require.Len(t, all, 3)
	assert.Equal(t, []string{"__name__=build_info", "version=1.0"}, labelsOf(all[0]))
	assert.Equal(t, []prompb.Sample{{Timestamp: t0 + 5, Value: -2.5}}, all[0].Samples)
	assert.Equal(t, []string{"__name__=http_requests_total", "code=200", "instance=web1:80", "path=/a \"b\"\n"}, labelsOf(all[1]))
	assert.Equal(t, []prompb.Sample{{Timestamp: t0 + 7, Value: 0.1}, {Timestamp: t0 + 2999, Value: 1e300}}, all[1].Samples)
	assert.Equal(t, []string{"__name__=up", "instance=localhost:9090", "job=prometheus"}, labelsOf(all[2]))
	assert.Equal(t, []prompb.Sample{{Timestamp: t0, Value: 1}, {Timestamp: t0 + 1001, Value: 0}}, all[2].Samples)

	names := func(ts []*prompb.TimeSeries) []string {
		var out []string
		for _, s := range ts {
			out = append(out, labelsOf(s)[0])
		}
		return out
	}
	got := e.read(t,
		query(t0, t0+10_000, matcher(prompb.LabelMatcher_EQ, "instance", "localhost:9090")),
		query(t0, t0+10_000, matcher(prompb.LabelMatcher_EQ, "instance", "")),
		query(t0, t0+10_000, matcher(prompb.LabelMatcher_NEQ, "instance", "localhost:9090")),
		query(t0, t0+10_000, matcher(prompb.LabelMatcher_RE, "instance", "web.*"), matcher(prompb.LabelMatcher_EQ, "code", "200")),
		query(t0, t0+10_000, matcher(prompb.LabelMatcher_NRE, "__name__", "up|build_info")),
		query(t0, t0+10_000, matcher(prompb.LabelMatcher_EQ, "job", "prometheus"), matcher(prompb.LabelMatcher_EQ, "instance", "elsewhere:1")),
		query(t0+1000, t0+1001, matcher(prompb.LabelMatcher_EQ, "__name__", "up")),
	)
	assert.Equal(t, []string{"__name__=up"}, names(got[0]))
	assert.Equal(t, []string{"__name__=build_info"}, names(got[1]), "no instance label is the empty value")
	assert.Equal(t, []string{"__name__=build_info", "__name__=http_requests_total"}, names(got[2]))
	assert.Equal(t, []string{"__name__=http_requests_total"}, names(got[3]))
	assert.Equal(t, []string{"__name__=http_requests_total"}, names(got[4]))
	assert.Empty(t, got[5])
	require.Len(t, got[6], 1)
	assert.Equal(t, []prompb.Sample{{Timestamp: t0 + 1001, Value: 0}}, got[6][0].Samples, "the range's ends are inclusive")
}

// Requests that can never succeed get a 4xx that says why, and nothing of
// them is written.
func TestWriteRefuses(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{MaxBodyBytes: 4096, MaxDecodedBytes: 8192})
	good := series([]string{"__name__", "good", "instance", "h"}, prompb.Sample{Timestamp: t0, Value: 1})
	marshal := func(series ...prompb.TimeSeries) []byte {
		body, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
		require.NoError(t, err)
		return body
	}
	for _, tc := range []struct {
		name string
		body []byte
		raw  bool // sent as is, not snappy-compressed
		code int
		want string
	}{
		{"not snappy", []byte("hello, world"), true, http.StatusBadRequest, "not snappy-compressed"},
		{"not protobuf", []byte("\xff\xff\xff\xff"), false, http.StatusBadRequest, "decode WriteRequest"},
		{"a long metric name", marshal(good, series([]string{"__name__", "x", "v", strings.Repeat("y", 600)},
			prompb.Sample{Timestamp: t0, Value: 1})), false, http.StatusBadRequest, "series 2 of 2"},
		{"before 1970", marshal(good, series([]string{"__name__", "old"}, prompb.Sample{Timestamp: -1000, Value: 1})),
			false, http.StatusBadRequest, "timestamp -1000 ms"},
		{"a label twice", marshal(good, series([]string{"__name__", "x", "a", "1", "a", "2"}, prompb.Sample{Timestamp: t0, Value: 1})),
			false, http.StatusBadRequest, `label "a" appears twice`},
		{"compressed over the limit", snappy.Encode(nil, randomBytes(5000)), true, http.StatusRequestEntityTooLarge, "over the limit of 4096 bytes"},
		{"decompressed over the limit", bytes.Repeat([]byte{0}, 9000), false, http.StatusRequestEntityTooLarge, "decompresses to 9000 bytes"},
		{"decoded over the limit", bytes.Repeat([]byte{0x0a, 0x00}, 2000), false, http.StatusRequestEntityTooLarge,
			"WriteRequest of 4000 bytes takes about 256000 once decoded, over the limit of 8192"},
		{"malformed deep down", marshal(good)[:20], false, http.StatusBadRequest, "decode WriteRequest: field 1: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reply := post(t, e.url+"/write", tc.body, tc.raw)
			assert.Equal(t, tc.code, code, string(reply))
			assert.Contains(t, string(reply), tc.want)
		})
	}
	hosts, err := e.store.Hosts(t.Context(), time.Time{})
	require.NoError(t, err)
	assert.Empty(t, hosts, "nothing written")
	assert.Equal(t, int64(9), e.write.Stats().Refused)

	res, err := http.Get(e.url + "/write")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)

	req, err := http.NewRequest(http.MethodPost, e.url+"/write", bytes.NewReader(snappy.Encode(nil, marshal(good))))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode, "remote write 2.0")
}

// A sender whose clock runs ahead: a sample stamped up to 50 minutes
// ahead is written and found by a query near its time (a read lists the
// series changed since an hour before its start); one farther ahead would
// not be, and is skipped (TestWriteSkipsSamplesFarAhead).
func TestSampleAheadOfTheClockIsReadNearItsTime(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	ts := time.Now().Add(45 * time.Minute).UnixMilli()
	code, reply := e.writeSeries(t, series([]string{"__name__", "up", "instance", "h"}, prompb.Sample{Timestamp: ts, Value: 1}))
	require.Equal(t, http.StatusNoContent, code, reply)
	got := e.read(t, query(ts-5*60*1000, ts, matcher(prompb.LabelMatcher_EQ, "__name__", "up")))
	require.Len(t, got[0], 1)
	assert.Equal(t, []prompb.Sample{{Timestamp: ts, Value: 1}}, got[0][0].Samples)
}

// randomBytes returns n bytes that snappy cannot shrink.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// A write that Redis does not acknowledge is a 503, which Prometheus
// sends again; once the server is back the same request succeeds.
func TestWriteServerDown(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	s := series([]string{"__name__", "up", "instance", "a:1"}, prompb.Sample{Timestamp: t0, Value: 1})
	require.NoError(t, e.servers[0].Kill())
	code, reply := e.writeSeries(t, s)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, reply, e.servers[0].Addr())
	assert.Equal(t, int64(1), e.write.Stats().Failed)
	body, err := (&prompb.ReadRequest{Queries: []*prompb.Query{query(t0, t0)}}).Marshal()
	require.NoError(t, err)
	code, readReply := post(t, e.url+"/read", body, false)
	assert.Equal(t, http.StatusServiceUnavailable, code, "a read that may miss data fails")
	assert.Contains(t, string(readReply), e.servers[0].Addr())

	require.NoError(t, e.servers[0].Restart())
	require.Eventually(t, func() bool {
		code, _ := e.writeSeries(t, s)
		return code == http.StatusNoContent
	}, 10*time.Second, 50*time.Millisecond)
	got := e.read(t, query(t0, t0, matcher(prompb.LabelMatcher_EQ, "__name__", "up")))[0]
	require.Len(t, got, 1)
	assert.Equal(t, []prompb.Sample{{Timestamp: t0, Value: 1}}, got[0].Samples)
}

// Reads are bounded, and refuse what they cannot answer.
func TestReadRefuses(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{MaxSamples: 2})
	code, reply := e.writeSeries(t, series([]string{"__name__", "x"},
		prompb.Sample{Timestamp: t0, Value: 1}, prompb.Sample{Timestamp: t0 + 1, Value: 2}, prompb.Sample{Timestamp: t0 + 2, Value: 3}))
	require.Equal(t, http.StatusNoContent, code, reply)
	for _, tc := range []struct {
		name string
		req  *prompb.ReadRequest
		want string
	}{
		{"too many samples", &prompb.ReadRequest{Queries: []*prompb.Query{query(t0, t0+10, matcher(prompb.LabelMatcher_EQ, "__name__", "x"))}},
			"query 1 of 1: more than 2 samples"},
		{"bad regexp", &prompb.ReadRequest{Queries: []*prompb.Query{query(t0, t0+10, matcher(prompb.LabelMatcher_RE, "__name__", "("))}},
			"matcher __name__ =~ \"(\""},
		{"an unknown response type", &prompb.ReadRequest{Queries: []*prompb.Query{query(t0, t0+10)},
			AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{7}}, "only SAMPLES and STREAMED_XOR_CHUNKS"},
		{"too many queries", &prompb.ReadRequest{Queries: slices.Repeat([]*prompb.Query{query(t0, t0+10)}, 101)},
			"101 queries: at most 100 a request"},
		{"too many matchers", &prompb.ReadRequest{Queries: []*prompb.Query{query(t0, t0+10,
			slices.Repeat([]*prompb.LabelMatcher{matcher(prompb.LabelMatcher_RE, "__name__", ".{1000}")}, 101)...)}},
			"query 1 of 1: 101 matchers: at most 100 a query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := tc.req.Marshal()
			require.NoError(t, err)
			code, reply := post(t, e.url+"/read", body, false)
			assert.Equal(t, http.StatusBadRequest, code)
			assert.Contains(t, string(reply), tc.want)
		})
	}
	got := e.read(t, query(t0+1, t0+2, matcher(prompb.LabelMatcher_EQ, "__name__", "x")))[0]
	require.Len(t, got, 1)
	assert.Len(t, got[0].Samples, 2, "within the bound")

	// A million empty queries are 2 MB, and would each list every host.
	code, readReply := post(t, e.url+"/read", bytes.Repeat([]byte{0x0a, 0x00}, 1_000_000), false)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	assert.Contains(t, string(readReply), "ReadRequest of 2000000 bytes takes about 88000000 once decoded")
}

func TestNewHandlersRefuseBadOptions(t *testing.T) {
	for _, opts := range []remote.Options{{HostLabel: "__name__"}, {HostLabel: "bad\xff"}, {MaxSamples: -1}, {MaxBodyBytes: -1}, {BodyTimeout: -1}, {MaxRequests: -1}} {
		_, err := remote.NewReadHandler(&metrics.Store{}, opts)
		assert.Error(t, err, "%+v", opts)
	}
	_, err := remote.NewWriteHandler(nil, remote.Options{})
	assert.Error(t, err)
}

// While a server is down Prometheus sends its writes again and again; the
// log gets one line for many failures, with their count.
func TestWriteFailuresLogged(t *testing.T) {
	var logs fedtest.Logs
	e := startEndpoints(t, 1, remote.Options{Logger: slog.New(&logs)})
	require.NoError(t, e.servers[0].Kill())
	s := series([]string{"__name__", "up"}, prompb.Sample{Timestamp: t0, Value: 1})
	for range 3 {
		code, _ := e.writeSeries(t, s)
		require.Equal(t, http.StatusServiceUnavailable, code)
	}
	assert.Equal(t, []any{int64(503)}, logs.Values("remote: request failed", "status"), "one line for three failures")
	assert.Equal(t, int64(3), e.write.Stats().Failed)
}

// The requests stored only count up: one under way is not counted until
// it is answered 204, and one that fails never is (the exporter's ok
// requests, counted as the requests less those refused and failed, went
// down when one under way failed).
func TestWriteStatsStoredCountsAnswers(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	s := series([]string{"__name__", "up", "instance", "a:1"}, prompb.Sample{Timestamp: t0, Value: 1})
	code, _ := e.writeSeries(t, s)
	require.Equal(t, http.StatusNoContent, code)
	require.Equal(t, int64(1), e.write.Stats().Stored)

	require.NoError(t, e.servers[0].Pause())
	done := make(chan int, 1)
	go func() {
		code, _ := e.writeSeries(t, s)
		done <- code
	}()
	require.Eventually(t, func() bool { return e.write.Stats().Requests == 2 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(1), e.write.Stats().Stored, "a request under way is not stored yet")
	assert.Equal(t, http.StatusServiceUnavailable, <-done, "Redis did not answer in time")
	st := e.write.Stats()
	assert.Equal(t, int64(1), st.Stored)
	assert.Equal(t, int64(1), st.Failed)
	require.NoError(t, e.servers[0].Resume())
}

// A series whose key holds another type (written by hand) can never be
// stored until someone deletes the key: 400, naming the key, and the
// request's other series are written. A 503 had Prometheus send the
// request again for ever, holding back every series behind it.
func TestWriteToAKeyOfAnotherType(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	ls := []string{"__name__", "up", "instance", "a:1"}
	s, err := remote.SeriesOf(labels.FromStrings(ls...), remote.DefaultHostLabel)
	require.NoError(t, err)
	c := fedtest.NewClient(t, federated.Config{Nodes: fedtest.SingleNodes(e.servers), Options: fedtest.Options()})
	key := fedtest.MustKey(t, c, time.UnixMilli(t0), s.Host, s.Metric)
	rc := redis.NewClient(&redis.Options{Addr: e.servers[0].Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	require.NoError(t, rc.Set(context.Background(), key, "by hand", 0).Err())

	code, reply := e.writeSeries(t, series(ls, prompb.Sample{Timestamp: t0, Value: 1}),
		series([]string{"__name__", "fine"}, prompb.Sample{Timestamp: t0, Value: 2}))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, reply, key)
	got := e.read(t, query(t0, t0, matcher(prompb.LabelMatcher_EQ, "__name__", "fine")))
	require.Len(t, got[0], 1, "the request's other series is written")
}
