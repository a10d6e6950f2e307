package syncer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
)

func TestLinkCursorFollowsWhatIsMerged(t *testing.T) {
	l, fs, clock := testLink(t, Options{Overlap: 5 * time.Second})
	now := clock.now()
	var keys []string
	for i := range 3 {
		at := now.Add(time.Duration(i-3) * 10 * time.Second)
		keys = append(keys, key(t, at, fmt.Sprintf("m%d", i)))
		write(fs.peer, keys[i], at, at, "1")
	}
	pass(t, l)
	for _, k := range keys {
		assert.Len(t, fs.local.data[k], 1, "%s merged", k)
	}
	want := unix(now.Add(-10 * time.Second))
	assert.Equal(t, want, l.cursor, "the cursor is the newest entry merged")
	assert.Equal(t, strconv.FormatFloat(want, 'f', -1, 64), fs.local.cursors[testPeer], "and saved in the local server")
	assert.Equal(t, want, l.snapshot().Cursor)
	assert.Equal(t, int64(3), l.snapshot().Keys)

	// A restarted link resumes from the saved cursor: it fetches again the
	// entry at the cursor and the overlap before it (marks are not kept),
	// nothing older.
	l2 := newLinkVia(l.s, testLocal, testPeer, fs, clock.now)
	fs.fetched = nil
	pass(t, l2)
	assert.Equal(t, want, l2.cursor)
	assert.Equal(t, keys[2:], fs.fetched)
}

func TestLinkCursorStaysBehindThePeersClock(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	ahead := clock.now().Add(30 * time.Second) // a writer's clock ahead, journalling with its own time
	k := key(t, ahead, "ahead")
	write(fs.peer, k, ahead, ahead, "1")
	pass(t, l)
	assert.Len(t, fs.local.data[k], 1, "the entry ahead is merged")
	assert.Equal(t, fs.peerNow(), l.cursor, "got the cursor %v, want the peer's clock", l.cursor)

	// Until the peer's clock passes it, the entry is read again each pass,
	// but not fetched again; the cursor moves with the peer's clock.
	for range 3 {
		clock.advance(time.Second)
		fs.fetched = nil
		pass(t, l)
		assert.Empty(t, fs.fetched, "an entry merged before is not fetched again")
		assert.Equal(t, fs.peerNow(), l.cursor)
	}

	// A change journalled meanwhile by the peer's clock is after the cursor.
	clock.advance(time.Second)
	k2 := key(t, clock.now(), "now")
	write(fs.peer, k2, clock.now(), clock.now(), "1")
	clock.advance(100 * time.Millisecond)
	pass(t, l)
	assert.Len(t, fs.local.data[k2], 1, "a change behind an entry ahead is merged at once")
	assert.Less(t, l.cursor, unix(ahead))
}

func TestLinkFailedPassKeepsTheCursor(t *testing.T) {
	errDown := errors.New("server down")
	for _, method := range []string{"changes", "fetch", "merge", "saveCursor"} {
		t.Run(method, func(t *testing.T) {
			l, fs, clock := testLink(t, Options{Batch: 2})
			now := clock.now()
			keys := writeSeconds(t, fs.peer, now, 5)
			fs.fail = func(m string, call int) error {
				if m == method && call == 2 { // the second page
					return errDown
				}
				return nil
			}
			_, err := l.pass(context.Background())
			require.ErrorIs(t, err, errDown)
			first := unix(now.Add(-4 * time.Second)) // the first page's newest entry
			assert.Equal(t, first, l.cursor, "got the cursor %v, want the first page's %v", l.cursor, first)
			assert.Equal(t, strconv.FormatFloat(first, 'f', -1, 64), fs.local.cursors[testPeer])
			for _, k := range keys[2:4] {
				if method != "saveCursor" { // that one failed after the merge
					assert.Empty(t, fs.local.data[k], "%s is not merged", k)
				}
			}

			fs.fail = nil
			clock.advance(time.Second)
			for more := true; more; {
				more, err = l.pass(context.Background())
				require.NoError(t, err)
			}
			for _, k := range keys {
				assert.Len(t, fs.local.data[k], 1, "%s merged once the servers answer", k)
			}
			assert.Equal(t, unix(now.Add(-time.Second)), l.cursor)
		})
	}
}

