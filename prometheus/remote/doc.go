// Package remote serves Prometheus's remote write and remote read
// protocols (1.0: snappy-compressed protobuf over HTTP POST) from a redfed
// metrics store, so that Prometheus can keep its samples in redfed and
// query them back with PromQL. WriteHandler and ReadHandler are
// http.Handlers that a Go service mounts where it likes; "redfed serve"
// mounts them on /api/v1/write and /api/v1/read.
//
// # Naming
//
// A Prometheus series is stored as the redfed series whose host is the
// value of its "instance" label (Options.HostLabel), percent-encoded where
// redfed's host names need it ("localhost%3A9090"), and whose metric name is
// its other labels in Prometheus's text format, sorted
// (`up{job="prometheus"}`). SeriesOf and LabelsOf convert both ways, and
// the conversion is exact: remote read gives back the labels written. The
// file names.go tells the whole rule.
//
// # Writing
//
// WriteHandler answers 204 once every sample of the request is
// acknowledged by Redis (it writes them with one Appender.Write), 503 when
// the store fails, so that Prometheus sends the request again (a sample
// written twice is stored once), and 4xx for a request that can never
// succeed, which Prometheus drops: 400 for one that does not decode, or
// holds a series whose labels cannot be named (ErrBadLabels) or a
// timestamp before 1970, and nothing of it is written; 413 for a body over
// Options.MaxBodyBytes or MaxDecodedBytes. Values redfed cannot store are
// skipped and counted in Stats: Prometheus's staleness markers (a special
// NaN, written when a series disappears), other NaNs and ±Inf. Native
// histograms and exemplars are not stored either, and counted.
//
// # Reading
//
// ReadHandler answers each query of a request with the series that match
// its matchers (=, !=, =~, !~, with Prometheus's own matching) and their
// samples in the query's time range, as SAMPLES, the response type every
// Prometheus reads. It lists the hosts and then the metrics of each host
// changed since the start of the range (less an hour, for writers whose
// clocks run ahead), narrowed by the matchers of the host label, keeps
// those whose labels match, and reads their range. A series that a writer
// other than WriteHandler named, which has no labels, is not listed. A
// failed listing or read is a 503: a partial answer would look like a
// gap in the data.
//
// Both handlers are safe for concurrent use and hold no goroutine between
// requests.
package remote
