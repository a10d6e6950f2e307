package syncer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
)

// maxEntriesPerPass bounds a pass, so that a long backlog is worked off in
// steps that each save the cursor.
const maxEntriesPerPass = 20000

// overlapPages is how many pages of the overlap a pass reads at most.
const overlapPages = 4

// overlapSaveStep is how far the cursor moves past the start of the
// overlap's last read stored in the local server before the link stores a
// newer one. An older one is safe: a syncer that starts again reads more of
// the overlap. And an idle link writes nothing.
const overlapSaveStep = 10 * time.Second

// overlapRead is the state of the link's reading of the overlap again: when
// the last complete read began, by this host's clock and by the peer's
// (anchor; the next read starts at that less the overlap); and, while a
// read is under way, where its next page starts, where it ends, and when
// it began, by both clocks.
type overlapRead struct {
	at          time.Time
	anchor      float64
	reading     bool
	next        float64
	until       float64
	began       time.Time
	beganAnchor float64
}

// lagSamples is how many batch lags a link keeps for its percentiles.
const lagSamples = 1024

// markTTL is how long a key's mark is kept after its last change: longer
// than any key changes less often than it, which then gets fetched whole
// again.
const markTTL = time.Hour

// keyMark is what a link knows of a key: the peer's journal time of the
// last change it handled (merged, skipped or an echo) and the key's
// cardinality on the peer then, so that reading the entry again does
// nothing unless a member was added since without moving the journal (a
// writer that journals with whole-second client time, as the Perl module
// does); the checkpoints of the key on the peer (see fetch.go); and when
// they were last read.
type keyMark struct {
	journaled float64
	card      int64
	checks    []checkpoint
	gen       uint64 // the link's peerGen when the checkpoints were read
	checkedAt time.Time
	touched   time.Time
}

// link pulls one peer's changes into one local server.
type link struct {
	s           *Syncer
	local, peer string
	servers     linkServers      // the peer and the local server
	now         func() time.Time // this host's clock

	// Owned by the link's loop.
	cursor float64 // peer journal time merged up to
	// complete says that every entry of the cursor's own time is handled,
	// so that the next pass reads after it rather than reading them all
	// again. An entry journalled later at that very time (a step back of
	// the peer's clock) is the overlap read's to catch.
	complete bool
	epoch    string              // the local server's epoch the cursor belongs to
	origin   string              // the local server's origin token (see storedCursor)
	saved    string              // the cursor as stored in the local server, "" for none
	seq      uint64              // the number of the link's last save stored with it, 0 for none
	seqRaw   string              // seq as the server stores it (see storedCursor)
	marks    map[string]*keyMark // by key
	pulls    int64               // pulls made: every 1,000th prunes the marks
	spare    *page               // a settled page, for the next to reuse
	overlap  overlapRead
	// resume is where the fetch of the last key in pages that failed
	// goes on from (see fetchPaged).
	resume resumePoint
	// resumeOverlap is the peer's time when the last complete read of the
	// overlap began, as the local server stores it: a link's first read
	// starts from there.
	resumeOverlap float64
	peerTime      float64 // the peer's clock at the pass's first read of its journal
	// peerRun is the peer's run_id at the last read of its journal, and
	// peerGen counts its changes: checkpoints read under an earlier one
	// are dropped (see journal.RunLua).
	peerRun string
	peerGen uint64
	// localRun is the local server's run when the cursor was last loaded,
	// "" where it may not be read.
	localRun string
	// The copy of the marks in the local server (see marks.go): whether
	// the link took it in yet, whether it no longer reads nor saves it,
	// whether the marks changed since the last save, when that was, and
	// the buffer the last save encoded into.
	marksLoaded  bool
	marksOff     bool
	marksChanged bool
	marksSavedAt time.Time
	marksBuf     []byte
	// The horizons: the local one as last read (at horizonAt), a raise
	// that did not complete, and when an unusable peer horizon was last
	// logged.
	localHorizon string
	horizonAt    time.Time
	raising      string
	warnedAt     time.Time
	// contendedAt is when a cursor another syncer saved was last logged.
	contendedAt time.Time
	// unanswered is the cursor of the link's last save if it failed with
	// no answer (a timeout): the server may have made it all the same.
	unanswered storedCursor
	// fromStart says that the link was reset and has not saved since: the
	// cursor stays 0 whatever the server holds.
	fromStart bool

	mu    sync.Mutex // guards the fields below
	stats PeerStats
	// reports counts the merges refused and reported by passes that went
	// on, so that the loop knows whether a pass met no error at all.
	reports int64
	lags    []time.Duration // ring of recent batch lags
	next    int
	// started is when the link was made, or last found its local server
	// without what it merged (reset); passSynced and overlapSynced are
	// what synced recorded since (see PeerStats.SyncedTo).
	started, passSynced, overlapSynced time.Time
}

