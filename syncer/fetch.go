package syncer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redfed/federated/internal/journal"
)

// Which members of a changed key a pass fetches is decided by counts on the
// peer, never by the timestamps inside the data: writers' clocks differ by
// seconds and step back, and backfills are normal.
//
// After each fetch a link keeps, for the key, checkpoints: for a few
// boundaries below the key's newest score (levelWindow, then levelFactor
// times farther each), how many members the peer held below the boundary.
// The link then had every one of them. Members are only ever added to a
// key (retention drops whole keys), so while the peer still holds exactly
// that many below a boundary, nothing was added below it since, and
// fetching the members from the boundary up gets every member the link
// lacks. The next fetch checks the nearest boundary first, in the same
// script call as the fetch; a key whose count changed there (a point
// stamped seconds before the newest, by a writer whose clock is behind) is
// fetched again from the first farther boundary whose count still holds,
// or whole.
//
// The checks are atomic with the fetch, so a member added between the two
// cannot be missed; a key fetched in pages has each page's start checked
// by its count instead (see fetchPaged). A peer restarted from a snapshot has lost members
// below the boundaries, so the checkpoints read before a restart are
// dropped (see journal.RunLua). A member removed by hand and another added
// below the same boundary leave the count unchanged: that case is
// anti-entropy's.

const (
	// levelWindow is the nearest boundary's distance below the newest
	// score: a key written in time order is fetched from there.
	levelWindow = 2 * time.Second
	// levelFactor is how much farther each next boundary is.
	levelFactor = 4
	// levels is how many boundaries a key keeps: the farthest is
	// levelWindow·levelFactor^(levels-1), about 9 hours, below the newest.
	levels = 8
	// refreshEvery is how often the checkpoints of a key whose changes are
	// echoes are read again, so that the first real change after a long run
	// of echoes (the writers moved to the peer) is fetched from a recent
	// boundary rather than from the last fetch's.
	refreshEvery = 30 * time.Second
)

// checkpoint says that the peer held count members scored below the score
// below, and that the link had all of them.
type checkpoint struct {
	below float64 // a whole number of seconds
	count int64
}

// fetchMode is what the fetch script does with a key.
type fetchMode byte

const (
	// fetchNear fetches from the first boundary whose count holds, or
	// reports a miss; a key is sent with its nearest checkpoint only.
	fetchNear fetchMode = 'c'
	// fetchFar fetches from the first boundary whose count holds, or the
	// whole key. It is sent as a fetchPage of what the call has left of
	// maxFetchMembers, so that a key that grew since the journal's read
	// goes on in pages (see link.fetch).
	fetchFar fetchMode = 'a'
	// fetchRefresh fetches nothing and reads the checkpoints again if the
	// key's cardinality is still the expected one.
	fetchRefresh fetchMode = 'r'
	// fetchPage fetches a page of a key too large for one call, from where
	// fetchFar would (see fetchPaged).
	fetchPage fetchMode = 'p'
	// fetchNext fetches the next page of such a key, from the checkpoint
	// sent whatever the count below it.
	fetchNext fetchMode = 'n'
)

// fetchRequest is one key of a fetch.
type fetchRequest struct {
	key     string
	mode    fetchMode
	want    int64        // the expected cardinality (fetchRefresh), or the page's size (fetchPage)
	recount int          // checkpoints to read again, nearest first
	checks  []checkpoint // nearest first
	size    int64        // the members it may fetch, as far as the link knows
}

// maxFetchMembers bounds the members one fetch call asks for, by the
// requests' sizes, so that a page of keys fetched whole (after a restart
// of the peer, or of a syncer that had no saved marks) is sent in calls
// that each take the peer a fraction of the command timeout: a daily key
// of a point every 10 s holds 8,640 members, and a page of a thousand such
// keys in one call took a peer seconds, timed out, and was asked again
// every pass, never done. A key larger than the bound is fetched in pages
// of that many members (see fetchPaged).
var maxFetchMembers int64 = 100_000

