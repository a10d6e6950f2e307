package syncer

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
)

// The link's unit tests (link_unit_test.go, marks_unit_test.go) drive its
// passes against two servers kept in memory, defined here, and a clock the
// test moves. The fake does what the scripts do, no more; the tests
// against real servers (syncer_test.go, clocks_test.go) remain the
// authority on what the scripts do.

const (
	testLocal = "local:1"
	testPeer  = "peer:1"
)

// testStart is the fake clock's first reading: whole seconds, so that the
// peer's journal times are exact in float64.
var testStart = time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when the test moves it.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// fakeServer is what the scripts see of one server.
type fakeServer struct {
	epoch   string                        // the cursor hash's epoch, "" for none
	token   string                        // the cursor hash's origin token, "" for none
	ofRun   string                        // the run when token was set
	cursors map[string]string             // the cursor hash, by peer
	horizon string                        // "" for none
	journal map[string]float64            // key to the time of its last change
	data    map[string]map[string]float64 // key to member to score
	origin  map[string]string             // key to "address@token#card"
	run     string                        // the run_id: a restart changes it
	marks   string                        // the copy of the link's marks, "" for none
	page    string                        // the link's last page mark, "" for none
}

func newFakeServer() *fakeServer {
	return &fakeServer{cursors: map[string]string{}, journal: map[string]float64{},
		data: map[string]map[string]float64{}, origin: map[string]string{}}
}

// add adds a member stamped at score to key, as a plain ZADD does, and
// reports whether it was new. It journals nothing.
func (s *fakeServer) add(key string, score float64, value string) bool {
	member := strconv.FormatFloat(score, 'f', -1, 64) + ":" + value
	if s.data[key] == nil {
		s.data[key] = map[string]float64{}
	}
	if _, ok := s.data[key][member]; ok {
		return false
	}
	s.data[key][member] = score
	return true
}

// count is ZCOUNT key -inf (below.
func (s *fakeServer) count(key string, below float64) int64 {
	var n int64
	for _, score := range s.data[key] {
		if score < below {
			n++
		}
	}
	return n
}

// fakeServers is a link's two servers in memory. The peer's clock is the
// test's clock plus peerSkew. fail, when set, is asked before every call
// (with the call's number, from 1, for its method) and fails the call with
// what it returns.
type fakeServers struct {
	// mu orders the calls: a link reads the peer while it merges into the
	// local server.
	mu          sync.Mutex
	clock       *fakeClock
	local, peer *fakeServer
	peerSkew    time.Duration
	fail        func(method string, call int) error
	calls       map[string]int
	fetched     []string // keys whose members were fetched, in turn
	members     int      // members fetched, in all
}

var _ linkServers = (*fakeServers)(nil)

func newFakeServers(clock *fakeClock) *fakeServers {
	return &fakeServers{clock: clock, local: newFakeServer(), peer: newFakeServer(), calls: map[string]int{}}
}

func (f *fakeServers) call(method string) error {
	f.mu.Lock()
	f.calls[method]++
	n, fail := f.calls[method], f.fail
	f.mu.Unlock()
	if fail == nil {
		return nil
	}
	return fail(method, n) // outside mu: it may wait for another call
}

// peerNow is the peer's clock, in Unix seconds.
func (f *fakeServers) peerNow() float64 {
	return float64(f.clock.now().Add(f.peerSkew).UnixMicro()) / 1e6
}

func (f *fakeServers) changes(_ context.Context, since float64, after bool, limit int, tag string, buf []change) ([]change, string, float64, string, error) {
	if err := f.call("changes"); err != nil {
		return nil, "", 0, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := buf[:0]
	for key, t := range f.peer.journal {
		if t > since || t == since && !after {
			out = append(out, change{journalEntry: journalEntry{Key: key, Time: t}})
		}
	}
	slices.SortFunc(out, func(a, b change) int { // as ZRANGEBYSCORE orders them
		return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.Key, b.Key))
	})
	out = out[:min(len(out), limit)]
	for i := range out {
		out[i].card = int64(len(f.peer.data[out[i].Key]))
		out[i].echo = tag != "" && f.peer.origin[out[i].Key] == tag+"#"+strconv.FormatInt(out[i].card, 10)
	}
	return out, f.peer.epoch, f.peerNow(), f.peer.run, nil
}