func newLink(s *Syncer, local, peer string) *link {
	cs := &clientServers{run: s.c, local: local, peer: peer, keys: s.keys, period: s.period}
	return newLinkVia(s, local, peer, cs, time.Now)
}

// newLinkVia makes a link that reaches its servers through servers and reads
// the time from now.
func newLinkVia(s *Syncer, local, peer string, servers linkServers, now func() time.Time) *link {
	return &link{s: s, local: local, peer: peer, servers: servers, now: now, marks: make(map[string]*keyMark),
		stats: PeerStats{Local: local, Peer: peer}, started: now()}
}

// loop makes passes until ctx ends, pausing when a pass found nothing more.
func (l *link) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	logged := time.Time{}
	moved := 0 // passes in a row whose cursor save found it moved
	for {
		select {
		case <-ctx.Done():
			l.saveMarksOnStop(ctx)
			return
		case <-timer.C:
		}
		l.mu.Lock()
		reportsBefore := l.reports
		l.mu.Unlock()
		more, err := l.pass(ctx)
		if err == nil && l.marksDue() {
			l.saveMarks(ctx)
		}
		if errors.Is(err, errCursorMoved) {
			// Not a failure: the next pass sees why, at once. Over and
			// again, something else refuses the saves: it is one.
			if moved++; moved <= 3 {
				more, err = true, nil
			}
		} else if err == nil {
			moved = 0
		}
		l.mu.Lock()
		l.stats.Passes++
		switch {
		case err != nil && ctx.Err() == nil:
			l.stats.Errors++
			l.stats.LastError, l.stats.LastErrorAt = err.Error(), l.now()
		case err == nil && l.reports == reportsBefore:
			l.stats.LastSuccess = l.now()
		}
		l.mu.Unlock()
		if err != nil && ctx.Err() == nil && l.now().Sub(logged) > 10*time.Second {
			logged = l.now()
			l.s.opts.Logger.Warn("syncer: pass failed", "local", l.local, "peer", l.peer, "err", err)
		}
		wait := l.s.opts.PollInterval
		if more && err == nil {
			wait = 0
		}
		timer.Reset(wait)
	}
}

