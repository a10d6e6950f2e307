package dashboard

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var saveScreenshot = flag.Bool("dashboard.screenshot", false,
	"save a PNG screenshot of the metrics page to testdata/dashboard.png")

const (
	// chromiumPath is where Debian's chromium package puts the browser.
	chromiumPath = "/usr/bin/chromium"
	// browserTimeout bounds the whole browser test, browser start included.
	browserTimeout = 60 * time.Second
	// scriptPoll is how often the page's script polls (POLL_MS).
	scriptPoll = 5 * time.Second
	// statusPoll is how often the status page polls (STATUS_POLL_MS).
	statusPoll = 2 * time.Second
)

// TestBrowser loads the dashboard in a real headless Chromium: the charts
// draw every point of their series and follow new ones, names that are
// markup stay text, the range selector works, and the status page shows a
// killed server as down.
func TestBrowser(t *testing.T) {
	chromium := findChromium(t)
	f := newFixture(t, 3)
	const token = "browser-T0ken-0123"
	srv := serve(t, Options{Source: f.fleet(), Token: token, Syncer: testSyncerStats, LastCheck: testCheck(f.base)})
	b := startBrowser(t, chromium)

	// The token in the address becomes a cookie, and leaves the address.
	b.do(chromedp.Navigate(srv.URL + "/?token=" + token))
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	require.NoError(t, err)
	assert.Equal(t, srv.URL+"/", loc, "address after the token redirect")

	// Every chart draws every point of the last hour.
	hourAgo := time.Now().Add(-DefaultRange)
	for _, s := range f.data {
		b.waitPoints(s.host, s.metric, len(s.since(hourAgo)))
	}

	// Names that are markup are shown as text and run nothing.
	type pageText struct {
		Names   []string `json:"names"`
		Hosts   []string `json:"hosts"`
		Scripts int      `json:"scripts"`
		Images  int      `json:"images"`
	}
	got := evaluate[pageText](b, `({
		names: Array.from(document.querySelectorAll("figcaption .name"), e => e.textContent),
		hosts: Array.from(document.querySelectorAll("section.host h2"), e => e.textContent),
		scripts: document.scripts.length,
		images: document.images.length,
	})`)
	assert.Contains(t, got.Names, xssMetric, "metric named as a script, shown as text")
	assert.Contains(t, got.Hosts, xssHost, "host named as an img tag, shown as text")
	assert.Equal(t, 1, got.Scripts, "scripts in the page: only the dashboard's")
	assert.Zero(t, got.Images, "img elements in the page")

	if *saveScreenshot {
		b.screenshot(filepath.Join("testdata", "dashboard.png"))
	}

	// A new point shows up at the next poll.
	cpu := f.find("web1.sfo", "cpu.user")
	require.NoError(t, f.client.Record(context.Background(), cpu.host, cpu.metric, time.Now(), 42))
	b.waitPoints(cpu.host, cpu.metric, len(cpu.since(hourAgo))+1)

	// The range selector redraws in place.
	b.do(chromedp.Click(chromedp.CSS(`a.range[data-range="6h"]`)))
	b.waitPoints("db1.sfo", "disk.free_gb", len(f.find("db1.sfo", "disk.free_gb").points))
	loc, err = chromedp.Run(b.ctx, chromedp.Location())
	require.NoError(t, err)
	assert.Equal(t, srv.URL+"/?range=6h", loc, "address after choosing 6h")

	// The status page shows a killed server as down, before and after the
	// script refreshes it. The charts are left first: their next poll
	// would find a metric of the killed server's alone, and log the 502
	// the API answers for it (browser_charts_test.go tests that).
	b.do(chromedp.Navigate("about:blank"))
	killed := f.markDown(t, 0)
	b.do(chromedp.Navigate(srv.URL + "/status"))
	b.checkDown(killed)
	_, err = chromedp.Run(b.ctx, chromedp.Poll[bool](`document.getElementById("updated").textContent.startsWith("updated")`,
		chromedp.WithPollingTimeout(3*scriptPoll), chromedp.WithPollingInterval(100*time.Millisecond)))
	require.NoError(t, err, "the status page refreshes itself")
	b.checkDown(killed)

	b.checkConsole()
}

// findChromium returns the path of Chromium, or fails the test: CI installs
// it, so a missing browser is a broken set-up, not a reason to skip.
func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatalf("chromium not found at %s or on PATH; install it with: apt-get install -y chromium", chromiumPath)
	return ""
}

// browser is a headless Chromium with one tab, for one test.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab's

	mu       sync.Mutex
	console  []string // every console message and exception
	problems []string // exceptions, console errors and dialogs
}

// browserStarts is how many times startBrowser tries to start Chromium: on a
// loaded machine it can die or miss its start-up deadline once.
const browserStarts = 3

