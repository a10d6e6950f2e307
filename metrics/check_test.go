package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// scriptCalls returns how many script calls a server has run to the end
// (not those refused, as an EVALSHA of a script not loaded yet).
func scriptCalls(t *testing.T, addr string) int64 {
	t.Helper()
	info, err := directClient(t, addr).Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	stats := redistest.ParseCommandStats(info)
	return stats["evalsha"].Completed() + stats["eval"].Completed()
}

// groupClient is a client of one node, "group", of servers, with hooks.
func groupClient(t testing.TB, servers []*redistest.Server, hooks ...redis.Hook) *federated.Client {
	t.Helper()
	opts := testOptions()
	opts.Hooks = hooks
	return newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: opts,
	})
}

// A check digests big keys a few at a time: no call reads more than the
// bound of members on a server, by the largest cardinality of each key in
// the group, a key larger than the bound in ranges of its scores. 200
// daily keys of a point every 10 s took a server 0.36 s in one call, of a
// point a second 3.6 s, past the command timeout.
func TestCheckDigestsInBoundedCalls(t *testing.T) {
	const bound, keys, each, large = 1000, 12, 300, 2500
	metrics.SetDigestMembers(t, bound)
	servers := redistest.StartN(t, 2)
	calls := &scriptReplies{}
	c := groupClient(t, servers, calls)
	ctx := context.Background()
	at := time.Now().UTC().Add(-24 * time.Hour)
	for k := range keys {
		key, err := c.MetricKey(at, "web1", fmt.Sprintf("m%d", k))
		require.NoError(t, err)
		n := each
		if k == 5 {
			n = large
		}
		members := pointsFrom(at, n)
		// The same on both servers but for one member of the last key,
		// which the second lacks: the key counts by the first's.
		on := redistest.Addrs(servers)
		if k == keys-1 {
			_, err = merge(ctx, c, on[1], []journal.KeyMembers{{Key: key, Members: members[1:]}})
			require.NoError(t, err)
			on = on[:1]
		}
		for _, addr := range on {
			_, err = merge(ctx, c, addr, []journal.KeyMembers{{Key: key, Members: members}})
			require.NoError(t, err)
		}
	}
	for _, srv := range servers { // every call the hook's to see, none a NOSCRIPT
		require.NoError(t, journal.DigestScript.Load(ctx, directClient(t, srv.Addr())).Err())
		require.NoError(t, journal.RangeDigestScript.Load(ctx, directClient(t, srv.Addr())).Err())
	}
	report, err := newStore(t, c).Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	require.Len(t, report.Groups, 1)
	g := report.Groups[0]
	assert.Equal(t, keys, g.Keys)
	require.Len(t, g.Diffs, 1)
	assert.Equal(t, mustKey(t, c, at, "web1", fmt.Sprintf("m%d", keys-1)), g.Diffs[0].Key)
	assert.Equal(t, map[string]int64{servers[0].Addr(): each, servers[1].Addr(): each - 1}, g.Diffs[0].Cards)
	whole, ranges := calls.of(journal.DigestScript), calls.of(journal.RangeDigestScript)
	for _, v := range slices.Concat(whole, ranges) {
		members := int64(0) // by the answer's cardinalities
		for i := 0; i < len(v); i += 2 {
			n, _ := v[i].(int64)
			members += n
		}
		assert.LessOrEqual(t, members, int64(bound), "members a call read, the large key's included")
	}
	assert.Len(t, ranges, 2*(large/bound+1), "the large key in ranges of the bound, on each server")
	assert.GreaterOrEqual(t, len(whole)+len(ranges), 2*(keys*each/bound+1), "calls on each server")
}

