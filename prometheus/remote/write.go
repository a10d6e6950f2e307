package remote

import (
	"context"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/internal/ratelog"
	"github.com/redfed/federated/metrics"
)

// Appender stores samples and returns once Redis acknowledged them, or
// with their failures: a *metrics.Recorder.
type Appender interface {
	Write(ctx context.Context, samples ...metrics.Sample) error
}

var _ Appender = (*metrics.Recorder)(nil)

// WriteStats counts what a WriteHandler received.
type WriteStats struct {
	Requests     int64 // requests served, answered or under way
	Stored       int64 // requests answered 204: every sample stored or skipped
	Samples      int64 // samples written and acknowledged, also in requests that failed in part (sent again, they count again)
	Dropped      int64 // samples of periods that retention dropped, skipped (they can never be stored), of requests answered 204 or 4xx
	StaleMarkers int64 // staleness markers skipped
	NonFinite    int64 // other NaN, +Inf and -Inf samples skipped
	Ahead        int64 // samples stamped more than 50 minutes ahead of this host's clock, skipped: no read near their time would find them
	Histograms   int64 // native histogram samples skipped
	Exemplars    int64 // exemplars skipped
	Refused      int64 // requests answered 4xx: bad ones, of which nothing was written, or with series that can never be stored (a key of another type), whose other samples were written
	Failed       int64 // requests answered 5xx: the store failed, Prometheus sends them again
}

// WriteHandler serves remote write: it stores the samples of each
// request through an Appender.
type WriteHandler struct {
	app      Appender
	opts     Options
	failures failLog
	drops    *ratelog.Log // samples of dropped periods skipped
	aheads   *ratelog.Log // samples stamped too far ahead skipped
	turns    turns

	requests, stored, samples, dropped, stale, nonFinite, ahead, histograms, exemplars, refused, failed atomic.Int64
}

