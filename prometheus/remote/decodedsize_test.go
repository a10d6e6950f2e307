package remote

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// decodedSize bounds what decoding allocates, within the growth of
// slices, for bodies of many tiny elements as for ordinary ones, and
// costs an ordinary request a few times its size only. A slice grown by
// append past 256 elements takes arrays 1.25 times larger each time,
// which add up to about 5 times its last.
func TestDecodedSizeBoundsDecoding(t *testing.T) {
	ordinary := prompb.WriteRequest{}
	for i := range 1000 {
		ordinary.Timeseries = append(ordinary.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "instance", Value: "web1:9100"},
				{Name: "job", Value: "node"}, {Name: "code", Value: strings.Repeat("2", i%7+1)}},
			Samples: []prompb.Sample{{Timestamp: 1764064800000 + int64(i), Value: float64(i)}},
		})
	}
	body, err := ordinary.Marshal()
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		body     []byte
		s        *shape
		decode   func([]byte) error
		maxRatio int // decodedSize over len(body) at most
	}{
		{"ordinary", body, writeRequestShape, func(b []byte) error { return new(prompb.WriteRequest).Unmarshal(b) }, 8},
		{"empty series", bytes.Repeat([]byte{0x0a, 0x00}, 100_000), writeRequestShape,
			func(b []byte) error { return new(prompb.WriteRequest).Unmarshal(b) }, 0},
		{"empty labels", append([]byte{0x0a, 0x80, 0xb5, 0x18}, bytes.Repeat([]byte{0x0a, 0x00}, 200_000)...), writeRequestShape,
			func(b []byte) error { return new(prompb.WriteRequest).Unmarshal(b) }, 0},
		{"empty samples", append([]byte{0x0a, 0x80, 0xb5, 0x18}, bytes.Repeat([]byte{0x12, 0x00}, 200_000)...), writeRequestShape,
			func(b []byte) error { return new(prompb.WriteRequest).Unmarshal(b) }, 0},
		{"unpacked deltas", unpackedDeltas(100_000), writeRequestShape,
			func(b []byte) error { return new(prompb.WriteRequest).Unmarshal(b) }, 0},
		{"packed deltas", packedDeltas(400_000), writeRequestShape,
			func(b []byte) error { return new(prompb.WriteRequest).Unmarshal(b) }, 0},
		{"empty queries", bytes.Repeat([]byte{0x0a, 0x00}, 100_000), readRequestShape,
			func(b []byte) error { return new(prompb.ReadRequest).Unmarshal(b) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size, err := decodedSize(tc.body, tc.s)
			require.NoError(t, err)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			require.NoError(t, tc.decode(tc.body))
			runtime.ReadMemStats(&after)
			allocated := int(after.TotalAlloc - before.TotalAlloc)
			assert.GreaterOrEqual(t, 6*size, allocated, "decoding allocates %d bytes, estimated %d", allocated, size)
			if tc.maxRatio > 0 {
				assert.LessOrEqual(t, size, tc.maxRatio*len(tc.body), "an ordinary body of %d bytes", len(tc.body))
			} else {
				assert.Greater(t, size, 3*len(tc.body), "many tiny elements")
			}
		})
	}
}

func TestDecodedSizeRefusesMalformed(t *testing.T) {
	for _, b := range [][]byte{{0xff}, {0x0a, 0x05, 0x00}, {0x0a, 0x02, 0x0a, 0x05}, {0x0b}} {
		_, err := decodedSize(b, writeRequestShape)
		assert.Error(t, err, "% x", b)
	}
}

// unpackedDeltas returns a WriteRequest of a series of a histogram with n
// negative bucket deltas of 0, each with its own tag, 2 bytes.
func unpackedDeltas(n int) []byte {
	var h []byte
	for range n {
		h = protowire.AppendTag(h, 9, protowire.VarintType)
		h = protowire.AppendVarint(h, 0)
	}
	return wrapHistogram(h)
}

// packedDeltas returns a WriteRequest of a series of a histogram with n
// negative bucket deltas of 0, packed, a byte each.
func packedDeltas(n int) []byte {
	h := protowire.AppendTag(nil, 9, protowire.BytesType)
	return wrapHistogram(protowire.AppendBytes(h, make([]byte, n)))
}

// wrapHistogram returns a WriteRequest of one series of the histogram h.
func wrapHistogram(h []byte) []byte {
	ts := protowire.AppendBytes(protowire.AppendTag(nil, 4, protowire.BytesType), h)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), ts)
}