// fetchResult is what the fetch script answered for a key.
type fetchResult struct {
	status  int // see journal.FetchScript
	card    int64
	members []string
	fresh   []checkpoint // the checkpoints read again, nearest first
	next    float64      // where the next page starts, a page (status pageMore) only
	// partial says that a key fetched in pages saw a count change below
	// a page's start: a member added below the pages (a backfill), which
	// the link may lack although card counts it.
	partial bool
	// early is what merging the pages before this one did, a key fetched
	// in pages only.
	early journal.MergeResult
}

// Statuses of a key fetched in pages: a page with members left after it,
// and a key whose pages the local server refused.
const (
	pageMore    = -3
	pageRefused = -4
)

// fetched reports whether the key's members were fetched: from a checkpoint
// or whole.
func (r fetchResult) fetched() bool { return r.status >= 0 }

// fetch runs the fetch script on the peer for every request, in calls of
// at most maxFetchMembers members by the requests' sizes, each atomic for
// its keys; a key larger than that is fetched in pages, merged into the
// local server as from's (see fetchPaged). A peer that started again since
// the link last read its journal may have lost members the requests'
// checkpoints counted: the fetch fails, and the next pass reads the
// journal, sees the new run and reads the checkpoints again.
func (l *link) fetch(ctx context.Context, reqs []fetchRequest, from journal.Origin) ([]fetchResult, error) {
	var results []fetchResult
	for len(reqs) > 0 {
		if reqs[0].size > maxFetchMembers && reqs[0].mode != fetchRefresh {
			r, err := l.fetchPaged(ctx, reqs[0], from)
			if err != nil {
				return nil, err
			}
			results = append(results, r)
			reqs = reqs[1:]
			continue
		}
		n, size := 1, reqs[0].size
		for n < len(reqs) && size+reqs[n].size <= maxFetchMembers {
			size += reqs[n].size
			n++
		}
		part, err := l.fetchCall(ctx, reqs[:n])
		if err != nil {
			return nil, err
		}
		for i, r := range part {
			if r.status == pageMore {
				// Grown past what the call had left since its size was
				// read: the rest in pages.
				if part[i], err = l.pagesFrom(ctx, reqs[i], r, from); err != nil {
					return nil, err
				}
			}
		}
		if results == nil && n == len(reqs) {
			return part, nil // one call, the common case
		}
		results = append(results, part...)
		reqs = reqs[n:]
	}
	return results, nil
}

// fetchCall runs the fetch script on the peer once, for reqs.
func (l *link) fetchCall(ctx context.Context, reqs []fetchRequest) ([]fetchResult, error) {
	part, run, err := l.servers.fetch(ctx, reqs)
	if err == nil && run != l.peerRun {
		err = fmt.Errorf("syncer: server %s started again during the pass", l.peer)
	}
	return part, err
}

