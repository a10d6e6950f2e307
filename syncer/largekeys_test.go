package syncer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

// A page of keys fetched whole (a syncer with no marks, a peer that
// started again) is fetched in calls of a bounded number of members, not
// in one call of the whole page: a thousand daily keys of a point every
// 10 s took a peer seconds in one call, past the command timeout, and the
// call was sent again every pass, never done. A key larger than the
// bound goes in pages of the bound.
func TestWholeKeysAreFetchedInBoundedCalls(t *testing.T) {
	const keys, each, bound, large = 40, 300, 1000, 1500
	c, a, b := boundedPair(t, bound)
	ctx := context.Background()
	now := time.Now()
	var updates []journal.KeyMembers
	for k := range keys {
		key, err := metricKey(now, fmt.Sprintf("h%d", k), "m")
		require.NoError(t, err)
		u := journal.KeyMembers{Key: key}
		n := each
		if k == 0 {
			n = large
		}
		for i := range n {
			u.Members = append(u.Members, fmt.Sprintf("%d.%06d:%04d", now.Unix()-1000, i, i))
		}
		updates = append(updates, u)
	}
	_, err := merge(ctx, c, a, updates)
	require.NoError(t, err)
	sizes := &fetchMembers{}
	c.AddHook(sizes.hook())

	startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	all := converged(t, []string{a, b}, 10*time.Second)
	assert.Len(t, all, (keys-1)*each+large)
	sizes.mu.Lock()
	defer sizes.mu.Unlock()
	assert.GreaterOrEqual(t, sizes.calls, (keys-1)*each/bound+2, "calls")
	assert.Equal(t, bound, sizes.most, "the largest call: a page of the large key")
}

// boundedPair starts a group of two servers A and B whose syncers fetch
// at most bound members a call, with the fetch script loaded on A: its
// first call is the hooks' to see, not a NOSCRIPT.
func boundedPair(t *testing.T, bound int64) (c *federated.Client, a, b string) {
	t.Helper()
	syncer.SetMaxFetchMembers(t, bound)
	servers := redistest.StartN(t, 2)
	a, b = servers[0].Addr(), servers[1].Addr()
	c = newClient(t, groupConfig(servers))
	require.NoError(t, journal.FetchScript.Load(context.Background(), direct(t, a)).Err())
	return c, a, b
}

