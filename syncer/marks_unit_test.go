package syncer

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A link that starts again takes in the copy of the marks the last one
// saved, where it still holds: the keys changed since are fetched from
// their checkpoints, not whole. Where the local server started again, or
// its run cannot be read, the copy says nothing; where the peer did, its
// checkpoints say nothing; a copy that cannot be read is left.
func TestLinkTakesInTheSavedMarks(t *testing.T) {
	const keys, points = 10, 20
	for _, tc := range []struct {
		name  string
		after func(fs *fakeServers)
		whole bool
	}{
		{name: "both servers ran on", after: func(*fakeServers) {}},
		{name: "the local server started again", after: func(fs *fakeServers) { fs.local.run = "local-2" }, whole: true},
		{name: "the peer started again", after: func(fs *fakeServers) { fs.peer.run = "peer-2" }, whole: true},
		{name: "the local run cannot be read", after: func(fs *fakeServers) { fs.local.run, fs.local.ofRun = "", "" }, whole: true},
		{name: "a damaged copy", after: func(fs *fakeServers) { fs.local.marks = fs.local.marks[:len(fs.local.marks)-3] }, whole: true},
		{name: "no copy", after: func(fs *fakeServers) { fs.local.marks = "" }, whole: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, fs, clock := testLink(t, Options{})
			fs.local.run, fs.peer.run = "local-1", "peer-1"
			t0 := clock.now()
			var names []string
			for k := range keys {
				name := key(t, t0, fmt.Sprintf("m%d", k))
				names = append(names, name)
				for i := range points {
					at := t0.Add(time.Duration(i-points) * time.Second)
					write(fs.peer, name, at, at, strconv.Itoa(i))
				}
			}
			pass(t, l)
			require.Equal(t, keys*points, fs.members, "the first link fetches every key whole")
			l.saveMarks(context.Background())
			require.NotEmpty(t, fs.local.marks)

			tc.after(fs)
			clock.advance(time.Second)
			for _, name := range names {
				write(fs.peer, name, clock.now(), clock.now(), "new")
			}
			again := newLinkVia(l.s, testLocal, testPeer, fs, clock.now)
			fs.members = 0
			pass(t, again)
			for _, name := range names {
				assert.Len(t, fs.local.data[name], points+1, "%s is whole on the local server", name)
			}
			if tc.whole {
				assert.Equal(t, keys*(points+1), fs.members, "every key fetched whole")
			} else {
				// From the nearest checkpoint, 2 s below the newest whole
				// second: the new member and the three before it.
				assert.LessOrEqual(t, fs.members, keys*4, "every key fetched from its checkpoint")
			}
		})
	}
}

// A copy of marks reads back as it was written; whatever else a server
// holds in its place is refused, never taken for marks.
func TestMarksCopyRoundTrip(t *testing.T) {
	l, _, clock := testLink(t, Options{})
	l.epoch, l.origin, l.peerRun, l.peerGen = "epoch", "origin", "run", 3
	now := clock.now()
	l.marks["a"] = &keyMark{journaled: 1764892800.123456, card: 7, gen: 3, checkedAt: now,
		checks: []checkpoint{{below: 1764892798, count: 5}, {below: 1764892790, count: 2}}}
	l.marks["b"] = &keyMark{journaled: 12.5, card: -1, gen: 2, checks: []checkpoint{{below: 10, count: 1}}}
	l.marks["c"] = &keyMark{journaled: 3, card: 1, gen: 3, checks: []checkpoint{{below: 10, count: 1}, {below: 2.5, count: 0}}}
	raw := string(l.encodeMarks(nil))

	h, marks, err := decodeMarks(raw)
	require.NoError(t, err)
	assert.Equal(t, marksCopy{epoch: "epoch", origin: "origin", peerRun: "run"}, h)
	require.Len(t, marks, 3)
	assert.Equal(t, l.marks["a"].journaled, marks["a"].journaled)
	assert.Equal(t, int64(7), marks["a"].card)
	assert.Equal(t, l.marks["a"].checks, marks["a"].checks)
	assert.Equal(t, now.Unix(), marks["a"].checkedAt.Unix())
	assert.Empty(t, marks["b"].checks, "checkpoints read under another run of the peer are not saved")
	assert.Equal(t, int64(-1), marks["b"].card)
	assert.Equal(t, []checkpoint{{below: 10, count: 1}}, marks["c"].checks, "a boundary that is not whole seconds is left, with those farther")

	for _, bad := range []string{"", "redfed-marks/2\n", raw[:len(raw)-1], raw + "x", marksMagic + "\x01e\x01o\x01r\xff\xff\xff\xff\x0f"} {
		_, _, err := decodeMarks(bad)
		assert.ErrorIs(t, err, errMarksCopy, "%q", bad)
	}
}

