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

	"github.com/redfed/federated/internal/journal"
)

// The changes script reads a page's scores as runs of one score where it
// can, and the rest of the page WITHSCORES where runs are short. Whatever
// the journal holds, the page it answers must be the one the server holds:
// the same keys in the same order, each with its score, its cardinality
// and its echo flag.
func TestChangesAnswerWhatTheJournalHolds(t *testing.T) {
	ctx := context.Background()
	cs, rdb := fetchServer(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const tag = "127.0.0.1:1@epoch"

	var runsRead, restRead int
	for round := range 12 {
		require.NoError(t, rdb.FlushAll(ctx).Err())
		// Journals of every shape: long runs (what script calls write),
		// every score its own (a writer journalling with its own clock),
		// both in turn, and scores of every kind.
		var zs []redis.Z
		base, key := 1764028800.0, 0
		for len(zs) < 600+rng.IntN(1200) {
			run := 1 + rng.IntN(300)
			switch round % 4 {
			case 1:
				run = 1
			case 2:
				if rng.IntN(2) == 0 {
					run = 1 + rng.IntN(3)
				}
			}
			base += float64(rng.IntN(3)) + float64(rng.IntN(1000000))/1e6
			score := base
			switch rng.IntN(40) {
			case 0:
				score = math.Inf(1)
			case 1:
				score = math.Inf(-1)
			case 2:
				score = -score
			}
			for range run {
				// Keys of every length and byte: the reply sends them end
				// to end, with their lengths.
				name := "k" + strconv.Itoa(key)
				switch rng.IntN(20) {
				case 0:
					name += "\n\x00é\r\n$3"
				case 1:
					name += strings.Repeat("x", rng.IntN(2000))
				}
				zs = append(zs, redis.Z{Score: score, Member: name})
				key++
			}
		}
		require.NoError(t, rdb.ZAdd(ctx, cs.keys.Journal, zs...).Err())
		for _, z := range zs {
			k := z.Member.(string)
			switch rng.IntN(5) {
			case 0: // missing
			case 1:
				require.NoError(t, rdb.Set(ctx, k, "x", 0).Err())
			default:
				n := 1 + rng.IntN(300)
				members := make([]redis.Z, n)
				for i := range members {
					members[i] = redis.Z{Score: float64(i), Member: strconv.Itoa(i)}
				}
				require.NoError(t, rdb.ZAdd(ctx, k, members...).Err())
				switch rng.IntN(3) {
				case 0:
					require.NoError(t, rdb.HSet(ctx, cs.keys.Origin, k, tag+"#"+strconv.Itoa(n)).Err())
				case 1:
					require.NoError(t, rdb.HSet(ctx, cs.keys.Origin, k, tag+"#"+strconv.Itoa(n+1)).Err())
				}
			}
		}

		for range 20 {
			since := zs[rng.IntN(len(zs))].Score
			if rng.IntN(4) == 0 {
				since += 0.5
			}
			after := rng.IntN(2) == 0
			limit := 1 + rng.IntN(1200)
			echoes := ""
			if rng.IntN(2) == 0 {
				echoes = tag
			}
			got, _, _, _, err := cs.changes(ctx, since, after, limit, echoes, nil)
			require.NoError(t, err)

			min := strconv.FormatFloat(since, 'f', -1, 64)
			if after {
				min = "(" + min
			}
			want, err := rdb.ZRangeByScoreWithScores(ctx, cs.keys.Journal, &redis.ZRangeBy{Min: min, Max: "+inf", Count: int64(limit)}).Result()
			require.NoError(t, err)
			require.Len(t, got, len(want), "since %s, limit %d", min, limit)
			pipe := rdb.Pipeline()
			cards := make([]*redis.IntCmd, len(want))
			fields := make([]*redis.StringCmd, len(want))
			for i, w := range want {
				cards[i] = pipe.ZCard(ctx, w.Member.(string))
				fields[i] = pipe.HGet(ctx, cs.keys.Origin, w.Member.(string))
			}
			_, _ = pipe.Exec(ctx) // WRONGTYPE and nil replies are read below
			for i, w := range want {
				k := w.Member.(string)
				require.Equal(t, k, got[i].Key, "entry %d", i)
				require.Equal(t, w.Score, got[i].Time, "score of %s", k)
				card, err := cards[i].Result()
				if err != nil {
					card = -1
				}
				require.Equal(t, card, got[i].card, "cardinality of %s", k)
				field := fields[i].Val()
				require.Equal(t, echoes != "" && field == tag+"#"+strconv.FormatInt(card, 10), got[i].echo, "echo flag of %s", k)
			}

			// Which way the script read the scores.
			raw, err := journal.ChangesScript.Run(ctx, rdb, []string{cs.keys.Journal, cs.keys.Origin, journal.CursorKey}, min, limit, "").Slice()
			require.NoError(t, err)
			if runs, _ := raw[2].([]any); len(runs) > 0 {
				runsRead++
			}
			if rest, _ := raw[3].([]any); len(rest) > 0 {
				restRead++
			}
		}
	}
	assert.Positive(t, runsRead, "pages read as runs")
	assert.Positive(t, restRead, "pages read WITHSCORES after short runs")
}

// A reply out of shape is an error, never a panic nor entries read from
// the wrong place.
func TestParseChangesRefusesBrokenReplies(t *testing.T) {
	now := []any{int64(1764028800), int64(5)}
	good := []any{"e", "abbc", []any{"10.5", int64(2)}, []any{"11"}, []any{}, now, []any{int64(1), int64(2), int64(-1)}, "run", []any{int64(1), int64(2), int64(1)}}
	out, epoch, at, run, err := parseChanges(good, nil)
	require.NoError(t, err)
	assert.Equal(t, "e", epoch)
	assert.Equal(t, "run", run)
	assert.Equal(t, 1764028800.000005, at)
	assert.Equal(t, []change{
		{journalEntry: journalEntry{Key: "a", Time: 10.5}, card: 1},
		{journalEntry: journalEntry{Key: "bb", Time: 10.5}, card: 2},
		{journalEntry: journalEntry{Key: "c", Time: 11}, card: -1},
	}, out)
	with := func(i int, v any) []any {
		bad := append([]any(nil), good...)
		bad[i] = v
		return bad
	}
	for name, bad := range map[string][]any{
		"short":                 good[:8],
		"a run too long":        with(2, []any{"10.5", int64(4)}),
		"an empty run":          with(2, []any{"10.5", int64(0), "11", int64(3)}),
		"a run without length":  with(2, []any{"10.5"}),
		"rest too short":        with(3, []any{}),
		"rest too long":         with(3, []any{"11", "12"}),
		"a score not a text":    with(3, []any{[]any{"11"}}),
		"keys not a text":       with(1, []any{"a", "bb", "c"}),
		"keys too short":        with(1, "abb"),
		"keys too long":         with(1, "abbcd"),
		"a length not a number": with(8, []any{int64(1), "2", int64(1)}),
		"a negative length":     with(8, []any{int64(2), int64(-1), int64(3)}),
		"a score not a number":  with(2, []any{"x", int64(2)}),
		"cardinalities":         with(6, []any{int64(1)}),
		"echo flags":            with(4, []any{int64(1)}),
		"time":                  with(5, "now"),
	} {
		_, _, _, _, err := parseChanges(bad, nil)
		assert.Error(t, err, name)
	}
}
