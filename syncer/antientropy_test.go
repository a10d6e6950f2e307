package syncer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

// Anti-entropy compares every key at its first run, then the keys changed
// since that run began, and every key again once AntiEntropyFull has
// passed, after a link pulled its peer from the start again, or after a
// run that did not repair what it found: a run reads every member of the
// keys it compares, and comparing the whole store every few minutes cost
// each server as much as it holds.
func TestAntiEntropyComparesTheKeysChangedBetweenFullRuns(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	// No link: the divergences are anti-entropy's alone to find.
	opts := syncer.Options{AntiEntropyInterval: 100 * time.Millisecond, AntiEntropyFull: time.Hour, Links: map[string][]string{a: {}}}
	var s *syncer.Syncer
	ae := func() syncer.AntiEntropyStats { return s.Stats().AntiEntropy }
	start := func() (stop func()) {
		s, stop = startSyncer(t, c, []string{a}, opts)
		require.Eventually(t, func() bool { return ae().FullChecks == 1 && ae().LastError == "" }, 5*time.Second, 10*time.Millisecond)
		return stop
	}
	stop := start()

	// Keys on both servers, of which the second holds a member the first
	// lacks, written without a journal entry (by hand): only anti-entropy
	// gives it to the first. One key changed an hour ago by the journals,
	// the other now.
	now := time.Now()
	second := fmt.Sprintf("%d:2", now.Unix())
	keys := map[string]string{}
	for _, name := range []string{"old", "new"} {
		key, err := metricKey(now, "web1", name)
		require.NoError(t, err)
		keys[name] = key
		for _, addr := range []string{a, b} {
			_, err := merge(ctx, c, addr, []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:1", now.Unix())}}})
			require.NoError(t, err)
		}
	}
	// makeOld scores the old key's journal entries an hour back (a repair
	// journals it anew), and takes its second member from the first server.
	makeOld := func() {
		for _, addr := range []string{a, b} {
			require.NoError(t, direct(t, addr).ZAdd(ctx, "journal", redis.Z{Score: float64(now.Add(-time.Hour).Unix()), Member: keys["old"]}).Err())
		}
		require.NoError(t, direct(t, a).ZRem(ctx, keys["old"], second).Err())
	}
	makeOld()
	for _, key := range keys {
		require.NoError(t, direct(t, b).ZAdd(ctx, key, redis.Z{Score: float64(now.Unix()), Member: second}).Err())
	}
	runs := ae().Runs
	require.Eventually(t, func() bool { return direct(t, a).ZCard(ctx, keys["new"]).Val() == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return ae().Runs >= runs+3 }, 5*time.Second, 10*time.Millisecond)
	assert.EqualValues(t, 1, direct(t, a).ZCard(ctx, keys["old"]).Val(), "a key unchanged since the full run waits for the next")
	assert.EqualValues(t, 1, ae().FullChecks)

	// The next full run, once AntiEntropyFull has passed, finds it.
	stop()
	opts.AntiEntropyFull = 600 * time.Millisecond
	stop = start() // its first run repaired it: as it was again
	makeOld()
	require.Eventually(t, func() bool { return direct(t, a).ZCard(ctx, keys["old"]).Val() == 2 && ae().FullChecks >= 2 }, 5*time.Second, 10*time.Millisecond)

	// A full run that finds it but cannot repair it (the first server
	// full) is not done: the next compares every key again.
	stop()
	opts.AntiEntropyFull = time.Hour
	makeOld()
	require.NoError(t, direct(t, a).ConfigSet(ctx, "maxmemory", "1").Err())
	defer direct(t, a).ConfigSet(ctx, "maxmemory", "0")
	s, stop = startSyncer(t, c, []string{a}, opts)
	require.Eventually(t, func() bool { return ae().Runs >= 2 && ae().LastError != "" }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, ae().LastError, "OOM")
	require.NoError(t, direct(t, a).ConfigSet(ctx, "maxmemory", "0").Err())
	require.Eventually(t, func() bool { return direct(t, a).ZCard(ctx, keys["old"]).Val() == 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Greater(t, ae().FullChecks, int64(2), "full runs until one repairs what it found")
	stop()

	// A key that can never be repaired (of another type on the first
	// server) fails every run, but does not make the next full.
	broken, err := metricKey(now, "web1", "broken")
	require.NoError(t, err)
	_, err = merge(ctx, c, b, []journal.KeyMembers{{Key: broken, Members: []string{fmt.Sprintf("%d:1", now.Unix())}}})
	require.NoError(t, err)
	require.NoError(t, direct(t, a).Set(ctx, broken, "someone's string", 0).Err())
	s, stop = startSyncer(t, c, []string{a}, opts)
	require.Eventually(t, func() bool { return ae().Runs >= 4 }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, ae().LastError, broken)
	assert.EqualValues(t, 1, ae().FullChecks, "a key that can never be repaired makes no run full")
	stop()
	require.NoError(t, direct(t, a).Del(ctx, broken).Err())

	// A server that lost its data: the link pulls its peer from the start
	// again, and the next run compares every key.
	opts.Links = nil
	stop = start()
	defer stop()
	require.NoError(t, direct(t, a).FlushAll(ctx).Err())
	require.Eventually(t, func() bool { return ae().FullChecks >= 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Positive(t, linkStats(t, s, a, b).Resets)
	require.Eventually(t, func() bool { return direct(t, a).ZCard(ctx, keys["old"]).Val() == 2 }, 5*time.Second, 10*time.Millisecond)
}

// A change of nodes that renames the local servers' node (Client.SetNodes)
// while the syncer runs: anti-entropy compares the group under its new
// name, every key at first. It went on asking for the old name, and
// failed at every run.
func TestAntiEntropyAfterItsNodeIsRenamed(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a := servers[0].Addr()
	c := newClient(t, groupConfig(servers))
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{AntiEntropyInterval: 100 * time.Millisecond, AntiEntropyFull: time.Hour})
	ae := func() syncer.AntiEntropyStats { return s.Stats().AntiEntropy }
	require.Eventually(t, func() bool { return ae().FullChecks == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.SetNodes(map[string]federated.Node{"renamed": {Addresses: redistest.Addrs(servers)}}))
	require.Eventually(t, func() bool { return ae().FullChecks == 2 }, 5*time.Second, 10*time.Millisecond)
	runs := ae().Runs
	require.Eventually(t, func() bool { return ae().Runs >= runs+2 }, 5*time.Second, 10*time.Millisecond)
	assert.Empty(t, ae().LastError)
}

// A change of nodes that gives the local server's group another server:
// anti-entropy starts the group over with a run that compares every key,
// which finds what the new server holds. It kept the group's schedule by
// its name, and compared only the keys changed since, for up to an hour.
func TestAntiEntropyAfterItsGroupGetsOtherServers(t *testing.T) {
	servers := redistest.StartN(t, 3)
	a, b, newcomer := servers[0].Addr(), servers[1].Addr(), servers[2].Addr()
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"group": {Addresses: []string{a, b}}}, Options: quiet()})
	ctx := context.Background()
	now := time.Now()
	key, err := metricKey(now, "web1", "m")
	require.NoError(t, err)
	// The newcomer holds a key, journalled two hours ago, that a lacks.
	require.NoError(t, direct(t, newcomer).ZAdd(ctx, key, redis.Z{Score: float64(now.Unix()), Member: fmt.Sprintf("%d:1", now.Unix())}).Err())
	require.NoError(t, direct(t, newcomer).ZAdd(ctx, "journal", redis.Z{Score: float64(now.Add(-2 * time.Hour).Unix()), Member: key}).Err())
	s, _ := startSyncer(t, c, []string{a}, syncer.Options{AntiEntropyInterval: 100 * time.Millisecond, AntiEntropyFull: time.Hour, Links: map[string][]string{a: {}}})
	ae := func() syncer.AntiEntropyStats { return s.Stats().AntiEntropy }
	require.Eventually(t, func() bool { return ae().FullChecks == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.SetNodes(map[string]federated.Node{"group": {Addresses: []string{a, newcomer}}}))
	require.Eventually(t, func() bool { return direct(t, a).ZCard(ctx, key).Val() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, ae().FullChecks, int64(2))
}