// fetch does what journal.FetchScript does, for keys of members only.
func (f *fakeServers) fetch(_ context.Context, reqs []fetchRequest) ([]fetchResult, string, error) {
	if err := f.call("fetch"); err != nil {
		return nil, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fetchResult, len(reqs))
	for i, r := range reqs {
		card := int64(len(f.peer.data[r.key]))
		status, from, found := -1, 0.0, false
		if r.mode == fetchRefresh {
			if card != r.want {
				status = -2
			}
		} else {
			for j, c := range r.checks {
				if !found && f.peer.count(r.key, c.below) == c.count {
					status, from, found = j+1, c.below, true
				}
			}
			if !found && r.mode == fetchFar {
				status, from, found = 0, math.Inf(-1), true
			}
		}
		res := fetchResult{status: status, card: card, members: []string{}}
		if found && card > 0 {
			for m, score := range f.peer.data[r.key] {
				if score >= from {
					res.members = append(res.members, m)
				}
			}
			f.fetched = append(f.fetched, r.key)
			f.members += len(res.members)
		}
		if card > 0 && (found || status == -1 && r.mode == fetchRefresh) {
			newest := math.Inf(-1)
			for _, score := range f.peer.data[r.key] {
				newest = max(newest, score)
			}
			newest = math.Floor(newest)
			for k := range r.recount {
				below := newest - levelSpan(k)
				res.fresh = append(res.fresh, checkpoint{below: below, count: f.peer.count(r.key, below)})
			}
		}
		out[i] = res
	}
	return out, f.peer.run, nil
}

