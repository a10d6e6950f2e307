package remote_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/prometheus/remote"
)

// A read that prefers streamed chunks gets the samples a read of SAMPLES
// gets, as XOR chunks of at most 120 samples in checksummed frames.
func TestReadStreamedChunks(t *testing.T) {
	e := startEndpoints(t, 2, remote.Options{})
	var long, short []prompb.Sample
	for i := range 300 {
		long = append(long, prompb.Sample{Timestamp: t0 + int64(i)*1000, Value: float64(i) / 3})
	}
	short = append(short, prompb.Sample{Timestamp: t0 + 5, Value: -1})
	code, reply := e.writeSeries(t, series([]string{"__name__", "a", "instance", "h:1"}, long...),
		series([]string{"__name__", "b", "instance", "h:2"}, short...))
	require.Equal(t, http.StatusNoContent, code, reply)

	queries := []*prompb.Query{
		query(t0, t0+1_000_000, matcher(prompb.LabelMatcher_RE, "__name__", "a|b")),
		query(t0, t0+1_000_000, matcher(prompb.LabelMatcher_EQ, "__name__", "b")),
	}
	want := e.read(t, queries...)
	body, err := (&prompb.ReadRequest{Queries: queries, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{
		prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES}}).Marshal()
	require.NoError(t, err)
	code, stream := post(t, e.url+"/read", body, false)
	require.Equal(t, http.StatusOK, code, string(stream))

	got := make([][]*prompb.TimeSeries, len(queries))
	chunks := 0
	r := bufio.NewReader(bytes.NewReader(stream))
	for {
		size, err := binary.ReadUvarint(r)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		var sum uint32
		require.NoError(t, binary.Read(r, binary.BigEndian, &sum))
		msg := make([]byte, size)
		_, err = io.ReadFull(r, msg)
		require.NoError(t, err)
		require.Equal(t, crc32.Checksum(msg, crc32.MakeTable(crc32.Castagnoli)), sum, "checksum")
		var frame prompb.ChunkedReadResponse
		require.NoError(t, frame.Unmarshal(msg))
		require.Len(t, frame.ChunkedSeries, 1, "one series a frame")
		cs := frame.ChunkedSeries[0]
		ts := &prompb.TimeSeries{Labels: cs.Labels}
		for _, c := range cs.Chunks {
			chunks++
			require.Equal(t, prompb.Chunk_XOR, c.Type)
			chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Data)
			require.NoError(t, err)
			assert.LessOrEqual(t, chk.NumSamples(), 120)
			it := chk.Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts0, v := it.At()
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: ts0, Value: v})
			}
			require.NoError(t, it.Err())
			assert.Equal(t, c.MinTimeMs, ts.Samples[len(ts.Samples)-chk.NumSamples()].Timestamp)
			assert.Equal(t, c.MaxTimeMs, ts.Samples[len(ts.Samples)-1].Timestamp)
		}
		got[frame.QueryIndex] = append(got[frame.QueryIndex], ts)
	}
	assert.Equal(t, 5, chunks, "300 samples in 3 chunks, and 1 for b in each query")
	require.Len(t, got[0], 2)
	require.Len(t, got[1], 1)
	for qi := range want {
		for i := range want[qi] {
			assert.Equal(t, want[qi][i].Labels, got[qi][i].Labels)
			assert.Equal(t, want[qi][i].Samples, got[qi][i].Samples)
		}
	}
}
