package dashboard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// fleetData is hosts hosts writing cpu.pct and mem.used_bytes every minute
// of the last 20, at the same times. host01 is the least busy and the last
// the busiest, by either metric: cpu.pct of host h (from 0) is h plus a
// quarter of the minute's index modulo 4, mem.used_bytes (h+1)(i+1) MiB,
// up to 1000 MiB: charted in GiB.
func fleetData(hosts int) func(base time.Time) []series {
	return func(base time.Time) []series {
		var out []series
		for h := range hosts {
			var cpu, mem []metrics.Point
			for i := range 20 {
				at := base.Add(-time.Duration(20-i) * time.Minute)
				cpu = append(cpu, metrics.Point{Time: at, Value: float64(h) + float64(i%4)/4})
				mem = append(mem, metrics.Point{Time: at, Value: float64((h+1)*(i+1)) * (1 << 20)})
			}
			host := fmt.Sprintf("host%02d", h+1)
			out = append(out, series{host, "cpu.pct", cpu}, series{host, "mem.used_bytes", mem})
		}
		return out
	}
}

// TestBrowserOverview opens the dashboard of 50 hosts with none chosen: an
// overview chart per metric compares the 5 busiest hosts, each in its own
// colour with a legend, the axes carry the metrics' units, and hovering
// shows the time and every host's value of the nearest point.
func TestBrowserOverview(t *testing.T) {
	chromium := findChromium(t)
	const hosts, top = 50, DefaultOverviewTop
	f := newFixtureOf(t, 2, fleetData(hosts))
	srv := serve(t, Options{Source: f.fleet()})
	b := startBrowser(t, chromium)
	b.do(chromedp.Navigate(srv.URL + "/"))

	overview := func(metric string) string {
		return fmt.Sprintf(`Array.from(document.querySelectorAll("svg.plot[data-top]")).find(s => s.dataset.metric === %q)`, metric)
	}
	var busiest []string
	for h := hosts; h > hosts-top; h-- {
		busiest = append(busiest, fmt.Sprintf("host%02d", h))
	}
	type chart struct {
		Lines   int      `json:"lines"`
		Colours []string `json:"colours"`
		Legend  []string `json:"legend"`
		Swatch  []string `json:"swatch"`
		YLabels []string `json:"ylabels"`
		XLabels []string `json:"xlabels"`
	}
	for _, m := range []struct{ metric, suffix string }{{"cpu.pct", "%"}, {"mem.used_bytes", " GiB"}} {
		b.poll(fmt.Sprintf(`(c => c && c.dataset.points === "%d")(%s)`, top*20, overview(m.metric)), 3*scriptPoll,
			"overview chart of "+m.metric+" drawn, with no host chosen")
		got := evaluate[chart](b, fmt.Sprintf(`(c => {
			const fig = c.closest("figure"), lines = Array.from(c.querySelectorAll("polyline"));
			return {
				lines: lines.length,
				colours: lines.map(l => getComputedStyle(l).stroke),
				legend: Array.from(fig.querySelectorAll(".legend li a"), a => a.textContent),
				swatch: Array.from(fig.querySelectorAll(".legend .swatch"), s => getComputedStyle(s).backgroundColor),
				ylabels: Array.from(c.querySelectorAll("text.axis.y"), t => t.textContent),
				xlabels: Array.from(c.querySelectorAll("text.axis.x"), t => t.textContent),
			};
		})(%s)`, overview(m.metric)))
		assert.Equal(t, top, got.Lines, "%s: lines", m.metric)
		assert.Equal(t, busiest, got.Legend, "%s: the legend, busiest first", m.metric)
		assert.Equal(t, got.Colours, got.Swatch, "%s: each legend entry in its line's colour", m.metric)
		distinct := make(map[string]bool)
		for _, c := range got.Colours {
			distinct[c] = true
		}
		assert.Len(t, distinct, top, "%s: a colour per host: %v", m.metric, got.Colours)
		assert.GreaterOrEqual(t, len(got.YLabels), 3, "%s: value gridlines", m.metric)
		for _, l := range got.YLabels {
			assert.True(t, strings.HasSuffix(l, m.suffix), "%s: y label %q without its unit %q", m.metric, l, m.suffix)
		}
		assert.GreaterOrEqual(t, len(got.XLabels), 3, "%s: time gridlines: %v", m.metric, got.XLabels)
		for _, l := range got.XLabels {
			// A gridline at local midnight is labelled with the date
			// instead ("12-07"): a run near midnight draws one.
			assert.Regexp(t, `^(\d\d:\d\d|\d{1,2}-\d\d)$`, l, "%s: time label", m.metric)
		}
	}
	assert.Zero(t, evaluate[int](b, `document.querySelectorAll("svg.plot[data-host]").length`), "charts of single hosts")
	assert.Contains(t, evaluate[string](b, `document.querySelector("main").textContent`), "50 hosts: choose one above")

	// Hover over the 11th point of the busiest host's cpu.pct: the
	// crosshair goes there, and the read-out says its time and the value
	// of each host at that time.
	const k = 10
	type spot struct{ X, Y, ChartX float64 }
	at := evaluate[spot](b, fmt.Sprintf(`(c => {
		c.scrollIntoView({block: "center"});
		const p = c.querySelector("polyline").points.getItem(%d);
		const s = new DOMPoint(p.x, p.y).matrixTransform(c.getScreenCTM());
		return {X: s.x, Y: s.y, ChartX: p.x};
	})(%s)`, k, overview("cpu.pct")))
	b.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, at.X, at.Y))
	tip := fmt.Sprintf(`(%s).parentElement.querySelector(".tooltip")`, overview("cpu.pct"))
	b.poll(`!(`+tip+`).hidden`, 5*time.Second, "tooltip shown on hover")
	type readout struct {
		Time      string   `json:"time"`
		Labels    []string `json:"labels"`
		Values    []string `json:"values"`
		Crosshair float64  `json:"crosshair"`
		Shown     string   `json:"shown"`
	}
	got := evaluate[readout](b, fmt.Sprintf(`(c => {
		const tip = c.parentElement.querySelector(".tooltip");
		return {
			time: tip.querySelector(".tip-time").textContent,
			labels: Array.from(tip.querySelectorAll(".tip-label"), e => e.textContent),
			values: Array.from(tip.querySelectorAll(".tip-value"), e => e.textContent),
			crosshair: Number(c.querySelector(".crosshair").getAttribute("x1")),
			shown: c.querySelector("g.hover").getAttribute("visibility"),
		};
	})(%s)`, overview("cpu.pct")))
	when := f.find(busiest[0], "cpu.pct").points[k].Time
	assert.Equal(t, when.Local().Format("1-02 15:04:05"), got.Time, "time of the nearest point")
	assert.Equal(t, busiest, got.Labels, "a row per host")
	var want []string
	for h := hosts - 1; h >= hosts-top; h-- {
		want = append(want, fmt.Sprintf("%g%%", float64(h)+float64(k%4)/4))
	}
	assert.Equal(t, want, got.Values, "each host's value at that time, with its unit")
	assert.InDelta(t, at.ChartX, got.Crosshair, 0.1, "crosshair at the point")
	assert.Equal(t, "visible", got.Shown, "crosshair shown")

	b.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 2, 2))
	b.poll(`(`+tip+`).hidden`, 5*time.Second, "tooltip hidden once the pointer leaves")

	// One metric across more hosts.
	b.do(chromedp.Navigate(srv.URL + "/?metric=mem.used_bytes"))
	b.poll(fmt.Sprintf(`(c => c && c.querySelectorAll("polyline").length === %d)(%s)`, MaxOverviewTop, overview("mem.used_bytes")),
		3*scriptPoll, "mem.used_bytes of the 12 busiest hosts")
	b.checkConsole()
}