// Repair of a server that came back empty reads big keys a few at a time,
// so that no read comes near the command timeout, and copies everything.
func TestRepairReadsBigKeysInBoundedBatches(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	ctx := context.Background()
	full, empty := servers[0].Addr(), servers[1].Addr()
	at := time.Now().UTC().Add(-24 * time.Hour)
	const keys, perKey = 12, 10_000 // 120,000 members: three batches
	for k := range keys {
		key, err := c.MetricKey(at, "web1", fmt.Sprintf("m%d", k))
		require.NoError(t, err)
		members := make([]string, perKey)
		for i := range members {
			members[i] = fmt.Sprintf("%d:%d", at.Unix()+int64(i), i)
		}
		_, err = merge(ctx, c, full, []journal.KeyMembers{{Key: key, Members: members}})
		require.NoError(t, err)
	}

	before := scriptCalls(t, full)
	report, err := newStore(t, c).Repair(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	require.Len(t, report.Groups, 1)
	assert.Equal(t, keys, report.Groups[0].Repaired)
	assert.Equal(t, int64(keys*perKey), report.Groups[0].Added)
	assert.GreaterOrEqual(t, scriptCalls(t, full)-before, int64(1+3),
		"one digest call, and the members read in batches of at most 50,000")
	check, err := newStore(t, c).Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.True(t, check.OK(), "%+v", check)
	assert.Equal(t, int64(perKey), directClient(t, empty).ZCard(ctx, mustKey(t, c, at, "web1", "m0")).Val())
}

// A key larger than the digest bound is compared in ranges of its scores,
// and only the ranges that differ are read to repair it: a key of
// millions of members, read whole, took a server past the command timeout
// at every run, and held the repair of its group's keys after it.
func TestLargeKeyIsRepairedInTheRangesThatDiffer(t *testing.T) {
	const bound, n = 1000, 10_000
	servers, c, reads, key, at := largeKeyGroup(t, bound)
	ctx := context.Background()
	a, b := servers[0].Addr(), servers[1].Addr()
	members := pointsFrom(at, n)
	// b lacks 100 members of the fifth range (by a's ranks), and holds 50
	// of the sixth, between two of a's seconds, that a lacks.
	var extra []string
	for i := range 50 {
		extra = append(extra, fmt.Sprintf("%d.5:%d", at.Unix()+5000+int64(i), -i))
	}
	_, err := merge(ctx, c, a, []journal.KeyMembers{{Key: key, Members: members}})
	require.NoError(t, err)
	_, err = merge(ctx, c, b, []journal.KeyMembers{{Key: key, Members: slices.Concat(members[:4000], members[4100:], extra)}})
	require.NoError(t, err)

	st := newStore(t, c)
	check, err := st.Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	require.Len(t, check.Groups, 1)
	require.Len(t, check.Groups[0].Diffs, 1)
	assert.Equal(t, map[string]int64{a: n, b: n - 100 + 50}, check.Groups[0].Diffs[0].Cards)

	report, err := st.Repair(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	require.Len(t, report.Groups, 1)
	assert.Equal(t, 1, report.Groups[0].Repaired)
	assert.Equal(t, int64(150), report.Groups[0].Added)
	want := slices.Concat(members, extra)
	for _, addr := range []string{a, b} {
		got, err := directClient(t, addr).ZRange(ctx, key, 0, -1).Result()
		require.NoError(t, err)
		assert.ElementsMatch(t, want, got, "members on %s", addr)
	}
	var sizes []int
	for _, v := range reads.of(journal.RangeMembersScript) {
		sizes = append(sizes, len(v))
	}
	// The ranges are cut at both servers' bounds: the 100 members b lacks
	// are a range of their own (b's bound after them), and b's extras
	// share theirs with 50 of a's (b's bound 50 members further on).
	assert.ElementsMatch(t, []int{100, 0, 50, 100}, sizes,
		"the two ranges that differ read on each server, and no other")
	check, err = st.Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.True(t, check.OK(), "%+v", check)
}

// The ranges of a large key are bounded on every server of its group, not
// only on the one that holds the most: two servers each down for half the
// day hold two halves, and ranges split by one server's members alone put
// all of the other's in one call, as large as the key's whole digest.
func TestLargeKeyRangesAreBoundedOnEveryServer(t *testing.T) {
	const bound, n = 100, 2000
	servers, c, calls, key, at := largeKeyGroup(t, bound)
	ctx := context.Background()
	day := at.Truncate(24 * time.Hour).Unix()
	var want []string
	for i, srv := range servers { // the first from midnight, the second from noon
		members := make([]string, n-i)
		for j := range members {
			members[j] = fmt.Sprintf("%d:%d", day+int64(i)*43200+int64(j), j)
		}
		_, err := merge(ctx, c, srv.Addr(), []journal.KeyMembers{{Key: key, Members: members}})
		require.NoError(t, err)
		want = append(want, members...)
	}

	report, err := newStore(t, c).Repair(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	require.Len(t, report.Groups, 1)
	assert.Equal(t, int64(2*n-1), report.Groups[0].Added)
	for _, srv := range servers {
		got, err := directClient(t, srv.Addr()).ZRange(ctx, key, 0, -1).Result()
		require.NoError(t, err)
		assert.ElementsMatch(t, want, got, "members on %s", srv.Addr())
	}
	for _, v := range calls.of(journal.RangeDigestScript) {
		assert.LessOrEqual(t, v[0], int64(bound), "members a range digest read")
	}
	for _, v := range calls.of(journal.RangeMembersScript) {
		assert.LessOrEqual(t, len(v), bound, "members a range read")
	}
}

// A key repaired in ranges counts as repaired as a key read whole does,
// and a failure of one of its writes is said once, not once a range.
func TestLargeKeyRepairSaysEachFailureOnce(t *testing.T) {
	const bound, n = 100, 1000
	ctx := context.Background()
	t.Run("members it cannot copy", func(t *testing.T) {
		servers, c, _, key, at := largeKeyGroup(t, bound)
		a, b := servers[0].Addr(), servers[1].Addr()
		members := pointsFrom(at, n)
		_, err := merge(ctx, c, a, []journal.KeyMembers{{Key: key, Members: members}})
		require.NoError(t, err)
		_, err = merge(ctx, c, b, []journal.KeyMembers{{Key: key, Members: slices.Concat(members[:150], members[160:])}})
		require.NoError(t, err)
		require.NoError(t, directClient(t, a).ZAdd(ctx, key, redis.Z{Score: float64(at.Unix() + 700), Member: "not a point"}).Err())

		report, err := newStore(t, c).Repair(ctx, metrics.CheckOptions{})
		require.Error(t, err)
		assert.Equal(t, 1, strings.Count(err.Error(), `"not a point"`), "said once: %v", err)
		require.Len(t, report.Groups, 1)
		assert.Equal(t, int64(10), report.Groups[0].Added, "the points b lacked")
		assert.Zero(t, report.Groups[0].Repaired, "a key left divergent is not repaired")
	})
	t.Run("a full target", func(t *testing.T) {
		servers, c, _, key, at := largeKeyGroup(t, bound)
		members := pointsFrom(at, n)
		_, err := merge(ctx, c, servers[0].Addr(), []journal.KeyMembers{{Key: key, Members: members}})
		require.NoError(t, err)
		require.NoError(t, directClient(t, servers[1].Addr()).ConfigSet(ctx, "maxmemory", "1").Err())

		report, err := newStore(t, c).Repair(ctx, metrics.CheckOptions{})
		require.Error(t, err)
		assert.Equal(t, 1, strings.Count(err.Error(), "OOM"), "said once, not once a range: %v", err)
		require.Len(t, report.Groups, 1)
		assert.True(t, report.Groups[0].Incomplete)
		assert.Zero(t, report.Groups[0].Repaired)
	})
	t.Run("a read that fails after a range was written", func(t *testing.T) {
		refuse := &refuseCall{hash: journal.RangeMembersScript.Hash(), at: 3} // the second range's first read
		metrics.SetDigestMembers(t, bound)
		servers := redistest.StartN(t, 2)
		c := groupClient(t, servers, refuse)
		at := time.Now().UTC().Add(-24 * time.Hour)
		key := mustKey(t, c, at, "web1", "cpu")
		_, err := merge(ctx, c, servers[0].Addr(), []journal.KeyMembers{{Key: key, Members: pointsFrom(at, n)}})
		require.NoError(t, err)

		report, err := newStore(t, c).Repair(ctx, metrics.CheckOptions{})
		require.ErrorIs(t, err, errRefused)
		require.Len(t, report.Groups, 1)
		assert.Equal(t, int64(bound), report.Groups[0].Added, "the first range")
		assert.Zero(t, report.Groups[0].Repaired, "a key with ranges left is not repaired")
	})
	t.Run("another type on a server", func(t *testing.T) {
		servers, c, calls, key, at := largeKeyGroup(t, bound)
		members := pointsFrom(at, n)
		_, err := merge(ctx, c, servers[0].Addr(), []journal.KeyMembers{{Key: key, Members: members}})
		require.NoError(t, err)
		require.NoError(t, directClient(t, servers[1].Addr()).Set(ctx, key, "a string", 0).Err())

		report, err := newStore(t, c).Repair(ctx, metrics.CheckOptions{})
		var wrong *metrics.WrongTypeError
		require.ErrorAs(t, err, &wrong)
		assert.Equal(t, servers[1].Addr(), wrong.Server)
		require.Len(t, report.Groups, 1)
		assert.Zero(t, report.Groups[0].Repaired)
		assert.Empty(t, calls.of(journal.RangeMembersScript), "no range read: the one sorted set agrees with itself")
	})
}

// pointsFrom returns n members, a second apart from at: "$ts:$i".
func pointsFrom(at time.Time, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%d:%d", at.Unix()+int64(i), i)
	}
	return out
}

// errRefused is the error of refuseCall.
var errRefused = errors.New("refused by the test")

// refuseCall is a go-redis hook that fails the at-th call of one script
// with errRefused, without sending it.
type refuseCall struct {
	hash  string
	at    int32
	calls atomic.Int32
}

func (h *refuseCall) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *refuseCall) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *refuseCall) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) > 1 && cmd.Name() == "evalsha" && args[1] == h.hash && h.calls.Add(1) == h.at {
			cmd.SetErr(errRefused)
			return errRefused
		}
		return next(ctx, cmd)
	}
}

