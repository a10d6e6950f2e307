package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp/syntax"
	"slices"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/redfed/federated/internal/ratelog"
	"github.com/redfed/federated/metrics"
)

// Querier lists and reads series: a *metrics.Store.
type Querier interface {
	Series(ctx context.Context, since time.Time) ([]metrics.Series, error)
	Metrics(ctx context.Context, host string, since time.Time) ([]string, error)
	Range(ctx context.Context, from, to time.Time, series ...metrics.Series) ([]metrics.RangeResult, error)
}

var _ Querier = (*metrics.Store)(nil)

// Bounds on a read request, far above what Prometheus sends (one query a
// request, with the few matchers of a selector). A query's matchers are
// compiled before it runs, and a regular expression of a few bytes, such
// as ".{1000}", compiles to over 100 KiB; each query lists the series.
const (
	maxQueries  = 100 // a request
	maxMatchers = 100 // a query
	// maxRegexpSize bounds the regular expressions of a request, all its
	// matchers together, in the instructions they compile to (see
	// regexpSize): a Grafana variable of a thousand hosts is a few tens of
	// thousands; ".{1000}" a thousand times over, 11 KB, a million, and
	// 42 MiB once compiled.
	maxRegexpSize = 100_000
)

// seriesPerRange is how many series one Range call reads. A query reads
// its series a group at a time and stops at the group that takes it over
// MaxSamples, so that a query matching every series of a large store holds
// at most one group's samples beyond the bound, and asks for one group's
// period keys at a time.
const seriesPerRange = 64

// The times a query is held to: redfed keeps no sample before 1970 or in
// year 10000 or later.
var (
	earliest = time.Unix(0, 0)
	latest   = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
)

// ReadHandler serves remote read from a Querier.
type ReadHandler struct {
	q        Querier
	opts     Options
	failures failLog
	turns    turns
}