// A link fetches the next page from the peer while the local server
// merges the last: here the first page's merge waits until the second page
// is fetched, which it could not do were the two steps taken in turn.
func TestLinkFetchesTheNextPageWhileMerging(t *testing.T) {
	l, fs, clock := testLink(t, Options{Batch: 2})
	now := clock.now()
	keys := writeSeconds(t, fs.peer, now, 6)
	secondFetched := make(chan struct{})
	fs.fail = func(m string, call int) error {
		switch {
		case m == "fetch" && call == 2:
			close(secondFetched)
		case m == "merge" && call == 1:
			select {
			case <-secondFetched:
			case <-time.After(10 * time.Second):
				return errors.New("the second page was not fetched while the first was merged")
			}
		}
		return nil
	}
	pass(t, l)
	for _, k := range keys {
		assert.Len(t, fs.local.data[k], 1, "%s merged", k)
	}
	assert.Equal(t, unix(now.Add(-time.Second)), l.cursor)
	assert.Equal(t, keys, fs.fetched, "each key fetched once, in turn")
}

// More keys journalled at one time than a page holds (one write's keys)
// are read again from that time, while the page before is still being
// merged: the entries of that page are not fetched twice.
func TestLinkPageOfOneTimeIsFetchedOnce(t *testing.T) {
	l, fs, clock := testLink(t, Options{Batch: 2})
	at := clock.now().Add(-time.Second)
	var keys []string
	for i := range 7 {
		keys = append(keys, key(t, at, fmt.Sprintf("m%d", i)))
		write(fs.peer, keys[i], at, at, "1")
	}
	pass(t, l)
	for _, k := range keys {
		assert.Len(t, fs.local.data[k], 1, "%s merged", k)
	}
	assert.ElementsMatch(t, keys, fs.fetched, "each key fetched once")
	assert.Equal(t, unix(at), l.cursor)
}

// A link keeps its last settled page to read the next one into: the page
// it keeps holds no key of the pages before, and a page grown large (a
// read of many entries of one time) is not kept at all.
func TestLinkKeepsOnlyAnEmptyPageOfUsualSize(t *testing.T) {
	l, fs, clock := testLink(t, Options{Batch: 2})
	writeSeconds(t, fs.peer, clock.now(), 6)
	pass(t, l)
	require.NotNil(t, l.spare, "a page of usual size is kept")
	p := l.spare
	assert.Empty(t, p.entries)
	assert.Empty(t, p.tail)
	for _, s := range [][]change{p.entries[:cap(p.entries)], p.sift.handled[:cap(p.sift.handled)]} {
		for _, e := range s {
			assert.Empty(t, e.Key, "a kept page holds no key")
		}
	}
	for _, m := range p.sift.marks[:cap(p.sift.marks)] {
		assert.Nil(t, m, "a kept page holds no mark")
	}
	for _, r := range p.sift.requests[:cap(p.sift.requests)] {
		assert.Empty(t, r.key, "a kept page holds no request")
	}

	at := clock.now()
	clock.advance(time.Second)
	for i := range 40 {
		write(fs.peer, key(t, at, fmt.Sprintf("one%d", i)), at, at, "1")
	}
	pass(t, l)
	assert.Len(t, fs.fetched, 46, "every key fetched once")
	if l.spare != nil {
		assert.LessOrEqual(t, cap(l.spare.entries), 4*l.s.opts.Batch, "a page grown large is not kept")
	}
}

func TestLinkTemporaryRefusalFailsThePass(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	k := key(t, clock.now(), "m")
	write(fs.peer, k, clock.now(), clock.now().Add(-time.Second), "1")
	refused := &refusingServers{fakeServers: fs, key: k}
	l.servers = refused
	_, err := l.pass(context.Background())
	require.ErrorIs(t, err, federated.ErrTemporary)
	assert.Zero(t, l.cursor, "the cursor does not pass a refused key")

	refused.key = ""
	pass(t, l)
	assert.Len(t, fs.local.data[k], 1, "the refused key is merged when the server takes it")
	assert.Equal(t, unix(clock.now().Add(-time.Second)), l.cursor)
}

