package syncer

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
)

// linkServers is what a link asks of its two servers: it reads the peer's
// journal, members and horizon, and reads and writes the local server's
// cursor, horizon and data. Each call is one script call, or a few, on one
// server; the errors name the server. clientServers does it through the
// federation's client; the link's unit tests use a fake.
type linkServers interface {
	// changes reads up to limit entries of the peer's journal scored at or
	// after since (after it, with after), with each key's cardinality, and
	// flags as echoes those whose origin mark is tag and the key's
	// cardinality ("" asks for no flags). It returns them with the peer's
	// origin token (journal.OriginField), the peer's clock, Unix seconds,
	// and the peer's run (see journal.RunLua). The entries go in buf's
	// array when it has room.
	changes(ctx context.Context, since float64, after bool, limit int, tag string, buf []change) (entries []change, origin string, now float64, run string, err error)
	// fetch runs the fetch script on the peer for every request, in one
	// call, and returns the peer's run with the results.
	fetch(ctx context.Context, reqs []fetchRequest) ([]fetchResult, string, error)
	// merge adds members to keys of the local server with the write
	// script, marking the keys left holding nothing from lacks. A large
	// key's pages are merged while a page of the journal is: it serves
	// two goroutines at once.
	merge(ctx context.Context, from journal.Origin, updates []journal.KeyMembers) (journal.MergeResult, error)
	// loadCursor returns the local server's epoch, first setting it to
	// fresh if it has none, the peer's cursor as stored and the server's
	// origin token, set to fresh if it has none, the server started since
	// it was set, or renew.
	loadCursor(ctx context.Context, fresh string, renew bool) (storedCursor, error)
	// saveCursor stores next as the peer's cursor in the local server if
	// its epoch, the cursor stored and its origin token are still those of
	// last, and it did not start since; it reports whether it did.
	saveCursor(ctx context.Context, last, next storedCursor) (bool, error)
	// saveOverlap stores the peer's time when the link's last complete
	// read of the overlap began in the local server, if its epoch and
	// origin token are still last's and it did not start since.
	saveOverlap(ctx context.Context, last storedCursor, anchor float64) error
	// markPage stores token in the local server once a page of a large
	// key is merged; pageMark reads it, "" for none (see resumePoint).
	markPage(ctx context.Context, token string) error
	pageMark(ctx context.Context) (string, error)
	// saveMarks stores a copy of the link's marks in the local server.
	saveMarks(ctx context.Context, blob []byte) error
	// loadMarks returns the copy of the link's marks the local server
	// holds, "" for none.
	loadMarks(ctx context.Context) (string, error)
	// horizons returns the local server's horizon and the peer's, "" for
	// none.
	horizons(ctx context.Context) (local, peer string, err error)
	// drop raises the local server's horizon to h and removes the keys of
	// the periods before it; it returns how many keys it removed.
	drop(ctx context.Context, h string) (int64, error)
}

// clientServers reaches a link's servers through the federation's client.
type clientServers struct {
	run         journal.Runner
	local, peer string
	keys        journal.Keys
	period      metric.Period
	fetchArgs   []any // reused by fetch, which runs one call at a time
	// merger serves one merge at a time: the link merges a page of its
	// journal only once the last is settled, but a large key's pages
	// (see fetchPaged) are merged while the last page of the journal is.
	mergeMu sync.Mutex
	merger  journal.Merger
}

var _ linkServers = (*clientServers)(nil)

func (cs *clientServers) changes(ctx context.Context, since float64, after bool, limit int, tag string, buf []change) ([]change, string, float64, string, error) {
	min := strconv.FormatFloat(since, 'f', -1, 64)
	if after {
		min = "(" + min
	}
	val, err := cs.run.RunOnServer(ctx, cs.peer, journal.ChangesScript, []string{cs.keys.Journal, cs.keys.Origin, journal.CursorKey},
		min, limit, tag).Slice()
	if err != nil {
		return nil, "", 0, "", fmt.Errorf("syncer: server %s: reading the journal %s: %w", cs.peer, cs.keys.Journal, err)
	}
	out, origin, now, run, err := parseChanges(val, buf)
	if err != nil {
		return nil, "", 0, "", fmt.Errorf("syncer: server %s: reading the journal %s: %w", cs.peer, cs.keys.Journal, err)
	}
	return out, origin, now, run, nil
}

// The fetch script's arguments are pointers, which go-redis writes without
// boxing a copy of each: to the requests' own fields, and to these.
var (
	windowArg = int64(levelWindow / time.Second)
	factorArg = int64(levelFactor)
	modeArgs  = [...]string{fetchNear: "c", fetchRefresh: "r", fetchPage: "p", fetchNext: "n"} // fetchFar goes as fetchPage
)

