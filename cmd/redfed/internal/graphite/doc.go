// Package graphite receives metrics in Graphite's plaintext protocol, the
// one carbon listens for on port 2003 and that collectd's write_graphite
// plugin, Diamond, StatsD back ends and many scripts send:
//
//	PATH VALUE TIMESTAMP\n
//
// over TCP (a stream of lines) or UDP (lines in datagrams); a TIMESTAMP of
// -1 is the time the line is read, as carbon takes it. A Template maps
// each PATH to the host and metric name of a redfed series; the points go
// to a Writer (a metrics.Recorder) in batches.
//
// Back-pressure: a TCP connection's lines are read into a batch of at most
// Options.MaxBatch points, and the batch is written with Writer.Write, which
// returns once Redis has acknowledged it. The batch is written as soon as
// no complete line is waiting in the connection's buffer, so a sender that
// pauses never waits for a timer. While a batch is being written nothing
// more is read from its connection: the kernel's buffers fill and TCP makes
// the sender wait. UDP has no such signal; while its batch is written,
// datagrams wait in the socket's receive buffer and the kernel drops those
// that do not fit, as it does for every UDP receiver.
//
// Memory is bounded: a line is at most Options.MaxLineLen bytes (a longer
// one is skipped up to its end of line, never buffered whole), a batch at
// most Options.MaxBatch points, and at most Options.MaxConns TCP
// connections are served at once (a connection beyond that is closed at
// once). A point keeps only its names, at most 768 bytes (metric.MaxHostLen
// and metric.MaxMetricLen), not its line. With the defaults a connection
// holds at most a 4 KiB read buffer and a batch of 1,000 points, under
// 1 MiB, and 1,024 connections under 1 GiB however hard they push; the
// Recorder's own buffer is bounded by its MaxBuffered. A connection that
// sends no complete line for Options.IdleTimeout is closed.
//
// Failures: a line that cannot be read (not three fields, a value or a
// timestamp that is not a decimal number, NaN or infinity, a timestamp
// before 1970 (but -1) or after 9999, a path the Template does not map to a valid
// host and metric, a line too long, a last line cut by the end of the
// connection) is skipped, counted in Stats and logged with the sender's
// address; the lines around it are written. Log lines are rate-limited, so
// that a flood of bad lines does not flood the log. A TCP connection's
// batch whose write failed for a reason that may pass (a server down,
// refusing writes for now, too slow) is written again for up to
// Options.RetryFor, reading nothing more meanwhile, so that the sender
// keeps its lines; a write that still fails, or fails for good (a dropped
// period), is counted and logged, and the connection goes on.
//
// A Server is safe for concurrent use. Close stops listening, reads on
// what each connection's sender has sent already (for 2 s at the most),
// waits until the batches read are written or failed, and returns once
// every goroutine of the Server has ended.
package graphite
