package syncer

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
)

// The fetch script derives a key's cardinality and newest score instead of
// asking for them. Whatever the members hold, and whoever wrote them, what
// it answers must be what the server says: the cardinality, the members
// from the boundary up, and for every checkpoint it reads, the count the
// server holds below that boundary.
func TestFetchAnswersWhatTheServerHolds(t *testing.T) {
	ctx := context.Background()
	cs, rdb := fetchServer(t)
	zadd := func(key string, pairs ...any) {
		t.Helper()
		var zs []redis.Z
		for i := 0; i < len(pairs); i += 2 {
			zs = append(zs, redis.Z{Score: pairs[i].(float64), Member: pairs[i+1]})
		}
		require.NoError(t, rdb.ZAdd(ctx, key, zs...).Err())
	}
	// Written as redfed writes: the score is the member's timestamp.
	var plain []any
	for ts := 1000.0; ts < 1100; ts += 5 {
		plain = append(plain, ts, strconv.FormatFloat(ts, 'f', -1, 64)+":1")
	}
	zadd("plain", plain...)
	// Written by hand: the timestamps say nothing of the scores.
	zadd("lying", 1000.0, "5:1", 1050.0, "9000000:2", 1099.5, "-7:3")
	zadd("nan", 1000.0, "1000:1", 1090.0, "nan:2")
	zadd("inf", 1000.0, "1000:1", 1090.0, "inf:2")
	zadd("words", 1000.0, "1000:1", 1090.0, "abc")
	zadd("huge", 1000.0, "1000:1", 1090.0, "1e300:2")
	// A newest score that Lua cannot write exactly gets no checkpoints.
	zadd("far", 1000.0, "1000:1", 1e15, "1000000000000000:2")
	zadd("infinite", 1000.0, "1000:1", math.Inf(1), "inf:2")
	// Nor one whose farther boundaries Lua cannot write exactly.
	zadd("deep", -100000000000001.0, "-100000000000001:1", -99999999999999.0, "-99999999999999:2")
	require.NoError(t, rdb.Set(ctx, "string", "x", 0).Err())

	near := []checkpoint{{below: 1090, count: 18}}
	// Each row: the request, the status it gets, whether it gets its
	// checkpoints read again (as many as it asks), and the nearest one's
	// boundary where it says something (0: not checked).
	rows := []struct {
		req     fetchRequest
		status  int
		checks  bool
		nearest float64
	}{
		// The boundaries of a key whose timestamps are its scores are the
		// newest score's, 1095, less 2 s, 8 s, and so on.
		{fetchRequest{key: "plain", mode: fetchNear, recount: levels, checks: near}, 1, true, 1093},
		{fetchRequest{key: "plain", mode: fetchNear, recount: 1, checks: []checkpoint{{below: 1090, count: 17}}}, -1, false, 0}, // a miss
		{fetchRequest{key: "plain", mode: fetchFar, recount: levels}, 0, true, 1093},
		{fetchRequest{key: "plain", mode: fetchFar, recount: levels, checks: []checkpoint{{below: 1090, count: 3}, {below: 1050, count: 10}}}, 2, true, 1093},
		{fetchRequest{key: "plain", mode: fetchRefresh, want: 20, recount: levels}, -1, true, 1093},
		{fetchRequest{key: "plain", mode: fetchRefresh, want: 19, recount: levels}, -2, false, 0},
		// Timestamps that lie move the boundaries; the counts stay true.
		{fetchRequest{key: "lying", mode: fetchFar, recount: levels}, 0, true, 0},
		{fetchRequest{key: "lying", mode: fetchNear, recount: levels, checks: []checkpoint{{below: 1050, count: 1}}}, 1, true, 0},
		// A timestamp that is not a number within ±1e14 gives way to the
		// score, 1090.
		{fetchRequest{key: "nan", mode: fetchFar, recount: levels}, 0, true, 1088},
		{fetchRequest{key: "inf", mode: fetchFar, recount: levels}, 0, true, 1088},
		{fetchRequest{key: "words", mode: fetchFar, recount: levels}, 0, true, 1088},
		{fetchRequest{key: "huge", mode: fetchFar, recount: levels}, 0, true, 1088},
		// Scores whose boundaries Lua cannot write exactly: none.
		{fetchRequest{key: "far", mode: fetchFar, recount: levels}, 0, false, 0},
		{fetchRequest{key: "infinite", mode: fetchFar, recount: levels}, 0, false, 0},
		{fetchRequest{key: "infinite", mode: fetchRefresh, want: 2, recount: levels}, -1, false, 0},
		{fetchRequest{key: "deep", mode: fetchFar, recount: levels}, 0, false, 0},
		{fetchRequest{key: "deep", mode: fetchRefresh, want: 2, recount: levels}, -1, false, 0},
		{fetchRequest{key: "missing", mode: fetchFar, recount: levels}, 0, false, 0},
		{fetchRequest{key: "missing", mode: fetchNear, recount: 1, checks: []checkpoint{{below: 10, count: 0}}}, 1, false, 0},
		{fetchRequest{key: "string", mode: fetchNear, recount: 1, checks: near}, -1, false, 0},
		{fetchRequest{key: "string", mode: fetchFar, recount: levels}, -1, false, 0},
		{fetchRequest{key: "string", mode: fetchRefresh, want: 1, recount: levels}, -1, false, 0},
	}
	reqs := make([]fetchRequest, len(rows))
	for i, row := range rows {
		reqs[i] = row.req
	}
	// One call for all: the answers of a key must not run into the next.
	res, _, err := cs.fetch(ctx, reqs)
	require.NoError(t, err)
	require.Len(t, res, len(reqs))

	for i, r := range res {
		row, req := rows[i], rows[i].req
		name := req.key + " " + string(req.mode) + " #" + strconv.Itoa(i)
		assert.Equal(t, row.status, r.status, "%s: status", name)
		if row.checks {
			assert.Len(t, r.fresh, req.recount, "%s: checkpoints read again", name)
		} else {
			assert.Empty(t, r.fresh, "%s: no checkpoints", name)
		}
		if row.nearest != 0 && len(r.fresh) > 0 {
			assert.Equal(t, row.nearest, r.fresh[0].below, "%s: nearest boundary", name)
		}
		checkFetched(t, rdb, req, r, name)
	}
}

