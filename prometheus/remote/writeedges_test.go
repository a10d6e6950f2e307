package remote_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/prometheus/remote"
)

// What a broken or hostile sender puts in a request: names at the limits,
// an empty host, every odd character, a series twice, samples out of
// order, the same series from many writers at once. What can be stored
// reads back exactly; what cannot is refused whole, with its series named.
func TestWriteEdges(t *testing.T) {
	e := startEndpoints(t, 2, remote.Options{})
	// x{v="…"} is 7 bytes around the value.
	atLimit := series([]string{"__name__", "x", "v", strings.Repeat("y", 512-7)}, prompb.Sample{Timestamp: t0, Value: 1})
	overLimit := series([]string{"__name__", "x", "v", strings.Repeat("y", 512-6)}, prompb.Sample{Timestamp: t0, Value: 1})
	odd := "\x00\t\r\n\\\"'{}=,%:\u200b\u00a0\u202e😀é\x7f"
	oddSeries := series([]string{"__name__", "odd.name", "instance", odd, "lé bel", odd}, prompb.Sample{Timestamp: t0, Value: 2})
	emptyHost := series([]string{"__name__", "nohost", "instance", "", "job", "j"}, prompb.Sample{Timestamp: t0, Value: 3})
	dup := []string{"__name__", "dup", "instance", "h:1"}
	code, reply := e.writeSeries(t, atLimit, oddSeries, emptyHost,
		series(dup, prompb.Sample{Timestamp: t0 + 2, Value: 2}, prompb.Sample{Timestamp: t0, Value: 0}),
		series([]string{"instance", "h:1", "__name__", "dup"}, prompb.Sample{Timestamp: t0 + 1, Value: 1}, prompb.Sample{Timestamp: t0 + 2, Value: 2}))
	require.Equal(t, http.StatusNoContent, code, reply)

	code, reply = e.writeSeries(t, series([]string{"__name__", "fine"}, prompb.Sample{Timestamp: t0, Value: 1}), overLimit)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, reply, "series 2 of 2")
	assert.Contains(t, reply, "longer than the limit of 512")
	code, reply = e.writeSeries(t, series([]string{"__name__", "bad", "v", "\xff"}, prompb.Sample{Timestamp: t0, Value: 1}))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, reply, "UTF-8")

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 5 {
				s := series([]string{"__name__", "shared"}, prompb.Sample{Timestamp: t0 + int64(i), Value: float64(i)})
				if code, reply := e.writeSeries(t, s); code != http.StatusNoContent {
					t.Errorf("writer %d: %d %s", w, code, reply)
				}
			}
		})
	}
	wg.Wait()

	got := e.read(t,
		query(t0, t0+10, matcher(prompb.LabelMatcher_EQ, "__name__", "x")),
		query(t0, t0+10, matcher(prompb.LabelMatcher_EQ, "__name__", "odd.name")),
		query(t0, t0+10, matcher(prompb.LabelMatcher_EQ, "__name__", "nohost")),
		query(t0, t0+10, matcher(prompb.LabelMatcher_EQ, "__name__", "dup")),
		query(t0, t0+10, matcher(prompb.LabelMatcher_EQ, "__name__", "shared")),
		query(t0, t0+10, matcher(prompb.LabelMatcher_EQ, "__name__", "fine")),
	)
	require.Len(t, got[0], 1)
	assert.Equal(t, []string{"__name__=x", "v=" + strings.Repeat("y", 505)}, labelsOf(got[0][0]))
	require.Len(t, got[1], 1)
	assert.Equal(t, []string{"__name__=odd.name", "instance=" + odd, "lé bel=" + odd}, labelsOf(got[1][0]))
	require.Len(t, got[2], 1)
	assert.Equal(t, []string{"__name__=nohost", "job=j"}, labelsOf(got[2][0]), "an empty label is no label")
	require.Len(t, got[3], 1, "one series, however often and in whatever label order it is sent")
	assert.Equal(t, []prompb.Sample{{Timestamp: t0, Value: 0}, {Timestamp: t0 + 1, Value: 1}, {Timestamp: t0 + 2, Value: 2}},
		got[3][0].Samples, "sorted, each once")
	require.Len(t, got[4], 1)
	assert.Equal(t, []prompb.Sample{{Timestamp: t0}, {Timestamp: t0 + 1, Value: 1}, {Timestamp: t0 + 2, Value: 2},
		{Timestamp: t0 + 3, Value: 3}, {Timestamp: t0 + 4, Value: 4}}, got[4][0].Samples)
	assert.Empty(t, got[5], "nothing of a refused request is written")
}

// Labels far too long for a series are refused at once, with a short
// reply: a value over 16 MiB made Prometheus's labels panic (the sender
// saw its connection dropped, and sent again for ever), and one of
// 8 MiB of bytes that quote long came back whole in the reply, and in the
// log, several times its size.
func TestWriteRefusesHugeLabels(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	for _, tt := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"a value over 16 MiB", []string{"__name__", "x", "v", strings.Repeat("y", 1<<24+1)}, "more than 512 bytes"},
		{"a value that quotes long", []string{"__name__", "x", "v", strings.Repeat("\xff", 8<<20)}, "more than 512 bytes"},
		{"a long name", []string{"__name__", "x", strings.Repeat("n", 1<<20), "v"}, "more than 512 bytes"},
		{"a name over 16 MiB with no value", []string{"__name__", "x", strings.Repeat("n", 1<<24+1), ""}, "more than 512 bytes"},
		{"a long host", []string{"__name__", "x", "instance", strings.Repeat("h", 300)}, "more than a host may be (256)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, reply := e.writeSeries(t, series(tt.labels, prompb.Sample{Timestamp: t0, Value: 1}))
			assert.Equal(t, http.StatusBadRequest, code)
			assert.Contains(t, reply, "series 1 of 1")
			assert.Contains(t, reply, tt.want)
			assert.Less(t, len(reply), 1024, "the reply is short: %.200s", reply)
		})
	}
}

// A remote write 2.0 request sent without its Content-Type, whose symbols
// and series are fields 4 and 5, which 1.0 does not have, is refused with
// 415, not answered 204 with nothing stored. A 1.0 request with such a
// field beside its series is written.
func TestWriteRefusesRemoteWrite2WithoutItsContentType(t *testing.T) {
	e := startEndpoints(t, 1, remote.Options{})
	v2 := []byte{0x22, 0x08, '_', '_', 'n', 'a', 'm', 'e', '_', '_', 0x2a, 0x02, 0x0a, 0x00} // symbols ["__name__"], a series
	code, reply := post(t, e.url+"/write", v2, false)
	assert.Equal(t, http.StatusUnsupportedMediaType, code)
	assert.Contains(t, string(reply), "WriteRequest holds no series, only fields remote write 1.0 does not have (a remote write 2.0 request?)")

	v1, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series([]string{"__name__", "up", "instance", "a:1"}, prompb.Sample{Timestamp: t0, Value: 1}),
	}}).Marshal()
	require.NoError(t, err)
	code, reply = post(t, e.url+"/write", append(v1, v2...), false)
	assert.Equal(t, http.StatusNoContent, code, string(reply))
	assert.Equal(t, int64(1), e.write.Stats().Samples)
}
