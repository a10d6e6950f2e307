package syncer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
)

// maxEntriesPerPass bounds a pass, so that a long backlog is worked off in
// steps that each save the cursor.
const maxEntriesPerPass = 20000

// lagSamples is how many batch lags a link keeps for its percentiles.
const lagSamples = 1024

// markTTL is how long a key's newest merged score is remembered after its
// last change: longer than any key changes less often than it, which then
// gets fetched whole again.
const markTTL = time.Hour

// keyMark is the newest member score merged from a peer for a key, and when
// the key last changed.
type keyMark struct {
	score   float64
	touched time.Time
}

// link pulls one peer's changes into one local server.
type link struct {
	s           *Syncer
	local, peer string

	// Owned by the link's loop.
	cursor    float64            // peer journal time merged up to
	epoch     string             // the local server's epoch the cursor belongs to
	seen      map[string]float64 // journal entries at or after cursor-overlap already merged
	newest    map[string]keyMark // the newest member score merged from the peer, by key
	passes    int64
	overlapAt time.Time // when a pass last read the overlap before the cursor

	mu    sync.Mutex // guards the fields below
	stats PeerStats
	lags  []time.Duration // ring of recent batch lags
	next  int
}

func newLink(s *Syncer, local, peer string) *link {
	return &link{s: s, local: local, peer: peer, seen: make(map[string]float64),
		newest: make(map[string]keyMark), stats: PeerStats{Local: local, Peer: peer}}
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

// pass merges the peer's journal entries from the cursor (less the overlap)
// on. It reports whether entries are left for another pass at once.
func (l *link) pass(ctx context.Context) (more bool, err error) {
	c := l.s.c
	if err := l.loadCursor(ctx); err != nil {
		return false, err
	}
	horizon, err := l.horizon(ctx)
	if err != nil {
		return false, err
	}
	// A pass reads from the cursor on (entries at the cursor's own time
	// again, which seen skips); once per Overlap, a pass reads the overlap
	// before it too. Reading the overlap every pass would read a whole
	// Overlap's worth of changes again each time: at 25,000 changed keys a
	// second, 25 pages of entries merged before.
	minTime := l.cursor
	if now := time.Now(); now.Sub(l.overlapAt) >= l.s.opts.Overlap {
		minTime -= l.s.opts.Overlap.Seconds()
		l.overlapAt = now
	}
	limit := l.s.opts.Batch
	done := 0
	for done < maxEntriesPerPass {
		entries, err := c.Journal(ctx, l.peer, minTime, limit)
		if err != nil {
			return false, err
		}
		if err := l.merge(ctx, entries, horizon); err != nil {
			return false, err
		}
		done += len(entries)
		if len(entries) < limit {
			l.prune()
			return false, nil
		}
		last := entries[len(entries)-1].Time
		if last == entries[0].Time {
			limit *= 2 // a page of equal times: widen it to get past them
			continue
		}
		minTime = last
	}
	l.prune()
	return true, nil
}

// horizon returns the local server's horizon after raising it to the
// peer's, when the peer's is later: the local server missed a DropBefore or
// came back empty, and must neither keep nor take writes of the periods
// dropped.
func (l *link) horizon(ctx context.Context) (string, error) {
	c := l.s.c
	local, err := c.Horizon(ctx, l.local)
	if err != nil {
		return "", err
	}
	peer, err := c.Horizon(ctx, l.peer)
	if err != nil {
		return "", err
	}
	// Period strings of one length sort in time order.
	if peer == "" || peer <= local {
		return local, nil
	}
	if _, err := l.s.period.Parse(peer); err != nil {
		// Not one of this federation's periods: a peer configured with
		// another period, which must not wipe this server.
		l.s.opts.Logger.Warn("syncer: ignoring the peer's horizon", "local", l.local, "peer", l.peer, "err", err)
		return local, nil
	}
	removed, err := c.RaiseHorizon(ctx, l.local, peer)
	if err != nil {
		return "", err
	}
	l.s.opts.Logger.Info("syncer: raised the local server's horizon to its peer's",
		"local", l.local, "peer", l.peer, "from", local, "to", peer, "removed", removed)
	return peer, nil
}

// merge fetches the changed keys among entries from the peer and merges
// them into the local server, then saves the cursor.
func (l *link) merge(ctx context.Context, entries []federated.JournalEntry, horizon string) error {
	c := l.s.c
	var keys []string
	var skipped int64
	newest := l.cursor
	for _, e := range entries {
		if t, ok := l.seen[e.Key]; ok && t == e.Time {
			continue
		}
		newest = max(newest, e.Time)
		if horizon != "" && federated.PeriodOf(e.Key) < horizon {
			skipped++
			continue
		}
		keys = append(keys, e.Key)
	}
	var added int64
	if len(keys) > 0 {
		// Fetch what is newer than the newest member merged before, less the
		// lateness window; a key not merged before, whole.
		mins := make([]float64, len(keys))
		for i, k := range keys {
			mins[i] = math.Inf(-1)
			if m, ok := l.newest[k]; ok {
				mins[i] = m.score - l.s.opts.Lateness.Seconds()
			}
		}
		members, err := c.Members(ctx, l.peer, keys, mins)
		if err != nil {
			return err
		}
		updates := make([]federated.KeyMembers, len(keys))
		for i, k := range keys {
			updates[i] = federated.KeyMembers{Key: k, Members: members[i]}
		}
		res, err := c.Merge(ctx, l.local, updates)
		if err != nil {
			return err
		}
		added = res.Added
		skipped += int64(len(res.Dropped))
		now := time.Now()
		for i, k := range keys {
			if ms := members[i]; len(ms) > 0 {
				if ts, ok := scoreOf(ms[len(ms)-1]); ok && ts > l.newest[k].score {
					l.newest[k] = keyMark{score: ts, touched: now}
					continue
				}
			}
			if m, ok := l.newest[k]; ok {
				l.newest[k] = keyMark{score: m.score, touched: now}
			}
		}
		if len(res.Failed) > 0 {
			var errs []error
			for _, err := range res.Failed {
				errs = append(errs, err)
			}
			// A key that cannot be written (another type) must not stop
			// replication of the rest: it is reported and passed.
			l.mu.Lock()
			l.stats.LastError = errors.Join(errs...).Error()
			l.mu.Unlock()
		}
	}
	for _, e := range entries {
		l.seen[e.Key] = e.Time
	}
	if newest > l.cursor {
		if err := l.saveCursor(ctx, newest); err != nil {
			return err
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Keys += int64(len(keys))
	l.stats.Added += added
	l.stats.Skipped += skipped
	l.stats.Cursor = l.cursor
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

// prune forgets merged entries that the next pass will not read again and,
// now and then, the marks of keys that stopped changing.
func (l *link) prune() {
	floor := l.cursor - l.s.opts.Overlap.Seconds()
	for k, t := range l.seen {
		if t < floor {
			delete(l.seen, k)
		}
	}
	if l.passes++; l.passes%1000 == 0 {
		for k, m := range l.newest {
			if time.Since(m.touched) > markTTL {
				delete(l.newest, k)
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

// epochField is the field of CursorKey that names the local server's data
// set: a random token written by the first load after the server came up
// empty. Cursors are saved only while it stays the one the pass loaded, so
// a cursor is never saved into a server that lost the data it stands for.
const epochField = "@epoch"

// loadCursorScript returns {epoch, cursor} from the cursor hash (KEYS[1]) for
// the peer ARGV[1], first setting the epoch to ARGV[2] if there is none.
var loadCursorScript = redis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], '` + epochField + `')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], '` + epochField + `', epoch)
end
return {epoch, redis.call('HGET', KEYS[1], ARGV[1])}
`)

// saveCursorScript sets the peer ARGV[2]'s cursor to ARGV[3] in the cursor
// hash (KEYS[1]) if the epoch is still ARGV[1], and returns 1; else 0.
var saveCursorScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], '` + epochField + `') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
`)

// errLocalReset says that the local server lost its data (it restarted
// empty) during a pass: the link starts again from the peer's first change.
var errLocalReset = errors.New("syncer: the local server lost its data during the pass")

// loadCursor reads the cursor saved in the local server at every pass: a
// server that came back empty has none, and is pulled in full again.
func (l *link) loadCursor(ctx context.Context) error {
	rc, err := l.s.c.ServerClient(l.local)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, l.s.c.Options().CommandTimeout)
	defer cancel()
	val, err := loadCursorScript.Run(ctx, rc, []string{CursorKey}, l.peer, newEpoch()).Slice()
	if err != nil {
		return fmt.Errorf("syncer: server %s: reading the cursor of %s: %w", l.local, l.peer, err)
	}
	epoch, cursor, err := parseCursor(val)
	if err != nil {
		return fmt.Errorf("syncer: server %s: the cursor of %s: %w", l.local, l.peer, err)
	}
	if l.epoch != "" && (epoch != l.epoch || cursor < l.cursor) {
		l.reset("the local server came back empty") // start afresh
	}
	l.epoch, l.cursor = epoch, cursor
	return nil
}

// parseCursor reads the reply of loadCursorScript. A cursor that is not a
// number, which the syncer never writes, counts as none: the peer is pulled
// from its first change, which is always safe.
func parseCursor(val []any) (epoch string, cursor float64, err error) {
	if len(val) == 0 {
		return "", 0, fmt.Errorf("unexpected reply %v", val)
	}
	epoch, ok := val[0].(string)
	if !ok || epoch == "" {
		return "", 0, fmt.Errorf("unexpected epoch %v", val[0])
	}
	if len(val) > 1 {
		if v, ok := val[1].(string); ok {
			if c, err := strconv.ParseFloat(v, 64); err == nil && c > 0 && !math.IsInf(c, 0) {
				cursor = c
			}
		}
	}
	return epoch, cursor, nil
}

// newEpoch returns a random epoch token.
func newEpoch() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// reset forgets everything the link knows of the local server's state, so
// that the peer is pulled again from its first change, and counts and logs
// why.
func (l *link) reset(why string) {
	clear(l.seen)
	clear(l.newest)
	l.cursor, l.epoch = 0, ""
	l.mu.Lock()
	l.stats.Resets++
	l.mu.Unlock()
	l.s.opts.Logger.Info("syncer: pulling the peer again from the start", "local", l.local, "peer", l.peer, "why", why)
}

// saveCursor saves the cursor if the local server still holds the data set
// the pass loaded the cursor from; else it resets the link and returns
// errLocalReset.
func (l *link) saveCursor(ctx context.Context, cursor float64) error {
	rc, err := l.s.c.ServerClient(l.local)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, l.s.c.Options().CommandTimeout)
	defer cancel()
	saved, err := saveCursorScript.Run(ctx, rc, []string{CursorKey}, l.epoch, l.peer,
		strconv.FormatFloat(cursor, 'f', -1, 64)).Int()
	if err != nil {
		return fmt.Errorf("syncer: server %s: saving the cursor of %s: %w", l.local, l.peer, err)
	}
	if saved == 0 {
		l.reset("the local server lost its data during the pass")
		return errLocalReset
	}
	l.cursor = cursor
	return nil
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
