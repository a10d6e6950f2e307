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
)

// maxEntriesPerPass bounds a pass, so that a long backlog is worked off in
// steps that each save the cursor.
const maxEntriesPerPass = 20000

// overlapEvery is how often a pass reads the overlap before the cursor
// again. Such a pass reads every entry since the last one less the
// overlap, so reading it in every pass would read each entry many times.
const overlapEvery = 5 * time.Second

// overlapPages is how many pages of the overlap a pass reads at most.
const overlapPages = 4

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
// last change it handled (merged, skipped or an echo), so that reading the
// entry again does nothing; the newest member score merged from the peer
// (negInf for none); and whether the last changes were echoes (see
// changes.go), after which nothing was fetched and the newest member the
// local server holds stands in for the score.
type keyMark struct {
	journaled float64
	score     float64
	echo      bool
	touched   time.Time
}

var negInf = math.Inf(-1)

// link pulls one peer's changes into one local server.
type link struct {
	s           *Syncer
	local, peer string

	// Owned by the link's loop.
	cursor float64 // peer journal time merged up to
	// complete says that every entry of the cursor's own time is handled,
	// so that the next pass reads after it rather than reading them all
	// again. An entry journalled later at that very time (a step back of
	// the peer's clock) is the overlap read's to catch.
	complete bool
	epoch    string             // the local server's epoch the cursor belongs to
	saved    string             // the cursor as stored in the local server, "" for none
	marks    map[string]keyMark // by key
	pulls    int64              // pulls made: every 1,000th prunes the marks
	overlap  overlapRead
	peerTime float64 // the peer's clock at the pass's first read of its journal
	// The horizons: the local one as last read (at horizonAt), a raise
	// that did not complete, and when an unusable peer horizon was last
	// logged.
	localHorizon string
	horizonAt    time.Time
	raising      string
	warnedAt     time.Time

	mu    sync.Mutex // guards the fields below
	stats PeerStats
	lags  []time.Duration // ring of recent batch lags
	next  int
}

func newLink(s *Syncer, local, peer string) *link {
	return &link{s: s, local: local, peer: peer, marks: make(map[string]keyMark),
		stats: PeerStats{Local: local, Peer: peer}}
}

// loop makes passes until ctx ends, pausing when a pass found nothing more.
func (l *link) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	logged := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		more, err := l.pass(ctx)
		if errors.Is(err, errLocalReset) {
			more, err = true, nil // not a failure: the next pass starts afresh, at once
		}
		l.mu.Lock()
		l.stats.Passes++
		if err != nil && ctx.Err() == nil {
			l.stats.Errors++
			l.stats.LastError = err.Error()
		}
		l.mu.Unlock()
		if err != nil && ctx.Err() == nil && time.Since(logged) > 10*time.Second {
			logged = time.Now()
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
// Every overlapEvery the link reads the journal again, up to the cursor the
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
	horizon, err := l.horizon(ctx)
	if err != nil {
		return false, err
	}
	began, from := time.Now(), l.cursor
	l.peerTime = 0 // set by the pass's first read of the journal
	if more, _, err := l.pull(ctx, l.cursor, l.complete, math.Inf(1), maxEntriesPerPass, true, horizon); err != nil || more {
		return more, err
	}
	ov := &l.overlap
	if !ov.reading && began.Sub(ov.at) >= overlapEvery {
		start := from // the first read: what the cursor loaded covers
		if !ov.at.IsZero() {
			start = ov.anchor
		}
		start -= l.s.opts.Overlap.Seconds()
		*ov = overlapRead{at: ov.at, anchor: ov.anchor, reading: start <= from, next: start, until: from,
			began: began, beganAnchor: l.peerTime}
		if !ov.reading {
			ov.at, ov.anchor = began, l.peerTime // nothing before the cursor to read again
		}
	}
	if ov.reading {
		more, next, err := l.pull(ctx, ov.next, false, ov.until, overlapPages*l.s.opts.Batch, false, horizon)
		if err != nil {
			return false, err
		}
		ov.next = next
		if !more {
			*ov = overlapRead{at: ov.began, anchor: ov.beganAnchor}
		}
	}
	return false, nil
}