// largeKeyGroup starts a group of two servers, digested in calls of at
// most bound members, and returns its client, which keeps the answers of
// scripts in calls, and a key of a day ago, at.
func largeKeyGroup(t *testing.T, bound int64) (servers []*redistest.Server, c *federated.Client, calls *scriptReplies, key string, at time.Time) {
	t.Helper()
	metrics.SetDigestMembers(t, bound)
	servers = redistest.StartN(t, 2)
	calls = &scriptReplies{}
	c = groupClient(t, servers, calls)
	for _, srv := range servers { // every call the hook's to see, none a NOSCRIPT
		for _, script := range []*redis.Script{journal.RangeDigestScript, journal.RangeMembersScript} {
			require.NoError(t, script.Load(context.Background(), directClient(t, srv.Addr())).Err())
		}
	}
	at = time.Now().UTC().Add(-24 * time.Hour)
	return servers, c, calls, mustKey(t, c, at, "web1", "cpu"), at
}

// scriptReplies is a go-redis hook that keeps the answers of scripts, by
// the script's hash, in the order they came.
type scriptReplies struct {
	mu      sync.Mutex
	replies map[string][][]any
}

func (h *scriptReplies) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptReplies) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *scriptReplies) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		c, ok := cmd.(*redis.Cmd)
		if args := cmd.Args(); len(args) > 1 && ok && cmd.Name() == "evalsha" {
			hash, _ := args[1].(string)
			v, _ := c.Val().([]any)
			h.mu.Lock()
			if h.replies == nil {
				h.replies = make(map[string][][]any)
			}
			h.replies[hash] = append(h.replies[hash], v)
			h.mu.Unlock()
		}
		return err
	}
}