// pass merges the peer's journal entries from the cursor on. It reports
// whether entries are left for another pass at once.
//
// Every OverlapInterval the link reads the journal again, up to the cursor the
// pass started at, from the peer's time when the last such read began,
// less the overlap: a change journalled since then is scored at least
// that, unless the peer's clock went back by more than the overlap. (While
// the peer is idle that is after the cursor, and there is nothing to read
// again.) The entries merged before are skipped by their marks. A pass
// reads the new entries first and then at most overlapPages pages of the
// overlap, so that reading it again never holds the new ones up for long.
func (l *link) pass(ctx context.Context) (more bool, err error) {
	if err := l.loadCursor(ctx); err != nil {
		return false, err
	}
	if !l.marksLoaded {
		if err := l.loadMarks(ctx); err != nil {
			return false, err
		}
	}
	horizon, err := l.horizon(ctx)
	if err != nil {
		return false, err
	}
	began, from := l.now(), l.cursor
	l.peerTime = 0 // set by the pass's first read of the journal
	if more, _, err := l.pull(ctx, span{from: l.cursor, after: l.complete, until: math.Inf(1), most: maxEntriesPerPass, echoes: true}, horizon); err != nil || more {
		return more, err
	}
	l.synced(began, time.Time{})
	ov := &l.overlap
	if !ov.reading && began.Sub(ov.at) >= l.s.opts.OverlapInterval {
		start := from // the first read: what the cursor loaded covers
		switch {
		case !ov.at.IsZero():
			start = ov.anchor
		case l.resumeOverlap > 0:
			// The link started again (the syncer did): the last one's reads
			// covered what was journalled before its last read began.
			start = l.resumeOverlap
		}
		start -= l.s.opts.Overlap.Seconds()
		*ov = overlapRead{at: ov.at, anchor: ov.anchor, reading: start <= from, next: start, until: from,
			began: began, beganAnchor: l.peerTime}
		if !ov.reading {
			// Nothing before the cursor to read again.
			return false, l.overlapDone(ctx, began, l.peerTime)
		}
	}
	if ov.reading {
		more, next, err := l.pull(ctx, span{from: ov.next, until: ov.until, most: overlapPages * l.s.opts.Batch}, horizon)
		if err != nil {
			return false, err
		}
		ov.next = next
		if !more {
			return false, l.overlapDone(ctx, ov.began, ov.beganAnchor)
		}
	}
	return false, nil
}

// overlapDone records a complete read of the overlap that began at began by
// this host's clock and at anchor by the peer's, and stores anchor in the
// local server, for the link that follows this one should the syncer start
// again, once the cursor moved overlapSaveStep past the one stored.
func (l *link) overlapDone(ctx context.Context, began time.Time, anchor float64) error {
	l.synced(time.Time{}, began)
	l.overlap = overlapRead{at: began, anchor: anchor}
	if l.cursor-l.resumeOverlap <= overlapSaveStep.Seconds() {
		return nil
	}
	if err := l.servers.saveOverlap(ctx, storedCursor{epoch: l.epoch, origin: l.origin}, anchor); err != nil {
		return err
	}
	l.resumeOverlap = anchor
	return nil
}

// synced records, by this host's clock, when the last pass that left
// nothing after the cursor began (pass), or the last complete read of the
// overlap (overlap); a zero time leaves its field as it is.
func (l *link) synced(pass, overlap time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !pass.IsZero() {
		l.passSynced = pass
	}
	if !overlap.IsZero() {
		l.overlapSynced = overlap
	}
}

// span is a stretch of the peer's journal that a pull reads: from a score
// (after it, with after) to until, at most most entries; and whether to
// ask the peer which entries are echoes (not for a read of the overlap,
// whose entries but a few were merged before: every new entry is then
// fetched, see changes).
type span struct {
	from   float64
	after  bool
	until  float64
	most   int
	echoes bool
}