// pull merges the peer's journal entries from minTime on (after it, with
// after), page by page, until a page ends after until or is the last, or
// most entries were read. It reports whether entries are left, and where
// the next page starts. With echoes false, it does not ask the peer which
// entries are echoes: every new entry is fetched (see changes).
//
// A full page of entries of one time is read again twice as large, however
// many entries the pass has read, until a page gets past them: a pass
// always makes progress, also through the thousands of keys that one write
// journals at one time.
func (l *link) pull(ctx context.Context, minTime float64, after bool, until float64, most int, echoes bool, horizon string) (more bool, next float64, err error) {
	defer l.prune()
	limit := l.s.opts.Batch
	for done := 0; ; {
		entries, peerEpoch, err := l.changes(ctx, minTime, after, limit, echoes)
		if err != nil {
			return false, minTime, err
		}
		full := len(entries) == limit
		if err := l.merge(ctx, entries, full, horizon, federated.Origin{Server: l.peer, Epoch: peerEpoch}); err != nil {
			return false, minTime, err
		}
		done += len(entries)
		if !full || entries[len(entries)-1].Time > until {
			return false, minTime, nil
		}
		last := entries[len(entries)-1].Time
		if last == entries[0].Time && last == minTime && !after {
			limit *= 2
			continue
		}
		minTime, after = last, false
		if done >= most {
			return true, minTime, nil
		}
	}
}

