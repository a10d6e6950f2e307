package dashboard

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/redfed/federated/internal/metric"
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
	at     time.Time           // when its read began
	hosts  []string            // sorted
	byHost map[string][]string // each host's metrics, sorted
	err    error
}

// listings keeps the last listing, and makes the read of the next one for
// every request that waits for it.
type listings struct {
	mu      sync.Mutex
	last    *listing
	reading chan struct{} // closed when the read under way ends, nil when none is
}

// listing returns a listing of the journals no older than listingFresh
// (listingRetry for one that failed): the last one, the one being read,
// or one it reads itself.
func (h *handler) listing(ctx context.Context) (*listing, error) {
	l := &h.listings
	l.mu.Lock()
	for {
		if last := l.last; last != nil && h.now().Sub(last.at) < last.freshFor() {
			l.mu.Unlock()
			return last, nil
		}
		if l.reading == nil {
			break
		}
		done := l.reading
		l.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		l.mu.Lock()
	}
	done := make(chan struct{})
	l.reading = done
	l.mu.Unlock()

	// The read serves the others waiting for it: the request that makes it
	// going away does not end it.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	at := h.now()
	series, err := h.opts.Source.Series(rctx, at.Add(-HostsWindow))
	next := &listing{at: at, byHost: make(map[string][]string), err: err}
	for _, s := range series { // sorted by host, then metric
		if len(next.hosts) == 0 || next.hosts[len(next.hosts)-1] != s.Host {
			next.hosts = append(next.hosts, s.Host)
		}
		next.byHost[s.Host] = append(next.byHost[s.Host], s.Metric)
	}

	l.mu.Lock()
	l.last, l.reading = next, nil
	l.mu.Unlock()
	close(done)
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