// fetchPaged fetches a key larger than maxFetchMembers in pages of about
// that many members, ordered by score, so that no call takes the peer
// longer than a key of that size would (one of 2 million members took a
// peer longer than a second, the command timeout, at every pass, and its
// link never got past it). The first page starts where fetchFar would:
// at the first of the key's checkpoints that still holds, or at the
// start. Each page but the last is merged into the local server at once,
// and the last is the key's result, which the pass merges and marks as
// any other.
//
// A page starts where the last one ended, sent with the count the link
// then had below it, and the peer says the count it holds there: a
// member added below a page already fetched (a backfill) changes it. The
// fetch goes on all the same, never back: such a member came after the
// journal was read, which journals the key again, and the key is then
// fetched again, whole, since a fetch that saw a count change keeps none
// of the checkpoints its last page read (their counts hold members the
// link lacks), nor marks the key with the count its last page read: a
// writer that journals in whole seconds (the Perl module) journals the
// key again at the time it had, and only the count tells the entry.
// Going back to the start instead kept a key that an importer backfilled
// from ever being done, and its link with it. A fetch that fails (a page
// the local server refused for a moment, a timeout) goes on at the next
// pass from the end of the last page merged while no count had changed,
// checked by its count as any checkpoint (see resumePoint). A key whose
// pages the local server refuses for good (a dropped period, another type) gets no
// further page, and the refusal is the result's.
//
// A key fetched whole with others, in one call, is asked for as a page
// of what the call has left of the bound: one that grew since the
// journal said its size goes on in pages the same way (see fetch).
func (l *link) fetchPaged(ctx context.Context, req fetchRequest, from journal.Origin) (fetchResult, error) {
	page := fetchRequest{key: req.key, mode: fetchPage, want: maxFetchMembers, recount: levels, size: maxFetchMembers}
	if m := l.marks[req.key]; m != nil && m.gen == l.peerGen {
		page.checks = m.checks
	} else {
		page.checks = req.checks
	}
	if r := l.resume; r.key == req.key && r.gen == l.peerGen && (len(page.checks) == 0 || r.check.below > page.checks[0].below) {
		// The local server holds the pages merged while it holds the
		// mark written after them: one restored from a snapshot taken
		// before them (a restart, DEBUG RELOAD) lacks them, though its
		// cursor is the link's.
		token, err := l.servers.pageMark(ctx)
		if err != nil {
			return fetchResult{}, fmt.Errorf("%w (key %s, of %d members, by pages)", err, req.key, req.size)
		}
		if token == r.token {
			page.checks = append([]checkpoint{r.check}, page.checks...)
		}
	}
	part, err := l.fetchCall(ctx, []fetchRequest{page})
	if err != nil {
		return fetchResult{}, fmt.Errorf("%w (key %s, of %d members, by pages)", err, req.key, req.size)
	}
	return l.pagesFrom(ctx, req, part[0], from)
}

// pagesFrom goes on with the fetch of req whose first page, fetched
// atomically with the count below its start, is r: each page but the last
// is merged, and the last is the result (see fetchPaged).
func (l *link) pagesFrom(ctx context.Context, req fetchRequest, r fetchResult, from journal.Origin) (_ fetchResult, err error) {
	var early journal.MergeResult
	held := true // no count below a page changed since the first
	// Where a fetch that fails goes on from, at the next pass: the end of
	// the last page merged while no count below a page had changed.
	var (
		merged checkpoint
		token  string // the page mark written after it
	)
	defer func() {
		switch {
		case token != "" && err != nil:
			l.resume = resumePoint{key: req.key, check: merged, token: token, gen: l.peerGen}
		case token != "" || err == nil && l.resume.key == req.key:
			// A page mark of this key's replaced the last one's, or the
			// key is done. (One that failed before a page was merged
			// keeps where it goes on from.)
			l.resume = resumePoint{}
		}
	}()
	// Pages move forward, so a key takes as many calls as it has pages:
	// only one that grows by a page a call never ends. The bound is
	// loose: the size a fetch was asked by says little of the key's (a
	// fetch from the nearest checkpoint may page the whole key, and a key
	// may grow past its size after the journal's read).
	for calls := 1000 + req.size/maxFetchMembers; r.status == pageMore; calls-- {
		if calls == 0 {
			return fetchResult{}, fmt.Errorf("syncer: key %s of %s grew faster than its pages were fetched; left to the next pass", req.key, l.peer)
		}
		res, err := l.servers.merge(ctx, from, []journal.KeyMembers{{Key: req.key, Members: r.members}})
		foldMerge(&early, res)
		if temporary := temporaryFailures(res); err == nil && len(temporary) > 0 {
			err = errors.Join(temporary...)
		}
		if err != nil {
			return fetchResult{}, fmt.Errorf("syncer: merging a page of key %s into %s: %w", req.key, l.local, err)
		}
		if len(res.Dropped) > 0 || len(res.Failed) > 0 {
			return fetchResult{status: pageRefused, card: r.card, early: early}, nil
		}
		if held {
			// Where a fetch that fails goes on from, once the local server
			// holds the mark: one that refuses it (full) keeps the last.
			if t := newEpoch(); l.servers.markPage(ctx, t) == nil {
				merged, token = checkpoint{below: r.next, count: r.card}, t
			}
		}
		next := fetchRequest{key: req.key, mode: fetchNext, want: maxFetchMembers, recount: levels, size: maxFetchMembers,
			checks: []checkpoint{{below: r.next, count: r.card}}}
		part, err := l.fetchCall(ctx, []fetchRequest{next})
		if err != nil {
			return fetchResult{}, fmt.Errorf("%w (key %s, of %d members, by pages)", err, req.key, req.size)
		}
		if r = part[0]; r.card >= 0 && r.card-int64(len(r.members)) != next.checks[0].count {
			held = false
		}
	}
	if !held {
		r.fresh, r.partial = nil, true
	}
	r.early = early
	return r, nil
}

