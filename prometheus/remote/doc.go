// Package remote serves Prometheus's remote write and remote read
// protocols (1.0: snappy-compressed protobuf over HTTP POST) from a redfed
// metrics store, so that Prometheus can keep its samples in redfed and
// query them back with PromQL. WriteHandler and ReadHandler are
// http.Handlers that a Go service mounts where it likes; "redfed serve"
// mounts them on /api/v1/write and /api/v1/read.
//
// # Naming
//
// A Prometheus series is a set of labels; a redfed series is a host and a
// metric name. SeriesOf and LabelsOf convert both ways, exactly: remote
// read gives back the labels written.
//
// The host is the value of the host label (Options.HostLabel, "instance"
// by default) with '%', ':' and every character a host may not hold
// (controls and invisible characters) percent-encoded as in URLs, each
// byte of its UTF-8 as %XX in upper-case hex: "localhost:9090" is
// "localhost%3A9090". A series without the host label is under the host
// NoHost, "%", which no value encodes to.
//
// The metric name is the other labels in Prometheus's text format, sorted
// by name, no spaces: `up{job="prometheus"}`, or just `up` when there is
// no other label. A label value is quoted with '\', '"' and newline
// escaped as the text format does (`\\`, `\"`, `\n`), and every other
// character a metric name may not hold written `\uXXXX` (`\UXXXXXXXX`
// above U+FFFF) in lower-case hex. A metric or label name outside
// Prometheus's classic character set is quoted as Prometheus 3 writes it:
// `{"my.metric",job="x"}`. Labels with an empty value are the same as no
// label to Prometheus, and are left out.
//
// Both parts have redfed's limits once encoded, 256 bytes for the host
// and 512 for the metric name: a series beyond them cannot be stored
// (ErrBadLabels). Only names in exactly this form have labels: a host or
// metric name written otherwise, by another writer or by hand, is not
// read back (ErrNotEncoded), so that one series has one name.
//
// # Writing
//
// WriteHandler answers 204 once every sample of the request is acknowledged
// by Redis (it writes them with one Appender.Write), 503 when the store
// fails, so that Prometheus sends the request again (a sample written twice
// is stored once), and 4xx for a request that can never succeed, which
// Prometheus drops: 400 for one that does not decode, or holds a series
// whose labels cannot be named (ErrBadLabels) or a timestamp before 1970,
// and nothing of it is written; 400 too for a series whose key holds another
// type on a server (federated.ErrWrongType, which names the key): that
// series is not written until someone deletes the key, the request's others
// are (and counted in Stats().Samples); 413 for a body over
// Options.MaxBodyBytes, or over MaxDecodedBytes once decompressed or once
// decoded (the size a message will take is read from its wire format before
// it is decoded: a body of many empty elements takes dozens of times its
// size); 408 for a body that takes over Options.BodyTimeout to arrive; 415
// for remote write 2.0, which is not taken: named by its Content-Type, or
// sent without one and holding only fields 1.0 does not have. Values redfed
// cannot store are skipped and counted in Stats: Prometheus's staleness
// markers (a special NaN, written when a series disappears), other NaNs and
// ±Inf. Native histograms and exemplars are not stored either, and counted.
// So are samples of a period that retention dropped
// (federated.ErrPeriodDropped), which can never be stored: the rest of the
// request is written and answered as if they were not in it, and a warning
// says how many were skipped and of which periods; and samples stamped more
// than 50 minutes ahead of this host's clock (those of year 10000 and later,
// which redfed cannot store, included), which a read near their time would
// not find (it lists the series changed since an hour before its start, by
// the servers' clocks), with a warning. Warnings of failed requests and of
// skipped samples name the sender and come one every 10 seconds at most,
// each kind, with the number left out.
//
// # Reading
//
// ReadHandler answers each query of a request with the series that match
// its matchers (=, !=, =~, !~, with Prometheus's own matching) and their
// samples in the query's time range, as SAMPLES, the response type every
// Prometheus reads, or as STREAMED_XOR_CHUNKS (frames of XOR-encoded
// chunks, each of one series) when the request prefers those. It lists
// the series changed since the start of the range (less an hour, for
// writers whose clocks run ahead) in one read of the journals (those of
// one host, when the matchers name it), keeps those whose host and labels
// match, and reads their range, 64 series at a time, so that a query over
// Options.MaxSamples stops reading soon after it is over, not once it has
// read everything. Times are rounded to the millisecond, and the points
// of a series within one millisecond (redfed keeps microseconds, and two
// values written at one time) are one sample, the last in time, since a
// Prometheus series holds one sample a millisecond. Of values written at
// the very same time, which a store of many writers does not order, it is
// the largest (metrics.Range gives them by value), whichever was written
// last; Prometheus itself keeps the first and refuses the others. A
// negative zero is stored, and read, as 0.
// A series that a writer other than WriteHandler named, which has no
// labels, is not listed. A failed listing or read is a 503: a partial
// answer would look like a gap in the data. A request of more than 100
// queries, a query of more than 100 matchers, or regular expressions that
// would compile to more than 100,000 instructions, all together, is a
// 400: Prometheus sends one query a request, and a regular expression of
// a few bytes may take 100 KiB once compiled, one of a few kilobytes tens
// of MiB. Matching one within that bound against a long label may take
// tens of milliseconds: a read stops when its reader goes away, and one
// whose series are not selected within Options.BodyTimeout gets 503. Each
// metric name is matched once a query, whatever the hosts that have it.
//
// Both handlers are safe for concurrent use and hold no goroutine between
// requests.
package remote
