// Command screenshots makes the README's pictures of the dashboard from
// the demo's data: it starts the demo (its servers, 50 fake hosts and its
// story of a failover), serves the dashboard on a loopback port, opens it
// in headless Chromium and saves PNGs of the first page (dashboard.png,
// with the pointer over a chart), of one metric across the busiest hosts
// (overview.png) and of the status page (status.png). Run it by hand from
// the repository's root:
//
//	go run ./cmd/redfed/internal/dashboard/screenshots -out docs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/redfed/federated/cmd/redfed/internal/dashboard"
	"github.com/redfed/federated/cmd/redfed/internal/demo"
)

func main() {
	out := flag.String("out", "", "folder to write the PNGs to (required)")
	chromium := flag.String("chromium", "/usr/bin/chromium", "Chromium's path")
	hosts := flag.Int("hosts", 50, "fake hosts of the demo")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "screenshots: -out: missing; say where the PNGs go, e.g. -out docs")
		os.Exit(2)
	}
	if err := run(*out, *chromium, *hosts); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

func run(out, chromium string, hosts int) error {
	if _, err := os.Stat(chromium); err != nil {
		return fmt.Errorf("-chromium %s: %w (apt-get install -y chromium)", chromium, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := demo.Start(ctx, demo.Options{Hosts: hosts, Out: os.Stderr})
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Script(ctx); err != nil { // the failover and the check, for the status page
		return err
	}

	h, err := dashboard.New(dashboard.Options{Source: dashboard.Fleet{Store: d.Store()}, Syncer: d.SyncerStats,
		LastCheck: d.LastCheck, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Close()
		<-served
	}()
	base := "http://" + ln.Addr().String()

	allocCtx, allocCancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun,
		chromedp.WindowSize(1400, 1000))...)
	defer allocCancel()
	tab, tabCancel := chromedp.NewContext(allocCtx)
	defer tabCancel()

	shots := []struct {
		file, path string
		full       bool
		hover      string // the chart to point at, a CSS selector
	}{
		{"dashboard.png", "/", false, `svg.plot[data-top]`},
		{"overview.png", "/?metric=req.latency.p99.ms", false, `svg.plot[data-top]`},
		{"status.png", "/status", true, ""},
	}
	for _, s := range shots {
		png, err := shoot(tab, base+s.path, s.full, s.hover)
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		path := filepath.Join(out, s.file)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s (%d bytes)\n", path, len(png))
	}
	return nil
}

// shoot opens url, waits until every chart in view is drawn, points at
// the chart hover names, if any, and returns a PNG of the window, or of the
// whole page when full is set.
func shoot(ctx context.Context, url string, full bool, hover string) ([]byte, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return nil, err
	}
	drawn := `Array.from(document.querySelectorAll("svg.plot")).filter(s => s.getBoundingClientRect().top < innerHeight)
		.every(s => s.dataset.points !== "0")`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](drawn, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		return nil, errors.New("charts not drawn within 30 s")
	}
	if hover != "" {
		type point struct{ X, Y float64 }
		at, err := chromedp.Run(ctx, chromedp.Evaluate[point](fmt.Sprintf(`(r => ({X: r.left + r.width * 0.7, Y: r.top + r.height / 2}))(
			document.querySelector(%q).getBoundingClientRect())`, hover)))
		if err != nil {
			return nil, err
		}
		if err := chromedp.Do(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, at.X, at.Y)); err != nil {
			return nil, err
		}
	}
	if full {
		return chromedp.Run(ctx, chromedp.FullScreenshot(100))
	}
	return chromedp.Run(ctx, chromedp.CaptureScreenshot())
}
