package dashboard

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// journalReads returns how many times each server has read a journal for
// a listing: a ZRANGEBYSCORE, or a ZSCAN of a big journal. The pages of
// these tests read no series.
func journalReads(t *testing.T, f *fixture) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	for _, s := range f.servers {
		rc, err := f.client.ServerClient(s.Addr())
		require.NoError(t, err)
		info, err := rc.Info(context.Background(), "commandstats").Result()
		require.NoError(t, err)
		stats := redistest.ParseCommandStats(info)
		out[s.Addr()] = stats["zrangebyscore"].Completed() + stats["zscan"].Completed()
	}
	return out
}

// Pages and listings that come at once read the journals once: each index
// page read every journal once for its hosts and once again for each host
// it showed (4 times a page here, and 13 with many hosts), and 10 pages
// opened at once 40 times, which at 300 hosts of 40 metrics queued enough
// scans on the servers to run past the command timeout.
func TestPagesAtOnceReadTheJournalsOnce(t *testing.T) {
	f := newFixture(t, 3)
	srv := serve(t, Options{Source: f.fleet()})
	before := journalReads(t, f)
	var wg sync.WaitGroup
	for _, u := range []string{"/", "/", "/", "/", "/", "/?host=web1.sfo", "/?metric=cpu.user", "/api/hosts", "/api/metrics?host=db1.sfo", "/"} {
		wg.Go(func() {
			res, body := get(t, srv, u)
			assert.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", u, body)
		})
	}
	wg.Wait()
	after := journalReads(t, f)
	for addr, n := range after {
		assert.Equal(t, int64(1), n-before[addr], "journal reads of %s", addr)
	}
}

// slowSource is a Source whose listings take a while, and fail or panic
// as the test says; it counts them.
type slowSource struct {
	fakeSource
	delay time.Duration
	panic bool
	calls atomic.Int64
}

func (s *slowSource) Series(ctx context.Context, since time.Time) ([]metrics.Series, error) {
	s.calls.Add(1)
	time.Sleep(s.delay)
	if s.panic {
		panic("listing broke")
	}
	return s.fakeSource.Series(ctx, since)
}

// Requests that wait for a listing that takes longer than a failed one is
// kept take what it found: each read one of its own after the other, and
// 6 requests at once took 1.2 s to 7.2 s as a server answered in 1.2 s
// that it failed.
func TestRequestsWaitingForASlowFailedListingShareIt(t *testing.T) {
	src := &slowSource{fakeSource: fakeSource{err: errors.New("federated: node redis_2, server 10.0.0.2:6379: i/o timeout")},
		delay: listingRetry + 200*time.Millisecond}
	srv := serve(t, Options{Source: src})
	var wg sync.WaitGroup
	began := time.Now()
	for range 6 {
		wg.Go(func() {
			res, body := get(t, srv, "/api/hosts")
			assert.Equal(t, http.StatusBadGateway, res.StatusCode, body)
		})
		time.Sleep(10 * time.Millisecond) // the first begins the read
	}
	wg.Wait()
	assert.Equal(t, int64(1), src.calls.Load(), "listings read")
	assert.Less(t, time.Since(began), 2*src.delay, "the requests took the one read")
}

// A listing that panics fails the requests that wait for it, and the next
// ones read again: they waited for it until their deadline.
func TestListingThatPanickedIsReadAgain(t *testing.T) {
	src := &slowSource{fakeSource: fakeSource{hosts: []string{"web1"}, metrics: []string{"cpu"}}, panic: true}
	now := time.Now()
	srv := serve(t, Options{Source: src, Now: func() time.Time { return now }})
	res, body := get(t, srv, "/api/hosts")
	assert.Equal(t, http.StatusBadGateway, res.StatusCode, body)
	assert.Contains(t, body, "listing broke")

	src.panic = false
	now = now.Add(listingRetry)
	var hosts hostsReply
	getJSON(t, srv, "/api/hosts", http.StatusOK, &hosts)
	assert.Equal(t, []string{"web1"}, hosts.Hosts)
	assert.Equal(t, int64(2), src.calls.Load(), "listings read")
}