// NewReadHandler returns a handler that reads from q. Bad options are an
// error that names the field.
func NewReadHandler(q Querier, opts Options) (*ReadHandler, error) {
	if q == nil {
		return nil, errors.New("remote: the Querier is nil")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &ReadHandler{q: q, opts: opts, failures: failLog{ratelog.New(opts.Logger, logEvery)}, turns: make(turns, opts.MaxRequests)}, nil
}

// ServeHTTP decodes a ReadRequest and answers it with a ReadResponse, or a
// stream of chunks when the request prefers them; see the package doc.
func (h *ReadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.turns.take(r) {
		return // the sender went away while waiting
	}
	defer h.turns.give()
	results, streamed, e := h.serve(w, r)
	// A reader that does not read its reply would hold the turn for as
	// long as its connection stays open.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.opts.BodyTimeout))
	if e != nil {
		h.failures.fail(w, r, e)
		return
	}
	if streamed {
		// The status is sent with the first frame: a failure after it
		// can only cut the stream, which the reader sees.
		if err := writeChunked(w, results); err != nil {
			h.opts.Logger.Warn("remote: write chunked read response", "error", err)
		}
		return
	}
	resp := prompb.ReadResponse{Results: make([]*prompb.QueryResult, len(results))}
	for i, series := range results {
		resp.Results[i] = &prompb.QueryResult{Timeseries: series}
	}
	data, err := resp.Marshal()
	if err != nil {
		h.failures.fail(w, r, errorf(http.StatusInternalServerError, "encode ReadResponse: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Header().Set("Content-Encoding", "snappy")
	_, _ = w.Write(snappy.Encode(nil, data))
}

// serve decodes a request and answers its queries: the series of each,
// and whether to send them as streamed chunks rather than samples.
func (h *ReadHandler) serve(w http.ResponseWriter, r *http.Request) (results [][]*prompb.TimeSeries, streamed bool, _ *httpError) {
	body, e := readBody(w, r, h.opts, "ReadRequest", readRequestShape)
	if e != nil {
		return nil, false, e
	}
	var req prompb.ReadRequest
	if err := req.Unmarshal(body); err != nil {
		return nil, false, errorf(http.StatusBadRequest, "decode ReadRequest: %v", err)
	}
	// The request lists the types it takes, the one it prefers first; none
	// means samples.
	i := slices.IndexFunc(req.AcceptedResponseTypes, func(t prompb.ReadRequest_ResponseType) bool {
		return t == prompb.ReadRequest_SAMPLES || t == prompb.ReadRequest_STREAMED_XOR_CHUNKS
	})
	switch {
	case i >= 0:
		streamed = req.AcceptedResponseTypes[i] == prompb.ReadRequest_STREAMED_XOR_CHUNKS
	case len(req.AcceptedResponseTypes) > 0:
		return nil, false, errorf(http.StatusBadRequest, "accepted response types %v: only SAMPLES and STREAMED_XOR_CHUNKS are served", req.AcceptedResponseTypes)
	}
	if len(req.Queries) > maxQueries {
		return nil, false, errorf(http.StatusBadRequest, "%d queries: at most %d a request", len(req.Queries), maxQueries)
	}
	results = make([][]*prompb.TimeSeries, len(req.Queries))
	budget, regexps := h.opts.MaxSamples, maxRegexpSize
	// The selections of all the queries end BodyTimeout from now, as
	// their regular expressions share one budget: a request of 100
	// queries would otherwise hold its turn 100 times as long.
	selectBy := time.Now().Add(h.opts.BodyTimeout)
	for i, q := range req.Queries {
		series, e := h.query(r.Context(), q, selectBy, &budget, &regexps)
		if e != nil {
			e.msg = fmt.Sprintf("query %d of %d: %s", i+1, len(req.Queries), e.msg)
			return nil, false, e
		}
		results[i] = series
	}
	return results, streamed, nil
}

// query answers one query, and takes its samples from budget and the size
// of its regular expressions from regexps. Its selection of series ends at
// selectBy.
func (h *ReadHandler) query(ctx context.Context, q *prompb.Query, selectBy time.Time, budget, regexps *int) ([]*prompb.TimeSeries, *httpError) {
	matchers, err := toMatchers(q.Matchers, regexps)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	from, to := time.UnixMilli(q.StartTimestampMs), time.UnixMilli(q.EndTimestampMs)
	if to.Sub(from) > h.opts.MaxRange {
		// The MaxRange of the query nearest the present: Prometheus lists
		// the series of no range from the year -292 million to +292
		// million, and the year before the end of 9999 holds nothing.
		end := time.Now().Add(aheadSlack)
		if start := from.Add(h.opts.MaxRange); start.After(end) {
			end = start
		}
		if to.After(end) {
			to = end
		}
	}
	for _, floor := range []time.Time{to.Add(-h.opts.MaxRange), earliest} {
		if from.Before(floor) {
			from = floor
		}
	}
	if to.After(latest) {
		to = latest
	}
	if to.Before(from) {
		return nil, nil
	}
	// The selection ends at selectBy, or when the reader goes away:
	// matching a regular expression within maxRegexpSize against a long
	// label takes milliseconds, and a query matches every series listed,
	// so that one such read of a store of thousands of series took minutes
	// after its reader had given up, and held its turn all that time.
	// (Reading the series is bounded by the store's command timeouts and
	// MaxSamples.)
	selectCtx, cancel := context.WithDeadline(ctx, selectBy)
	series, err := h.selectSeries(selectCtx, matchers, from.Add(-listSlack))
	timedOut := err != nil && selectCtx.Err() != nil && ctx.Err() == nil
	cancel()
	if timedOut {
		return nil, errorf(http.StatusServiceUnavailable, "series not selected within %s (Options.BodyTimeout): narrow the matchers", h.opts.BodyTimeout)
	}
	if err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "list series: %s", summary(err))
	}
	var out []*prompb.TimeSeries
	for len(series) > 0 {
		group := series[:min(seriesPerRange, len(series))]
		series = series[len(group):]
		ids := make([]metrics.Series, len(group))
		for i, s := range group {
			ids[i] = s.id
		}
		results, err := h.q.Range(ctx, from, to, ids...)
		if err != nil {
			return nil, errorf(http.StatusServiceUnavailable, "read series: %s", summary(err))
		}
		for i, res := range results {
			if len(res.Points) == 0 {
				continue
			}
			if *budget -= len(res.Points); *budget < 0 {
				return nil, errorf(http.StatusBadRequest, "more than %d samples: narrow the query", h.opts.MaxSamples)
			}
			out = append(out, &prompb.TimeSeries{
				Labels:  prompb.FromLabels(group[i].labels, nil),
				Samples: samplesOf(res.Points),
			})
		}
	}
	return out, nil
}

// samplesOf returns points, sorted by time, as samples: their times
// rounded to the millisecond, and one sample a millisecond, the last point
// of it, since a Prometheus series cannot hold two at one time. redfed
// keeps microseconds, and two values written at one time, in the order
// of their members' text (see the package doc).
func samplesOf(points []metrics.Point) []prompb.Sample {
	out := make([]prompb.Sample, 0, len(points))
	for _, p := range points {
		ms := p.Time.Add(500 * time.Microsecond).UnixMilli()
		if n := len(out); n > 0 && out[n-1].Timestamp == ms {
			out[n-1].Value = p.Value
			continue
		}
		out = append(out, prompb.Sample{Timestamp: ms, Value: p.Value})
	}
	return out
}

// selected is a series that a query's matchers select.
type selected struct {
	id     metrics.Series
	labels labels.Labels
}

// selectSeries lists the series changed since then that the matchers
// select, sorted by labels. It stops when ctx ends. A query that names its
// host lists that host's metrics; any other lists every series in one read
// of the journals, where it listed the hosts and then the metrics of each
// selected host, a read of every journal each: 301 reads of them all for
// a query of one metric across 300 hosts.
func (h *ReadHandler) selectSeries(ctx context.Context, matchers []*labels.Matcher, since time.Time) ([]selected, error) {
	hostLabel := h.opts.HostLabel
	var listed []metrics.Series
	if m := equality(matchers, hostLabel); m != nil {
		host, err := EncodeHost(m.Value)
		if err != nil || !matchesLabel(matchers, hostLabel, m.Value) {
			return nil, nil // no series has that host
		}
		names, err := h.q.Metrics(ctx, host, since)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			listed = append(listed, metrics.Series{Host: host, Metric: name})
		}
	} else {
		all, err := h.q.Series(ctx, since)
		if err != nil {
			return nil, err
		}
		listed = all
	}
	metricsOf := newMetricMatches(matchers, hostLabel)
	hostSelected := make(map[string]bool) // by host, once a host
	var found []selected
	for _, id := range listed {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ok, seen := hostSelected[id.Host]
		if !seen {
			v, err := DecodeHost(id.Host)
			ok = err == nil && matchesLabel(matchers, hostLabel, v)
			hostSelected[id.Host] = ok
		}
		if !ok || !metricsOf.match(id.Metric) {
			continue
		}
		if ls, err := LabelsOf(id, hostLabel); err == nil {
			found = append(found, selected{id: id, labels: ls})
		}
	}
	// A match that ran past the end of ctx said nothing of the names after.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(found, func(a, b selected) int { return labels.Compare(a.labels, b.labels) })
	return found, nil
}

// metricMatches tells which metric names the matchers select, given a host
// they select. A fleet's hosts share their metrics: each name is matched
// once a query, not once per host.
type metricMatches struct {
	matchers  []*labels.Matcher // of labels other than the host's
	hostLabel string
	seen      map[string]bool // selected, by name
}

func newMetricMatches(matchers []*labels.Matcher, hostLabel string) *metricMatches {
	m := &metricMatches{hostLabel: hostLabel, seen: make(map[string]bool)}
	for _, lm := range matchers {
		if lm.Name != hostLabel {
			m.matchers = append(m.matchers, lm)
		}
	}
	return m
}

// match reports whether the matchers select the metric name: its labels,
// as LabelsOf gives them of a series of no host. A name that LabelsOf
// refuses is not selected.
func (m *metricMatches) match(name string) bool {
	if ok, found := m.seen[name]; found {
		return ok
	}
	ls, err := LabelsOf(metrics.Series{Host: NoHost, Metric: name}, m.hostLabel)
	ok := err == nil && matchesAll(m.matchers, ls)
	m.seen[name] = ok
	return ok
}

// checkRegexps takes the size of a query's regular expressions from what
// is left of its request's (see maxRegexpSize), before any is compiled,
// and refuses them once that runs out. One that does not parse is left
// for labels.NewMatcher to refuse.
func checkRegexps(ms []*prompb.LabelMatcher, left *int) error {
	for _, m := range ms {
		if m.Type != prompb.LabelMatcher_RE && m.Type != prompb.LabelMatcher_NRE {
			continue
		}
		re, err := syntax.Parse(m.Value, syntax.Perl)
		if err != nil {
			continue
		}
		if *left -= regexpSize(re, *left); *left < 0 {
			return fmt.Errorf("matcher %s %s: the regular expressions would compile to more than %d instructions",
				shortQuote(m.Name), shortQuote(m.Value), maxRegexpSize)
		}
	}
	return nil
}

// regexpSize counts about the instructions a parsed regular expression
// compiles to, and stops counting once past most: a counted repetition
// multiplies its operand, which is how a few bytes compile to megabytes.
func regexpSize(re *syntax.Regexp, most int) int {
	size := 1 + len(re.Rune)
	if re.Op == syntax.OpRepeat {
		n := re.Max
		if n < 0 {
			n = re.Min + 1
		}
		n = max(n, 1)
		sub := regexpSize(re.Sub[0], most)
		if sub > (most+1)/n {
			return most + 1
		}
		return size + sub*n
	}
	for _, sub := range re.Sub {
		if size += regexpSize(sub, most-size); size > most {
			return most + 1
		}
	}
	return size
}

// toMatchers converts a query's matchers, the size of its regular
// expressions taken from regexps (see checkRegexps).
func toMatchers(ms []*prompb.LabelMatcher, regexps *int) ([]*labels.Matcher, error) {
	if len(ms) > maxMatchers {
		return nil, fmt.Errorf("%d matchers: at most %d a query", len(ms), maxMatchers)
	}
	if err := checkRegexps(ms, regexps); err != nil {
		return nil, err
	}
	out := make([]*labels.Matcher, 0, len(ms))
	for _, m := range ms {
		var t labels.MatchType
		switch m.Type {
		case prompb.LabelMatcher_EQ:
			t = labels.MatchEqual
		case prompb.LabelMatcher_NEQ:
			t = labels.MatchNotEqual
		case prompb.LabelMatcher_RE:
			t = labels.MatchRegexp
		case prompb.LabelMatcher_NRE:
			t = labels.MatchNotRegexp
		default:
			return nil, fmt.Errorf("matcher %s: unknown type %d", m.Name, m.Type)
		}
		lm, err := labels.NewMatcher(t, m.Name, m.Value)
		if err != nil {
			return nil, fmt.Errorf("matcher %s %s %q: %w", m.Name, t, m.Value, err)
		}
		out = append(out, lm)
	}
	return out, nil
}

// equality returns the first matcher of name that is an equality, or nil.
func equality(ms []*labels.Matcher, name string) *labels.Matcher {
	for _, m := range ms {
		if m.Name == name && m.Type == labels.MatchEqual {
			return m
		}
	}
	return nil
}

// matchesLabel reports whether every matcher of the label name matches v.
func matchesLabel(ms []*labels.Matcher, name, v string) bool {
	for _, m := range ms {
		if m.Name == name && !m.Matches(v) {
			return false
		}
	}
	return true
}

// matchesAll reports whether every matcher matches ls; a label ls does not
// have has the value "", as in Prometheus.
func matchesAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}
