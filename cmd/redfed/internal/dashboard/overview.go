package dashboard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redfed/federated/cmd/redfed/internal/natural"
	"github.com/redfed/federated/cmd/redfed/internal/wire"
	"github.com/redfed/federated/metrics"
)

// The overview: one chart per metric, each comparing the hosts whose latest
// value of it is highest, so that a page opened with no host chosen shows
// where the fleet is busy.

const (
	// DefaultOverviewTop is how many hosts an overview chart compares when
	// top is not given.
	DefaultOverviewTop = 5
	// MaxOverviewTop is the most hosts an overview chart compares: more
	// lines than that cannot be told apart.
	MaxOverviewTop = 12
	// overviewMetrics is the most metrics the index page gives an overview
	// chart.
	overviewMetrics = 24
	// rankings is how many overviews read the newest points of their
	// hosts at once, all requests together: each is one read of every
	// host with the metric.
	rankings = 8
)

// overviewReply is the body of GET /api/overview. Times and points are
// as in seriesReply (package wire).
type overviewReply struct {
	Metric string    `json:"metric"`
	Unit   unit      `json:"unit"`
	From   time.Time `json:"from"` // UTC
	To     time.Time `json:"to"`
	// Ranked is how many hosts were compared to choose the series: the
	// hosts with a latest point of the metric; 0 when the hosts were given.
	Ranked  int              `json:"ranked"`
	Series  []overviewSeries `json:"series"` // the busiest first
	Warning string           `json:"warning,omitempty"`
}

// overviewSeries is one host's series of an overview chart.
type overviewSeries struct {
	Host            string       `json:"host"`
	Points          []wire.Point `json:"points"`
	DownsampledFrom int          `json:"downsampled_from,omitempty"`
}