// resumePoint is where the fetch of a key in pages that failed goes on
// from: the local server merged every member the peer held below
// check.below, check.count of them, under the peer's run gen, and then
// took token as its page mark (journal.PageSuffix), which it holds while
// it holds them. A page the local server refused for a moment (a full
// server, a busy script) or a timeout then costs the pages since it, not
// the key's pages from the start: a key whose pages took longer than the
// gaps between refusals was never done, and its link held for as long as
// they came. A link writes one page mark, so it keeps one resume point: a
// page of another key merged since overwrites both, and the first key is
// then fetched from its checkpoints, or whole, as it is by a syncer that
// starts again (the point is kept in memory only).
type resumePoint struct {
	key   string // "" for none
	check checkpoint
	token string
	gen   uint64
}

// foldMerge adds what a merge did to into.
func foldMerge(into *journal.MergeResult, r journal.MergeResult) {
	into.Added += r.Added
	into.Dropped = append(into.Dropped, r.Dropped...)
	for k, err := range r.Failed {
		if into.Failed == nil {
			into.Failed = make(map[string]error)
		}
		into.Failed[k] = err
	}
	for k, members := range r.LeftOut {
		if into.LeftOut == nil {
			into.LeftOut = make(map[string][]string)
		}
		into.LeftOut[k] = append(into.LeftOut[k], members...)
	}
}

// fetchReader reads the fetch script's flat reply key by key, from v[at]
// on, and the members from joined[joinedAt:] by the lengths the reply gives.
// The members and the checkpoints of all keys are slices of members and
// checks, one array each for the whole reply; the members share the
// reply's string of members.
type fetchReader struct {
	v        []any
	at       int
	joined   string
	joinedAt int
	members  []string
	checks   []checkpoint
}

