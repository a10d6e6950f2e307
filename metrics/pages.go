package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redis/go-redis/v9"
)

// Reading metric keys in pages from every server of their replica groups.
//
// A read asks every up server of the group that owns a key and merges what
// they hold. The server that acknowledged a write may be any server of the
// group (each client starts on one chosen at random, and moves on failover),
// and the syncer copies the write to the others only some time later (about
// 100 ms): the union of the group's up servers is the only copy sure to hold
// every acknowledged write. Members are idempotent, so the union is the
// series. A server marked down cannot be read: its error comes with the
// points of the others, since what it alone acknowledged may be missing.
//
// A key is read in pages of readPage members, at most readRound pages to a
// round trip, so that no read holds a single-threaded server for long and
// writers' commands take turns with the pages. Each round trip has a
// deadline that the reader sets itself (readContext): a page that runs out
// of it fails the read, but is not the server's fault and does not mark it
// down for the writers. A server that stops answering everyone is marked
// down by the writers' own command timeouts; a connection that fails marks
// it down as any command does.

const (
	// readPage is the most members one read command returns: a page costs a
	// server a fraction of a millisecond.
	readPage = 1000
	// readRound is the most members one round trip to a server asks for,
	// all its pages together.
	readRound = 16 * readPage
	// minFirstPage is the smallest first page of a key: a read of many
	// keys on one server asks for smaller first pages, so that keys of a
	// few points each come in one round trip.
	minFirstPage = 100
)

// pageKey is a key to read from every up server of its node, and the
// caller's reference for it, handed back with each page.
type pageKey struct {
	key string
	ref int
}

// pageRange is the scores of keys to read, and in which direction.
type pageRange struct {
	min, max string // the lowest and highest scores, as sent
	newest   bool   // read from max down (ZREVRANGEBYSCORE), not from min up
	first    int64  // the size of each key's first page; by how many keys a server has when 0
	// failed, when set, holds the servers a read before this one could not
	// read: they are not asked, nor said again, and those this read cannot
	// read are added.
	failed *failedServers
}

// failedServers is the servers that the reads of one call could not read:
// marked down, or failed as a whole. A read that goes on from another
// (LatestEach's older periods) neither waits for them again nor says
// their failure twice.
type failedServers struct {
	mu sync.Mutex
	m  map[string]bool
}

// add records a server that could not be read; a nil set records nothing.
func (f *failedServers) add(addr string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[string]bool)
	}
	f.m[addr] = true
}

// has reports whether a server could not be read.
func (f *failedServers) has(addr string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[addr]
}

// pageFunc receives one page of a key from one server: members with their
// scores, in the order of the range, and says whether to read the key's
// next page, if it has one. It is called from one goroutine per server, so
// concurrently for different servers, and in order for one key on one
// server.
type pageFunc func(ref int, server string, page []redis.Z) (more bool)

// pageCursor is how far the read of one key on one server has come: the
// next page starts at score from, after skip members scored exactly from
// (those already read), so that many members of one score are neither
// skipped nor read twice.
type pageCursor struct {
	pageKey
	from      string  // the score the next page starts at, as sent
	fromScore float64 // from as a number, once a page has set it
	skip      int64
	limit     int64 // the size of the next page
	// last is the last member read, and its score (see progress).
	last    string
	lastAt  float64
	hasLast bool
}

// progress checks that a page ends after the last member read before it,
// in the order of the range (by score, then by member within a score, as
// Redis sorts a sorted set; both reversed when reading from the newest),
// and returns the page less the members at its start that are not after
// it: read again when a member was added at the cursor's score, which
// moves the members after it. A server that answers with a page that does
// not end further (the same page again) would have the read go round
// without end.
func (cur *pageCursor) progress(page []redis.Z, newest bool) ([]redis.Z, error) {
	if len(page) == 0 {
		return page, nil
	}
	after := func(z redis.Z) bool {
		m, _ := z.Member.(string)
		if newest {
			return z.Score < cur.lastAt || z.Score == cur.lastAt && m < cur.last
		}
		return z.Score > cur.lastAt || z.Score == cur.lastAt && m > cur.last
	}
	end := page[len(page)-1]
	first := 0
	if cur.hasLast {
		if !after(end) {
			m, _ := end.Member.(string)
			return nil, fmt.Errorf("a page that does not move on: it ends at member %q at score %v, and the page before at %q at %v",
				m, end.Score, cur.last, cur.lastAt)
		}
		for !after(page[first]) {
			first++
		}
	}
	cur.last, _ = end.Member.(string)
	cur.lastAt, cur.hasLast = end.Score, true
	return page[first:], nil
}

// readContext gives one round trip of a read its own deadline, the command
// timeout. The client counts a timeout against a server only when the
// deadline that ran out is the one it sets for its own commands: a read
// that runs out of its own fails alone, and leaves the server up for the
// writers.
func (st *Store) readContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, st.c.Options().CommandTimeout)
}

