package syncer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// A link's cursor lives in its local server, in the hash
// journal.CursorKey: for each peer, the peer's journal time up to which
// its changes are merged, the number of the link's last save (SeqSuffix)
// and where its last read of the overlap began (OverlapSuffix), and the
// mark of the last page of a large key merged (PageSuffix); and for
// the server, its epoch (EpochField) and the token of its data set since
// it last started (OriginField, with RunField). The cursor must never be
// ahead of the data the server holds, also when the server restarts in
// the middle of a pass.

// errCursorMoved says that the cursor in the local server was not the one
// the link loaded or saved last when it came to save the next: the server
// lost data (it restarted, empty or from a snapshot), or another syncer
// saved the cursor. The next pass loads it and tells which (loadCursor).
var errCursorMoved = errors.New("syncer: the cursor in the local server moved during the pass")

// storedCursor is a link's cursor as the local server stores it.
type storedCursor struct {
	epoch  string  // the server's epoch
	raw    string  // the cursor as stored, "" for none
	cursor float64 // its value, 0 for none
	seq    uint64  // the number of the save that stored it, 0 for none
	// seqRaw is the seq as stored, where it was read: a save compares
	// the text, which someone may have written otherwise ("007").
	seqRaw string
	// origin is the token of the server's data set since it last started
	// (journal.OriginField), which its peers' marks name.
	origin string
	// overlap is the peer's time when the link's last complete read of the
	// overlap began, 0 for none (journal.OverlapSuffix).
	overlap float64
	// run is the server's run when the cursor was loaded, "" where it may
	// not be read (see journal.RunLua).
	run string
}

// seqText is the seq as stored, "" for none.
func (c storedCursor) seqText() string {
	if c.seqRaw != "" || c.seq == 0 {
		return c.seqRaw
	}
	return strconv.FormatUint(c.seq, 10)
}

// loadCursor reads the cursor saved in the local server at every pass. A
// server that came back empty has none, and is pulled in full again; one
// that holds another cursor than the link saved last (restored from a
// snapshot, with an older cursor, or one taken before the link's last
// merge) may lack what the link merged since, which its marks take for
// merged: it is pulled again from the peer's first change too. But a
// cursor that the link's own last save left, though its answer was lost,
// is the link's; and one saved later by another syncer of the same
// server and peer, in the same run of the server (a deploy that started
// the new syncer before the old one stopped), holds what both merged:
// the link goes on from it. (A server that restarted has another run; one
// whose run the user may not read is pulled again.)
func (l *link) loadCursor(ctx context.Context) error {
	c, err := l.servers.loadCursor(ctx, newEpoch(), false)
	if err != nil {
		return err
	}
	// The same data set since the server's last start, as far as the
	// run can be read (where it cannot, neither can a restart be told:
	// see RunLua).
	sameRun := c.origin != "" && c.origin == l.origin && c.run != "" && c.run == l.localRun
	switch {
	case l.epoch == "" || c.epoch == l.epoch && c.raw == l.saved && c.seq == l.seq:
	case sameRun && c.epoch == l.epoch && l.unanswered.seq != 0 && c.raw == l.unanswered.raw && c.seq == l.unanswered.seq:
		// The link's own save, whose answer was lost.
	case sameRun && c.epoch == l.epoch && c.seq > l.seq:
		l.contended()
	default:
		// A server that lost data in the same run (a snapshot loaded in
		// place, a backup restored into it) kept its origin token, which
		// the peers' echo marks name: they would keep what it lost from
		// it. It gets a new one.
		l.reset("the local server came back empty or older")
		if sameRun {
			if c, err = l.servers.loadCursor(ctx, newEpoch(), true); err != nil {
				return err
			}
		}
		c.cursor = 0
	}
	l.unanswered = storedCursor{}
	if l.fromStart {
		c.cursor = 0 // reset, and not saved since: whatever the server holds
	}
	if c.cursor != l.cursor {
		l.complete = false
	}
	l.epoch, l.saved, l.seq, l.seqRaw, l.cursor, l.origin, l.localRun = c.epoch, c.raw, c.seq, c.seqRaw, c.cursor, c.origin, c.run
	l.resumeOverlap = c.overlap
	return nil
}

// contended counts and logs, at most once a minute, a cursor another
// syncer saved.
func (l *link) contended() {
	l.mu.Lock()
	l.stats.Contended++
	l.mu.Unlock()
	if now := l.now(); now.Sub(l.contendedAt) >= time.Minute {
		l.contendedAt = now
		l.s.opts.Logger.Warn("syncer: another syncer pulls this peer into this local server: run one syncer per server",
			"local", l.local, "peer", l.peer)
	}
}

// parseCursor reads the reply of LoadCursorScript: the epoch, the cursor as
// stored ("" for none), the number of the save that stored it, the origin
// token, the overlap's start and the server's run. A cursor that is not a
// number, which the syncer never writes, counts as 0: the peer is pulled
// from its first change, which is always safe; so does a seq that is not
// a number. An overlap's start that is not a number counts as none.
func parseCursor(val []any) (storedCursor, error) {
	if len(val) == 0 {
		return storedCursor{}, fmt.Errorf("unexpected reply %v", val)
	}
	epoch, ok := val[0].(string)
	if !ok || epoch == "" {
		return storedCursor{}, fmt.Errorf("unexpected epoch %v", val[0])
	}
	c := storedCursor{epoch: epoch}
	if len(val) > 1 {
		c.raw, _ = val[1].(string)
		if v, err := strconv.ParseFloat(c.raw, 64); err == nil && v > 0 && !math.IsInf(v, 0) {
			c.cursor = v
		}
	}
	if len(val) > 2 {
		raw, _ := val[2].(string)
		c.seqRaw = raw
		if seq, err := strconv.ParseUint(raw, 10, 64); err == nil {
			c.seq = seq
		} else if raw != "" {
			c.cursor = 0
		}
	}
	if len(val) > 3 {
		c.origin, _ = val[3].(string)
	}
	if len(val) > 4 {
		raw, _ := val[4].(string)
		if v, err := strconv.ParseFloat(raw, 64); err == nil && v > 0 && !math.IsInf(v, 0) {
			c.overlap = v
		}
	}
	if len(val) > 5 {
		c.run, _ = val[5].(string)
	}
	return c, nil
}

// newEpoch returns a random epoch token.
func newEpoch() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// reset forgets everything the link knows of the local server's state, so
// that the peer is pulled again from its first change and both horizons are
// read again, and counts and logs why.
func (l *link) reset(why string) {
	clear(l.marks)
	l.resume = resumePoint{}
	l.marksChanged = true
	l.cursor, l.epoch, l.saved, l.seq, l.seqRaw, l.origin, l.complete = 0, "", "", 0, "", "", false
	l.fromStart = true
	l.overlap, l.horizonAt = overlapRead{}, time.Time{}
	l.mu.Lock()
	l.stats.Resets++
	// What the stats said was merged may be lost: they say nothing until
	// a pass and a read of the overlap complete again, and Lag counts from
	// now, as for a link that just started.
	l.started, l.passSynced, l.overlapSynced = l.now(), time.Time{}, time.Time{}
	l.mu.Unlock()
	l.s.opts.Logger.Info("syncer: pulling the peer again from the start", "local", l.local, "peer", l.peer, "why", why)
}