// next reads the next key's part of the reply.
func (rd *fetchReader) next() (fetchResult, error) {
	v := rd.v
	num := func() (int64, error) {
		if rd.at >= len(v) {
			return 0, fmt.Errorf("the reply ends after %d values", len(v))
		}
		n, ok := v[rd.at].(int64)
		if !ok {
			return 0, fmt.Errorf("unexpected value %v at %d", v[rd.at], rd.at)
		}
		rd.at++
		return n, nil
	}
	status, err := num()
	if err != nil {
		return fetchResult{}, err
	}
	card, err := num()
	if err != nil {
		return fetchResult{}, err
	}
	m, err := num()
	if err != nil {
		return fetchResult{}, err
	}
	if m < 0 || m > int64(len(v)-rd.at) {
		return fetchResult{}, fmt.Errorf("%d members at %d of a reply of %d values", m, rd.at, len(v))
	}
	first := len(rd.members)
	for j, x := range v[rd.at : rd.at+int(m)] {
		size, ok := x.(int64)
		if !ok || size < 0 || size > int64(len(rd.joined)-rd.joinedAt) {
			return fetchResult{}, fmt.Errorf("unexpected member length %v at %d, with %d bytes of members left", x, rd.at+j, len(rd.joined)-rd.joinedAt)
		}
		rd.members = append(rd.members, rd.joined[rd.joinedAt:rd.joinedAt+int(size)])
		rd.joinedAt += int(size)
	}
	rd.at += int(m)
	r := fetchResult{status: int(status), card: card, members: rd.members[first:len(rd.members):len(rd.members)]}
	c, err := num()
	if err != nil {
		return fetchResult{}, err
	}
	if r.status == pageMore {
		// No counts, and where the next page starts.
		if c != 0 || rd.at >= len(v) {
			return fetchResult{}, fmt.Errorf("a page with %d counts at %d of a reply of %d values", c, rd.at, len(v))
		}
		score, _ := v[rd.at].(string)
		if r.next, err = strconv.ParseFloat(score, 64); err != nil {
			return fetchResult{}, fmt.Errorf("unexpected start of the next page %v at %d", v[rd.at], rd.at)
		}
		rd.at++
		return r, nil
	}
	if c == 0 {
		return r, nil
	}
	if c < 0 || c >= int64(len(v)-rd.at) {
		return fetchResult{}, fmt.Errorf("%d counts at %d of a reply of %d values", c, rd.at, len(v))
	}
	newest, err := num()
	if err != nil {
		return fetchResult{}, err
	}
	first = len(rd.checks)
	for k := range int(c) {
		count, err := num()
		if err != nil {
			return fetchResult{}, err
		}
		rd.checks = append(rd.checks, checkpoint{below: float64(newest) - levelSpan(k), count: count})
	}
	r.fresh = rd.checks[first:len(rd.checks):len(rd.checks)]
	return r, nil
}

// nearRequest is the first try at fetching a key the link has a mark of,
// which the journal says holds card members: from its nearest checkpoint,
// reading again the farther ones that are missing or have fallen behind
// the peer's clock, now (its Unix seconds), by more than the next level's
// span: a farther checkpoint is only for a key whose nearest one no
// longer holds, and an old one still holds, it only makes that fetch
// larger. A key fetched whole gets its nearest checkpoint only, and the
// farther ones at its next fetch: a key that never changes again (a
// backlog pulled after a restart) costs no more than its members.
func (m *keyMark) nearRequest(key string, card int64, now float64) fetchRequest {
	if len(m.checks) == 0 {
		return fetchRequest{key: key, mode: fetchFar, recount: 1, size: card}
	}
	recount := 1
	for k := 1; k < levels; k++ {
		if k >= len(m.checks) || m.checks[k].below < now-levelSpan(k+1) {
			recount = k + 1
		}
	}
	return fetchRequest{key: key, mode: fetchNear, recount: recount, checks: m.checks[:1], size: max(card-m.checks[0].count, 0)}
}

// farRequest is the second try at fetching a key of card members whose
// nearest checkpoint no longer holds: from a farther one, or whole.
func (m *keyMark) farRequest(key string, card int64) fetchRequest {
	var checks []checkpoint
	if len(m.checks) > 1 {
		checks = m.checks[1:]
	}
	return fetchRequest{key: key, mode: fetchFar, recount: levels, checks: checks, size: card}
}

// levelSpan is the distance of the k-th boundary below the newest score, in
// seconds.
func levelSpan(k int) float64 {
	return levelWindow.Seconds() * math.Pow(levelFactor, float64(k))
}

// apply takes the checkpoints a fetch or a refresh read again: the nearest
// ones are replaced and the farther ones kept, which still hold since
// nothing was added below the boundary the fetch was made from. A key that
// was fetched whole, or from a farther checkpoint, has them all read again.
// A key that got none (empty, of another type, or its newest score out of
// the script's range) has none left, and is fetched whole next time.
func (m *keyMark) apply(r fetchResult) {
	if len(r.fresh) >= len(m.checks) || r.status == 0 || len(r.fresh) == 0 {
		if cap(m.checks) < len(r.fresh) {
			// Room for every level at once: a key's next fetches read
			// the farther ones.
			m.checks = make([]checkpoint, 0, max(levels, len(r.fresh)))
		}
		m.checks = append(m.checks[:0], r.fresh...)
		return
	}
	copy(m.checks, r.fresh)
}