// TestBrowserPageWarning kills one server of a replica group under an open
// metrics page, first one that is not its node's current server (the
// charts read in part), then the current one (the charts of its node find
// nothing: their data was written there alone). Each time the page shows
// one warning, that names the server and when it went down, and no error
// under the charts; none once the server is back.
func TestBrowserPageWarning(t *testing.T) {
	f, srv, b := browseGroups(t, "/")
	b.poll(`Array.from(document.querySelectorAll("svg.plot")).filter(s => s.childElementCount > 0).length >= 4`, 3*scriptPoll, "charts drawn")
	require.True(t, evaluate[bool](b, `document.getElementById("page-warning").hidden`), "a warning with every server up")

	current, err := f.client.NodeToServer("redis_1")
	require.NoError(t, err)
	byAddr := make(map[string]*redistest.Server)
	for _, s := range f.servers {
		byAddr[s.Addr()] = s
	}
	addrs, err := f.client.AllServers("redis_1")
	require.NoError(t, err)
	other := addrs[0]
	if other == current {
		other = addrs[1]
	}
	defer func() {
		if t.Failed() {
			t.Log("the page's warning, charts missing points and errors: " + evaluate[string](b, `[
				document.getElementById("page-warning").textContent,
				Array.from(document.querySelectorAll("figure.partial svg"), s => (s.dataset.host || "overview") + " " + s.dataset.metric).join(", "),
				Array.from(document.querySelectorAll(".chart-error"), e => e.textContent).filter(Boolean).join(", "),
			].join(" | ")`))
		}
	}()
	for _, victim := range []*redistest.Server{byAddr[other], byAddr[current]} {
		require.NoError(t, victim.Kill())
		one := fmt.Sprintf(`(w => !w.hidden && w.querySelectorAll("li").length === 1 && w.textContent.includes(%q) &&
			/down.* ago\)/.test(w.textContent) && document.querySelectorAll("figure.partial").length >= 2)(document.getElementById("page-warning"))`,
			victim.Addr())
		what := fmt.Sprintf("killed %s (current: %v)", victim.Addr(), victim.Addr() == current)
		b.poll(one, 5*time.Second+3*scriptPoll, what+": one warning, with when it went down, and charts that miss points")
		t.Logf("%s: %d charts miss points", what, evaluate[int](b, `document.querySelectorAll("figure.partial").length`))
		assert.Empty(t, evaluate[[]string](b, `Array.from(document.querySelectorAll(".chart-error")).filter(e => !e.hidden).map(e => e.textContent)`),
			"%s: errors under charts", what)

		// A page loaded while the server is down: the hosts' listing
		// failed in part too, and still there is one warning.
		b.do(chromedp.Navigate(srv.URL + "/"))
		b.poll(one, 3*scriptPoll, what+": one warning on a page loaded then")

		require.NoError(t, victim.Restart())
		b.poll(`document.getElementById("page-warning").hidden && document.querySelectorAll("figure.partial").length === 0`,
			10*time.Second+3*scriptPoll, what+": the warning gone once the server is back")
	}
	// The browser logs the reads that found nothing (502) with the server
	// down; the page shows them only in its warning.
	b.checkConsole("the server responded with a status of 502 (Bad Gateway)")
}

