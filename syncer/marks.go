package syncer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated/internal/journal"
)

// A link's marks (keyMark: what it knows of each key of the peer) live in
// its process. A syncer that starts again, on a deploy say, would know no
// key, and fetch every key changed since its cursor whole: every member
// of the period, to add the few written while it was away. So each link
// keeps a copy of its marks in its local server (journal.MarksKey), saved
// every marksSaveEvery while they change and as the link stops, and a link
// takes the copy in at its first pass where it still holds.
//
// A mark says what the local server holds: the entry it names was merged,
// and the members below a checkpoint are all there. That holds as long as
// the local server keeps its data set: the copy names the server's epoch
// and origin token, and the token changes each time the server starts (a
// server whose run_id may not be read keeps its token, and its copy is
// not taken in). A checkpoint also says how many members the peer held
// below its boundary, which holds while the peer runs: the copy names the
// peer's run, and a link whose first read of the journal finds another
// drops the checkpoints, as it does for a peer that starts again under it.
// A copy saved before the last save of the marks is older, never wrong:
// its keys are fetched from farther back.

const (
	// marksSaveEvery is how often a link saves its marks while they
	// change, besides as it stops: a link that starts after a crash
	// fetches the keys that changed since from where the copy left them,
	// minutes of their members rather than the period's. Each save
	// rewrites the whole copy (about 90 bytes a key changed within
	// markTTL), into the server's AOF and to its replicas too.
	marksSaveEvery = 10 * time.Minute
	// marksStopTimeout bounds the save of a link that stops.
	marksStopTimeout = time.Second
	// marksMagic begins the copy, and names its encoding.
	marksMagic = "redfed-marks/2\n"
)

// maxSavedMarks bounds a copy: the marks of the keys touched last are
// saved, about 22 MB of them, one script call that holds the server for
// tens of milliseconds; the others are fetched whole after a restart, as
// they were before there was a copy. (A variable for the tests.)
var maxSavedMarks = 250_000

// marksCopy is the heading of a saved copy of a link's marks: the local
// server's epoch and origin token, and the peer's run, when it was saved.
type marksCopy struct {
	epoch, origin, peerRun string
}

// loadMarks takes in, at the link's first pass, the copy of its marks that
// the local server holds, where it still holds (see above). A copy that
// cannot be read is logged and left.
func (l *link) loadMarks(ctx context.Context) error {
	if l.localRun == "" {
		// A restart of the local server would go unseen: no copy says
		// anything, and none is saved.
		l.marksLoaded, l.marksOff = true, true
		return nil
	}
	raw, err := l.servers.loadMarks(ctx)
	if refused(err) {
		l.marksRefused(err)
		return nil
	}
	if err != nil {
		return err
	}
	l.marksLoaded = true
	if raw == "" {
		return nil
	}
	h, marks, err := decodeMarks(raw)
	if err != nil {
		l.s.opts.Logger.Warn("syncer: ignoring the saved marks", "local", l.local, "peer", l.peer, "err", err)
		return nil
	}
	if h.epoch != l.epoch || h.origin != l.origin {
		return nil // the local server started again, or lost its data, since
	}
	// The link has not read the peer's journal yet: its first read
	// compares the peer's run with the copy's, and drops the checkpoints
	// read under another.
	if h.peerRun == "" {
		for _, m := range marks {
			m.checks = nil
		}
	} else {
		l.peerRun = h.peerRun
	}
	for k, m := range marks {
		if l.marks[k] == nil {
			m.gen = l.peerGen
			l.marks[k] = m
		}
	}
	l.s.opts.Logger.Info("syncer: took in the saved marks", "local", l.local, "peer", l.peer, "keys", len(marks))
	return nil
}

// refused reports whether the local server refused a command on the copy
// for good: an ACL that lets the syncer's user reach journal.CursorKey but
// not journal.MarksKey.
func refused(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && strings.HasPrefix(reply.Error(), "NOPERM")
}

// marksRefused stops the link's use of the copy, which the local server
// refused, and says so once.
func (l *link) marksRefused(err error) {
	l.marksLoaded, l.marksOff = true, true
	l.s.opts.Logger.Warn("syncer: the local server refuses the copy of the marks: a syncer that starts again fetches the keys changed since whole",
		"local", l.local, "peer", l.peer, "key", journal.MarksKey, "err", err)
}

// marksDue reports whether the link's marks changed since it last saved
// them, marksSaveEvery ago or more.
func (l *link) marksDue() bool {
	return !l.marksOff && l.marksChanged && l.now().Sub(l.marksSavedAt) >= marksSaveEvery
}

// saveMarks saves the link's marks in the local server, if they changed
// since it last did. A save that fails is logged, and tried again
// marksSaveEvery later: the copy only saves the next syncer work.
func (l *link) saveMarks(ctx context.Context) {
	if l.marksOff || !l.marksChanged || l.epoch == "" {
		return
	}
	l.marksBuf = l.encodeMarks(l.marksBuf[:0])
	err := l.servers.saveMarks(ctx, l.marksBuf)
	if cap(l.marksBuf) > 1<<20 {
		l.marksBuf = nil // saved once a minute: not worth keeping megabytes for
	}
	l.marksSavedAt = l.now()
	switch {
	case refused(err):
		l.marksRefused(err)
	case err != nil:
		l.s.opts.Logger.Warn("syncer: saving the marks", "local", l.local, "peer", l.peer, "err", err)
	default:
		l.marksChanged = false
	}
}

