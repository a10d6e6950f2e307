package redfedprom

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
)

// ClientCollector is a Prometheus collector of a federated client: each
// server's health (up, current, times marked down, takeovers) from the
// client's Status, and the latency and errors of the commands and
// pipelines each server ran, as histograms and counters, from a hook on
// every server's go-redis client, the ones made when servers come back up
// included.
type ClientCollector struct {
	c        *federated.Client
	duration *prometheus.HistogramVec
	errs     *prometheus.CounterVec

	// seen holds the servers whose calls made series, string to
	// struct{}{}: a server is stored after its series (see observe) and
	// deleted before them (see forget), so that the series of a server
	// that left are never kept unseen, whatever ran when.
	seen sync.Map
}

var (
	serverLabels = []string{"node", "server"}

	descServerUp        = prometheus.NewDesc("redfed_client_server_up", "1 when the server is not marked down.", serverLabels, nil)
	descServerCurrent   = prometheus.NewDesc("redfed_client_server_current", "1 when the node's commands go to this server.", serverLabels, nil)
	descServerDownSince = prometheus.NewDesc("redfed_client_server_down_since_timestamp_seconds", "When the server was marked down, for a server marked down.", serverLabels, nil)
	descServerDowns     = prometheus.NewDesc("redfed_client_server_downs_total", "Times the server was marked down, since it joined the federation.", serverLabels, nil)
	descServerTakeovers = prometheus.NewDesc("redfed_client_server_takeovers_total", "Times the node's commands moved to this server from another (a failover).", serverLabels, nil)
)

// NewClientCollector returns the collector of a client and adds its hook
// to every server's go-redis client, for as long as the client lives:
// make one per client, and register it once.
//
//	reg.MustRegister(redfedprom.NewClientCollector(client))
//
// The collectors of two clients have the same metrics, which one registry
// refuses twice: register each under a label of its own.
//
//	prometheus.WrapRegistererWith(prometheus.Labels{"client": "writer"}, reg).MustRegister(redfedprom.NewClientCollector(writer))
func NewClientCollector(c *federated.Client) *ClientCollector {
	cc := &ClientCollector{
		c: c,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "redfed_client_call_duration_seconds",
			Help:    "Time of a command, or of a pipeline, on one server, answer or error; the client's health checks (a PING a second) and go-redis's connection handshakes included.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50µs to 1.6s
		}, []string{"server", "kind"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "redfed_client_call_errors_total",
			Help: "Commands and pipelines that failed on a server: error is \"reply\" for an error Redis answered, else \"connection\" or \"timeout\" (of the server or of the pool); calls cancelled by their caller or cut off by Close are not counted.",
		}, []string{"server", "kind", "error"}),
	}
	c.AddServerHook(func(addr string) redis.Hook { return hook{cc: cc, server: addr} })
	return cc
}

// Describe sends the descriptions of the collector's metrics.
func (cc *ClientCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descServerUp, descServerCurrent, descServerDownSince, descServerDowns, descServerTakeovers} {
		ch <- d
	}
	cc.duration.Describe(ch)
	cc.errs.Describe(ch)
}

// Collect sends the collector's metrics. The latency and errors of a
// server that left the federation (RemoveNode, ReplaceNode, a reload) go
// with it, so that a fleet whose addresses change does not export every
// address it ever had; after Close, it sends none.
func (cc *ClientCollector) Collect(ch chan<- prometheus.Metric) {
	select {
	case <-cc.c.Done():
		// A closed client serves nothing: its servers' last state, "up"
		// for most, would say otherwise.
		return
	default:
	}
	status := cc.c.Status()
	cc.forget(status)
	for _, st := range status {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, st.Node, st.Address)
		}
		gauge(descServerUp, boolValue(!st.Down))
		gauge(descServerCurrent, boolValue(st.Current))
		if st.Down {
			gauge(descServerDownSince, float64(st.DownSince.UnixNano())/1e9)
		}
		ch <- prometheus.MustNewConstMetric(descServerDowns, prometheus.CounterValue, float64(st.Downs), st.Node, st.Address)
		ch <- prometheus.MustNewConstMetric(descServerTakeovers, prometheus.CounterValue, float64(st.Takeovers), st.Node, st.Address)
	}
	cc.duration.Collect(ch)
	cc.errs.Collect(ch)
}

// forget deletes the series of the servers that are no longer in the
// federation: also of one that joined and left between two Collects, and
// those that a call under way as its server left made after the last.
func (cc *ClientCollector) forget(status []federated.ServerStatus) {
	now := make(map[string]bool, len(status))
	for _, st := range status {
		now[st.Address] = true
	}
	cc.seen.Range(func(k, _ any) bool {
		if addr := k.(string); !now[addr] {
			cc.seen.Delete(addr)
			cc.duration.DeletePartialMatch(prometheus.Labels{"server": addr})
			cc.errs.DeletePartialMatch(prometheus.Labels{"server": addr})
		}
		return true
	})
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// hook times what one server runs.
type hook struct {
	cc     *ClientCollector
	server string
}

func (h hook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(ctx, "command", start, err)
		return err
	}
}

func (h hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe(ctx, "pipeline", start, err)
		return err
	}
}

// observe counts a call that ended, but one its caller gave up on
// (cancelled) or that the client's Close cut off: neither says anything
// of the server, as the client's own health tracking holds too.
func (h hook) observe(ctx context.Context, kind string, start time.Time, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, redis.ErrClosed) ||
		err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return
	}
	h.cc.duration.WithLabelValues(h.server, kind).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		h.cc.errs.WithLabelValues(h.server, kind, errorClass(err)).Inc()
	}
	// After the series: a forget that ran meanwhile deleted the server
	// before its series, and the next finds it here.
	if _, ok := h.cc.seen.Load(h.server); !ok {
		h.cc.seen.Store(h.server, struct{}{})
	}
}

// errorClass sorts an error: Redis's answer, a timeout (waiting for the
// server, or for a connection of the pool), or the connection.
func errorClass(err error) string {
	var reply redis.Error
	var ne net.Error
	switch {
	case errors.As(err, &reply):
		return "reply"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "connection"
}