func (cs *clientServers) fetch(ctx context.Context, reqs []fetchRequest) ([]fetchResult, string, error) {
	args := append(cs.fetchArgs[:0], &windowArg, &factorArg, &maxFetchMembers)
	counts := 0 // checkpoints read again, at most
	for i := range reqs {
		r := &reqs[i]
		if r.mode == fetchFar {
			args = append(args, &r.key, &modeArgs[fetchPage], &maxFetchMembers, r.recount, len(r.checks))
		} else {
			args = append(args, &r.key, &modeArgs[r.mode], &r.want, r.recount, len(r.checks))
		}
		for j := range r.checks {
			args = append(args, &r.checks[j].below, &r.checks[j].count)
		}
		counts += r.recount
	}
	cs.fetchArgs = args
	defer clear(args) // go-redis copied them: keep no request alive
	val, err := cs.run.RunOnServer(ctx, cs.peer, journal.FetchScript, nil, args...).Slice()
	if err != nil {
		return nil, "", fmt.Errorf("syncer: server %s: fetching members: %w", cs.peer, err)
	}
	var run, joined string
	ok := len(val) > 1
	if ok {
		run, ok = val[0].(string)
	}
	if ok {
		joined, ok = val[1].(string)
	}
	if !ok {
		return nil, "", fmt.Errorf("syncer: server %s: fetching members: a reply that does not start with the server's run and the members (%d values)", cs.peer, len(val))
	}
	out := make([]fetchResult, len(reqs))
	rd := fetchReader{v: val, at: 2, joined: joined, members: make([]string, 0, len(val)), checks: make([]checkpoint, 0, counts)}
	for i := range reqs {
		if out[i], err = rd.next(); err != nil {
			return nil, "", fmt.Errorf("syncer: server %s: fetching %s: %w", cs.peer, reqs[i].key, err)
		}
	}
	if rd.at != len(val) || rd.joinedAt != len(joined) {
		return nil, "", fmt.Errorf("syncer: server %s: fetching members: %d values and %d bytes of members left over after %d keys", cs.peer, len(val)-rd.at, len(joined)-rd.joinedAt, len(reqs))
	}
	return out, run, nil
}

func (cs *clientServers) merge(ctx context.Context, from journal.Origin, updates []journal.KeyMembers) (journal.MergeResult, error) {
	cs.mergeMu.Lock()
	defer cs.mergeMu.Unlock()
	return cs.merger.Merge(ctx, cs.run, cs.local, cs.keys, from, updates)
}

func (cs *clientServers) loadCursor(ctx context.Context, fresh string, renew bool) (storedCursor, error) {
	flag := ""
	if renew {
		flag = "1"
	}
	val, err := cs.run.RunOnServer(ctx, cs.local, journal.LoadCursorScript, []string{journal.CursorKey}, cs.peer, fresh, flag).Slice()
	if err != nil {
		return storedCursor{}, fmt.Errorf("syncer: server %s: reading the cursor of %s in %s: %w", cs.local, cs.peer, journal.CursorKey, err)
	}
	c, err := parseCursor(val)
	if err != nil {
		return storedCursor{}, fmt.Errorf("syncer: server %s: the cursor of %s: %w", cs.local, cs.peer, err)
	}
	return c, nil
}

func (cs *clientServers) saveCursor(ctx context.Context, last, next storedCursor) (bool, error) {
	n, err := cs.run.RunOnServer(ctx, cs.local, journal.SaveCursorScript, []string{journal.CursorKey},
		last.epoch, cs.peer, last.raw, next.raw, last.seqText(), next.seqText(), last.origin).Int()
	if err != nil {
		return false, fmt.Errorf("syncer: server %s: saving the cursor of %s in %s: %w", cs.local, cs.peer, journal.CursorKey, err)
	}
	return n != 0, nil
}

func (cs *clientServers) saveOverlap(ctx context.Context, last storedCursor, anchor float64) error {
	err := cs.run.RunOnServer(ctx, cs.local, journal.SaveOverlapScript, []string{journal.CursorKey},
		last.epoch, cs.peer, strconv.FormatFloat(anchor, 'f', -1, 64), last.origin).Err()
	if err != nil {
		return fmt.Errorf("syncer: server %s: saving where the overlap of %s was read, in %s: %w", cs.local, cs.peer, journal.CursorKey, err)
	}
	return nil
}

// markPage and pageMark set and read one field of a hash, as the marks'
// scripts do.
func (cs *clientServers) markPage(ctx context.Context, token string) error {
	err := cs.run.RunOnServer(ctx, cs.local, journal.SaveMarksScript, []string{journal.CursorKey}, cs.peer+journal.PageSuffix, token).Err()
	if err != nil {
		return fmt.Errorf("syncer: server %s: marking a page of %s merged, in %s: %w", cs.local, cs.peer, journal.CursorKey, err)
	}
	return nil
}

func (cs *clientServers) pageMark(ctx context.Context) (string, error) {
	raw, err := cs.run.RunOnServer(ctx, cs.local, journal.LoadMarksScript, []string{journal.CursorKey}, cs.peer+journal.PageSuffix).Text()
	if err != nil {
		return "", fmt.Errorf("syncer: server %s: reading the last page of %s merged, in %s: %w", cs.local, cs.peer, journal.CursorKey, err)
	}
	return raw, nil
}

func (cs *clientServers) saveMarks(ctx context.Context, blob []byte) error {
	err := cs.run.RunOnServer(ctx, cs.local, journal.SaveMarksScript, []string{journal.MarksKey}, cs.peer, blob).Err()
	if err != nil {
		return fmt.Errorf("syncer: server %s: saving what the link knows of the keys of %s, in %s: %w", cs.local, cs.peer, journal.MarksKey, err)
	}
	return nil
}

func (cs *clientServers) loadMarks(ctx context.Context) (string, error) {
	raw, err := cs.run.RunOnServer(ctx, cs.local, journal.LoadMarksScript, []string{journal.MarksKey}, cs.peer).Text()
	if err != nil {
		return "", fmt.Errorf("syncer: server %s: reading what the link knew of the keys of %s, in %s: %w", cs.local, cs.peer, journal.MarksKey, err)
	}
	return raw, nil
}

func (cs *clientServers) horizons(ctx context.Context) (string, string, error) {
	local, err := journal.Horizon(ctx, cs.run, cs.local, cs.keys)
	if err != nil {
		return "", "", err
	}
	peer, err := journal.Horizon(ctx, cs.run, cs.peer, cs.keys)
	if err != nil {
		return "", "", err
	}
	return local, peer, nil
}

func (cs *clientServers) drop(ctx context.Context, h string) (int64, error) {
	return journal.Drop(ctx, cs.run, cs.local, cs.keys, cs.period, h)
}