// A key larger than the bound is fetched in pages (a page takes all the
// members of one score where they alone fill it), each merged as it
// comes, and the key's checkpoints are read with its last page: its next
// change is fetched from the nearest one, not whole again. A member added
// below the pages fetched so far (a backfill) while they are fetched is
// copied too: the key is fetched again, whole. A key of 2 million members
// took a peer longer than the command timeout in one call, and its link
// never got past it.
func TestLargeKeyIsFetchedInPages(t *testing.T) {
	const bound, size, tieFrom, tie = 1000, 5500, 2000, 1500
	c, a, b := boundedPair(t, bound)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	key, err := metricKey(now, "big", "m")
	require.NoError(t, err)
	base := now.Add(-2 * time.Hour).Unix()
	u := journal.KeyMembers{Key: key}
	for i := range size {
		sec := base + int64(i)
		if i >= tieFrom && i < tieFrom+tie {
			sec = base + tieFrom // more than a page of one second
		}
		u.Members = append(u.Members, fmt.Sprintf("%d:%d", sec, i))
	}
	_, err = merge(ctx, c, a, []journal.KeyMembers{u})
	require.NoError(t, err)

	// A backfill below the first page, once that page is fetched, and
	// below every boundary of the key's checkpoints (9 hours below its
	// newest): the fetch goes on, keeps none of the checkpoints, whose
	// counts hold the backfill, and the key, journalled again, is fetched
	// again whole.
	pages := &fetchMembers{after: func(call int) {
		if call == 1 {
			_, err := merge(ctx, c, a, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:backfill", base-12*3600)}}})
			assert.NoError(t, err)
		}
	}}
	c.AddHook(pages.hook())

	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	all := converged(t, []string{a, b}, 10*time.Second)
	assert.Len(t, all, size+1)
	// The backfill came with the first page of the second fetch: the
	// pass goes on to its last page, and the next ends.
	done := time.Now()
	require.Eventually(t, func() bool { return linkStats(t, s, b, a).SyncedTo.After(done) }, 10*time.Second, 10*time.Millisecond)
	pages.mu.Lock()
	assert.Equal(t, tie, pages.most, "the largest call: the members of one second")
	// 5 pages: 2 of 1,000, the 1,500 of one second, 2 of 1,000.
	assert.GreaterOrEqual(t, pages.calls, 2*5, "calls: the pages, and all again after the backfill")
	pages.calls, pages.most = 0, 0
	pages.mu.Unlock()

	// The next point is fetched from the nearest checkpoint.
	u = journal.KeyMembers{Key: key, Members: []string{fmt.Sprintf("%d:next", base+size)}}
	_, err = merge(ctx, c, a, []journal.KeyMembers{u})
	require.NoError(t, err)
	all = converged(t, []string{a, b}, 10*time.Second)
	assert.Len(t, all, size+2)
	pages.mu.Lock()
	defer pages.mu.Unlock()
	assert.Positive(t, pages.calls)
	assert.LessOrEqual(t, pages.most, 5, "the next change: a few members from the nearest checkpoint")
}

// fetchMembers counts the fetch script's calls and the most members one
// of them returned, and calls after, if set, with each call's number.
type fetchMembers struct {
	after       func(call int)
	mu          sync.Mutex
	calls, most int
}

// hook returns the hook that does it.
func (h *fetchMembers) hook() redis.Hook {
	return scriptHook{script: journal.FetchScript, after: func(cmd redis.Cmder, err error) error {
		c, ok := cmd.(*redis.Cmd)
		if !ok {
			return err
		}
		if v, ok := c.Val().([]any); ok && len(v) > 1 {
			h.mu.Lock()
			h.calls++
			h.most = max(h.most, syncer.FetchedMembers(v))
			call := h.calls
			h.mu.Unlock()
			if h.after != nil {
				h.after(call)
			}
		}
		return err
	}}
}

// A large key that an importer keeps backfilling, a point at a random
// old time every few milliseconds, does not hold its link: the other keys
// are copied meanwhile, and once the backfill stops, every member of it.
// Paging went back to the start at each member added below its pages,
// the key's fetch failed when it could not catch up, and with it every
// pass of the link.
func TestBackfilledLargeKeyDoesNotHoldItsLink(t *testing.T) {
	const bound, size = 1000, 20000
	c, a, b := boundedPair(t, bound)
	ctx := context.Background()
	now := time.Now()
	other, err := metricKey(now, "small", "m")
	require.NoError(t, err)
	base := now.Add(-6 * time.Hour).Unix()
	key := writeLargeKey(t, c, a, now, base, size)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			m := fmt.Sprintf("%d.5:bf%d", base+rand.Int64N(size), i)
			_, err := merge(ctx, c, a, []journal.KeyMembers{{Key: key, Members: []string{m}}})
			assert.NoError(t, err)
			time.Sleep(2 * time.Millisecond)
		}
	})
	defer func() { stop.Store(true); wg.Wait() }()
	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	_, err = merge(ctx, c, a, []journal.KeyMembers{{Key: other, Members: []string{fmt.Sprintf("%d:1", now.Unix())}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return direct(t, b).ZCard(ctx, other).Val() == 1 }, 5*time.Second, 10*time.Millisecond,
		"another key of the link, while the large one is backfilled: %+v", linkStats(t, s, b, a))
	stop.Store(true)
	wg.Wait()
	converged(t, []string{a, b}, 10*time.Second)
	assert.Zero(t, linkStats(t, s, b, a).Errors, "the passes went on")
}

// A writer that journals in whole seconds (the Perl module) backfills a
// large key while it is fetched in pages, and journals it again at the
// same second: the overlap read finds the entry with the time it had,
// and the count it has now. The fetch that saw the count change below its
// pages marked the key with that count, as if it held the backfill, and
// the entry was passed over for good.
func TestBackfillJournalledAtTheSameSecondDuringPages(t *testing.T) {
	const bound, size = 1000, 5500
	c, a, b := boundedPair(t, bound)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	base := now.Add(-2 * time.Hour).Unix()
	key := writeLargeKey(t, c, a, now, base, size)
	sec := float64(time.Now().Unix())
	require.NoError(t, direct(t, a).ZAdd(ctx, "journal", redis.Z{Score: sec, Member: key}).Err())
	backfill := fmt.Sprintf("%d:backfill", base-12*3600)
	pages := &fetchMembers{after: func(call int) {
		if call == 1 {
			assert.NoError(t, direct(t, a).ZAdd(ctx, key, redis.Z{Score: float64(base - 12*3600), Member: backfill}).Err())
			assert.NoError(t, direct(t, a).ZAdd(ctx, "journal", redis.Z{Score: sec, Member: key}).Err())
		}
	}}
	c.AddHook(pages.hook())
	startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true, OverlapInterval: 100 * time.Millisecond})
	require.Eventually(t, func() bool { return direct(t, b).ZScore(ctx, key, backfill).Err() == nil }, 10*time.Second, 10*time.Millisecond,
		"the backfill copied")
}