// of returns the answers of script.
func (h *scriptReplies) of(script *redis.Script) [][]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.replies[script.Hash()]
}

// A member that someone wrote in another shape cannot be copied: Repair
// says so, names it, and does not count its key as repaired.
func TestRepairReportsMembersItCannotCopy(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := groupClient(t, servers)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Hour)
	key := mustKey(t, c, at, "web1", "cpu")
	require.NoError(t, directClient(t, servers[0].Addr()).ZAdd(ctx, key, redis.Z{Score: 1, Member: "not a point"}).Err())
	require.NoError(t, directClient(t, servers[0].Addr()).ZAdd(ctx, "journal", redis.Z{Score: float64(time.Now().Unix()), Member: key}).Err())

	report, err := newStore(t, c).Repair(ctx, metrics.CheckOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), key)
	assert.Contains(t, err.Error(), `"not a point"`)
	require.Len(t, report.Groups, 1)
	assert.Zero(t, report.Groups[0].Repaired)
	assert.Equal(t, 1, report.Groups[0].Divergent)
}

// Merge leaves out members whose timestamp Redis would refuse as a score,
// which would fail their whole key, and writes the rest of the key.
func TestMergeLeavesOutScoresRedisRefuses(t *testing.T) {
	servers := redistest.StartN(t, 1)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	key := mustKey(t, c, time.Now().Add(-time.Hour), "web1", "cpu")
	res, err := merge(ctx, c, servers[0].Addr(), []journal.KeyMembers{{Key: key, Members: []string{
		"100:1", "1e-400:2", "0x1_0p0:3", "1_000:4", "0:5", "-0.0:6", "0x0p3:7", "1e-310:8",
	}}})
	require.NoError(t, err)
	assert.Empty(t, res.Failed)
	assert.Equal(t, map[string][]string{key: {"1e-400:2", "0x1_0p0:3", "1_000:4"}}, res.LeftOut, "and says which")
	got, err := directClient(t, servers[0].Addr()).ZRange(ctx, key, 0, -1).Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"100:1", "0:5", "-0.0:6", "0x0p3:7", "1e-310:8"}, got)
}