// NewWriteHandler returns a handler that writes through app. Bad options
// are an error that names the field.
func NewWriteHandler(app Appender, opts Options) (*WriteHandler, error) {
	if app == nil {
		return nil, errors.New("remote: the Appender is nil")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &WriteHandler{app: app, opts: opts, failures: failLog{ratelog.New(opts.Logger, logEvery)},
		drops: ratelog.New(opts.Logger, logEvery), aheads: ratelog.New(opts.Logger, logEvery), turns: make(turns, opts.MaxRequests)}, nil
}

// Stats returns the counts since the handler was made.
func (h *WriteHandler) Stats() WriteStats {
	return WriteStats{
		Requests:     h.requests.Load(),
		Stored:       h.stored.Load(),
		Samples:      h.samples.Load(),
		Dropped:      h.dropped.Load(),
		StaleMarkers: h.stale.Load(),
		NonFinite:    h.nonFinite.Load(),
		Ahead:        h.ahead.Load(),
		Histograms:   h.histograms.Load(),
		Exemplars:    h.exemplars.Load(),
		Refused:      h.refused.Load(),
		Failed:       h.failed.Load(),
	}
}

// ServeHTTP decodes a WriteRequest and writes its samples; see the package
// doc for the replies.
func (h *WriteHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.turns.take(r) {
		return // the sender went away while waiting
	}
	defer h.turns.give()
	h.requests.Add(1)
	if e := h.serve(w, r); e != nil {
		if e.code >= 500 {
			h.failed.Add(1)
		} else {
			h.refused.Add(1)
		}
		h.failures.fail(w, r, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	h.stored.Add(1)
}

func (h *WriteHandler) serve(w http.ResponseWriter, r *http.Request) *httpError {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		media, params, err := mime.ParseMediaType(ct)
		if err != nil || media != "application/x-protobuf" ||
			(params["proto"] != "" && params["proto"] != "prometheus.WriteRequest") {
			return errorf(http.StatusUnsupportedMediaType,
				"Content-Type %q: want application/x-protobuf, remote write 1.0 (prometheus.WriteRequest)", ct)
		}
	}
	body, e := readBody(w, r, h.opts, "WriteRequest", writeRequestShape)
	if e != nil {
		return e
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(body); err != nil {
		return errorf(http.StatusBadRequest, "decode WriteRequest: %v", err)
	}
	if len(req.Timeseries) == 0 && len(req.Metadata) == 0 && len(req.XXX_unrecognized) > 0 {
		// A remote write 2.0 request sent without its Content-Type
		// decodes as an empty 1.0 one, its series in fields 1.0 does not
		// have: answered 204, it was dropped in silence.
		return errorf(http.StatusUnsupportedMediaType,
			"WriteRequest holds no series, only fields remote write 1.0 does not have (a remote write 2.0 request?): want remote write 1.0 (prometheus.WriteRequest)")
	}
	samples, skipped, err := h.convert(&req)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if len(samples) > 0 {
		if e = h.write(r, samples); e != nil && e.code >= 500 {
			return e // sent again: what it skips is counted then
		}
	}
	// Answered 204, or 4xx with its other series written (which
	// Prometheus does not send again): what it skipped is counted.
	h.stale.Add(skipped.StaleMarkers)
	h.nonFinite.Add(skipped.NonFinite)
	if skipped.Ahead > 0 {
		h.ahead.Add(skipped.Ahead)
		h.aheads.Warn("remote: samples stamped more than 50 minutes ahead of this host's clock skipped: no read near their time would find them (is the sender's clock right?)",
			"peer", r.RemoteAddr, "samples", skipped.Ahead, "of", len(samples)+int(skipped.Ahead+skipped.StaleMarkers+skipped.NonFinite))
	}
	h.histograms.Add(skipped.Histograms)
	h.exemplars.Add(skipped.Exemplars)
	return e
}

// write stores a request's samples and counts those written. Samples of
// periods that retention dropped can never be stored: they are skipped,
// counted and logged, and do not fail the request. Another failure does:
// a 400 when sending again cannot fix any of them, a 503 otherwise; the
// samples written are counted all the same.
func (h *WriteHandler) write(r *http.Request, samples []metrics.Sample) *httpError {
	err := h.app.Write(r.Context(), samples...)
	if err == nil {
		h.samples.Add(int64(len(samples)))
		return nil
	}
	var we *metrics.WriteError
	if !errors.As(err, &we) {
		// Nothing was written, or what was is not known.
		return storeError(err)
	}
	h.samples.Add(int64(we.Points - we.Failed))
	var (
		dropped      int
		periods      []string
		retry, final []error // the other failures, that may pass and that cannot
	)
	for _, f := range we.Failures {
		switch {
		case errors.Is(f.Err, federated.ErrPeriodDropped):
			dropped += f.Points
			if !slices.Contains(periods, f.Period) {
				periods = append(periods, f.Period)
			}
		case isBadInput(f.Err):
			final = append(final, f.Err)
		default:
			retry = append(retry, f.Err)
		}
	}
	// A 4xx only when no failure may pass: Prometheus drops the request,
	// and the samples of a server that was down would be lost with it.
	if len(retry) > 0 {
		// Sent again, its skipped samples are counted then.
		return errorf(http.StatusServiceUnavailable, "store: %s", summary(errors.Join(append(retry, final...)...)))
	}
	if dropped > 0 {
		h.dropped.Add(int64(dropped))
		slices.Sort(periods)
		h.drops.Warn("remote: samples of dropped periods skipped", "peer", r.RemoteAddr, "samples", dropped,
			"of", len(samples), "periods", strings.Join(periods, ","))
	}
	if len(final) > 0 {
		return errorf(http.StatusBadRequest, "%v", errors.Join(final...))
	}
	return nil
}

// storeError is the reply to a failure of the store: 400 for one that
// sending again cannot fix, 503 for one that it may.
func storeError(err error) *httpError {
	if isBadInput(err) {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	return errorf(http.StatusServiceUnavailable, "store: %s", summary(err))
}

// convert returns the samples of a request to store, and counts those it
// skips, among them those stamped more than maxAhead ahead of this host's
// clock. A series that cannot be named or a timestamp out of range is an
// error that names the series.
func (h *WriteHandler) convert(req *prompb.WriteRequest) ([]metrics.Sample, WriteStats, error) {
	var (
		skipped WriteStats
		out     []metrics.Sample
		b       labels.ScratchBuilder
	)
	n := 0
	for _, ts := range req.Timeseries {
		n += len(ts.Samples)
	}
	out = make([]metrics.Sample, 0, n)
	now := time.Now()
	for i, ts := range req.Timeseries {
		skipped.Histograms += int64(len(ts.Histograms))
		skipped.Exemplars += int64(len(ts.Exemplars))
		if len(ts.Samples) == 0 {
			continue
		}
		if err := labelsFit(ts.Labels, h.opts.HostLabel); err != nil {
			return nil, skipped, fmt.Errorf("series %d of %d: %w", i+1, len(req.Timeseries), err)
		}
		ls := ts.ToLabels(&b, nil)
		where := func() string {
			return fmt.Sprintf("series %d of %d, %s", i+1, len(req.Timeseries), shortQuote(ls.String()))
		}
		s, err := SeriesOf(ls, h.opts.HostLabel)
		if err != nil {
			return nil, skipped, fmt.Errorf("%s: %w", where(), err)
		}
		for _, smp := range ts.Samples {
			switch {
			case value.IsStaleNaN(smp.Value):
				skipped.StaleMarkers++
				continue
			case math.IsNaN(smp.Value) || math.IsInf(smp.Value, 0):
				skipped.NonFinite++
				continue
			}
			// Ahead first: a sample of year 10000, which redfed cannot
			// store, is as far ahead as any, and refusing it refused the
			// sender's other samples with it.
			t := time.UnixMilli(smp.Timestamp)
			if t.Sub(now) > maxAhead {
				skipped.Ahead++
				continue
			}
			if err := metric.ValidateTimestamp(metric.Seconds(t)); err != nil {
				return nil, skipped, fmt.Errorf("%s: timestamp %d ms: %w", where(), smp.Timestamp, err)
			}
			out = append(out, metrics.Sample{Host: s.Host, Metric: s.Metric, Time: t, Value: smp.Value})
		}
	}
	return out, skipped, nil
}

// isBadInput reports an error of the store that sending again cannot fix:
// bad input, or a series whose key holds another type, which stays so
// until someone deletes it (a 503 would have Prometheus send the request
// again for ever, and hold back every series behind it).
func isBadInput(err error) bool {
	for _, bad := range []error{federated.ErrBadHost, federated.ErrBadMetric, federated.ErrBadTimestamp, federated.ErrBadValue, federated.ErrWrongType} {
		if errors.Is(err, bad) {
			return true
		}
	}
	return false
}