// fetchServer starts a server and returns what a link reads it with, and a
// plain client to write it and to check the answers.
func fetchServer(t *testing.T) (*clientServers, *redis.Client) {
	t.Helper()
	srv := redistest.StartN(t, 1)[0]
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"n": {Addresses: []string{srv.Addr()}}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return &clientServers{run: c, peer: srv.Addr(), keys: journal.KeysOf(c.Options().Metrics.Journal)}, rdb
}

// checkFetched checks one answer of the fetch script against what the
// server holds: the cardinality (-1 for a key of another type), the
// members from the boundary up, and the count below every checkpoint.
func checkFetched(t *testing.T, rdb *redis.Client, req fetchRequest, r fetchResult, name string) {
	t.Helper()
	ctx := context.Background()
	if typ := rdb.Type(ctx, req.key).Val(); typ != "zset" && typ != "none" {
		assert.EqualValues(t, -1, r.card, "%s: a key of another type", name)
		assert.Empty(t, r.members, name)
		assert.Empty(t, r.fresh, name)
		return
	}
	if r.status == pageMore {
		checkPage(t, rdb, req, r, name)
		return
	}
	assert.Equal(t, rdb.ZCard(ctx, req.key).Val(), r.card, "%s: cardinality", name)
	if r.fetched() {
		from := "-inf"
		if r.status > 0 {
			from = strconv.FormatFloat(req.checks[r.status-1].below, 'f', -1, 64)
		}
		want := rdb.ZRangeByScore(ctx, req.key, &redis.ZRangeBy{Min: from, Max: "+inf"}).Val()
		assert.Equal(t, len(want), len(r.members), "%s: members", name)
		if len(want) > 0 {
			assert.Equal(t, want, r.members, "%s: members", name)
		}
	} else {
		assert.Empty(t, r.members, name)
	}
	for k, cp := range r.fresh {
		below := strconv.FormatFloat(cp.below, 'f', -1, 64)
		assert.Equal(t, rdb.ZCount(ctx, req.key, "-inf", "("+below).Val(), cp.count,
			"%s: checkpoint %d below %s", name, k, below)
	}
}