// merge fetches the changed keys among entries from the peer, but for the
// echoes of the local server's own changes and the entries handled before,
// and merges them into the local server, then saves the cursor.
func (l *link) merge(ctx context.Context, entries []change, full bool, horizon string, from federated.Origin) error {
	c := l.s.c
	var keys []string
	var skipped, echoes int64
	var reported string // failures passed over, for LastError
	newest := l.cursor
	now := time.Now()
	handled := entries[:0:0] // entries to mark once merged
	for _, e := range entries {
		newest = max(newest, e.Time)
		if m, ok := l.marks[e.Key]; ok && m.journaled == e.Time {
			continue // merged before: the cursor may pass it
		}
		handled = append(handled, e)
		switch {
		case horizon != "" && federated.PeriodOf(e.Key) < horizon:
			skipped++
		case e.echo:
			echoes++
		default:
			keys = append(keys, e.Key)
		}
	}
	var added int64
	var mins []float64
	var members [][]string
	if len(keys) > 0 {
		var err error
		if mins, err = l.fetchFrom(ctx, keys); err != nil {
			return err
		}
		if members, err = c.Members(ctx, l.peer, keys, mins); err != nil {
			return err
		}
		updates := make([]federated.KeyMembers, len(keys))
		for i, k := range keys {
			updates[i] = federated.KeyMembers{Key: k, Members: members[i]}
		}
		res, err := c.MergeFrom(ctx, l.local, from, updates)
		if err != nil {
			return err
		}
		added = res.Added
		skipped += int64(len(res.Dropped))
		// A refusal that passes (a full server, say) fails the pass before
		// anything is marked, and the next pass tries again. Any other (a
		// key that holds another type, a member the server will not take)
		// fails the same way every time: it is reported and passed, so
		// that it does not stop the rest; anti-entropy tries it again.
		var permanent, failed []error
		for _, err := range res.Failed {
			if errors.Is(err, federated.ErrTemporary) {
				failed = append(failed, err)
			} else {
				permanent = append(permanent, err)
			}
		}
		if len(failed) > 0 {
			l.mu.Lock()
			l.stats.Added += added
			l.mu.Unlock()
			return fmt.Errorf("syncer: merging into %s: %w", l.local, errors.Join(failed...))
		}
		for key, members := range res.LeftOut {
			permanent = append(permanent, fmt.Errorf("syncer: key %s: %d members of %s are not \"$timestamp:$value\", left out", key, len(members), l.peer))
		}
		if len(permanent) > 0 {
			reported = errors.Join(permanent...).Error()
		}
	}
	// Marked only now that the merge is done: a failed merge is read again.
	fetched := 0
	for _, e := range handled {
		m, ok := l.marks[e.Key]
		if !ok {
			m.score = negInf
		}
		m.journaled, m.touched = e.Time, now
		switch {
		case fetched < len(keys) && keys[fetched] == e.Key:
			i := fetched
			fetched++
			score := mins[i] + l.s.opts.Lateness.Seconds() // what fetchFrom knew
			if ms := members[i]; len(ms) > 0 {
				if ts, ok := scoreOf(ms[len(ms)-1]); ok {
					score = max(score, ts)
				}
			}
			m.score, m.echo = score, false
		case e.echo:
			m.echo = true
		}
		l.marks[e.Key] = m
	}
	if newest > l.cursor {
		if err := l.saveCursor(ctx, newest); err != nil {
			return err
		}
	}
	// Entries are sorted by time: a page that is not full, or that goes
	// past the cursor, holds every entry of the cursor's time.
	if n := len(entries); n == 0 || entries[n-1].Time >= l.cursor {
		l.complete = !full || entries[n-1].Time > l.cursor
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Keys += int64(len(keys))
	l.stats.Added += added
	l.stats.Skipped += skipped
	l.stats.Echoes += echoes
	l.stats.Cursor = l.cursor
	if reported != "" {
		l.stats.LastError = reported
	}
	if added > 0 {
		lag := time.Since(time.UnixMicro(int64(newest * 1e6)))
		l.stats.Lag = lag
		if len(l.lags) < lagSamples {
			l.lags = append(l.lags, lag)
		} else {
			l.lags[l.next] = lag
			l.next = (l.next + 1) % lagSamples
		}
	}
	return nil
}

// fetchFrom returns, for each key, the lowest member score to fetch: the
// newest merged from the peer before, less the lateness window; for a key
// whose last changes were echoes, the newest the local server holds, less
// the window; for a key not merged before, all (negInf).
func (l *link) fetchFrom(ctx context.Context, keys []string) ([]float64, error) {
	lateness := l.s.opts.Lateness.Seconds()
	mins := make([]float64, len(keys))
	var echoed []int
	for i, k := range keys {
		mins[i] = negInf
		switch m, ok := l.marks[k]; {
		case ok && m.echo:
			echoed = append(echoed, i)
		case ok:
			mins[i] = m.score - lateness
		}
	}
	if len(echoed) == 0 {
		return mins, nil
	}
	names := make([]string, len(echoed))
	for j, i := range echoed {
		names[j] = keys[i]
	}
	local, err := l.localNewest(ctx, names)
	if err != nil {
		return nil, err
	}
	for j, i := range echoed {
		mins[i] = local[j] - lateness
	}
	return mins, nil
}

// prune forgets, now and then, the marks of keys that stopped changing.
func (l *link) prune() {
	if l.pulls++; l.pulls%1000 == 0 {
		for k, m := range l.marks {
			if time.Since(m.touched) > markTTL {
				delete(l.marks, k)
			}
		}
	}
}

// scoreOf returns the timestamp of a member "ts:value": its score.
func scoreOf(member string) (float64, bool) {
	ts, _, ok := strings.Cut(member, ":")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(ts, 64)
	return v, err == nil
}

// snapshot returns the link's counters.
func (l *link) snapshot() PeerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	if len(l.lags) > 0 {
		sorted := slices.Clone(l.lags)
		slices.Sort(sorted)
		st.LagP50 = sorted[len(sorted)/2]
		st.LagP99 = sorted[min(len(sorted)-1, len(sorted)*99/100)]
	}
	return st
}