// A large key fetched once, then given more than a page of new points
// and one older than its nearest checkpoint: the fetch from that
// checkpoint misses, and the whole key is fetched in pages. The calls it
// could take were counted by the new points alone, and the fetch failed
// at every pass, its link held.
func TestLargeKeyFetchedWholeFromANearRequest(t *testing.T) {
	const bound, size = 1000, 20000
	c, a, b := boundedPair(t, bound)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	base := now.Add(-6 * time.Hour).Unix()
	key := writeLargeKey(t, c, a, now, base, size)
	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	converged(t, []string{a, b}, 10*time.Second)

	u := journal.KeyMembers{Key: key}
	for i := range bound + 1 {
		u.Members = append(u.Members, fmt.Sprintf("%d:n%d", base+size+int64(i), i))
	}
	u.Members = append(u.Members, fmt.Sprintf("%d.5:old", base+10))
	_, err := merge(ctx, c, a, []journal.KeyMembers{u})
	require.NoError(t, err)
	converged(t, []string{a, b}, 10*time.Second)
	assert.Zero(t, linkStats(t, s, b, a).Errors)
}

// writeLargeKey writes size points a second apart from base, Unix
// seconds, to the key of host "big" and metric "m" of now's period on
// server addr, and returns the key.
func writeLargeKey(t *testing.T, c *federated.Client, addr string, now time.Time, base int64, size int) string {
	t.Helper()
	key, err := metricKey(now, "big", "m")
	require.NoError(t, err)
	u := journal.KeyMembers{Key: key}
	for i := range size {
		u.Members = append(u.Members, fmt.Sprintf("%d:%d", base+int64(i), i))
	}
	_, err = merge(context.Background(), c, addr, []journal.KeyMembers{u})
	require.NoError(t, err)
	return key
}

// A key that grows far past the bound between the journal's read and its
// fetch, with others in one call, comes in pages all the same: the call
// asks for it as a page of what the call has left of the bound. The size
// the journal gave decided, and a call of thousands of members went over
// a bound of 200.
func TestKeyThatGrewSinceTheJournalsReadComesInPages(t *testing.T) {
	const bound, grown = 200, 3000
	c, a, b := boundedPair(t, bound)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	base := now.Add(-2 * time.Hour).Unix()
	key := writeLargeKey(t, c, a, now, base, 10)
	small, err := metricKey(now, "small", "m")
	require.NoError(t, err)
	_, err = merge(ctx, c, a, []journal.KeyMembers{{Key: small, Members: []string{fmt.Sprintf("%d:1", now.Unix())}}})
	require.NoError(t, err)
	require.NoError(t, journal.ChangesScript.Load(ctx, direct(t, a)).Err())
	var once sync.Once
	c.AddHook(scriptHook{script: journal.ChangesScript, after: func(_ redis.Cmder, err error) error {
		// The journal is read: the key grows before its fetch.
		once.Do(func() {
			u := journal.KeyMembers{Key: key}
			for i := range grown {
				u.Members = append(u.Members, fmt.Sprintf("%d:g%d", base+10+int64(i), i))
			}
			_, err := merge(ctx, c, a, []journal.KeyMembers{u})
			assert.NoError(t, err)
		})
		return err
	}})
	pages := &fetchMembers{}
	c.AddHook(pages.hook())
	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	converged(t, []string{a, b}, 10*time.Second)
	assert.Zero(t, linkStats(t, s, b, a).Errors, "%s", linkStats(t, s, b, a).LastError)
	pages.mu.Lock()
	defer pages.mu.Unlock()
	assert.LessOrEqual(t, pages.most, bound, "the largest call")
}