// checkPage checks a page of a key fetched in pages against what the
// server holds: the members from the first checkpoint that holds (or the
// start) up to the next page's start, at most the page's size of them
// unless they share one score, and the count below the next start.
func checkPage(t *testing.T, rdb *redis.Client, req fetchRequest, r fetchResult, name string) {
	t.Helper()
	ctx := context.Background()
	// A whole key is asked for as a page of what the call has left.
	require.Contains(t, []fetchMode{fetchPage, fetchNext, fetchFar}, req.mode, "%s: only a page has more", name)
	size := req.want
	if req.mode == fetchFar {
		size = maxFetchMembers
	}
	from := "-inf"
	for _, c := range req.checks {
		b := strconv.FormatFloat(c.below, 'f', -1, 64)
		if req.mode == fetchNext || rdb.ZCount(ctx, req.key, "-inf", "("+b).Val() == c.count {
			from = b // the next page starts there whatever the count
			break
		}
	}
	if start, _ := strconv.ParseFloat(from, 64); r.next == start && len(r.members) == 0 {
		// The call's pages were full: an empty one, from its start.
		assert.Equal(t, rdb.ZCount(ctx, req.key, "-inf", "("+from).Val(), r.card, "%s: the count below an empty page", name)
		return
	}
	next := strconv.FormatFloat(r.next, 'f', -1, 64)
	want := rdb.ZRangeByScore(ctx, req.key, &redis.ZRangeBy{Min: from, Max: "(" + next}).Val()
	if !assert.NotEmpty(t, want, "%s: a page from %s to %s", name, from, next) {
		return
	}
	assert.Equal(t, want, r.members, "%s: the page's members from %s to %s", name, from, next)
	if int64(len(want)) > size {
		scores := rdb.ZRangeByScoreWithScores(ctx, req.key, &redis.ZRangeBy{Min: from, Max: "(" + next}).Val()
		assert.Equal(t, scores[0].Score, scores[len(scores)-1].Score, "%s: %d members over the page's %d share one score", name, len(want), size)
	}
	assert.Equal(t, rdb.ZCount(ctx, req.key, "-inf", "("+next).Val(), r.card, "%s: the count below the next page", name)
	assert.Positive(t, rdb.ZCount(ctx, req.key, next, next).Val(), "%s: the next page starts at a member", name)
	assert.Empty(t, r.fresh, "%s: a page reads no checkpoints", name)
}

// Random keys, written as redfed writes and by hand, and random requests,
// right and wrong, in calls of random sizes: every answer is what the
// server holds.
func TestFetchOfRandomKeysAnswersWhatTheServerHolds(t *testing.T) {
	t.Run("bound=default", testFetchOfRandomKeys)
	// A call's pages share the bound: whole keys come in pages of what
	// the keys before them left, empty ones once it is spent.
	t.Run("bound=25", func(t *testing.T) {
		old := maxFetchMembers
		maxFetchMembers = 25
		t.Cleanup(func() { maxFetchMembers = old })
		testFetchOfRandomKeys(t)
	})
}