// pull merges the peer's journal entries of a span, page by page, until a
// page ends after the span or is the last, or most entries were read. It
// reports whether entries are left, and where the next page starts.
//
// A full page of entries of one time is read again twice as large, however
// many entries the pass has read, until a page gets past them: a pass
// always makes progress, also through the thousands of keys that one write
// journals at one time. Entries ahead of the peer's clock are read to the
// end however many they are.
//
// Pages travel in two steps: a page is read and fetched from the peer,
// then merged into the local server and the cursor saved there. The second
// step runs while the next page takes the first, so that the peer and the
// local server work at once; a page's marks are taken in, and its cursor
// known, before the next page is merged, and whatever ends the pull waits
// for the page under way (see settle).
func (l *link) pull(ctx context.Context, sp span, horizon string) (more bool, next float64, err error) {
	defer l.prune()
	var merging *page // the page being merged into the local server
	defer func() {
		// A cursor that moved (a local server that lost its data) outranks
		// what else failed: the next pass sees why at once.
		if serr := l.settle(merging); serr != nil && (err == nil || errors.Is(serr, errCursorMoved)) {
			more, err = false, serr
		}
		l.recycle(merging)
	}()
	limit := l.s.opts.Batch
	minTime, after := sp.from, sp.after
	for done := 0; ; {
		p := l.newPage()
		entries, peerOrigin, err := l.changes(ctx, minTime, after, limit, sp.echoes, p.entries)
		if err != nil {
			return false, minTime, err
		}
		p.entries, p.full, p.from, p.gen = entries, len(entries) == limit, journal.Origin{Server: l.peer, Token: peerOrigin}, l.peerGen
		l.sift(&p.sift, entries, horizon, merging)
		if p.results, err = l.fetchChanged(ctx, p.sift.requests, p.from); err != nil {
			return false, minTime, err
		}
		prev := merging
		merging = nil
		if err := l.settle(prev); err != nil {
			return false, minTime, err
		}
		l.recycle(prev)
		merging = l.startMerge(ctx, p)
		done += len(entries)
		if !p.full || entries[len(entries)-1].Time > sp.until {
			return false, minTime, nil
		}
		last := entries[len(entries)-1].Time
		if last == entries[0].Time && last == minTime && !after {
			limit *= 2
			continue
		}
		minTime, after = last, false
		// Entries scored ahead of the peer's clock (writers whose clocks
		// are ahead) are all read: the cursor stays at the clock, so a
		// pass that stopped among them would read the same ones again
		// at once, never reaching the rest, nor ending.
		if done >= sp.most && entries[0].Time <= l.peerTime {
			return true, minTime, nil
		}
	}
}

// page is a page of the peer's journal on its way through a pull: its
// entries, what they ask of the link and what the peer answered, then
// (once startMerge has begun the local step) the cursor to save and what
// the merge and the save did.
type page struct {
	entries []change
	full    bool
	gen     uint64 // the link's peerGen when the page was read
	sift    sifted
	results []fetchResult
	from    journal.Origin

	lastTime   float64              // the time of its last entry
	tail       map[string]int64     // its entries of that time: key to cardinality
	newest     float64              // the cursor the page moves to
	last, next storedCursor         // the save: the cursor stored now, and the page's
	updates    []journal.KeyMembers // the merge's keys and members
	done       chan struct{}
	res        journal.MergeResult
	merged     bool // the merge ran, and met no refusal that passes
	saved      bool // the cursor was saved
	err        error
}

// newPage returns a page to read into: the one recycled last, or a new
// one.
func (l *link) newPage() *page {
	if p := l.spare; p != nil {
		l.spare = nil
		return p
	}
	return &page{}
}

// recycle keeps a settled page's arrays and map for the next page, which
// a pull then reads into without allocating them again. It drops what the
// page pointed to, so that a spare page keeps no key nor mark alive, and
// drops a page grown past a few pages' size (a read of thousands of
// entries of one time), whose arrays and map would stay that large.
func (l *link) recycle(p *page) {
	if p == nil || cap(p.entries) > 4*l.s.opts.Batch {
		return
	}
	// Whole arrays: what filled one may have written past its length.
	clear(p.entries[:cap(p.entries)])
	clear(p.sift.handled[:cap(p.sift.handled)])
	clear(p.sift.marks[:cap(p.sift.marks)])
	clear(p.sift.requests[:cap(p.sift.requests)])
	clear(p.tail)
	clear(p.updates[:cap(p.updates)])
	*p = page{
		entries: p.entries[:0],
		sift:    sifted{handled: p.sift.handled[:0], marks: p.sift.marks[:0], requests: p.sift.requests[:0]},
		tail:    p.tail,
		updates: p.updates[:0],
	}
	l.spare = p
}

// handles reports whether the page, which is being merged, handles the
// entry e of the next page: one of its entries of its last time, where
// the next page starts, with the same key and cardinality. Those need not
// be fetched again.
func (p *page) handles(e change) bool {
	if p == nil || e.Time != p.lastTime {
		return false
	}
	card, ok := p.tail[e.Key]
	return ok && card == e.card
}