// A page that the local server refuses for a moment (full, busy, loading)
// fails the pass, and the next goes on from the last page merged, not
// from the key's first: a key whose pages took longer than the gaps
// between such refusals was never done, and its link held meanwhile. A
// member added below the pages merged (a backfill) before the next pass
// is copied all the same: the count below the last page tells it.
func TestRefusedPageGoesOnFromTheLastPageMerged(t *testing.T) {
	const bound, size = 500, 10000
	for _, tc := range []struct {
		name      string
		backfill  bool
		refusedAt []int // the fetch calls after which the local server is full, until it refused a merge
		calls     int   // the fetch calls in all, 0 for any
	}{
		{"backfill=false", false, []int{5}, size/bound + 1},
		{"backfill=true", true, []int{5}, 0},
		// The pass that goes on is refused at its first page too: the
		// next still goes on from where the first stopped.
		{"refused again at once", false, []int{5, 6}, size/bound + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, a, b := boundedPair(t, bound)
			ctx := context.Background()
			now := time.Now().Truncate(time.Second)
			base := now.Add(-5 * time.Hour).Unix()
			key := writeLargeKey(t, c, a, now, base, size)
			rb := direct(t, b)
			require.NoError(t, rb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
			pages := &fetchMembers{after: func(call int) {
				if slices.Contains(tc.refusedAt, call) {
					assert.NoError(t, rb.ConfigSet(ctx, "maxmemory", "1").Err())
				}
			}}
			c.AddHook(pages.hook())
			var refused atomic.Int32
			c.AddHook(scriptHook{script: journal.WriteScript, after: func(_ redis.Cmder, err error) error {
				if err != nil && strings.Contains(err.Error(), "OOM") {
					refused.Add(1)
					assert.NoError(t, rb.ConfigSet(ctx, "maxmemory", "0").Err())
					if tc.backfill {
						_, err := merge(ctx, c, a, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:back", base+1)}}})
						assert.NoError(t, err)
					}
				}
				return err
			}})
			s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
			converged(t, []string{a, b}, 10*time.Second)
			require.EqualValues(t, len(tc.refusedAt), refused.Load(), "the merges refused")
			assert.EqualValues(t, len(tc.refusedAt), linkStats(t, s, b, a).Errors)
			if tc.calls > 0 {
				pages.mu.Lock()
				defer pages.mu.Unlock()
				assert.Equal(t, tc.calls, pages.calls, "the fetch calls: every page once, each refused one twice")
			}
		})
	}
}

// A fetch that failed after pages were merged does not go on from them
// once the local server came back from a snapshot taken before them (a
// restart from its RDB file): its cursor is the link's, but it lacks the
// pages, and the mark written after them tells it.
func TestRefusedPageAfterTheLocalServerWentBackToASnapshot(t *testing.T) {
	const bound, size, refusedAt = 500, 10000, 5
	syncer.SetMaxFetchMembers(t, bound)
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	rb := direct(t, b)
	require.NoError(t, rb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true, PollInterval: 20 * time.Millisecond})
	writePoints(t, c, a, "small", 10)
	converged(t, []string{a, b}, 10*time.Second)
	require.Eventually(t, func() bool { return !linkStats(t, s, b, a).SyncedTo.IsZero() }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, rb.Save(ctx).Err()) // the snapshot: b's cursor as the link last saved it
	var armed, refused atomic.Int32
	c.AddHook((&fetchMembers{after: func(call int) {
		if armed.Load() == 1 && call == refusedAt {
			armed.Store(2)
			assert.NoError(t, rb.ConfigSet(ctx, "maxmemory", "1").Err())
		}
	}}).hook())
	c.AddHook(scriptHook{script: journal.WriteScript, after: func(_ redis.Cmder, err error) error {
		if err != nil && strings.Contains(err.Error(), "OOM") && refused.Add(1) == 1 {
			assert.NoError(t, servers[1].Restart()) // back from the snapshot, without the pages
		}
		return err
	}})
	armed.Store(1)
	now := time.Now().Truncate(time.Second)
	writeLargeKey(t, c, a, now, now.Add(-5*time.Hour).Unix(), size)
	converged(t, []string{a, b}, 15*time.Second)
	assert.EqualValues(t, 1, refused.Load())
}