// readPages reads the members of keys scored in the range from every up
// server of each key's node, in pages, and hands each page to fn. A server
// marked down is not asked and a server that fails stops being read: each
// gives one *ServerError that names it (ErrServerDown for one marked down).
// A key Redis refuses to read (it holds another type) gives an error that
// names the key and the server. The error joins them all; fn has had the
// pages of everything else.
func (st *Store) readPages(ctx context.Context, keys []pageKey, r pageRange, fn pageFunc) error {
	from := r.min
	if r.newest {
		from = r.max
	}
	var (
		work    = make(map[string][]*pageCursor) // by server
		order   []string
		nodes   = make(map[string]string) // of each server
		errs    []error
		skipped = make(map[string]bool)
	)
	for _, k := range keys {
		node := st.c.KeyToNode(k.key)
		addrs, err := st.c.AllServers(node)
		if err != nil {
			return err // the node was removed meanwhile
		}
		for _, addr := range addrs {
			nodes[addr] = node
			if r.failed.has(addr) {
				continue
			}
			if st.c.IsServerDown(addr) {
				if !skipped[addr] {
					skipped[addr] = true
					errs = append(errs, downError(node, addr))
				}
				continue
			}
			if _, ok := work[addr]; !ok {
				order = append(order, addr)
			}
			work[addr] = append(work[addr], &pageCursor{pageKey: k, from: from, limit: r.first})
		}
	}
	for addr := range skipped {
		r.failed.add(addr)
	}
	if len(order) == 0 {
		return errors.Join(errs...)
	}
	if r.first == 0 {
		for _, cursors := range work {
			first := min(readPage, max(readRound/int64(len(cursors)), minFirstPage))
			for _, cur := range cursors {
				cur.limit = first
			}
		}
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		rh readHorizon
	)
	rh.first.Add(len(order))
	for _, addr := range order {
		wg.Go(func() {
			serverErrs := st.readServerPages(ctx, nodes[addr], addr, work[addr], r, &rh, fn)
			mu.Lock()
			errs = append(errs, serverErrs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readHorizon is the horizon a read goes by: the latest that any server it
// asks held at the read's first round trip to it (one that cannot be a
// horizon left out: see journal.ReadableHorizon). A server that missed a DropBefore (stopped
// while it ran, or back from an old snapshot) keeps the keys of the periods
// dropped, and the horizon of before, until its syncer raises it to its
// peers' (within a second) or the next DropBefore reaches it: read alone,
// its copies would bring the dropped periods back, and with no syncer
// running, for good.
type readHorizon struct {
	first sync.WaitGroup // one Done a server, once its first round trip was answered or failed
	mu    sync.Mutex
	h     string
}

// raise makes h the read's horizon when it is later.
func (rh *readHorizon) raise(h string) {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	rh.h = max(rh.h, h) // period strings of one length sort in time order
}

// get returns the read's horizon.
func (rh *readHorizon) get() string {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	return rh.h
}

// downError is the error of a server marked down: it names the server and
// matches federated.ErrServerDown.
func downError(node, addr string) error {
	return &federated.ServerError{Node: node, Server: addr, Err: federated.ErrServerDown}
}

// readServerPages reads keys from one server, round trip by round trip,
// until every key is read, the server fails, or the client closes. Each
// round trip reads the server's horizon after its pages. The pages of the
// first are handed on once every server of the read has answered its own
// (or failed: the slowest server's first round trip holds the others', up
// to the command timeout), by the latest horizon of all (see readHorizon):
// keys of periods it drops are read no further. A key whose period a later
// round trip finds dropped, by a DropBefore that began after the read,
// gives an error that says so when pages of it were handed on, since they
// may be a part of what it held; one not read yet is left out whole.
func (st *Store) readServerPages(ctx context.Context, node, addr string, pending []*pageCursor, r pageRange, rh *readHorizon, fn pageFunc) []error {
	var errs []error
	var cmds []*redis.ZSliceCmd
	answered := sync.OnceFunc(rh.first.Done)
	defer answered()
	began, started := "", false
	for len(pending) > 0 {
		select {
		case <-st.c.Done():
			r.failed.add(addr)
			return append(errs, federated.ErrClosed)
		default:
		}
		rc, err := st.serverClient(addr)
		if err != nil {
			r.failed.add(addr)
			return append(errs, err)
		}
		size, asked := 1, pending[0].limit
		for size < len(pending) && asked+pending[size].limit <= readRound {
			asked += pending[size].limit
			size++
		}
		round := pending[:size]
		cmds = cmds[:0]
		rctx, cancel := st.readContext(ctx)
		pipe := rc.Pipeline()
		for _, cur := range round {
			cmd := cur.command(rctx, r)
			_ = pipe.Process(rctx, cmd) // only queues
			cmds = append(cmds, cmd)
		}
		// After the pages: a drop that ran before it, and so may have
		// emptied a page, is seen.
		// Of any reply, so that one of another shape (a hostile server's)
		// is not a failure of the connection.
		horizon := redis.NewCmd(rctx, "get", st.keys.Horizon)
		_ = pipe.Process(rctx, horizon)
		_, _ = pipe.Exec(rctx) // each command holds its own error
		cancel()
		// None held, or one this reader cannot read (of another type, or
		// no period string: an operator's mistake the write script refuses
		// all writes for), or one after the next period, which would hide
		// everything.
		now, _ := horizon.Val().(string)
		now = journal.ReadableHorizon(now)
		if !started {
			rh.raise(now)
			answered()
			rh.first.Wait()
			began, started = rh.get(), true
		}

		var next []*pageCursor
		for i, cmd := range cmds {
			cur := round[i]
			if period := journal.PeriodOf(cur.key); journal.Dropped(period, began) {
				continue
			} else if journal.Dropped(period, now) {
				if !cur.hasLast {
					continue // nothing of it handed on: left out whole
				}
				errs = append(errs, &federated.ServerError{Node: node, Server: addr,
					Err: fmt.Errorf("%s: %w while it was read (the oldest kept is now %s): points read of it before may be a part of what it held",
						cur.key, federated.ErrPeriodDropped, now)})
				continue
			}
			if err := cmd.Err(); err != nil {
				var (
					refused *federated.ServerError // the connection was refused
					reply   redis.Error
				)
				// A refusal that passes (BUSY, LOADING...) is the server's,
				// not the key's: the next keys would meet it too.
				if errors.As(err, &refused) || !errors.As(err, &reply) || journal.IsTemporaryReply(err) {
					r.failed.add(addr)
					return append(errs, st.serverFailure(node, addr, err))
				}
				errs = append(errs, &federated.ServerError{Node: node, Server: addr,
					Err: fmt.Errorf("%s %s: %w", cmd.Name(), cur.key, err)})
				continue
			}
			page := cmd.Val()
			fresh, err := cur.progress(page, r.newest)
			if err != nil {
				r.failed.add(addr)
				return append(errs, &federated.ServerError{Node: node, Server: addr,
					Err: fmt.Errorf("%s %s: %w", cmd.Name(), cur.key, err)})
			}
			more := len(fresh) > 0 && fn(cur.ref, addr, fresh)
			if more && int64(len(page)) == cur.limit {
				cur.advance(page)
				next = append(next, cur)
			}
		}
		pending = append(next, pending[len(round):]...)
	}
	return errs
}

// serverFailure is the error of a server that failed a round trip: the
// client's own error when it gave one, else the cause named with the
// server, which matches federated.ErrServerDown when the client has
// marked the server down (as the failure may just have done: a read's
// connection refused by a server just killed).
func (st *Store) serverFailure(node, addr string, err error) error {
	var se *federated.ServerError
	if errors.As(err, &se) {
		return se
	}
	if st.c.IsServerDown(addr) && !errors.Is(err, federated.ErrServerDown) {
		err = markedDown{err}
	}
	return &federated.ServerError{Node: node, Server: addr, Err: err}
}

// markedDown is the failure of a server that the client marked down: it
// matches federated.ErrServerDown, and says its cause.
type markedDown struct{ err error }

func (e markedDown) Error() string   { return "server down: " + e.err.Error() }
func (e markedDown) Unwrap() []error { return []error{federated.ErrServerDown, e.err} }

// command returns the command that reads the cursor's next page.
func (cur *pageCursor) command(ctx context.Context, r pageRange) *redis.ZSliceCmd {
	if r.newest {
		return redis.NewZSliceCmd(ctx, "zrevrangebyscore", cur.key, cur.from, r.min,
			"withscores", "limit", cur.skip, cur.limit)
	}
	return redis.NewZSliceCmd(ctx, "zrangebyscore", cur.key, cur.from, r.max,
		"withscores", "limit", cur.skip, cur.limit)
}

// advance moves the cursor past a full page, and makes the next page a
// whole one. Members that share the last score of the page are counted, so
// that the next page starts at that score after them: more members than a
// page at one score are read page by page. A member added meanwhile at a
// score already passed is not read (it came after the read began); one
// added at the very score of the cursor may be read twice, which the merge
// of copies absorbs.
func (cur *pageCursor) advance(page []redis.Z) {
	last := page[len(page)-1].Score
	same := int64(0)
	for i := len(page) - 1; i >= 0 && page[i].Score == last; i-- {
		same++
	}
	if cur.skip > 0 && last == cur.fromScore {
		cur.skip += same // the whole page lay at the cursor's score
	} else {
		cur.skip = same
	}
	cur.from, cur.fromScore, cur.limit = formatScore(last), last, readPage
}