// startMerge merges a fetched page into the local server and saves the
// cursor, in a goroutine of its own; settle waits for it and takes in what
// it did. The cursor never passes the peer's clock: an entry scored ahead
// of it (a writer's clock ahead, journalling with its own time) is read
// again until the clock passes it, so that changes journalled meanwhile by
// the peer's clock are not behind the cursor.
func (l *link) startMerge(ctx context.Context, p *page) *page {
	p.newest = l.cursor
	for _, e := range p.entries {
		p.newest = max(p.newest, min(e.Time, l.peerTime))
	}
	if n := len(p.entries); p.full && n > 0 { // only a full page has a next one
		p.lastTime = p.entries[n-1].Time
		if p.tail == nil {
			p.tail = make(map[string]int64)
		}
		for i := n - 1; i >= 0 && p.entries[i].Time == p.lastTime; i-- {
			p.tail[p.entries[i].Key] = p.entries[i].card
		}
		// A key fetched holds what its fetch read, atomically: a member
		// added after the journal was read is merged too.
		for i, r := range p.results {
			if _, ok := p.tail[p.sift.requests[i].key]; ok && r.fetched() && !r.partial {
				p.tail[p.sift.requests[i].key] = r.card
			}
		}
	}
	p.last = storedCursor{epoch: l.epoch, raw: l.saved, cursor: l.cursor, seq: l.seq, seqRaw: l.seqRaw, origin: l.origin}
	p.next = storedCursor{epoch: l.epoch, raw: strconv.FormatFloat(p.newest, 'f', -1, 64), cursor: p.newest, seq: l.seq + 1, origin: l.origin}
	for i, r := range p.results {
		if r.fetched() && len(r.members) > 0 {
			p.updates = append(p.updates, journal.KeyMembers{Key: p.sift.requests[i].key, Members: r.members})
		}
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		if len(p.updates) > 0 {
			p.res, p.err = l.servers.merge(ctx, p.from, p.updates)
		}
		for _, r := range p.results {
			foldMerge(&p.res, r.early) // the pages of a large key merged before
		}
		if p.err != nil || len(temporaryFailures(p.res)) > 0 {
			return
		}
		p.merged = true
		// A merge that added members is saved even when the cursor stays
		// (an overlap read, entries at the cursor's time): the save's
		// number then tells a server restored from a snapshot taken before
		// it, which lacks what the merge added although its marks say
		// otherwise.
		if p.newest > p.last.cursor || p.res.Added > 0 {
			p.saved, p.err = l.servers.saveCursor(ctx, p.last, p.next)
			if p.err == nil && !p.saved {
				p.err = errCursorMoved
			}
		}
	}()
	return p
}

// settle waits for a page's merge and takes in what it did: a refusal
// that passes (a full server, say) fails the pass before anything is
// marked, and the next pass tries again. Any other (a key that holds
// another type, a member the server will not take) fails the same way
// every time: it is reported in the stats, and passed, so that it does not
// stop the rest; anti-entropy tries it again. The entries are marked only
// once the merge is done and its cursor saved: a failed merge, or one
// whose save failed, is read again.
func (l *link) settle(p *page) error {
	if p == nil {
		return nil
	}
	<-p.done
	if !p.merged {
		if p.err != nil {
			return p.err
		}
		l.mu.Lock()
		l.stats.Added += p.res.Added
		l.mu.Unlock()
		return fmt.Errorf("syncer: merging into %s: %w", l.local, errors.Join(temporaryFailures(p.res)...))
	}
	switch {
	case errors.Is(p.err, errCursorMoved):
		return errCursorMoved // the next pass's loadCursor tells why
	case p.err != nil:
		// The merge is not marked: should the local server have lost it
		// with its cursor save (restored from a snapshot that holds the
		// cursor before), the entries are read and fetched again. The
		// merge was made, so the error is the save's, which may have been
		// made all the same.
		l.unanswered = p.next
		return p.err
	}
	l.mark(p.sift, p.results, p.gen)
	if p.saved {
		l.saved, l.seq, l.seqRaw, l.cursor = p.next.raw, p.next.seq, p.next.seqText(), p.newest
		l.fromStart = false
	}
	// Entries are sorted by time: a page that is not full, or that goes
	// past the cursor, holds every entry of the cursor's time.
	if n := len(p.entries); n == 0 || p.entries[n-1].Time >= l.cursor {
		l.complete = !p.full || p.entries[n-1].Time > l.cursor
	}
	reported := l.permanentFailures(p)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Keys += int64(p.sift.fetches)
	l.stats.Added += p.res.Added
	l.stats.Skipped += p.sift.skipped + int64(len(p.res.Dropped))
	l.stats.Echoes += p.sift.echoes
	l.stats.Cursor = l.cursor
	if reported != "" {
		l.stats.LastError, l.stats.LastErrorAt = reported, l.now()
		l.reports++
	}
	if p.res.Added > 0 {
		l.recordLagLocked(l.now().Sub(time.UnixMicro(int64(p.newest * 1e6))))
	}
	return nil
}