func testFetchOfRandomKeys(t *testing.T) {
	ctx := context.Background()
	cs, rdb := fetchServer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const nkeys = 400
	timestamp := func() float64 {
		ts := 1.7e9 + float64(rng.IntN(3600))
		if rng.IntN(3) == 0 {
			ts += float64(rng.IntN(1000000)) / 1e6
		}
		return ts
	}
	hostile := []float64{math.Inf(1), math.Inf(-1), 1e15, -1e19, -99999999999999, 0, math.Copysign(0, -1)}
	// Texts by hand, of every byte and length: the reply sends the
	// members end to end, with their lengths.
	texts := []string{"nan", "inf", "abc", "1e300", "0x10", "", "-7", "\n\x00é\r\n$3", strings.Repeat("x", 3000)}
	var reqs []fetchRequest
	for i := range nkeys {
		key := "k" + strconv.Itoa(i)
		kind := rng.IntN(20)
		deep := kind == 2 || kind == 6 // near -1e14, where Lua's 14 digits run out
		switch {
		case kind == 0:
			continue // missing
		case kind == 1:
			require.NoError(t, rdb.Set(ctx, key, "x", 0).Err())
		case kind == 7: // a page's worth of one score, and more around it
			var zs []redis.Z
			ts := timestamp()
			for j := range 30 {
				zs = append(zs, redis.Z{Score: ts, Member: strconv.Itoa(j)})
			}
			for range 10 {
				zs = append(zs, redis.Z{Score: timestamp(), Member: strconv.Itoa(rng.IntN(1000))})
			}
			require.NoError(t, rdb.ZAdd(ctx, key, zs...).Err())
		default:
			var zs []redis.Z
			for range 1 + rng.IntN(40) {
				ts := timestamp()
				if deep {
					ts = -1e14 + float64(rng.IntN(24)-12)
				}
				text := strconv.FormatFloat(ts, 'f', -1, 64)
				if kind >= 3 && kind < 6 { // by hand
					if rng.IntN(2) == 0 {
						ts = hostile[rng.IntN(len(hostile))]
					}
					if rng.IntN(2) == 0 {
						text = texts[rng.IntN(len(texts))]
					}
				}
				zs = append(zs, redis.Z{Score: ts, Member: text + ":" + strconv.Itoa(rng.IntN(1000))})
			}
			require.NoError(t, rdb.ZAdd(ctx, key, zs...).Err())
		}
		for range 4 {
			// A boundary with its true count, or one off.
			check := func() checkpoint {
				b := math.Floor(timestamp())
				if deep {
					b = -1e14 + float64(rng.IntN(24)-12)
				}
				n := rdb.ZCount(ctx, key, "-inf", "("+strconv.FormatFloat(b, 'f', -1, 64)).Val()
				if rng.IntN(4) == 0 {
					n++
				}
				return checkpoint{below: b, count: n}
			}
			req := fetchRequest{key: key, recount: 1 + rng.IntN(levels)}
			switch rng.IntN(5) {
			case 3:
				req.mode, req.want = fetchPage, 1+int64(rng.IntN(12))
				for range rng.IntN(3) {
					req.checks = append(req.checks, check())
				}
			case 4:
				req.mode, req.want, req.checks = fetchNext, 1+int64(rng.IntN(12)), []checkpoint{check()}
			case 0:
				req.mode, req.checks = fetchNear, []checkpoint{check()}
			case 1:
				req.mode = fetchFar
				for range rng.IntN(levels) {
					req.checks = append(req.checks, check())
				}
			default:
				req.mode, req.want = fetchRefresh, rdb.ZCard(ctx, key).Val()+int64(rng.IntN(2))
			}
			reqs = append(reqs, req)
		}
	}
	rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	pages := map[bool]int{} // pages of a key with more after them, and last pages
	var wholeInPages, empty int
	for len(reqs) > 0 {
		n := min(len(reqs), 1+rng.IntN(300))
		res, _, err := cs.fetch(ctx, reqs[:n])
		require.NoError(t, err)
		for i, r := range res {
			checkFetched(t, rdb, reqs[i], r, reqs[i].key+" "+string(reqs[i].mode))
			if (reqs[i].mode == fetchPage || reqs[i].mode == fetchNext) && r.card >= 0 {
				pages[r.status == pageMore]++
			}
			if r.status == pageMore && reqs[i].mode == fetchFar {
				wholeInPages++
			}
			if r.status == pageMore && len(r.members) == 0 {
				empty++
			}
		}
		reqs = reqs[n:]
	}
	assert.Positive(t, pages[true], "pages with more after them")
	assert.Positive(t, pages[false], "last pages")
	if maxFetchMembers < 100 {
		assert.Positive(t, wholeInPages, "keys asked for whole that came in pages")
		assert.Positive(t, empty, "empty pages, the call's bound spent")
	}
}

