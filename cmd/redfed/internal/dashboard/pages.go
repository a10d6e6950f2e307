package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/metric"
)

// maxInlineHosts is how many hosts the index page charts at once. With more,
// it lists them and charts the one chosen with ?host=, so that a big fleet
// does not cost a journal scan per host on every page load.
const maxInlineHosts = 12

// indexPage is the data of the index page.
type indexPage struct {
	Page, Title string
	Range       string   // the range shown: one of Ranges
	Ranges      []string // the range presets offered
	Host        string   // the host chosen with ?host=, or ""
	Hosts       []string // every host written to in HostsWindow
	Sections    []hostSection
	Choose      bool   // too many hosts to chart at once and none chosen
	Warning     string // why some hosts or metrics may be missing
	// Metric is the metric chosen with ?metric=, or "": the page then
	// shows only its overview chart, of more hosts.
	Metric   string
	Overview []string // the metrics of the overview charts
	Top      int      // hosts in each overview chart
}

// hostSection is one host's charts.
type hostSection struct {
	Host    string
	Metrics []string
	Failed  bool // the metrics could not be listed, or only in part: the page's warning says why
}

// statusPage is the data of the status page.
type statusPage struct {
	Page, Title string
	statusReply
	Nodes []nodeGroup // the servers, by node
}

// nodeGroup is one node's servers, for the status page.
type nodeGroup struct {
	Node    string
	Up      int // servers up
	Servers []serverStatus
}

// groupByNode splits servers, which are sorted by node, into one group per
// node.
func groupByNode(servers []serverStatus) []nodeGroup {
	var out []nodeGroup
	for _, s := range servers {
		if len(out) == 0 || out[len(out)-1].Node != s.Node {
			out = append(out, nodeGroup{Node: s.Node})
		}
		g := &out[len(out)-1]
		g.Servers = append(g.Servers, s)
		if !s.Down {
			g.Up++
		}
	}
	return out
}

// templateFuncs are the helpers the page templates use.
var templateFuncs = template.FuncMap{
	"ms":    formatMillis,
	"unit":  unitOf,
	"num":   func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	"shown": shown,
	"hostChart": func(host, metric string) chartData {
		return chartData{Host: host, Metric: metric}
	},
	"overviewChart": func(metric, rng string, top int, wide bool) chartData {
		return chartData{Metric: metric, Range: rng, Top: top, Wide: wide}
	},
}

// chartData is the data of one chart of the index page.
type chartData struct {
	Host, Metric string // Host is "" in an overview chart
	Range        string // the page's range
	Top          int    // hosts in an overview chart
	Wide         bool   // the page's one chart, as wide as the page
}

// indexPage serves "/": hosts and their metrics, one chart per metric,
// which the script draws and keeps live.
func (h *handler) indexPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := indexPage{Page: "index", Title: "Metrics", Range: q.Get("range"), Ranges: rangePresets, Host: q.Get("host"),
		Metric: q.Get("metric"), Top: DefaultOverviewTop}
	if e := once(q, "host", "metric", "range"); e != nil {
		http.Error(w, e.Error(), http.StatusBadRequest)
		return
	}
	if p.Range == "" {
		p.Range = defaultPreset
	} else if !slices.Contains(rangePresets, p.Range) {
		http.Error(w, fmt.Sprintf("range: %q is not one of %s", p.Range, strings.Join(rangePresets, ", ")), http.StatusBadRequest)
		return
	}
	if q.Has("host") && p.Host == "" {
		http.Error(w, "host: empty", http.StatusBadRequest)
		return
	}
	if q.Has("metric") && p.Metric == "" {
		http.Error(w, "metric: empty", http.StatusBadRequest)
		return
	}
	// The page shows the metric in its title, its chart and every range
	// link: a name no series can have made a page of 9 MB from a query of
	// 900 KB.
	if err := metric.ValidateMetric(p.Metric); p.Metric != "" && err != nil {
		http.Error(w, "metric: "+err.Error(), http.StatusBadRequest)
		return
	}
	if p.Host != "" && p.Metric != "" {
		http.Error(w, "metric: give host or metric, not both", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	code := http.StatusOK
	hosts, err := h.hosts(ctx)
	if err != nil {
		h.opts.Logger.Warn("dashboard: list hosts", "err", err)
		p.Warning = err.Error()
		if len(hosts) == 0 {
			code = http.StatusBadGateway
		}
	}
	hosts = inNaturalOrder(hosts)
	p.Hosts = hosts
	var show []string
	switch {
	case p.Host != "":
		show = []string{p.Host}
	case p.Metric != "":
		p.Overview, p.Top = []string{p.Metric}, MaxOverviewTop
	case len(hosts) <= maxInlineHosts:
		show = hosts
	default:
		p.Choose = true
	}
	p.Sections = make([]hostSection, len(show))
	errs := make([]error, len(show))
	var wg sync.WaitGroup
	for i, host := range show {
		wg.Go(func() {
			metrics, err := h.metricsOf(ctx, host)
			p.Sections[i] = hostSection{Host: host, Metrics: inNaturalOrder(metrics), Failed: err != nil}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, federated.ErrBadHost) {
			http.Error(w, "host: "+err.Error(), http.StatusBadRequest)
			return
		}
		h.opts.Logger.Warn("dashboard: list metrics", "err", err)
		// Said once, in the page's warning, which the script takes down
		// once the servers it names are back. Each host's section said it
		// again, and kept saying it: with 4 hosts a down server's address
		// was on the page 6 times.
		p.Warning = distinctLines(p.Warning + "\n" + err.Error())
	}
	if p.Host == "" && p.Metric == "" && len(hosts) > 1 {
		var err error
		if p.Overview, err = h.overviewMetricsOf(ctx, hosts, p.Sections); err != nil {
			h.opts.Logger.Warn("dashboard: list metrics for the overview", "err", err)
			p.Warning = distinctLines(p.Warning + "\n" + err.Error())
		}
	}
	h.render(w, code, "index", p)
}

// statusPage serves "/status": the servers, the syncer and the last check,
// which the script keeps live.
func (h *handler) statusPage(w http.ResponseWriter, _ *http.Request) {
	st := h.status()
	h.render(w, http.StatusOK, "status", statusPage{Page: "status", Title: "Status", statusReply: st, Nodes: groupByNode(st.Servers)})
}

// render executes a page into a buffer first, so that a template error is a
// clean 500 rather than half a page.
func (h *handler) render(w http.ResponseWriter, code int, page string, data any) {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.opts.Logger.Error("dashboard: render page", "page", page, "err", err)
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// formatMillis shows a number of milliseconds as a person reads it.
func formatMillis(ms float64) string {
	switch {
	case ms >= 60_000:
		return fmt.Sprintf("%.1f min", ms/60_000)
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}