// refusingServers refuses the merge of key as a full server does.
type refusingServers struct {
	*fakeServers
	key string
}

func (r *refusingServers) merge(ctx context.Context, from journal.Origin, updates []journal.KeyMembers) (journal.MergeResult, error) {
	if r.key == "" {
		return r.fakeServers.merge(ctx, from, updates)
	}
	return journal.MergeResult{Failed: map[string]error{r.key: fmt.Errorf("server %s: %w", testLocal, federated.ErrTemporary)}}, nil
}

func TestLinkLocalServerBackEmptyIsPulledInFull(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	k := key(t, clock.now(), "m")
	write(fs.peer, k, clock.now(), clock.now().Add(-time.Second), "1")
	pass(t, l)
	require.Len(t, fs.local.data[k], 1)

	fs.local = newFakeServer() // restarted empty
	clock.advance(time.Second)
	pass(t, l)
	assert.Len(t, fs.local.data[k], 1, "pulled again in full")
	assert.Equal(t, int64(1), l.snapshot().Resets)
	assert.Equal(t, unix(clock.now().Add(-2*time.Second)), l.cursor)
}

func TestLinkOverlapReadsTheLastWindowAgain(t *testing.T) {
	l, fs, clock := testLink(t, Options{Overlap: 5 * time.Second, OverlapInterval: 5 * time.Second})
	t0 := clock.now()
	a := key(t, t0, "a")
	write(fs.peer, a, t0.Add(-time.Second), t0.Add(-time.Second), "1")
	pass(t, l) // reads the overlap too: the first since the link started
	require.Len(t, fs.local.data[a], 1)
	cursor := l.cursor

	// A writer with its own clock, behind the cursor: one key within the
	// overlap, one before it; and a member added to a without moving its
	// journal entry (whole-second client time, as the Perl module does).
	clock.advance(time.Second)
	within, before := key(t, t0, "within"), key(t, t0, "before")
	write(fs.peer, within, t0.Add(-2*time.Second), t0.Add(-2*time.Second), "1")
	write(fs.peer, before, t0.Add(-7*time.Second), t0.Add(-7*time.Second), "1")
	fs.peer.add(a, unix(t0.Add(-time.Second)), "2")

	pass(t, l)
	assert.Empty(t, fs.local.data[within], "not read again before OverlapInterval")
	assert.Len(t, fs.local.data[a], 1)
	assert.Equal(t, cursor, l.cursor)

	clock.advance(4 * time.Second) // OverlapInterval since the last read of the overlap began
	fs.fetched = nil
	pass(t, l)
	assert.Len(t, fs.local.data[within], 1, "an entry within the overlap is read again")
	assert.Len(t, fs.local.data[a], 2, "a key whose cardinality changed is fetched again")
	assert.Empty(t, fs.local.data[before], "an entry before the overlap is anti-entropy's")
	assert.ElementsMatch(t, []string{a, within}, fs.fetched, "the entries merged before are not fetched again")
	assert.Equal(t, cursor, l.cursor, "reading the overlap does not move the cursor")
}

// A merge that does not move the cursor (here, of the overlap) still
// changes what the local server stores: restored from a snapshot taken
// before it, the server lacks what the merge added although it holds the
// same cursor, and the link's marks say the keys are merged. The link
// tells it by the save's number and pulls the peer again.
func TestLinkLocalServerRestoredFromSnapshotIsPulledAgain(t *testing.T) {
	l, fs, clock := testLink(t, Options{Overlap: 5 * time.Second, OverlapInterval: 5 * time.Second})
	t0 := clock.now()
	a := key(t, t0, "a")
	write(fs.peer, a, t0.Add(-time.Second), t0.Add(-time.Second), "1")
	pass(t, l)
	snap := fs.local.snapshot()
	cursor := l.cursor

	// A writer behind the cursor, within the overlap: its entry is merged
	// by the next read of the overlap, which leaves the cursor.
	clock.advance(time.Second)
	within := key(t, t0, "within")
	write(fs.peer, within, t0.Add(-2*time.Second), t0.Add(-2*time.Second), "1")
	clock.advance(4 * time.Second)
	pass(t, l)
	require.Len(t, fs.local.data[within], 1)
	require.Equal(t, cursor, l.cursor)

	fs.local = snap // restored from the snapshot taken before that merge
	clock.advance(time.Second)
	pass(t, l)
	assert.Equal(t, int64(1), l.snapshot().Resets)
	assert.Len(t, fs.local.data[within], 1, "pulled again")
	assert.Len(t, fs.local.data[a], 1)
}