// A check that runs while retention drops a period (a cron's check beside
// KeepPeriods) reads some keys on a server that dropped them and on one
// that has not yet: they are gone, not divergent.
func TestCheckWhileRetentionDrops(t *testing.T) {
	servers := redistest.StartN(t, 2)
	ctx := context.Background()
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: testOptions()})
	st := newStore(t, c)
	keys := periodKeys("2026-11-01", "h", 20000)
	for _, s := range servers {
		require.NoError(t, writeKeysOn(ctx, directClient(t, s.Addr()), keys, time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC).Unix()))
	}
	start, dropped := make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		<-start
		_, err := st.DropBefore(ctx, time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC))
		dropped <- err
	}()
	report, err := st.Check(ctx, metrics.CheckOptions{Progress: func(string, int, int) { once.Do(func() { close(start) }) }})
	require.NoError(t, <-dropped)
	require.NoError(t, err)
	assert.Zero(t, report.Divergent, "diffs: %v", report.Groups[0].Diffs)
	assert.Zero(t, report.Keys, "the keys gone are not counted")
	for _, s := range servers {
		assert.Zero(t, countKeys(t, directClient(t, s.Addr()), "2026-11-01:*"), "the period is dropped from %s", s.Addr())
	}
}

// The divergent keys a report lists are those left once the keys that
// retention dropped during the check are taken out: a dropped key listed
// first does not leave the list empty beside a count of divergent keys.
func TestCheckListsTheDivergentKeysLeft(t *testing.T) {
	servers := redistest.StartN(t, 2)
	ctx := context.Background()
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: testOptions()})
	st := newStore(t, c)
	old, live := "2026-11-01:h:m", "2026-12-07:h:m"
	require.NoError(t, writeKeysOn(ctx, directClient(t, servers[0].Addr()), []string{old, live}, time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC).Unix()))
	var once sync.Once
	report, err := st.Check(ctx, metrics.CheckOptions{MaxDiffs: 1, Progress: func(string, int, int) {
		once.Do(func() {
			_, err := st.DropBefore(ctx, time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC))
			assert.NoError(t, err)
		})
	}})
	require.NoError(t, err)
	g := report.Groups[0]
	assert.Equal(t, 1, g.Divergent)
	require.Len(t, g.Diffs, 1)
	assert.Equal(t, live, g.Diffs[0].Key)
	assert.Equal(t, map[string]int64{servers[0].Addr(): 1, servers[1].Addr(): 0}, g.Diffs[0].Cards)
}