// merge does what journal.Merge does but for the origin marks, which the
// link reads only on its peer.
func (f *fakeServers) merge(_ context.Context, _ journal.Origin, updates []journal.KeyMembers) (journal.MergeResult, error) {
	var res journal.MergeResult
	if err := f.call("merge"); err != nil {
		return res, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range updates {
		if f.local.horizon != "" && journal.PeriodOf(u.Key) < f.local.horizon {
			res.Dropped = append(res.Dropped, u.Key)
			continue
		}
		var added int64
		for _, m := range u.Members {
			ts, value, _ := strings.Cut(m, ":")
			score, err := strconv.ParseFloat(ts, 64)
			if err != nil {
				return res, fmt.Errorf("fake: member %q", m)
			}
			if f.local.add(u.Key, score, value) {
				added++
			}
		}
		if added > 0 {
			f.local.journal[u.Key] = float64(f.clock.now().UnixMicro()) / 1e6
		}
		res.Added += added
	}
	return res, nil
}

func (f *fakeServers) loadCursor(_ context.Context, fresh string, renew bool) (storedCursor, error) {
	if err := f.call("loadCursor"); err != nil {
		return storedCursor{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.local.epoch == "" {
		f.local.epoch = fresh
	}
	if f.local.token == "" || renew || f.local.ofRun != f.local.run {
		f.local.token, f.local.ofRun = fresh, f.local.run
	}
	return parseCursor([]any{f.local.epoch, f.local.cursors[testPeer], f.local.cursors[testPeer+journal.SeqSuffix], f.local.token,
		f.local.cursors[testPeer+journal.OverlapSuffix], f.local.run})
}

func (f *fakeServers) saveCursor(_ context.Context, last, next storedCursor) (bool, error) {
	if err := f.call("saveCursor"); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.local.epoch != last.epoch || f.local.cursors[testPeer] != last.raw ||
		f.local.cursors[testPeer+journal.SeqSuffix] != last.seqText() ||
		f.local.token != last.origin || f.local.ofRun != f.local.run {
		return false, nil
	}
	f.local.cursors[testPeer] = next.raw
	f.local.cursors[testPeer+journal.SeqSuffix] = next.seqText()
	return true, nil
}

func (f *fakeServers) saveOverlap(_ context.Context, last storedCursor, anchor float64) error {
	if err := f.call("saveOverlap"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.local.epoch == last.epoch && f.local.token == last.origin && f.local.ofRun == f.local.run {
		f.local.cursors[testPeer+journal.OverlapSuffix] = strconv.FormatFloat(anchor, 'f', -1, 64)
	}
	return nil
}

func (f *fakeServers) saveMarks(_ context.Context, blob []byte) error {
	if err := f.call("saveMarks"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.local.marks = string(blob)
	return nil
}

func (f *fakeServers) markPage(_ context.Context, token string) error {
	if err := f.call("markPage"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.local.page = token
	return nil
}

func (f *fakeServers) pageMark(context.Context) (string, error) {
	if err := f.call("pageMark"); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local.page, nil
}

func (f *fakeServers) loadMarks(context.Context) (string, error) {
	if err := f.call("loadMarks"); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local.marks, nil
}

func (f *fakeServers) horizons(context.Context) (string, string, error) {
	if err := f.call("horizons"); err != nil {
		return "", "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local.horizon, f.peer.horizon, nil
}

func (f *fakeServers) drop(_ context.Context, h string) (int64, error) {
	if err := f.call("drop"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.local.horizon = max(f.local.horizon, h)
	var removed int64
	for key := range f.local.data {
		if journal.PeriodOf(key) < f.local.horizon {
			delete(f.local.data, key)
			delete(f.local.journal, key)
			removed++
		}
	}
	return removed, nil
}

// testLink returns a link between two fake servers, with opts (defaults
// for the zero fields), and the clock it reads.
func testLink(t *testing.T, opts Options) (*link, *fakeServers, *fakeClock) {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	s := &Syncer{opts: opts.withDefaults(nil), period: metric.Day, keys: journal.KeysOf(journal.DefaultJournal)}
	clock := &fakeClock{t: testStart}
	fs := newFakeServers(clock)
	return newLinkVia(s, testLocal, testPeer, fs, clock.now), fs, clock
}

// key returns the metric key of name for the day of at.
func key(t *testing.T, at time.Time, name string) string {
	t.Helper()
	k, err := metric.Key(metric.Day, at, "host", name)
	require.NoError(t, err)
	return k
}

// unix is t in Unix seconds, as journals score it.
func unix(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// write adds a member stamped at to key on s and journals the key at
// journaled, as a writer with its own clock does.
func write(s *fakeServer, key string, at, journaled time.Time, value string) {
	s.add(key, unix(at), value)
	s.journal[key] = unix(journaled)
}

// writeSeconds writes a member to each of n keys on s, one a second up to
// a second before now, each journalled at its own time, and returns the
// keys in that order.
func writeSeconds(t *testing.T, s *fakeServer, now time.Time, n int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		at := now.Add(time.Duration(i-n) * time.Second)
		keys = append(keys, key(t, at, fmt.Sprintf("m%d", i)))
		write(s, keys[i], at, at, "1")
	}
	return keys
}

// pass runs one pass and requires it to succeed.
func pass(t *testing.T, l *link) {
	t.Helper()
	_, err := l.pass(context.Background())
	require.NoError(t, err)
}

// snapshot returns a copy of what s holds, as a server restored from a
// snapshot taken now would hold it.
func (s *fakeServer) snapshot() *fakeServer {
	c := newFakeServer()
	c.epoch, c.token, c.ofRun, c.horizon, c.marks = s.epoch, s.token, s.ofRun, s.horizon, s.marks
	maps.Copy(c.cursors, s.cursors)
	maps.Copy(c.journal, s.journal)
	maps.Copy(c.origin, s.origin)
	for k, members := range s.data {
		c.data[k] = maps.Clone(members)
	}
	return c
}
