package dashboard

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
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