// sifted is what a page of entries asks of the link: the entries to mark
// once merged, and the keys to fetch (or, for echoes, whose checkpoints to
// read again), in the same order as the entries they come from.
type sifted struct {
	handled  []change
	marks    []*keyMark // of the handled entries' keys, nil for a key new to the link
	requests []fetchRequest
	fetches  int // requests that fetch members
	skipped  int64
	echoes   int64
}

// sift sorts a page of entries into s, whose arrays it reuses: those
// handled before (same journal time, same cardinality), or by the page
// being merged, are passed over; keys of dropped periods are skipped;
// echoes are not fetched, but their checkpoints are read again now and
// then; the rest are fetched from their nearest checkpoint.
func (l *link) sift(s *sifted, entries []change, horizon string, merging *page) {
	*s = sifted{handled: s.handled[:0], marks: s.marks[:0], requests: s.requests[:0]}
	now := l.now()
	for _, e := range entries {
		m := l.marks[e.Key]
		ok := m != nil
		if ok && m.gen != l.peerGen {
			m.checks, m.gen = m.checks[:0], l.peerGen // read before the peer restarted
		}
		if ok && m.journaled == e.Time && m.card == e.card || merging.handles(e) {
			continue // merged before: the cursor may pass it
		}
		s.handled = append(s.handled, e)
		s.marks = append(s.marks, m)
		switch {
		case journal.Dropped(journal.PeriodOf(e.Key), horizon):
			s.skipped++
		case e.echo:
			s.echoes++
			if ok && now.Sub(m.checkedAt) < refreshEvery && len(m.checks) > 0 {
				continue
			}
			s.requests = append(s.requests, fetchRequest{key: e.Key, mode: fetchRefresh, want: e.card, recount: levels})
		case !ok:
			s.fetches++
			s.requests = append(s.requests, fetchRequest{key: e.Key, mode: fetchFar, recount: 1, size: max(e.card, 0)})
		default:
			s.fetches++
			s.requests = append(s.requests, m.nearRequest(e.Key, max(e.card, 0), l.peerTime))
		}
	}
}

// fetchChanged fetches the requested keys from the peer: first each from
// its nearest checkpoint, then, in a second call, those whose nearest
// checkpoint no longer held from a farther one or whole.
func (l *link) fetchChanged(ctx context.Context, reqs []fetchRequest, from journal.Origin) ([]fetchResult, error) {
	results, err := l.fetch(ctx, reqs, from)
	if err != nil {
		return nil, err
	}
	var far []fetchRequest
	var at []int
	for i, r := range results {
		if reqs[i].mode == fetchNear && r.status == -1 && r.card >= 0 {
			m := l.marks[reqs[i].key]
			far = append(far, m.farRequest(reqs[i].key, r.card))
			at = append(at, i)
		}
	}
	if len(far) == 0 {
		return results, nil
	}
	again, err := l.fetch(ctx, far, from)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		results[i] = again[j]
	}
	return results, nil
}

