package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
	"github.com/redis/go-redis/v9"
)

// Store is the metrics store over a federated client: its Recorder writes
// points, and its calls read, list, drop and check them. It holds no
// goroutine of its own (a Recorder does, until its Close), and is safe for
// concurrent use. It works through the client, which stays the caller's to
// close, after the store's Recorders.
type Store struct {
	c      *federated.Client
	period metric.Period
	keys   journal.Keys
}

// New returns the store of the metrics of a client's federation, with the
// period, journal and retention of the client's MetricsOptions.
func New(c *federated.Client) (*Store, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: metrics.New: no client", federated.ErrInvalidConfig)
	}
	p, err := metric.ParsePeriod(c.Options().Metrics.Period)
	if err != nil {
		return nil, fmt.Errorf("%w: options.metrics.period: %v", federated.ErrInvalidConfig, err)
	}
	return &Store{c: c, period: p, keys: journal.KeysOf(c.Options().Metrics.Journal)}, nil
}

// Client returns the client the store works through.
func (s *Store) Client() *federated.Client { return s.c }

// Point is one sample of a series.
type Point struct {
	Time  time.Time
	Value float64
}

// Series names one time series: a metric of a host.
type Series struct {
	Host   string
	Metric string
}

// serverClient returns the go-redis client of a server that is up, or an
// error that matches federated.ErrServerDown and names it.
func (st *Store) serverClient(addr string) (*redis.Client, error) {
	if st.c.IsServerDown(addr) {
		node, _, _ := st.c.ReplicaGroup(addr)
		return nil, &federated.ServerError{Node: node, Server: addr, Err: federated.ErrServerDown}
	}
	return st.c.ServerClient(addr)
}

// withTimeout bounds ctx by the command timeout, unless it has an earlier
// deadline. The store's reads and scans run under it: one that runs out of
// time fails, without marking its server down for the writers, which
// happens only on the client's own command timeouts.
func (st *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := st.c.Options().CommandTimeout
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