// A link that found its server without what it merged pulls the peer
// from its first change until it saves again: a first save refused (the
// token renewed meanwhile, by the link of another peer that found the
// loss too) does not send it back to the cursor the server holds.
func TestLinkResetHoldsUntilItsFirstSave(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	t0 := clock.now()
	for i := range 3 {
		write(fs.peer, key(t, t0, fmt.Sprintf("k%d", i)), t0.Add(time.Duration(i-3)*time.Second), t0.Add(time.Duration(i-3)*time.Second), "1")
	}
	pass(t, l)
	snap := fs.local.snapshot()
	clock.advance(time.Second)
	write(fs.peer, key(t, t0, "later"), clock.now(), clock.now(), "1")
	pass(t, l)

	fs.local = snap // went back to before "later"
	fs.fail = func(method string, _ int) error {
		if method == "saveCursor" {
			fs.mu.Lock()
			fs.local.token = "renewed by another link"
			fs.mu.Unlock()
		}
		return nil
	}
	clock.advance(time.Second)
	_, err := l.pass(context.Background())
	require.ErrorIs(t, err, errCursorMoved)
	require.Equal(t, int64(1), l.snapshot().Resets)
	fs.fail = nil
	require.NoError(t, l.loadCursor(context.Background()))
	assert.Zero(t, l.cursor, "still pulling from the first change")
	pass(t, l)
	assert.Len(t, fs.local.data[key(t, t0, "later")], 1)
}

// A merge whose cursor save failed (the local server died between the
// two) is not marked: restored from a snapshot that holds the cursor of
// before, without the merge, the local server gets the entries again.
func TestLinkMergeWhoseSaveFailedIsReadAgain(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	t0 := clock.now()
	write(fs.peer, key(t, t0, "a"), t0.Add(-time.Second), t0.Add(-time.Second), "1")
	pass(t, l)
	snap := fs.local.snapshot()

	clock.advance(time.Second)
	b := key(t, t0, "b")
	write(fs.peer, b, clock.now(), clock.now(), "1")
	errDown := errors.New("server down")
	fs.fail = func(method string, _ int) error {
		if method == "saveCursor" {
			return errDown
		}
		return nil
	}
	_, err := l.pass(context.Background())
	require.ErrorIs(t, err, errDown)
	require.Len(t, fs.local.data[b], 1, "merged before the save failed")

	fs.fail = nil
	fs.local = snap // restored, with the cursor it had, without b
	clock.advance(time.Second)
	pass(t, l)
	assert.Len(t, fs.local.data[b], 1, "b is fetched again")
}

func TestLinkSkipsEchoesButNotAForeignAddition(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	fs.local.token = "e1"
	now := clock.now()
	k := key(t, now, "m")
	// The local server's own change, merged into the peer and marked an
	// echo for it, with the key's cardinality then.
	fs.local.add(k, unix(now.Add(-2*time.Second)), "1")
	fs.local.add(k, unix(now.Add(-time.Second)), "2")
	fs.peer.add(k, unix(now.Add(-2*time.Second)), "1")
	fs.peer.add(k, unix(now.Add(-time.Second)), "2")
	fs.peer.journal[k] = unix(now.Add(-time.Second))
	fs.peer.origin[k] = testLocal + "@e1#2"

	pass(t, l)
	st := l.snapshot()
	assert.Equal(t, int64(1), st.Echoes)
	assert.Zero(t, st.Keys, "an echo is not fetched")
	assert.Empty(t, fs.fetched)
	assert.Equal(t, unix(now.Add(-time.Second)), l.cursor, "the cursor passes an echo")

	// A writer that does not keep the marks adds a member on the peer: the
	// key's cardinality is no longer the marked one.
	clock.advance(time.Second)
	write(fs.peer, k, now, clock.now().Add(-500*time.Millisecond), "3")
	pass(t, l)
	st = l.snapshot()
	assert.Equal(t, int64(1), st.Echoes, "the foreign addition is no echo")
	assert.Equal(t, int64(1), st.Keys)
	assert.Equal(t, []string{k}, fs.fetched)
	assert.Len(t, fs.local.data[k], 3, "the foreign member is merged")
	assert.Equal(t, int64(1), st.Added)
}