// TestBrowserChartError breaks a series (its key holds a string, so Redis
// refuses to read it): its chart says why, since when, and so does the
// page's warning for the overview that ranks it; both go once the series
// is whole again, without a reload.
func TestBrowserChartError(t *testing.T) {
	chromium := findChromium(t)
	f := newFixture(t, 1)
	srv := serve(t, Options{Source: f.fleet()})
	ctx := context.Background()
	const host, metric = "broken.sfo", "cpu.user"
	key, err := f.client.MetricKey(time.Now(), host, metric)
	require.NoError(t, err)
	rc := redis.NewClient(&redis.Options{Addr: f.servers[0].Addr(), Password: testPassword, DisableIdentity: true})
	t.Cleanup(func() { _ = rc.Close() })
	require.NoError(t, rc.Set(ctx, key, "not a sorted set", 0).Err())
	require.NoError(t, rc.ZAdd(ctx, f.client.Options().Metrics.Journal, redis.Z{Score: float64(time.Now().Unix()), Member: key}).Err())

	b := startBrowser(t, chromium)
	b.do(chromedp.Navigate(srv.URL + "/"))
	b.poll(`(w => !w.hidden && w.textContent.includes("WRONGTYPE") && / ago\)$/.test(w.textContent))(document.getElementById("page-warning"))`,
		3*scriptPoll, "the page's warning of the overview that ranks the broken series, with since when")
	chart := chartOf(host, metric)
	b.poll(fmt.Sprintf(`(c => { c.scrollIntoView({block: "center"}); const e = c.closest("figure").querySelector(".chart-error");
		return !e.hidden && e.textContent.includes("WRONGTYPE") && / ago\)$/.test(e.textContent) })(%s)`, chart),
		3*scriptPoll, "the broken chart's error, with since when")

	require.NoError(t, rc.Del(ctx, key).Err())
	require.NoError(t, f.client.Record(ctx, host, metric, time.Now(), 1))
	b.poll(fmt.Sprintf(`(c => c.closest("figure").querySelector(".chart-error").hidden && c.dataset.points === "1")(%s)`, chart),
		3*scriptPoll, "the chart drawn, its error gone")
	b.poll(`document.getElementById("page-warning").hidden`, 3*scriptPoll, "the page's warning gone")
	b.checkConsole("the server responded with a status of 502 (Bad Gateway)")
}

// Names that differ only by a character that shows nothing are told apart:
// the host list the page is served with and the overview's legend, which
// the script writes, show "web1⟨U+034F⟩", the same way. (They were four
// links "web1" of the same width.) An emoji keeps its variation selector.
func TestBrowserNamesThatLookAlike(t *testing.T) {
	chromium := findChromium(t)
	hosts := []string{"web1", "web1\u034f", "web1\ufe0f", "web1\u3164", "\u2764\ufe0f"}
	f := newFixtureOf(t, 1, func(base time.Time) []series {
		var out []series
		for i, h := range hosts {
			out = append(out, series{h, "cpu.pct", []metrics.Point{{Time: base.Add(-time.Minute), Value: float64(len(hosts) - i)}}})
		}
		return out
	})
	srv := serve(t, Options{Source: f.fleet()})
	b := startBrowser(t, chromium)
	b.do(chromedp.Navigate(srv.URL + "/?metric=cpu.pct"))
	b.poll(`(c => c && c.dataset.points === "5")(document.querySelector("svg.plot[data-top]"))`, 3*scriptPoll, "the overview drawn")
	type names struct {
		Nav    []string `json:"nav"`
		Legend []string `json:"legend"`
	}
	got := evaluate[names](b, `({
		nav: Array.from(document.querySelectorAll("nav.hosts a.host"), a => a.textContent).filter(s => s !== "all"),
		legend: Array.from(document.querySelectorAll(".legend li a"), a => a.textContent),
	})`)
	want := []string{"web1", "web1⟨U+034F⟩", "web1⟨U+FE0F⟩", "web1⟨U+3164⟩", "\u2764\ufe0f"}
	assert.ElementsMatch(t, want, got.Nav, "the page's host list")
	assert.Equal(t, want, got.Legend, "the script's legend, busiest first")
	b.checkConsole()
}
