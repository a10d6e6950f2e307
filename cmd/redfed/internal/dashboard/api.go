package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/redfed/federated"
	"github.com/redfed/federated/cmd/redfed/internal/wire"
	"github.com/redfed/federated/metrics"
)

// The JSON API. Every reply is an object; errors are errorReply. A reply
// built from a partial answer of the Source carries the error in Warning.

// hostsReply is the body of GET /api/hosts.
type hostsReply struct {
	Hosts   []string `json:"hosts"`
	Warning string   `json:"warning,omitempty"`
}

// metricsReply is the body of GET /api/metrics.
type metricsReply struct {
	Host    string   `json:"host"`
	Metrics []string `json:"metrics"`
	Warning string   `json:"warning,omitempty"`
}

// seriesReply is the body of GET /api/series: the series in the shape
// redfed query --json prints (package wire), its points sorted by time.
type seriesReply struct {
	wire.Series
	Unit            unit   `json:"unit"`                       // what the values measure, by the metric's name
	DownsampledFrom int    `json:"downsampled_from,omitempty"` // points in the range, when there were more than max_points
	Warning         string `json:"warning,omitempty"`
}

// apiHosts answers GET /api/hosts: the hosts written to in HostsWindow.
func (h *handler) apiHosts(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	hosts, err := h.hosts(ctx)
	warning, ok := h.sourceError(w, r, err, len(hosts) > 0)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, hostsReply{Hosts: nonNil(inNaturalOrder(hosts)), Warning: warning})
}

// apiMetrics answers GET /api/metrics?host=H: the host's metrics written to
// in HostsWindow.
func (h *handler) apiMetrics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := once(q, "host"); e != nil {
		writeParamError(w, e)
		return
	}
	host := q.Get("host")
	if host == "" {
		writeParamError(w, &paramError{Param: "host", Problem: "missing"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	metrics, err := h.metricsOf(ctx, host)
	warning, ok := h.sourceError(w, r, err, len(metrics) > 0)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, metricsReply{Host: host, Metrics: nonNil(inNaturalOrder(metrics)), Warning: warning})
}

// apiSeries answers GET /api/series?host=&metric=&from=&to=&range=&max_points=.
// At most Options.MaxSeriesReads run at once; the others wait for a turn
// within the request's time limit, then get 503.
func (h *handler) apiSeries(w http.ResponseWriter, r *http.Request) {
	q, perr := parseSeriesQuery(r.URL.Query(), h.now())
	if perr != nil {
		writeParamError(w, perr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	select {
	case h.seriesReads <- struct{}{}:
	case <-ctx.Done():
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, errorReply{Error: fmt.Sprintf(
			"busy: %d series reads under way, and none ended within %s; try again", cap(h.seriesReads), requestTimeout)})
		return
	}
	sum, err := h.opts.Source.Summarize(ctx, metrics.Series{Host: q.Host, Metric: q.Metric}, q.From, q.To, q.MaxPoints)
	<-h.seriesReads
	warning, ok := h.sourceError(w, r, err, len(sum.Points) > 0)
	if !ok {
		return
	}
	reply := seriesReply{
		Series:  wire.NewSeries(metrics.Series{Host: q.Host, Metric: q.Metric}, q.From, q.To, sum.Points),
		Unit:    unitOf(q.Metric),
		Warning: warning,
	}
	if sum.Downsampled() {
		reply.DownsampledFrom = sum.Total
	}
	writeJSON(w, http.StatusOK, reply)
}

// apiStatus answers GET /api/status.
func (h *handler) apiStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.status())
}

// sourceError handles an error of the Source. A bad name is the caller's
// fault: 400. A failure with nothing to show is 502. A failure beside a
// partial answer (some servers failed, others answered) is logged and
// returned as the warning to send with the answer. ok is false when the
// reply has been written.
func (h *handler) sourceError(w http.ResponseWriter, r *http.Request, err error, partial bool) (warning string, ok bool) {
	if err == nil {
		return "", true
	}
	switch {
	case errors.Is(err, federated.ErrBadHost):
		writeParamError(w, &paramError{Param: "host", Problem: err.Error()})
		return "", false
	case errors.Is(err, federated.ErrBadMetric):
		writeParamError(w, &paramError{Param: "metric", Problem: err.Error()})
		return "", false
	case errors.Is(err, federated.ErrBadTimestamp):
		writeParamError(w, &paramError{Param: "from", Problem: err.Error()})
		return "", false
	}
	h.opts.Logger.Warn("dashboard: read failed", "path", r.URL.Path, "partial", partial, "err", err)
	if !partial {
		writeJSON(w, http.StatusBadGateway, errorReply{Error: err.Error()})
		return "", false
	}
	return err.Error(), true
}

// writeParamError answers 400 for a bad query parameter.
func writeParamError(w http.ResponseWriter, e *paramError) {
	writeJSON(w, http.StatusBadRequest, errorReply{Error: e.Error(), Param: e.Param})
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