func TestLinkSkipsKeysOfDroppedPeriods(t *testing.T) {
	day := 24 * time.Hour
	l, fs, clock := testLink(t, Options{})
	now := clock.now()
	old, current := key(t, now.Add(-day), "m"), key(t, now, "m")
	write(fs.peer, old, now.Add(-day), now.Add(-2*time.Second), "1")
	write(fs.peer, current, now, now.Add(-time.Second), "1")
	fs.local.add(old, unix(now.Add(-day)), "0") // a drop the local server missed
	fs.peer.horizon = journal.PeriodOf(current)

	pass(t, l)
	assert.Equal(t, journal.PeriodOf(current), fs.local.horizon, "the local horizon is raised to the peer's")
	assert.NotContains(t, fs.local.data, old, "and the keys of the dropped periods removed")
	assert.Len(t, fs.local.data[current], 1)
	assert.Equal(t, int64(1), l.snapshot().Skipped)
	assert.Equal(t, unix(now.Add(-time.Second)), l.cursor, "the cursor passes a skipped key")

	// The horizons are read again once every horizonEvery, by the link's
	// clock.
	next := now.Add(day)
	fs.peer.horizon = journal.PeriodOf(key(t, next, "m"))
	fs.local.add(current, unix(now), "2")
	clock.advance(horizonEvery / 2)
	pass(t, l)
	assert.Contains(t, fs.local.data, current, "the horizon read half a horizonEvery ago holds")
	clock.advance(horizonEvery / 2)
	pass(t, l)
	assert.NotContains(t, fs.local.data, current, "then it is read again")
	assert.Equal(t, fs.peer.horizon, fs.local.horizon)
}

func TestLinkLagAndSyncedToFollowTheClock(t *testing.T) {
	l, fs, clock := testLink(t, Options{Overlap: 5 * time.Second, OverlapInterval: 5 * time.Second})
	started := clock.now()
	clock.advance(3 * time.Second)
	st := l.snapshot()
	assert.Equal(t, 3*time.Second, st.Lag, "before the first pass, the time since the link started")
	assert.Zero(t, st.SyncedTo)

	// A change the peer journalled 2s before the pass merges it.
	k := key(t, clock.now(), "m")
	write(fs.peer, k, clock.now(), clock.now().Add(-2*time.Second), "1")
	first := clock.now()
	pass(t, l)
	st = l.snapshot()
	assert.Zero(t, st.Lag)
	assert.Equal(t, first, st.SyncedTo, "the pass and the first read of the overlap began then")
	assert.Equal(t, 2*time.Second, st.LagP50, "the batch was applied 2s after the peer journalled it")
	assert.Equal(t, uint64(1), st.Delays.Count)
	assert.Equal(t, 2*time.Second, st.Delays.Sum)
	for i, bound := range DelayBounds {
		want := uint64(0)
		if bound >= 2*time.Second {
			want = 1
		}
		assert.Equal(t, want, st.Delays.Buckets[i], "bucket ≤ %v", bound)
	}

	clock.advance(2 * time.Second)
	assert.Equal(t, 2*time.Second, l.snapshot().Lag)

	// The peer does not answer: the lag grows, SyncedTo stays.
	fs.fail = func(m string, _ int) error {
		if m == "changes" {
			return errors.New("peer down")
		}
		return nil
	}
	for range 4 {
		clock.advance(time.Second)
		_, err := l.pass(context.Background())
		require.Error(t, err)
	}
	st = l.snapshot()
	assert.Equal(t, 6*time.Second, st.Lag)
	assert.Equal(t, first, st.SyncedTo)

	fs.fail = nil
	clock.advance(time.Second)
	healed := clock.now()
	pass(t, l) // a pass, and a read of the overlap: OverlapInterval since the last
	st = l.snapshot()
	assert.Zero(t, st.Lag)
	assert.Equal(t, healed, st.SyncedTo)
	assert.True(t, st.SyncedTo.After(started))
}

