package remote

import (
	"fmt"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/redfed/federated/metrics"
)

// A message decodes to many times its size when it holds many small
// elements: an empty TimeSeries is 2 bytes on the wire and 128 in memory,
// so that 3 MiB of snappy, 64 MiB decompressed, would ask for gigabytes.
// decodedSize reads the wire format, without decoding it, and adds up the
// memory the decoded message and its conversion take, so that a request
// is refused before it is decoded.

// shape is what decodedSize knows of a message type: the size of its Go
// struct, its fields that are messages, and its repeated scalars.
type shape struct {
	size     int
	messages map[protowire.Number]*shape
	repeated map[protowire.Number]bool
}

// scalarSize bounds the bytes that an element of a repeated scalar decodes
// to, an int64 or a float64; packed, an element may be a single byte.
const scalarSize = 8

var (
	labelShape = &shape{size: int(unsafe.Sizeof(prompb.Label{}))}
	spanShape  = &shape{size: int(unsafe.Sizeof(prompb.BucketSpan{}))}

	writeRequestShape = &shape{messages: map[protowire.Number]*shape{
		1: { // timeseries
			size: int(unsafe.Sizeof(prompb.TimeSeries{})),
			messages: map[protowire.Number]*shape{
				1: labelShape,
				// A sample is converted to a metrics.Sample too.
				2: {size: int(unsafe.Sizeof(prompb.Sample{}) + unsafe.Sizeof(metrics.Sample{}))},
				3: {size: int(unsafe.Sizeof(prompb.Exemplar{})), messages: map[protowire.Number]*shape{1: labelShape}},
				4: {
					size:     int(unsafe.Sizeof(prompb.Histogram{})),
					messages: map[protowire.Number]*shape{8: spanShape, 11: spanShape},
					repeated: map[protowire.Number]bool{9: true, 10: true, 12: true, 13: true, 16: true},
				},
			},
		},
		3: {size: int(unsafe.Sizeof(prompb.MetricMetadata{}))}, // metadata
	}}

	readRequestShape = &shape{
		messages: map[protowire.Number]*shape{
			1: { // queries, held by pointer
				size: int(unsafe.Sizeof(prompb.Query{}) + unsafe.Sizeof(&prompb.Query{})),
				messages: map[protowire.Number]*shape{
					3: {size: int(unsafe.Sizeof(prompb.LabelMatcher{}) + unsafe.Sizeof(&prompb.LabelMatcher{}))},
					4: {size: int(unsafe.Sizeof(prompb.ReadHints{}))},
				},
			},
		},
		repeated: map[protowire.Number]bool{2: true}, // accepted_response_types
	}
)

// decodedSize returns about how many bytes b takes once decoded as a
// message of shape s, an upper bound but for the growth of slices (the
// arrays that append leaves behind, which the collector frees), or an
// error if b is not a well-formed protobuf message. Bytes it does not know
// to be more, strings and unknown fields among them, count as themselves.
func decodedSize(b []byte, s *shape) (int, error) {
	total := s.size
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			if s.repeated[num] { // an element sent unpacked
				total += scalarSize
			}
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case s.messages[num] != nil:
			size, err := decodedSize(v, s.messages[num])
			if err != nil {
				return 0, fmt.Errorf("field %d: %w", num, err)
			}
			total += size
		case s.repeated[num]: // packed
			total += scalarSize * len(v)
		default:
			total += len(v)
		}
	}
	return total, nil
}