// A key fetched without checkpoints (its newest score out of the script's
// range) keeps none of its old ones: the nearer ones no longer hold, and
// its next fetch is whole.
func TestFetchWithoutCheckpointsForgetsThem(t *testing.T) {
	m := &keyMark{checks: []checkpoint{{below: 1093, count: 19}, {below: 1087, count: 18}}}
	m.apply(fetchResult{status: 2, card: 21, members: []string{"1e15:1"}})
	assert.Empty(t, m.checks)
	assert.Equal(t, fetchFar, m.nearRequest("k", 21, 1100).mode, "the next fetch is whole")
	assert.Empty(t, m.nearRequest("k", 21, 1100).checks)
}

// A reply cut short or out of shape is an error, never a panic nor a
// result read from the wrong place.
func TestParseFetchRefusesBrokenReplies(t *testing.T) {
	good := []any{int64(1), int64(3), int64(2), int64(3), int64(4), int64(2), int64(9), int64(1), int64(0)}
	read := func(v []any) (fetchResult, int, error) {
		rd := fetchReader{v: v, joined: "1:a2:bb"}
		r, err := rd.next()
		return r, rd.at, err
	}
	r, at, err := read(good)
	require.NoError(t, err)
	assert.Equal(t, len(good), at)
	assert.Equal(t, []string{"1:a", "2:bb"}, r.members)
	assert.Equal(t, []checkpoint{{below: 7, count: 1}, {below: 1, count: 0}}, r.fresh)
	for n := range len(good) {
		_, _, err := read(good[:n])
		assert.Error(t, err, "cut after %d values", n)
	}
	for _, bad := range [][]any{
		{int64(1), int64(3), int64(-1), int64(0)},
		{int64(1), int64(3), int64(5), int64(3), int64(0)},
		{int64(1), int64(3), int64(1), "1:a", int64(0)},
		{int64(1), int64(3), int64(1), int64(8), int64(0)},
		{int64(1), int64(3), int64(1), int64(-1), int64(0)},
		{int64(1), int64(3), int64(1), int64(3), int64(7), int64(0)},
		{int64(1), int64(3), int64(0), int64(-2)},
		{int64(1), int64(3), int64(0), int64(1), int64(9)},
		{"1", int64(3), int64(0), int64(0)},
		// A page: no counts, then the next page's start as a number.
		{int64(pageMore), int64(3), int64(0), int64(0)},
		{int64(pageMore), int64(3), int64(0), int64(0), int64(5)},
		{int64(pageMore), int64(3), int64(0), int64(0), "five"},
		{int64(pageMore), int64(3), int64(0), int64(1), int64(9), int64(0), "5"},
	} {
		_, _, err := read(bad)
		assert.Error(t, err, "%v", bad)
	}
	page := []any{int64(pageMore), int64(3), int64(1), int64(3), int64(0), "5.5"}
	r, at, err = read(page)
	require.NoError(t, err)
	assert.Equal(t, len(page), at)
	assert.Equal(t, []string{"1:a"}, r.members)
	assert.Equal(t, 5.5, r.next)
}

// The keys of one reply share the reader's arrays, but each result is
// its own: growing one never writes over the next.
func TestFetchReaderKeepsKeysApart(t *testing.T) {
	v := []any{
		int64(0), int64(1), int64(1), int64(3), int64(1), int64(5), int64(1),
		int64(0), int64(2), int64(2), int64(3), int64(3), int64(2), int64(9), int64(2), int64(1),
	}
	rd := fetchReader{v: v, joined: "1:a2:b3:c"}
	first, err := rd.next()
	require.NoError(t, err)
	second, err := rd.next()
	require.NoError(t, err)
	assert.Equal(t, len(v), rd.at)
	first.members = append(first.members, "4:d")
	first.fresh = append(first.fresh, checkpoint{below: 1, count: 1})
	assert.Equal(t, []string{"2:b", "3:c"}, second.members)
	assert.Equal(t, []checkpoint{{below: 7, count: 2}, {below: 1, count: 1}}, second.fresh)
	m := &keyMark{}
	m.apply(second)
	second.fresh[0].count = 99
	assert.Equal(t, int64(2), m.checks[0].count, "a mark keeps its own copy")
}