// saveMarksOnStop saves the marks of a link that stops because ctx ended,
// for at most marksStopTimeout.
func (l *link) saveMarksOnStop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), marksStopTimeout)
	defer cancel()
	l.saveMarks(ctx)
}

// encodeMarks appends the copy of the link's marks to b, of the
// maxSavedMarks keys touched last: the heading, then for each key its
// name, the journal time and cardinality of its mark, when it was last
// touched, its checkpoints read under the peer's present run (the whole
// seconds of their boundaries and their counts) and when they were read,
// the times in Unix seconds.
func (l *link) encodeMarks(b []byte) []byte {
	b = append(b, marksMagic...)
	for _, s := range [...]string{l.epoch, l.origin, l.peerRun} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(min(len(l.marks), maxSavedMarks)))
	for k, m := range l.savedMarks() {
		b = appendString(b, k)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.journaled))
		b = binary.AppendVarint(b, m.card)
		b = binary.AppendVarint(b, m.touched.Unix())
		n := 0
		if m.gen == l.peerGen {
			// Boundaries are whole seconds; one that is not is left, with
			// those farther.
			for n < len(m.checks) && wholeSeconds(m.checks[n].below) {
				n++
			}
		}
		b = binary.AppendUvarint(b, uint64(n))
		for _, c := range m.checks[:n] {
			b = binary.AppendVarint(b, int64(c.below))
			b = binary.AppendVarint(b, c.count)
		}
		var checked int64
		if n > 0 && !m.checkedAt.IsZero() {
			checked = m.checkedAt.Unix()
		}
		b = binary.AppendVarint(b, checked)
	}
	return b
}

// savedMarks yields the marks a copy holds: all of them, or the
// maxSavedMarks touched last.
func (l *link) savedMarks() iter.Seq2[string, *keyMark] {
	if len(l.marks) <= maxSavedMarks {
		return maps.All(l.marks)
	}
	keys := slices.SortedFunc(maps.Keys(l.marks), func(a, b string) int {
		return l.marks[b].touched.Compare(l.marks[a].touched)
	})[:maxSavedMarks]
	return func(yield func(string, *keyMark) bool) {
		for _, k := range keys {
			if !yield(k, l.marks[k]) {
				return
			}
		}
	}
}

// wholeSeconds reports whether a boundary is a whole number of seconds that
// an int64 holds exactly.
func wholeSeconds(v float64) bool {
	return v == math.Trunc(v) && math.Abs(v) < 1<<53
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// errMarksCopy says that a saved copy of marks ends early or holds what
// encodeMarks never writes.
var errMarksCopy = errors.New("not a copy of a link's marks")

// decodeMarks reads a copy that encodeMarks wrote.
func decodeMarks(raw string) (marksCopy, map[string]*keyMark, error) {
	r := marksReader{b: raw}
	if !r.prefix(marksMagic) {
		return marksCopy{}, nil, errMarksCopy
	}
	h := marksCopy{epoch: r.string(), origin: r.string(), peerRun: r.string()}
	n := r.uvarint()
	// Each mark takes 13 bytes at least: no count can ask for more.
	if r.err != nil || n > uint64(len(r.b))/13 {
		return marksCopy{}, nil, errMarksCopy
	}
	marks := make(map[string]*keyMark, n)
	for range n {
		key := strings.Clone(r.string()) // not the whole copy's string
		m := &keyMark{journaled: math.Float64frombits(r.uint64()), card: r.varint(), touched: time.Unix(r.varint(), 0)}
		checks := r.uvarint()
		if r.err != nil || checks > levels {
			return marksCopy{}, nil, errMarksCopy
		}
		if checks > 0 {
			m.checks = make([]checkpoint, checks)
			for i := range m.checks {
				below := r.varint()
				if below <= -1<<53 || below >= 1<<53 {
					return marksCopy{}, nil, errMarksCopy // not a float64 exactly
				}
				m.checks[i] = checkpoint{below: float64(below), count: r.varint()}
			}
		}
		if checked := r.varint(); checked != 0 {
			m.checkedAt = time.Unix(checked, 0)
		}
		marks[key] = m
	}
	if r.err != nil || len(r.b) != 0 {
		return marksCopy{}, nil, fmt.Errorf("%w: %d marks, then %d bytes", errMarksCopy, len(marks), len(r.b))
	}
	return h, marks, nil
}

// marksReader reads a copy of marks from its front; the first value that
// is not there sets err, and every later read returns zero.
type marksReader struct {
	b   string
	err error
}

func (r *marksReader) prefix(p string) bool {
	if len(r.b) < len(p) || r.b[:len(p)] != p {
		return false
	}
	r.b = r.b[len(p):]
	return true
}

func (r *marksReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint([]byte(r.b[:min(len(r.b), binary.MaxVarintLen64)]))
	if n <= 0 {
		r.err = errMarksCopy
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *marksReader) varint() int64 {
	u := r.uvarint()
	// binary.AppendVarint's zig-zag encoding.
	return int64(u>>1) ^ -int64(u&1)
}

func (r *marksReader) uint64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errMarksCopy
		return 0
	}
	v := binary.LittleEndian.Uint64([]byte(r.b[:8]))
	r.b = r.b[8:]
	return v
}

func (r *marksReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errMarksCopy
		return ""
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}
