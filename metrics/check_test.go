package metrics_test

import (
	"context"
	"fmt"
	"sync"
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

func groupClient(t testing.TB, servers []*redistest.Server) *federated.Client {
	t.Helper()
	return newClient(t, federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: testOptions(),
	})
}

// A check digests big keys a few at a time: no call reads more than the
// bound of members on a server, by the largest cardinality of each key in
// the group, but a key larger than the bound alone. 200 daily keys of a
// point every 10 s took a server 0.36 s in one call, of a point a second
// 3.6 s, past the command timeout.
func TestCheckDigestsInBoundedCalls(t *testing.T) {
	const bound, keys, each, large = 1000, 12, 300, 2500
	metrics.SetDigestMembers(t, bound)
	servers := redistest.StartN(t, 2)
	calls := &digestCalls{}
	opts := testOptions()
	opts.Hooks = []redis.Hook{calls}
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}}, Options: opts})
	ctx := context.Background()
	at := time.Now().UTC().Add(-24 * time.Hour)
	for k := range keys {
		key, err := c.MetricKey(at, "web1", fmt.Sprintf("m%d", k))
		require.NoError(t, err)
		n := each
		if k == 5 {
			n = large
		}
		members := make([]string, n)
		for i := range members {
			members[i] = fmt.Sprintf("%d:%d", at.Unix()+int64(i), i)
		}
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
	}
	report, err := newStore(t, c).Check(ctx, metrics.CheckOptions{})
	require.NoError(t, err)
	require.Len(t, report.Groups, 1)
	g := report.Groups[0]
	assert.Equal(t, keys, g.Keys)
	require.Len(t, g.Diffs, 1)
	assert.Equal(t, mustKey(t, c, at, "web1", fmt.Sprintf("m%d", keys-1)), g.Diffs[0].Key)
	assert.Equal(t, map[string]int64{servers[0].Addr(): each, servers[1].Addr(): each - 1}, g.Diffs[0].Cards)
	calls.mu.Lock()
	defer calls.mu.Unlock()
	assert.Equal(t, []int64{large, large}, calls.over, "only the large key goes over the bound, alone, on each server")
	assert.GreaterOrEqual(t, calls.calls, 2*(keys*each/bound+1), "calls on each server")
}

// digestCalls is a go-redis hook that counts the digest script's calls,
// and keeps the members of each that read more than the bound (by its
// answer's cardinalities).
type digestCalls struct {
	mu    sync.Mutex
	calls int
	over  []int64
}

func (h *digestCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *digestCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *digestCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		c, ok := cmd.(*redis.Cmd)
		if len(args) < 2 || args[1] != journal.DigestScript.Hash() || !ok {
			return err
		}
		v, _ := c.Val().([]any)
		members := int64(0)
		for i := 0; i < len(v); i += 2 {
			n, _ := v[i].(int64)
			members += n
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls++
		if members > metrics.DigestMembers() {
			if len(v) != 2 {
				members = -members // more than one key
			}
			h.over = append(h.over, members)
		}
		return err
	}
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
