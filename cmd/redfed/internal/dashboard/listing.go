package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/metrics"
)

// The hosts and their metrics, as the journals list them. A listing reads
// every journal of the federation, a ZSCAN of each once it holds more than
// 10,000 keys: 20–70 ms of a server a call at 300 hosts of 40 metrics. An
// index page listed the hosts and then the metrics of a dozen of them, each
// a read of its own, and a few pages opened at once queued enough of them
// on the servers to run past the command timeout: reads failed, and the
// servers' health checks behind them too, marking healthy servers down.
// The dashboard now reads the journals once for every request that needs
// them within listingFresh, and once at a time.

const (
	// listingFresh is how long a listing of the journals serves: a host
	// or a metric new since shows on the pages that many seconds later at
	// most.
	listingFresh = 10 * time.Second
	// listingRetry is how long a listing that failed, in part or whole,
	// serves: a server back up is listed again soon, and requests that
	// come at once still make one read.
	listingRetry = time.Second
)

// listing is one read of the journals: the metrics of each host, and what
// failed.
type listing struct {
	ended  time.Time           // when its read ended
	hosts  []string            // sorted
	byHost map[string][]string // each host's metrics, sorted
	err    error
}

// listings keeps the last listing, and the read of the next one under way.
type listings struct {
	mu      sync.Mutex
	last    *listing
	reading *listingRead // nil when none is
}

// listingRead is a read of the journals that requests wait for.
type listingRead struct {
	done   chan struct{} // closed when it ended
	result *listing      // set before done is closed
}

// listing returns a listing of the journals: the last one while it is
// fresh (listingFresh since its read ended, listingRetry for one that
// failed), else the one being read, or one it reads itself. A request that
// waited for a read takes what it found, however long it took: each taking
// a read of its own, one after another, is what a slow server made of
// requests that came at once.
func (h *handler) listing(ctx context.Context) (ls *listing, err error) {
	l := &h.listings
	l.mu.Lock()
	if last := l.last; last != nil && h.now().Sub(last.ended) < last.freshFor() {
		l.mu.Unlock()
		return last, nil
	}
	if read := l.reading; read != nil {
		l.mu.Unlock()
		select {
		case <-read.done:
			return read.result, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	read := &listingRead{done: make(chan struct{}), result: &listing{}}
	l.reading = read
	l.mu.Unlock()
	defer func() {
		// Also when the Source panicked: the requests waiting for this
		// read, and the next, must not wait on it for good.
		if p := recover(); p != nil {
			h.opts.Logger.Error("dashboard: listing the series panicked", "panic", p, "stack", string(debug.Stack()))
			read.result.err = fmt.Errorf("dashboard: listing the series: panic: %v", p)
			ls, err = read.result, nil
		}
		read.result.ended = h.now()
		l.mu.Lock()
		l.last, l.reading = read.result, nil
		l.mu.Unlock()
		close(read.done)
	}()

	// The read serves the requests waiting for it too: the one that makes
	// it going away does not end it, but its deadline does.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(requestTimeout)
	}
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	series, serr := h.opts.Source.Series(rctx, h.now().Add(-HostsWindow))
	slices.SortFunc(series, func(a, b metrics.Series) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), strings.Compare(a.Metric, b.Metric))
	})
	next := read.result
	next.byHost, next.err = make(map[string][]string), serr
	for _, s := range series {
		if len(next.hosts) == 0 || next.hosts[len(next.hosts)-1] != s.Host {
			next.hosts = append(next.hosts, s.Host)
		}
		next.byHost[s.Host] = append(next.byHost[s.Host], s.Metric)
	}
	return next, nil
}

// freshFor is how long the listing serves.
func (ls *listing) freshFor() time.Duration {
	if ls.err != nil {
		return listingRetry
	}
	return listingFresh
}

// hosts returns the hosts with a metric written to in HostsWindow, sorted,
// and what failed: the hosts of the servers that answered.
func (h *handler) hosts(ctx context.Context) ([]string, error) {
	ls, err := h.listing(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(ls.hosts), ls.err
}

// metricsOf returns the metrics of a host written to in HostsWindow,
// sorted, and what failed; a bad host name fails with ErrBadHost, as the
// store's Metrics does.
func (h *handler) metricsOf(ctx context.Context, host string) ([]string, error) {
	if err := metric.ValidateHost(host); err != nil {
		return nil, err
	}
	ls, err := h.listing(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(ls.byHost[host]), ls.err
}