// A peer restored from a snapshot has lost a late member below a key's
// nearest boundary, and takes another there: its count below the boundary
// is the one the link read. The link sees the peer's new run and fetches
// the key whole.
func TestLinkPeerRestoredFromSnapshotIsFetchedWhole(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	t0 := clock.now()
	k := key(t, t0, "k")
	for i := range 11 { // the newest 10 s ago: the nearest boundary 12 s ago
		at := t0.Add(time.Duration(i-20) * time.Second)
		write(fs.peer, k, at, at, strconv.Itoa(i))
	}
	fs.peer.run = "first"
	pass(t, l)
	snap := fs.peer.snapshot()

	clock.advance(time.Second)
	write(fs.peer, k, t0.Add(-14500*time.Millisecond), clock.now(), "lost")
	pass(t, l)
	require.Len(t, fs.local.data[k], 12)

	fs.peer = snap // back from the snapshot, without "lost"
	fs.peer.run = "second"
	clock.advance(time.Second)
	write(fs.peer, k, t0.Add(-13500*time.Millisecond), clock.now(), "late")
	pass(t, l)
	assert.Len(t, fs.local.data[k], 13, "the late member is copied")
}

// A peer that restarts between the link's read of its journal and the
// fetch fails the pass: the checkpoints the requests carry were read
// before. The next pass reads them again.
func TestLinkPeerRestartedDuringAPassFailsIt(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	t0 := clock.now()
	k := key(t, t0, "k")
	write(fs.peer, k, t0.Add(-time.Second), t0.Add(-time.Second), "1")
	fs.peer.run = "first"
	fs.fail = func(method string, _ int) error {
		if method == "fetch" {
			fs.mu.Lock()
			fs.peer.run = "second"
			fs.mu.Unlock()
		}
		return nil
	}
	_, err := l.pass(context.Background())
	require.ErrorContains(t, err, "started again")
	assert.Empty(t, fs.local.data[k], "nothing merged from that fetch")
	fs.fail = nil
	clock.advance(time.Second)
	pass(t, l)
	assert.Len(t, fs.local.data[k], 1)
}

// A page's keys are slices of one string, the reply's: a mark, which
// outlives the page, keeps a copy of its key, so that it keeps no page's
// string alive.
func TestMarksKeepNoPageAlive(t *testing.T) {
	l, _, _ := testLink(t, Options{})
	page := strings.Repeat("2026-12-06:host:m", 3)
	var s sifted
	for i := range 3 {
		k := page[i*17 : (i+1)*17]
		s.handled = append(s.handled, change{journalEntry: journalEntry{Key: k, Time: 1}, card: 1})
		s.marks = append(s.marks, nil)
	}
	l.mark(s, nil, 0)
	require.Len(t, l.marks, 1, "three entries of one key")
	first := uintptr(unsafe.Pointer(unsafe.StringData(page)))
	for k := range l.marks {
		at := uintptr(unsafe.Pointer(unsafe.StringData(k)))
		assert.False(t, at >= first && at < first+uintptr(len(page)), "the mark of %s holds the page's string", k)
	}
}

// A syncer host whose clock is behind the peer's reads a delay of 0, not a
// negative one that would bring the histogram's sum down.
func TestLinkDelayOfAClockBehindIsZero(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	fs.peerSkew = 5 * time.Second // the peer's clock ahead
	write(fs.peer, key(t, clock.now(), "m"), clock.now(), clock.now().Add(fs.peerSkew), "1")
	pass(t, l)
	st := l.snapshot()
	require.Equal(t, uint64(1), st.Delays.Count)
	assert.GreaterOrEqual(t, st.Delays.Sum, time.Duration(0))
	assert.GreaterOrEqual(t, st.LagP50, time.Duration(0))
}