// startBrowser starts Chromium on a fresh profile. The browser, and the
// goroutines that watch it, are gone when the test ends.
func startBrowser(t *testing.T, execPath string) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	var (
		tabCtx context.Context
		stop   func()
		err    error
	)
	for try := 1; try <= browserStarts; try++ {
		if tabCtx, stop, err = launchBrowser(ctx, t, execPath); err == nil || ctx.Err() != nil {
			break // started, or out of time for another try
		}
		t.Logf("start chromium (try %d of %d): %v", try, browserStarts, err)
	}
	require.NoError(t, err, "start chromium")
	b := &browser{t: t, ctx: tabCtx}

	var wg sync.WaitGroup
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})

	// Subscribe before the first page loads, so that nothing is missed.
	messages := chromedp.Console(tabCtx)
	dialogs := chromedp.Events(tabCtx, page.JavascriptDialogOpening)
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			line := fmt.Sprintf("console %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1)
			b.mu.Lock()
			b.console = append(b.console, line)
			if m.IsException() || m.Type == chromedp.ConsoleError {
				b.problems = append(b.problems, line)
			}
			b.mu.Unlock()
		}
	})
	wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.problems = append(b.problems, fmt.Sprintf("a %s dialog opened: %q", ev.Type, ev.Message))
			b.mu.Unlock()
			// An open dialog blocks the page; dismiss it so the test can
			// report it instead of timing out.
			_, _ = chromedp.Call(tabCtx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
		}
	})
	return b
}

// launchBrowser starts Chromium and opens its tab. A context whose start
// failed is never used again: chromedp would start a second browser on it,
// and the two would both close its allocator's channel.
func launchBrowser(ctx context.Context, t *testing.T, execPath string) (context.Context, func(), error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, tabCancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	stop := func() {
		if err := chromedp.Cancel(tabCtx); err != nil {
			t.Logf("close the browser: %v", err)
		}
		tabCancel()
		allocCancel() // waits for the browser process
	}
	if err := chromedp.Do(tabCtx); err != nil { // starts the browser and opens the tab
		tabCancel()
		allocCancel()
		return nil, nil, err
	}
	return tabCtx, stop, nil
}

// do runs actions, failing the test on error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, actions...))
}

// evaluate runs a JavaScript expression and decodes its value.
func evaluate[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	require.NoError(b.t, err, "evaluate %s", expr)
	return v
}

// chartOf is a JavaScript expression for the chart of a series. It compares
// the data attributes as strings, not through a CSS selector, so any name
// works.
func chartOf(host, metric string) string {
	h, _ := json.Marshal(host)
	m, _ := json.Marshal(metric)
	return fmt.Sprintf(`Array.from(document.querySelectorAll("svg.plot")).find(s => s.dataset.host === %s && s.dataset.metric === %s)`, h, m)
}

// waitPoints scrolls the chart of a series into view and waits until it
// has drawn want points: data-points says so, and so does its polyline.
func (b *browser) waitPoints(host, metric string, want int) {
	b.t.Helper()
	chart := chartOf(host, metric)
	found := evaluate[bool](b, fmt.Sprintf(`(c => { if (!c) return false; c.scrollIntoView({block: "center"}); return true })(%s)`, chart))
	require.True(b.t, found, "no chart of host %q, metric %q", host, metric)
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](fmt.Sprintf(`(%s).dataset.points === %q`, chart, strconv.Itoa(want)),
		chromedp.WithPollingTimeout(3*scriptPoll), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		state := evaluate[string](b, fmt.Sprintf(`(c => c.dataset.points + " points; error: " + c.closest("figure").querySelector(".chart-error").textContent)(%s)`, chart))
		b.t.Fatalf("chart of host %q, metric %q: got %s, want %d points (%v)", host, metric, state, want, err)
	}
	drawn := evaluate[int](b, fmt.Sprintf(`(c => { const p = c.querySelector("polyline"); return p ? p.points.numberOfItems : 0 })(%s)`, chart))
	assert.Equal(b.t, want, drawn, "polyline points of host %q, metric %q", host, metric)
}

// checkDown checks that the status page shows the server at addr as down.
func (b *browser) checkDown(addr string) {
	b.t.Helper()
	type row struct {
		Down  bool   `json:"down"`
		State string `json:"state"`
		Since string `json:"since"`
	}
	a, _ := json.Marshal(addr)
	got := evaluate[*row](b, fmt.Sprintf(`(r => r && {down: r.classList.contains("down"), state: r.querySelector(".state").textContent, since: r.querySelector(".since").textContent})(
		Array.from(document.querySelectorAll("#servers tr")).find(r => r.dataset.address === %s))`, a))
	require.NotNil(b.t, got, "no row of server %s on the status page", addr)
	assert.True(b.t, got.Down, "row of %s marked down", addr)
	assert.Equal(b.t, "down", got.State, "state of %s", addr)
	assert.NotEmpty(b.t, got.Since, "down since of %s", addr)
	up := evaluate[int](b, `document.querySelectorAll("#servers tr.up").length`)
	assert.Equal(b.t, 2, up, "servers shown up")
}