// temporaryFailures returns the keys of a merge refused for a reason that
// passes.
func temporaryFailures(res journal.MergeResult) []error {
	var failed []error
	for _, err := range res.Failed {
		if errors.Is(err, federated.ErrTemporary) {
			failed = append(failed, err)
		}
	}
	return failed
}

// permanentFailures says, in one text, which keys of a page the peer
// would not give (another type than a sorted set there, or a key its user
// may not read) and which keys and members its merge refused for a reason
// that does not pass, "" for none.
func (l *link) permanentFailures(p *page) string {
	var permanent []error
	for i, r := range p.results {
		if r.card < 0 {
			permanent = append(permanent, fmt.Errorf("syncer: key %s of %s holds another type than a sorted set, or may not be read: left alone", p.sift.requests[i].key, l.peer))
		}
	}
	for _, err := range p.res.Failed {
		permanent = append(permanent, err)
	}
	for key, members := range p.res.LeftOut {
		permanent = append(permanent, fmt.Errorf("syncer: key %s: %d members of %s are not \"$timestamp:$value\", left out", key, len(members), l.peer))
	}
	if len(permanent) == 0 {
		return ""
	}
	return errors.Join(permanent...).Error()
}

// mark records what the link now knows of each handled entry's key: its
// journal time and cardinality, and the checkpoints the fetch read under
// the peer's run of gen.
func (l *link) mark(s sifted, results []fetchResult, gen uint64) {
	now := l.now()
	l.marksChanged = l.marksChanged || len(s.handled) > 0
	next := 0 // the next request, in the order of the entries
	for i, e := range s.handled {
		m := s.marks[i]
		if m == nil {
			m = &keyMark{}
			l.marks[strings.Clone(e.Key)] = m // not the page's string of keys
		}
		m.journaled, m.card, m.touched = e.Time, e.card, now
		if next < len(s.requests) && s.requests[next].key == e.Key {
			r := results[next]
			next++
			switch {
			case r.fetched():
				if !r.partial { // else the journal's: card counts what the link may lack
					m.card = r.card
				}
				m.apply(r)
				m.gen, m.checkedAt = gen, now
			case s.requests[next-1].mode == fetchRefresh && r.status == -1:
				m.apply(r)
				m.gen, m.checkedAt = gen, now
			}
		}
	}
}

// recordLagLocked keeps a batch's lag for the percentiles and counts it
// in the histogram; l.mu is held.
func (l *link) recordLagLocked(lag time.Duration) {
	// The lag is this host's clock less the peer's journal time: a host
	// whose clock is behind the peer's would make it negative, and the
	// histogram's sum with it.
	lag = max(lag, 0)
	l.stats.Delays.observe(lag)
	if len(l.lags) < lagSamples {
		l.lags = append(l.lags, lag)
	} else {
		l.lags[l.next] = lag
		l.next = (l.next + 1) % lagSamples
	}
}

// prune forgets, now and then, the marks of keys that stopped changing.
func (l *link) prune() {
	if l.pulls++; l.pulls%1000 == 0 {
		now := l.now()
		for k, m := range l.marks {
			if now.Sub(m.touched) > markTTL {
				delete(l.marks, k)
				l.marksChanged = true
			}
		}
	}
}

// snapshot returns the link's counters.
func (l *link) snapshot() PeerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Delays.Buckets = slices.Clone(st.Delays.Buckets)
	now := l.now()
	st.Lag = now.Sub(l.started)
	if !l.passSynced.IsZero() {
		st.Lag = now.Sub(l.passSynced)
	}
	if !l.passSynced.IsZero() && !l.overlapSynced.IsZero() {
		st.SyncedTo = l.passSynced
		if l.overlapSynced.Before(st.SyncedTo) {
			st.SyncedTo = l.overlapSynced
		}
	}
	if len(l.lags) > 0 {
		sorted := slices.Clone(l.lags)
		slices.Sort(sorted)
		st.LagP50 = sorted[len(sorted)/2]
		st.LagP99 = sorted[min(len(sorted)-1, len(sorted)*99/100)]
	}
	return st
}