// apiOverview answers GET /api/overview?metric=&range=&from=&to=&max_points=
// with top= (the top hosts by their latest value of metric, busiest first)
// or host= given once per host (those hosts, in that order; the page's
// script asks for the hosts it was first given, so that its lines keep their
// colours and a refresh ranks nothing). Each series has at most max_points
// points, and all of them together at most MaxPoints.
func (h *handler) apiOverview(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	q, perr := parseMetricQuery(params, h.now())
	if perr != nil {
		writeParamError(w, perr)
		return
	}
	if e := once(params, "top"); e != nil {
		writeParamError(w, e)
		return
	}
	hosts := params["host"] // several on purpose: the hosts to chart
	top := DefaultOverviewTop
	if v := params.Get("top"); v != "" {
		if len(hosts) > 0 {
			writeParamError(w, &paramError{Param: "top", Problem: "give top or host, not both"})
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxOverviewTop {
			writeParamError(w, &paramError{Param: "top", Problem: fmt.Sprintf("%q is not a whole number from 1 to %d", v, MaxOverviewTop)})
			return
		}
		top = n
	}
	if len(hosts) > MaxOverviewTop {
		writeParamError(w, &paramError{Param: "host", Problem: fmt.Sprintf("%d hosts: at most %d", len(hosts), MaxOverviewTop)})
		return
	}
	if slices.Contains(hosts, "") {
		writeParamError(w, &paramError{Param: "host", Problem: "empty"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	reply := overviewReply{Metric: q.Metric, Unit: unitOf(q.Metric), From: q.From.UTC(), To: q.To.UTC()}
	var errs []error
	if len(hosts) == 0 {
		busiest, compared, err := h.busiest(ctx, q.Metric, top)
		if err != nil {
			errs = append(errs, err)
		}
		reply.Ranked, hosts = compared, busiest
	}
	// The series share MaxPoints, so that an overview is bounded as a
	// series is: 12 series of 10,000 points made a reply of 8 MB, more
	// than a page can draw.
	perSeries := q.MaxPoints
	if len(hosts) > 0 {
		perSeries = min(perSeries, MaxPoints/len(hosts))
	}
	reply.Series = make([]overviewSeries, len(hosts))
	seriesErrs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, host := range hosts {
		wg.Go(func() {
			select {
			case h.seriesReads <- struct{}{}:
			case <-ctx.Done():
				seriesErrs[i] = ctx.Err()
				return
			}
			sum, err := h.opts.Source.Summarize(ctx, metrics.Series{Host: host, Metric: q.Metric}, q.From, q.To, perSeries)
			<-h.seriesReads
			s := overviewSeries{Host: host, Points: wire.Points(sum.Points)}
			if sum.Downsampled() {
				s.DownsampledFrom = sum.Total
			}
			reply.Series[i], seriesErrs[i] = s, err
		})
	}
	wg.Wait()
	errs = append(errs, seriesErrs...)
	partial := false
	for _, s := range reply.Series {
		partial = partial || len(s.Points) > 0
	}
	warning, ok := h.sourceError(w, r, errors.Join(errs...), partial)
	if !ok {
		return
	}
	reply.Warning = distinctLines(warning)
	writeJSON(w, http.StatusOK, reply)
}

// busiest returns up to top hosts, those whose latest point of metric is
// highest, highest first, and how many hosts were compared: those with a
// point of it. The hosts listed with the metric are read in one LatestEach;
// the errors of the reads are returned with what was read.
func (h *handler) busiest(ctx context.Context, metric string, top int) (_ []string, compared int, _ error) {
	ls, err := h.listing(ctx)
	if err != nil {
		return nil, 0, err
	}
	var series []metrics.Series
	for _, host := range ls.hosts {
		if _, ok := slices.BinarySearch(ls.byHost[host], metric); ok {
			series = append(series, metrics.Series{Host: host, Metric: metric})
		}
	}
	select {
	case h.rankings <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, errors.Join(ls.err, ctx.Err())
	}
	found, err := h.opts.Source.LatestEach(ctx, series...)
	<-h.rankings
	found = slices.DeleteFunc(found, func(r metrics.LatestResult) bool { return !r.Found })
	slices.SortFunc(found, func(a, b metrics.LatestResult) int {
		if c := cmp.Compare(b.Point.Value, a.Point.Value); c != 0 {
			return c
		}
		return natural.Compare(a.Series.Host, b.Series.Host)
	})
	out := make([]string, 0, min(top, len(found)))
	for _, r := range found[:min(top, len(found))] {
		out = append(out, r.Series.Host)
	}
	return out, len(found), errors.Join(ls.err, err)
}

// overviewMetricsOf returns the metrics the index page charts in its
// overview: those of up to maxInlineHosts hosts spread over the list (a
// fleet's hosts of one kind are named alike, and sort together), at most
// overviewMetrics of them, in natural order.
func (h *handler) overviewMetricsOf(ctx context.Context, hosts []string, sections []hostSection) ([]string, error) {
	seen := make(map[string]bool)
	for _, s := range sections {
		for _, m := range s.Metrics {
			seen[m] = true
		}
	}
	var errs []error
	if len(sections) == 0 && len(hosts) > 0 {
		sample := spread(hosts, maxInlineHosts)
		lists := make([][]string, len(sample))
		listErrs := make([]error, len(sample))
		var wg sync.WaitGroup
		for i, host := range sample {
			wg.Go(func() { lists[i], listErrs[i] = h.metricsOf(ctx, host) })
		}
		wg.Wait()
		for _, l := range lists {
			for _, m := range l {
				seen[m] = true
			}
		}
		errs = listErrs
	}
	all := inNaturalOrder(slices.Collect(maps.Keys(seen)))
	return all[:min(len(all), overviewMetrics)], errors.Join(errs...)
}

// spread returns at most n of names, evenly spaced, first and last
// included.
func spread(names []string, n int) []string {
	if len(names) <= n {
		return names
	}
	out := make([]string, n)
	for i := range out {
		out[i] = names[i*(len(names)-1)/(n-1)]
	}
	return out
}

// distinctLines drops repeated lines of an error's text: the same server's
// failure met by many reads is said once. A line is taken without the
// local address of a connection's error ("read tcp 127.0.0.1:52478->"),
// which differs from read to read: 10 pages opened at once as servers
// timed out carried warnings of 53 to 163 lines.
func distinctLines(s string) string {
	seen := make(map[string]bool)
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = localAddress.ReplaceAllString(line, "$1 ")
		if line != "" && !seen[line] {
			seen[line] = true
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// localAddress matches the local end of a connection in a net.OpError's
// text: "read tcp 127.0.0.1:52478->127.0.0.1:6379: i/o timeout".
var localAddress = regexp.MustCompile(`\b((?:read|write) (?:tcp|tcp4|tcp6|unix)) \S+->`)