// A key that a foreign writer added without journalling it (redis-cli, a
// restore) is in no journal: a check of every key finds it by SCAN, and a
// repair copies it; one limited to the keys changed since does not.
func TestCheckComparesKeysInNoJournal(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	ctx := context.Background()
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: []string{a, b}}}, Options: testOptions()})
	st := newStore(t, c)
	now := time.Now()
	key, err := c.MetricKey(now, "web1", "foreign")
	require.NoError(t, err)
	rb := directClient(t, b)
	member := fmt.Sprintf("%d:7", now.Unix())
	require.NoError(t, rb.ZAdd(ctx, key, redis.Z{Score: float64(now.Unix()), Member: member}).Err())
	// Neither a sorted set that is not a metric key nor a metric key of
	// another type is compared.
	require.NoError(t, rb.ZAdd(ctx, "leaderboard:web1:x", redis.Z{Score: 1, Member: "a"}).Err())
	other, err := c.MetricKey(now, "web1", "string")
	require.NoError(t, err)
	require.NoError(t, rb.Set(ctx, other, "v", 0).Err())

	report, err := st.Check(ctx, metrics.CheckOptions{ChangedSince: now.Add(-time.Hour)})
	require.NoError(t, err)
	assert.Zero(t, report.Keys, "no key is journalled")

	report, err = st.Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, report.Keys)
	require.Equal(t, 1, report.Divergent)
	assert.Equal(t, key, report.Groups[0].Diffs[0].Key)

	report, err = st.Repair(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, report.Repaired)
	assert.Equal(t, []string{member}, directClient(t, a).ZRange(ctx, key, 0, -1).Val())
}

// Members that hold newlines (not points: a foreign writer's) cannot make
// two servers look alike: "5000:a\n5000:b" and "5000:c" on one, "5000:a"
// and "5000:b\n5000:c" on the other, joined by newlines, were the same
// text. Checked whole and, past the bound, in ranges.
func TestMembersHoldingNewlinesDoNotLookAlike(t *testing.T) {
	servers := redistest.StartN(t, 2)
	ctx := context.Background()
	c := groupClient(t, servers)
	st := newStore(t, c)
	at := time.Unix(5000, 0)
	for i, large := range []bool{false, true} {
		if large {
			metrics.SetDigestMembers(t, 1)
		}
		key, err := c.MetricKey(at, "web1", fmt.Sprintf("large-%v", large))
		require.NoError(t, err)
		for s, members := range [][]string{{"5000:a\n5000:b", "5000:c"}, {"5000:a", "5000:b\n5000:c"}} {
			z := make([]redis.Z, len(members))
			for j, m := range members {
				z[j] = redis.Z{Score: 5000, Member: m}
			}
			require.NoError(t, directClient(t, servers[s].Addr()).ZAdd(ctx, key, z...).Err())
		}
		// The key written before still differs: each run finds one more.
		report, err := st.Check(ctx, metrics.CheckOptions{})
		require.NoError(t, err)
		assert.Equal(t, i+1, report.Divergent, "large: %v", large)
	}
}