// Whatever a server holds in the copy's place, decodeMarks answers an
// error or marks, never panics, and what it takes for marks saves and
// reads back the same.
func FuzzDecodeMarks(f *testing.F) {
	l := &link{marks: map[string]*keyMark{"k": {journaled: 1, card: 2, checks: []checkpoint{{below: 3, count: 1}}}}}
	f.Add(string(l.encodeMarks(nil)))
	f.Add(marksMagic)
	f.Fuzz(func(t *testing.T, raw string) {
		h, marks, err := decodeMarks(raw)
		if err != nil {
			return
		}
		l := &link{epoch: h.epoch, origin: h.origin, peerRun: h.peerRun, marks: marks}
		h2, again, err := decodeMarks(string(l.encodeMarks(nil)))
		require.NoError(t, err)
		require.Equal(t, h, h2)
		require.Len(t, again, len(marks))
		for k, m := range marks {
			require.LessOrEqual(t, len(m.checks), levels, "mark %q", k)
			if !math.IsNaN(m.journaled) {
				require.Equal(t, m.journaled, again[k].journaled, "mark %q", k)
			}
			require.Equal(t, m.checks, again[k].checks, "mark %q", k)
		}
	})
}

// A copy keeps when each key was last touched: a syncer that starts again
// more often than markTTL still forgets the keys that stopped changing
// (a day's, once the next began), in memory and in the next copy.
func TestSavedMarksAgeAcrossRestarts(t *testing.T) {
	l, fs, clock := testLink(t, Options{})
	fs.local.run, fs.peer.run = "local-1", "peer-1"
	t0 := clock.now()
	for k := range 30 {
		write(fs.peer, key(t, t0, fmt.Sprintf("old%d", k)), t0.Add(-time.Second), t0.Add(-time.Second), "1")
	}
	pass(t, l)
	l.saveMarks(context.Background())
	for r := range 3 {
		clock.advance(markTTL / 2)
		l = newLinkVia(l.s, testLocal, testPeer, fs, clock.now)
		write(fs.peer, key(t, t0, fmt.Sprintf("new%d", r)), clock.now().Add(-time.Second), clock.now().Add(-time.Second), "1")
		for range 1000 { // a pruning of the marks
			pass(t, l)
		}
		l.saveMarks(context.Background())
	}
	_, marks, err := decodeMarks(fs.local.marks)
	require.NoError(t, err)
	assert.Len(t, marks, 3, "the keys changed within markTTL only: %v", slices.Collect(maps.Keys(marks)))
	assert.Len(t, l.marks, 3)
}

// A copy holds the marks of the maxSavedMarks keys touched last.
func TestSavedMarksAreBounded(t *testing.T) {
	defer func(n int) { maxSavedMarks = n }(maxSavedMarks)
	maxSavedMarks = 3
	l, _, clock := testLink(t, Options{})
	for i := range 5 {
		l.marks[fmt.Sprint("k", i)] = &keyMark{journaled: 1, touched: clock.now().Add(time.Duration(i) * time.Second)}
	}
	_, marks, err := decodeMarks(string(l.encodeMarks(nil)))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"k2", "k3", "k4"}, slices.Collect(maps.Keys(marks)))
}
