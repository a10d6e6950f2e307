package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/redfed/federated"
	"github.com/redfed/federated/cmd/redfed/internal/dashboard"
	"github.com/redfed/federated/cmd/redfed/internal/demo"
	"github.com/redfed/federated/metrics"
)

// defaultListen is where the dashboard listens unless told otherwise.
const defaultListen = "127.0.0.1:8080"

// minCheckEvery is the shortest --check-every: a check reads every key of
// every replica group, and one every nanosecond kept every server busy.
const minCheckEvery = time.Second

func newDemoCmd() *cobra.Command {
	var (
		duration  time.Duration
		listen    string
		hosts     int
		inProcess bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system on this machine, with a dashboard",
		Long: `Start a federation of its own (8 redis-server processes on free loopback
ports, or in-process Redis-compatible servers when redis-server is not
installed), laid out as 2 simulated hosts × 4 processes: 4 replica groups
of 2. Write simulated metrics from fake hosts through a Recorder, run a
syncer per host, kill the current server of a group and show the failover,
bring it back empty and let the syncers restore it, check every replica,
print a summary, and serve the dashboard until Ctrl-C or --duration.
Everything it started is stopped on exit.`,
		Example: `  go run ./cmd/redfed demo
  redfed demo --duration 2m --listen 127.0.0.1:9000
  redfed demo --in-process --hosts 20`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The story always runs to its end (or Ctrl-C); --duration bounds
			// the whole run, so the dashboard is served for what is left.
			survivePipes()
			if err := checkListen(listen, false); err != nil {
				return err
			}
			if duration < 0 {
				return usagef("--duration %v: want 0 or more (0, the default, serves until Ctrl-C)", duration)
			}
			if hosts < 1 {
				return usagef("--hosts %d: want 1 or more", hosts)
			}
			ctx := cmd.Context()
			serveCtx := ctx
			if duration > 0 {
				var cancel context.CancelFunc
				serveCtx, cancel = context.WithDeadline(ctx, time.Now().Add(duration))
				defer cancel()
			}
			out := cmd.OutOrStdout()
			d, err := demo.Start(ctx, demo.Options{Hosts: hosts, InProcess: inProcess, Out: out})
			if err != nil {
				return demoInterrupted(ctx, "while it started its servers", err)
			}
			defer d.Close()
			sum, err := d.Script(ctx)
			if err != nil {
				return demoInterrupted(ctx, "before the end of its story", err)
			}
			sum.Print(func(format string, args ...any) { fmt.Fprintf(out, format, args...) })
			h, err := dashboard.New(dashboard.Options{
				Source:    dashboard.Fleet{Store: d.Store()},
				Syncer:    d.SyncerStats,
				LastCheck: d.LastCheck,
				Logger:    slog.New(slog.DiscardHandler),
			})
			if err != nil {
				return err
			}
			if serveCtx.Err() == nil { // else --duration is over: nothing to serve
				if err := serve(serveCtx, h, listen, true, func(addr string) {
					fmt.Fprintf(out, "\ndashboard: http://%s/  (Ctrl-C to stop)\n", addr)
				}); err != nil {
					return err
				}
			}
			if sum.Lost() > 0 || !sum.Check.OK() {
				return fmt.Errorf("%d points lost, %d keys differ", sum.Lost(), sum.Check.Divergent)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 0, "stop serving the dashboard this long after the start; the story itself always runs to its end (default: at Ctrl-C)")
	f.StringVar(&listen, "listen", defaultListen, "dashboard address, loopback only; another free port is taken if it is busy")
	f.IntVar(&hosts, "hosts", 50, "fake hosts writing metrics")
	f.BoolVar(&inProcess, "in-process", false, "use in-process servers even if redis-server is installed")
	return cmd
}

// demoInterrupted says an interrupt of the demo as one, not as the
// "context canceled" of whatever it was doing; another error is err.
func demoInterrupted(ctx context.Context, when string, err error) error {
	if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("interrupted %s; everything it started is stopped", when)
}

func newServeCmd() *cobra.Command {
	var (
		listen      string
		token       string
		tokenFile   string
		allowHosts  []string
		seriesReads int
		checkEvery  time.Duration
		remoteFl    *remoteFlags
		ingest      *ingestFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the dashboard of a federation",
		Long: `Serve the dashboard: hosts and their metrics as live charts, and a status
page of the servers and of the last replica check, which runs every
--check-every. Every asset is embedded; nothing is fetched from elsewhere.

It listens on loopback, and without a token answers only requests that
name it localhost, 127.0.0.1 or [::1], or a name given with --allow-host
(for a tunnel or a proxy that keeps the name): a web page cannot read it
by pointing its own name at this machine. Another address needs a token,
which every request must then carry (open the page once with
?token=TOKEN). The token comes from --token-file (its first line), from
$REDFED_TOKEN, or from --token, which ps shows to every user of the
machine; it must be at least 16 characters.

GET /healthz answers 200 "ok" while the process serves, and GET /readyz
200 while every node has a server up, else 503 naming the nodes with
none; both answer without a token, for a load balancer or systemd.
GET /metrics serves Prometheus metrics, under the dashboard's token rules:
the servers as the client sees them (up, down since, failovers, call
latencies), what Graphite and remote write took in and refused, and
redfed_build_info.

A chart reads its series in short pages, cut to at most 1,000 points as
they come, and at most --series-reads charts read at once.

Prometheus writes to POST /api/v1/write (remote write; --remote-write=false
turns it off) and reads from POST /api/v1/read (remote read), under the
same token rules: give Prometheus the token as authorization credentials.
A series is stored under the host its --remote-host-label label names
("instance" by default; ':' is written %3A: "localhost%3A9090"), and its
other labels, sorted, are the metric: up{job="prometheus"}. A write is
answered once Redis has acknowledged it, or 503 so that Prometheus sends
it again; NaN values, staleness markers among them, are skipped.

With --graphite-listen ADDR, serve also takes in metrics in Graphite's
plaintext protocol ("PATH VALUE TIMESTAMP" lines, as collectd's
write_graphite sends them) on ADDR over TCP and UDP, and writes them in
batches, reading no more from a connection until its batch is written
(again for up to a minute while a server is down or refusing writes).
--graphite-template maps a path to a host and a metric: one template
word for each word of the path between dots: host (part of the host),
metric (part of the metric name), metric* (last: the rest of the path),
* (any word, dropped), or a word the path must have there. The default,
collectd.host.metric*, reads collectd.web1_sfo.cpu-0.cpu-user as host
web1_sfo, metric cpu-0.cpu-user. A line that does not parse or map, a
NaN or infinite value, a line over 4,096 bytes is skipped, counted and
logged with the sender's address (one warning every 10 seconds at most).
At most 1024 connections at once (--graphite-max-conns); one silent 5
minutes is closed. The protocol has no authentication: listen where
only your hosts reach.

On Ctrl-C or SIGTERM it reads what its Graphite senders still send, for
up to 2 seconds, writes what it has taken in, logs how many lines it
wrote and how many failed, and exits 0: a stop that a service manager
asked for is not a failure of the unit, and the failures are logged.

` + reloadHelp,
		Example: `  redfed serve --config fed.yaml
  openssl rand -hex 16 > ~/.redfed-token && chmod 600 ~/.redfed-token
  redfed serve --listen 0.0.0.0:8080 --token-file ~/.redfed-token
  redfed serve --allow-host dash.internal
  redfed serve --graphite-listen 0.0.0.0:2003
  redfed serve --graphite-listen 0.0.0.0:2003 --graphite-template 'servers.host.host.metric*'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGHUP is taken from the start: its default would end the
			// process, which systemd does not restart, and a reload that
			// comes while it starts is done once it runs.
			reloads, stopReloads := reloadRequests()
			defer stopReloads()
			survivePipes()
			token, err := dashboardToken(cmd, token, tokenFile)
			if err != nil {
				return err
			}
			if err := checkListen(listen, token != ""); err != nil {
				return err
			}
			if cmd.Flags().Changed("allow-host") && len(allowHosts) == 0 {
				return usagef("--allow-host: empty: name a host, or leave the flag out")
			}
			for _, h := range allowHosts {
				if err := dashboard.ValidateHostName(h); err != nil {
					return usagef("--allow-host %q: %v", h, err)
				}
			}
			if seriesReads < 1 {
				return usagef("--series-reads %d: want 1 or more", seriesReads)
			}
			if checkEvery < 0 || checkEvery > 0 && checkEvery < minCheckEvery {
				return usagef("--check-every %v: want 0 (off) or %v or more", checkEvery, minCheckEvery)
			}
			client, cfg, err := newClientConfig(cmd)
			if err != nil {
				return err
			}
			defer client.Close()
			// Closed after the HTTP server and the Graphite listener stop:
			// flushes what they took in.
			recorder := &ingestRecorder{client: client, logger: newLogger(cmd, slog.LevelWarn)}
			defer recorder.close()
			routes, write, err := remoteRoutes(cmd, client, recorder, remoteFl)
			if err != nil {
				return err
			}
			graphiteSrv, stopIngest, err := startIngest(cmd, recorder, ingest)
			if err != nil {
				return err
			}
			defer stopIngest()
			routes["/metrics"] = promhttp.HandlerFor(serveRegistry(client, graphiteSrv, write, readBuildVersion()), promhttp.HandlerOpts{})
			checks := &lastCheck{}
			h, err := dashboard.New(dashboard.Options{Source: dashboard.Fleet{Store: storeOf(client)}, LastCheck: checks.get,
				Token: token, AllowedHosts: allowHosts, MaxSeriesReads: seriesReads, Routes: routes,
				Logger: newLogger(cmd, slog.LevelWarn)})
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			var wg sync.WaitGroup
			defer func() {
				cancel() // before the wait: the check loop ends with ctx
				wg.Wait()
			}()
			wg.Add(1)
			go func() {
				defer wg.Done()
				logger := newLogger(cmd, slog.LevelInfo)
				for {
					select {
					case <-ctx.Done():
						return
					case <-reloads:
						reloadNodes(cmd, client, logger, cfg.Options)
					}
				}
			}()
			if checkEvery > 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					checks.loop(ctx, client, checkEvery)
				}()
			}
			mux := http.NewServeMux()
			handleHealth(mux, client)
			mux.Handle("/", h)
			return serve(ctx, mux, listen, false, func(addr string) {
				fmt.Fprintf(cmd.OutOrStdout(), "dashboard: http://%s/\n", addr)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", defaultListen, "address to listen on")
	f.StringVar(&token, "token", "", "require this token on every request (ps shows it: prefer --token-file or $"+tokenEnv+")")
	f.StringVar(&tokenFile, "token-file", "", "require the token in this file's first line on every request")
	f.StringSliceVar(&allowHosts, "allow-host", nil, "also answer requests that name the dashboard so, besides the loopback names (repeatable)")
	f.IntVar(&seriesReads, "series-reads", dashboard.DefaultMaxSeriesReads, "series reads at once; the others wait their turn")
	f.DurationVar(&checkEvery, "check-every", 5*time.Minute, "interval of the replica check shown on the status page; 0 turns it off")
	remoteFl = addRemoteFlags(f)
	ingest = addIngestFlags(f)
	return cmd
}

// lastCheck keeps the result of the latest periodic check.
type lastCheck struct {
	mu     sync.Mutex
	report metrics.CheckReport
	at     time.Time
}

func (l *lastCheck) get() (metrics.CheckReport, time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.report, l.at, !l.at.IsZero()
}

func (l *lastCheck) loop(ctx context.Context, c *federated.Client, every time.Duration) {
	for {
		report, _ := storeOf(c).Check(ctx, metrics.CheckOptions{})
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.report, l.at = report, time.Now()
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// checkListen refuses an address that is not host:port, or, without a
// token, one that is not loopback: the dashboard shows every metric to
// whoever reaches it.
func checkListen(listen string, token bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usagef("--listen %q: %v", listen, err)
	}
	if ip := net.ParseIP(host); !token && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return usagef("--listen %s is not a loopback address: the dashboard needs a token there (redfed serve --token-file FILE, or $%s)", listen, tokenEnv)
	}
	return nil
}

// serveTimeouts are the limits of serve's http.Server; tests shorten them.
var serveTimeouts = struct {
	// read bounds the reading of a request, its body included. Without
	// it, a client that promised a body and sent none held its connection
	// for ever: Go's server reads what is left of a body before it replies.
	// Remote write sets its own limit for its body.
	read time.Duration
	// write bounds the time from a request's arrival to the end of its
	// reply, so that a client that never reads does not hold the reply's
	// buffers for ever. It is longer than the dashboard's 15 s limit on a
	// request's reads and remote write's minute for its body, and nothing
	// served streams for longer: /metrics is written at once, and remote
	// read sets its own limit once its reply is ready.
	write time.Duration
}{read: 10 * time.Second, write: 2 * time.Minute}

// serve serves h on listen until ctx ends. With fallback, an address in use
// gives way to a free port on the same host.
func serve(ctx context.Context, h http.Handler, listen string, fallback bool, ready func(addr string)) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil && fallback && errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(listen) // checked by checkListen
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return usagef("--listen %s: %v", listen, err)
	}
	// Idle connections are closed after a while, and requests that come
	// or go too slowly are cut off: every one holds a goroutine and its
	// buffers.
	var served inflight
	srv := &http.Server{Handler: served.wrap(h), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute,
		ReadTimeout: serveTimeouts.read, WriteTimeout: serveTimeouts.write}
	ready(ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdown)
	if errors.Is(err, context.DeadlineExceeded) {
		// Requests still under way (a slow or paused server) are cut off:
		// stopping is what was asked. Their connections close, which ends
		// their contexts, and so their reads.
		err = srv.Close()
	}
	served.wait()
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}

// inflight counts the requests being served, so that serve returns only
// once every handler has: none then writes to a log the command has
// finished with, nor reads through a client it has closed.
type inflight struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    sync.Cond // signalled when n falls to 0; L is &mu
}

// wrap counts h's requests; once wait has begun it refuses new ones.
func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if f.closing {
			f.mu.Unlock()
			http.Error(w, "redfed serve: stopping", http.StatusServiceUnavailable)
			return
		}
		f.n++
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			if f.n--; f.n == 0 && f.closing {
				f.idle.Broadcast()
			}
			f.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// wait refuses new requests and waits for those being served.
func (f *inflight) wait() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closing = true
	f.idle.L = &f.mu
	for f.n > 0 {
		f.idle.Wait()
	}
}
