package remote

import (
	"encoding/binary"
	"hash/crc32"
	"net/http"

	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// The STREAMED_XOR_CHUNKS response of remote read: a stream of frames,
// each a ChunkedReadResponse of one series (or part of one) of one query,
// its samples as XOR chunks, the encoding of Prometheus's own storage.
// Each frame is its length as a uvarint, the CRC-32 (Castagnoli) of the
// message as 4 big-endian bytes, and the message.

const (
	// chunkedContentType is the Content-Type of the stream.
	chunkedContentType = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
	// samplesPerChunk is how many samples a chunk holds at most, as in
	// Prometheus's head.
	samplesPerChunk = 120
	// maxFrameBytes is the size of chunk data a frame holds before the
	// series goes on in the next, as in Prometheus's read handler.
	maxFrameBytes = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeChunked writes the series of each query as frames of XOR chunks.
func writeChunked(w http.ResponseWriter, results [][]*prompb.TimeSeries) error {
	w.Header().Set("Content-Type", chunkedContentType)
	flusher, _ := w.(http.Flusher)
	for qi, series := range results {
		for _, ts := range series {
			chunks, err := xorChunks(ts.Samples)
			if err != nil {
				return err
			}
			for len(chunks) > 0 {
				n, size := 0, 0
				for n < len(chunks) && (n == 0 || size+len(chunks[n].Data) <= maxFrameBytes) {
					size += len(chunks[n].Data)
					n++
				}
				frame := prompb.ChunkedReadResponse{
					ChunkedSeries: []*prompb.ChunkedSeries{{Labels: ts.Labels, Chunks: chunks[:n]}},
					QueryIndex:    int64(qi),
				}
				if err := writeFrame(w, &frame); err != nil {
					return err
				}
				if flusher != nil {
					flusher.Flush()
				}
				chunks = chunks[n:]
			}
		}
	}
	return nil
}

// writeFrame writes one message with its length and checksum.
func writeFrame(w http.ResponseWriter, frame *prompb.ChunkedReadResponse) error {
	msg, err := frame.Marshal()
	if err != nil {
		return err
	}
	head := binary.AppendUvarint(nil, uint64(len(msg)))
	head = binary.BigEndian.AppendUint32(head, crc32.Checksum(msg, castagnoli))
	if _, err := w.Write(head); err != nil {
		return err
	}
	_, err = w.Write(msg)
	return err
}

// xorChunks encodes samples, sorted by time, as XOR chunks of up to
// samplesPerChunk samples each.
func xorChunks(samples []prompb.Sample) ([]prompb.Chunk, error) {
	var out []prompb.Chunk
	for start := 0; start < len(samples); start += samplesPerChunk {
		part := samples[start:min(start+samplesPerChunk, len(samples))]
		c := chunkenc.NewXORChunk()
		app, err := c.Appender()
		if err != nil {
			return nil, err
		}
		for _, s := range part {
			app.Append(0, s.Timestamp, s.Value)
		}
		out = append(out, prompb.Chunk{
			MinTimeMs: part[0].Timestamp,
			MaxTimeMs: part[len(part)-1].Timestamp,
			Type:      prompb.Chunk_XOR,
			Data:      c.Bytes(),
		})
	}
	return out, nil
}
