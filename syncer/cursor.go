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

// A link's cursor lives in its local server, in the hash CursorKey: one
// field per peer, the peer's journal time up to which its changes are
// merged, and epochField. The cursor must never be ahead of the data the
// server holds, also when the server restarts in the middle of a pass.

// epochField is the field of CursorKey that names the local server's data
// set: a random token written by the first load after the server came up
// empty. It is not an address, so no peer's cursor can take its place.
const epochField = "@epoch"

// errLocalReset says that the local server lost data (it restarted) during a
// pass: the link starts again from the peer's first change.
var errLocalReset = errors.New("syncer: the local server lost its data during the pass")

// loadCursor reads the cursor saved in the local server at every pass: a
// server that came back empty has none, and is pulled in full again; one
// that went back to an older cursor (restored from a snapshot) is pulled
// again from its first change too.
func (l *link) loadCursor(ctx context.Context) error {
	epoch, raw, cursor, err := l.servers.loadCursor(ctx, newEpoch())
	if err != nil {
		return err
	}
	if l.epoch != "" && (epoch != l.epoch || cursor < l.cursor) {
		l.reset("the local server came back empty or older")
	}
	if cursor != l.cursor {
		l.complete = false
	}
	l.epoch, l.saved, l.cursor = epoch, raw, cursor
	return nil
}

// parseCursor reads the reply of loadCursorScript: the epoch, the cursor as
// stored ("" for none) and its value. A cursor that is not a number, which
// the syncer never writes, counts as 0: the peer is pulled from its first
// change, which is always safe.
func parseCursor(val []any) (epoch, raw string, cursor float64, err error) {
	if len(val) == 0 {
		return "", "", 0, fmt.Errorf("unexpected reply %v", val)
	}
	epoch, ok := val[0].(string)
	if !ok || epoch == "" {
		return "", "", 0, fmt.Errorf("unexpected epoch %v", val[0])
	}
	if len(val) > 1 {
		raw, _ = val[1].(string)
		if c, err := strconv.ParseFloat(raw, 64); err == nil && c > 0 && !math.IsInf(c, 0) {
			cursor = c
		}
	}
	return epoch, raw, cursor, nil
}

// newEpoch returns a random epoch token.
func newEpoch() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// saveCursor saves the cursor if the local server still holds what the
// link loaded or saved last; else it resets the link and returns
// errLocalReset.
func (l *link) saveCursor(ctx context.Context, cursor float64) error {
	raw := strconv.FormatFloat(cursor, 'f', -1, 64)
	saved, err := l.servers.saveCursor(ctx, l.epoch, l.saved, raw)
	if err != nil {
		return err
	}
	if !saved {
		l.reset("the local server lost data during the pass")
		return errLocalReset
	}
	l.saved, l.cursor = raw, cursor
	return nil
}

// reset forgets everything the link knows of the local server's state, so
// that the peer is pulled again from its first change and both horizons are
// read again, and counts and logs why.
func (l *link) reset(why string) {
	clear(l.marks)
	l.cursor, l.epoch, l.saved, l.complete = 0, "", "", false
	l.overlap, l.horizonAt = overlapRead{}, time.Time{}
	l.mu.Lock()
	l.stats.Resets++
	l.mu.Unlock()
	l.s.opts.Logger.Info("syncer: pulling the peer again from the start", "local", l.local, "peer", l.peer, "why", why)
}