// checkConsole fails the test if the page threw, logged an error or opened
// a dialog, but for console errors that contain one of expected.
func (b *browser) checkConsole(expected ...string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range b.console {
		b.t.Log(line)
	}
	problems := slices.DeleteFunc(slices.Clone(b.problems), func(p string) bool {
		return slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(p, e) })
	})
	assert.Empty(b.t, problems, "exceptions, console errors and dialogs")
}

// screenshot saves the whole page, every chart drawn, as a PNG.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.body.scrollHeight)`))
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`Array.from(document.querySelectorAll("svg.plot")).every(s => s.childElementCount > 0)`,
		chromedp.WithPollingTimeout(3*scriptPoll)))
	require.NoError(b.t, err, "every chart drawn")
	b.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	require.NoError(b.t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(b.t, os.WriteFile(path, png, 0o644))
	b.t.Logf("screenshot saved to %s (%d bytes)", path, len(png))
}

// TestBrowserStatus checks the status page in Chromium: servers grouped by
// node in each node's order, and a server killed with no command sent to
// it shown down within seconds, with the time it went down and its error,
// both gone once it is back, all without a reload.
func TestBrowserStatus(t *testing.T) {
	f, _, b := browseGroups(t, "/status")

	type group struct {
		Node   string   `json:"node"`
		Addrs  []string `json:"addrs"`
		Header string   `json:"header"`
		Spans  bool     `json:"spans"`
	}
	got := evaluate[[]group](b, `Array.from(document.querySelectorAll("#servers tbody.node"), g => {
		const rows = g.querySelectorAll("tr"), th = g.querySelector("th.node-name").getBoundingClientRect();
		const first = rows[0].getBoundingClientRect(), last = rows[rows.length - 1].getBoundingClientRect();
		return {node: g.dataset.node, addrs: Array.from(rows, r => r.dataset.address), header: th && g.querySelector("th.node-name").textContent,
			spans: Math.abs(th.top - first.top) < 1 && Math.abs(th.bottom - last.bottom) < 1};
	})`)
	var want []group
	for _, node := range f.client.Nodes() {
		addrs, err := f.client.AllServers(node)
		require.NoError(t, err)
		want = append(want, group{Node: node, Addrs: addrs, Header: node + "2 of 2 up", Spans: true})
	}
	assert.Equal(t, want, got, "servers by node, in each node's order; the node's name beside all its rows")

	victim := f.servers[0]
	addr, _ := json.Marshal(victim.Addr())
	row := fmt.Sprintf(`Array.from(document.querySelectorAll("#servers tr")).find(r => r.dataset.address === %s)`, addr)
	require.NoError(t, victim.Kill())
	b.poll(fmt.Sprintf(`(r => r.classList.contains("down") && / ago\)$/.test(r.querySelector(".since").textContent) &&
		r.querySelector(".error").textContent !== "")(%s)`, row), 5*time.Second+2*statusPoll, "killed server shown down, with its time and error")
	assert.Contains(t, evaluate[string](b, `document.querySelector("tbody.node.degraded").textContent`), "1 of 2 up")

	require.NoError(t, victim.Restart())
	b.poll(fmt.Sprintf(`(r => r.classList.contains("up") && r.querySelector(".since").textContent === "" &&
		r.querySelector(".error").textContent === "")(%s)`, row), 10*time.Second, "restarted server shown up, its error gone")
	assert.Zero(t, evaluate[int](b, `document.querySelectorAll("tbody.node.degraded").length`), "nodes shown degraded")
	b.checkConsole()
}

// browseGroups serves the dashboard of 2 replica groups of 2 servers each,
// and opens its page at path in Chromium.
func browseGroups(t *testing.T, path string) (*fixture, *httptest.Server, *browser) {
	t.Helper()
	chromium := findChromium(t)
	f := newGroupFixture(t, 2, 2)
	srv := serve(t, Options{Source: f.fleet()})
	b := startBrowser(t, chromium)
	b.do(chromedp.Navigate(srv.URL + path))
	return f, srv, b
}

// poll waits until a JavaScript expression is true, failing the test with
// msg if it is not within timeout.
func (b *browser) poll(expr string, timeout time.Duration, msg string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	require.NoError(b.t, err, "%s: not within %v", msg, timeout)
}
