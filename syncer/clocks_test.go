package syncer_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/faultproxy"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

// writeStamped writes, through the write script as a redfed writer does,
// one point per key of host to a server, each stamped at when.
func writeStamped(t *testing.T, c *federated.Client, addr, host string, keys int, when time.Time, value int) {
	t.Helper()
	var updates []journal.KeyMembers
	ts := strconv.FormatFloat(float64(when.UnixMicro())/1e6, 'f', -1, 64)
	for i := range keys {
		key, err := metricKey(when, host, fmt.Sprintf("m%d", i))
		require.NoError(t, err)
		updates = append(updates, journal.KeyMembers{Key: key, Members: []string{ts + ":" + strconv.Itoa(value)}})
	}
	res, err := merge(context.Background(), c, addr, updates)
	require.NoError(t, err)
	require.Empty(t, res.Failed)
}

// The passes copy every member added to a changed key, whatever its
// timestamp: writers whose clocks are seconds apart, a clock that steps
// back, a backfill of the last hours. Anti-entropy is off: without the
// passes nothing would arrive. (An earlier syncer fetched only the members
// stamped after the newest it had merged less two seconds, and left these
// to anti-entropy, minutes later.)
func TestWriterClocksDoNotMatter(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew []time.Duration // of each writer's clock, in turn
	}{
		{"two writers 5s apart", []time.Duration{0, -5 * time.Second}},
		{"a clock that steps back 10s", []time.Duration{0, 0, 0, -10 * time.Second, -10 * time.Second}},
		{"a backfill of points 3 hours old", []time.Duration{0, -3 * time.Hour, 0, -3*time.Hour - time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			a, b := servers[0].Addr(), servers[1].Addr()
			c := newClient(t, groupConfig(servers))
			startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
			now := time.Now()
			for round := range 30 {
				skew := tc.skew[round%len(tc.skew)]
				writeStamped(t, c, a, "h", 20, now.Add(skew+time.Duration(round)*10*time.Millisecond), round)
				time.Sleep(20 * time.Millisecond) // let the passes interleave with the writes
			}
			got := converged(t, []string{a, b}, 1500*time.Millisecond)
			assert.Len(t, got, 30*20)
		})
	}
}

// A writer that journals as the Perl module does, with its own clock in
// whole seconds (ZADD journal <sec> <key> beside ZADD <key> <sec> <member>),
// may write a key twice in one second without moving its journal entry.
// The read of the overlap compares the key's cardinality with the one
// merged, and fetches the key again.
func TestPerlStyleWriterIsReplicated(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	ctx := context.Background()
	ra := direct(t, a)
	for round := range 10 {
		sec := time.Now().Unix()
		for i := range 20 {
			key, err := metricKey(time.Unix(sec, 0), "perl", fmt.Sprintf("m%d", i))
			require.NoError(t, err)
			member := fmt.Sprintf("%d:%d", sec-int64(round), round) // stamped in the past too
			require.NoError(t, ra.ZAdd(ctx, key, redis.Z{Score: float64(sec - int64(round)), Member: member}).Err())
			require.NoError(t, ra.ZAdd(ctx, "journal", redis.Z{Score: float64(sec), Member: key}).Err())
		}
		time.Sleep(30 * time.Millisecond) // several writes in each second
	}
	got := converged(t, []string{a, b}, 8*time.Second) // a read of the overlap every 5s
	assert.Len(t, got, 10*20)
}

// A syncer that stops and starts again reads the overlap from where the
// last one's last complete read began. The entries a writer journalled
// with its own clock behind since then (the Perl module's whole seconds),
// below the cursor that a writer on the server's clock keeps moving, are
// read by no other pass: a first read from the loaded cursor less the
// overlap missed those journalled before the stop less about the
// overlap, for good (anti-entropy is off).
func TestOverlapReadResumesAcrossASyncerRestart(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	opts := syncer.Options{NoAntiEntropy: true, Overlap: 3 * time.Second, OverlapInterval: 3 * time.Second}
	s, stop := startSyncer(t, c, []string{b}, opts)
	ctx := context.Background()
	ra := direct(t, a)
	n := 0
	write := func() {
		sec := time.Now().Unix() - 1 // 1-2 s behind the server's clock
		key, err := metricKey(time.Unix(sec, 0), "perl", fmt.Sprintf("m%d", n))
		require.NoError(t, err)
		require.NoError(t, ra.ZAdd(ctx, key, redis.Z{Score: float64(sec), Member: fmt.Sprintf("%d:%d", sec, n)}).Err())
		require.NoError(t, ra.ZAdd(ctx, "journal", redis.Z{Score: float64(sec), Member: key}).Err())
		n++
		writeStamped(t, c, a, "go", 1, time.Now(), n) // journalled with the server's clock
		time.Sleep(50 * time.Millisecond)
	}
	writeFor := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			write()
		}
	}
	// Until a read of the overlap completes, then for most of an interval.
	writeFor(500 * time.Millisecond)
	synced := linkStats(t, s, b, a).SyncedTo
	for end := time.Now().Add(5 * time.Second); !linkStats(t, s, b, a).SyncedTo.After(synced); {
		require.True(t, time.Now().Before(end), "no read of the overlap completed")
		write()
	}
	writeFor(2500 * time.Millisecond)
	stop()
	startSyncer(t, c, []string{b}, opts)
	writeFor(500 * time.Millisecond)
	got := converged(t, []string{a, b}, 8*time.Second)
	assert.Len(t, got, 2*n)
}

// A local server that comes back empty, or from an older snapshot, lacks
// what the stats said was merged: SyncedTo goes back to zero until the
// link has pulled the peer again, so that an operator who waits for it
// to pass a fence before stopping the peer waits for the refill. (It kept
// its old value, past the fence, while the server held 1 key of 30,003.)
func TestSyncedToAfterTheLocalServerLostItsData(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("from a snapshot %v", snapshot), func(t *testing.T) {
			const keys = 24000 // more than a pass reads: the refill takes several
			servers := redistest.StartN(t, 2)
			a, b := servers[0].Addr(), servers[1].Addr()
			c := newClient(t, groupConfig(servers))
			ctx := context.Background()
			rb := direct(t, b)
			if snapshot {
				require.NoError(t, rb.Save(ctx).Err()) // of nothing yet
			}
			updates := onePointEach(t, time.Now(), keys)
			_, err := merge(ctx, c, a, updates)
			require.NoError(t, err)
			period, _, _ := strings.Cut(updates[0].Key, ":")
			// The metric keys B holds, not the journal's nor the cursors';
			// -1 when B does not answer.
			metricKeys := func() int64 {
				n, err := rb.Eval(ctx, "return #redis.call('KEYS', ARGV[1])", nil, period+":h*").Int64()
				if err != nil {
					return -1
				}
				return n
			}
			s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
			require.Eventually(t, func() bool { return metricKeys() >= keys }, 60*time.Second, 50*time.Millisecond)
			fence := time.Now()
			require.Eventually(t, func() bool { return linkStats(t, s, b, a).SyncedTo.After(fence) }, 20*time.Second, 20*time.Millisecond)

			resets := linkStats(t, s, b, a).Resets
			require.NoError(t, servers[1].Restart())
			restarted := time.Now()
			wrong := ""
			require.Eventually(t, func() bool {
				st := linkStats(t, s, b, a)
				held := metricKeys()
				if st.Resets > resets && held >= 0 && held < keys && st.SyncedTo.After(fence) {
					wrong = fmt.Sprintf("SyncedTo %v after the fence while B holds %d keys of %d", st.SyncedTo.Sub(fence), held, keys)
					return true
				}
				return held >= keys && st.SyncedTo.After(restarted)
			}, 60*time.Second, 5*time.Millisecond, "B refilled, and SyncedTo says so")
			assert.Empty(t, wrong)
		})
	}
}

// A key B merged from A is marked an echo for A, and A skips its entries.
// A member added to it on B by a writer that does not keep the marks (a
// plain ZADD and journal entry) changes its cardinality: A fetches it.
func TestForeignWriteAfterAnEchoReachesTheOrigin(t *testing.T) {
	a, b, c, s := warmPair(t, 50)
	before := linkStats(t, s, a, b)
	writePoints(t, c, a, "origin", 50) // 5 keys, merged into B as echoes for A
	converged(t, []string{a, b}, 2*time.Second)
	require.Eventually(t, func() bool { return linkStats(t, s, a, b).Echoes >= before.Echoes+5 }, 3*time.Second, 10*time.Millisecond)

	ctx := context.Background()
	key, err := metricKey(time.Now(), "origin", "m0")
	require.NoError(t, err)
	member := fmt.Sprintf("%d:99", time.Now().Unix())
	rb := direct(t, b)
	require.NoError(t, rb.ZAdd(ctx, key, redis.Z{Score: float64(time.Now().Unix()), Member: member}).Err())
	require.NoError(t, rb.ZAdd(ctx, "journal", redis.Z{Score: float64(time.Now().UnixMicro()) / 1e6, Member: key}).Err())
	ra := direct(t, a)
	require.Eventually(t, func() bool { return ra.ZScore(ctx, key, member).Err() == nil }, time.Second, 10*time.Millisecond,
		"the member added on B reached A")
}

// A journal entry scored ahead of the peer's clock (a writer whose clock
// is ahead, journalling with its own time) does not move the cursor past
// the peer's clock: the changes journalled meanwhile by the peer's clock
// keep replicating at once.
func TestFutureJournalEntryDoesNotHoldReplicationBack(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	ctx := context.Background()
	ahead := time.Now().Add(30 * time.Second)
	key, err := metricKey(ahead, "ahead", "cpu")
	require.NoError(t, err)
	ra := direct(t, a)
	require.NoError(t, ra.ZAdd(ctx, key, redis.Z{Score: float64(ahead.Unix()), Member: fmt.Sprintf("%d:1", ahead.Unix())}).Err())
	require.NoError(t, ra.ZAdd(ctx, "journal", redis.Z{Score: float64(ahead.Unix()), Member: key}).Err())
	converged(t, []string{a, b}, 2*time.Second)
	assert.Less(t, s.Stats().Peers[0].Cursor, float64(time.Now().Add(time.Second).Unix()), "the cursor stays behind the peer's clock")

	for round := range 5 {
		writeStamped(t, c, a, "now", 10, time.Now(), round)
		converged(t, []string{a, b}, time.Second)
	}
}

// More entries scored ahead of the peer's clock than a pass reads (21,000
// keys journalled by writers two minutes ahead) are all read by each
// pass, which then ends: a pass read the first 20,000 of them again and
// again with no pause, the rest waited for the clock, and SyncedTo never
// moved, though the changes of the present were merged.
func TestManyJournalEntriesAheadOfThePeersClock(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	ahead := time.Now().Add(2 * time.Minute)
	pipe := direct(t, a).Pipeline()
	const keys = 21000
	for i := range keys {
		key, err := metricKey(ahead, fmt.Sprintf("fast%d", i), "cpu")
		require.NoError(t, err)
		pipe.ZAdd(ctx, key, redis.Z{Score: float64(ahead.Unix()), Member: fmt.Sprintf("%d:1", ahead.Unix())})
		pipe.ZAdd(ctx, "journal", redis.Z{Score: float64(ahead.Unix() + int64(i%60)), Member: key})
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	rb := direct(t, b)
	require.Eventually(t, func() bool { return len(rb.Keys(ctx, "*:fast*:cpu").Val()) == keys }, 20*time.Second, 50*time.Millisecond, "every key ahead is copied")
	writePoints(t, c, a, "now", 10)
	written := time.Now()
	require.Eventually(t, func() bool { return s.Stats().Peers[0].SyncedTo.After(written) }, 10*time.Second, 50*time.Millisecond,
		"SyncedTo passes the write: %+v", s.Stats().Peers[0])
}

// Lag says how old the local copy of the peer's changes may be: small
// while the link keeps up, growing while the peer cannot be read. SyncedTo
// passes a write once it is merged.
func TestLagAndSyncedToSayWhatIsMerged(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	writePoints(t, c, a, "h", 50)
	written := time.Now()
	require.Eventually(t, func() bool { return s.Stats().Peers[0].SyncedTo.After(written) }, 8*time.Second, 20*time.Millisecond,
		"SyncedTo passes the write")
	assert.Len(t, members(t, b), 50, "what SyncedTo covers is there")
	assert.Less(t, s.Stats().Peers[0].Lag, time.Second)

	require.NoError(t, servers[0].Pause())
	t.Cleanup(func() { _ = servers[0].Resume() })
	require.Eventually(t, func() bool { return s.Stats().Peers[0].Lag > 3*time.Second }, 10*time.Second, 50*time.Millisecond,
		"the lag grows while the peer does not answer")
	require.NoError(t, servers[0].Resume())
	require.Eventually(t, func() bool { return s.Stats().Peers[0].Lag < time.Second }, 10*time.Second, 50*time.Millisecond,
		"and falls once it answers again")
}

// A member added on B by a writer that journals with its own clock, behind
// the point up to which A's syncer has read B's journal, and then a merge
// from A into the same key: the key holds something A lacks, so it is no
// echo, and A fetches it. (An earlier rule took a key whose last change
// was journalled before A's cursor for one A had merged.)
func TestForeignWriteThenMergeIsNotAnEcho(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	ctx := context.Background()
	pb, err := faultproxy.New(b)
	require.NoError(t, err)
	defer pb.Close()
	cfgA := federated.Config{Nodes: map[string]federated.Node{"group": {Addresses: []string{a, pb.Addr()}}}, Options: quiet()}
	cfgA.Options.CommandTimeout = 200 * time.Millisecond
	sa, _ := startSyncer(t, newClient(t, cfgA), []string{a}, syncer.Options{NoAntiEntropy: true})
	sb, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})

	now := time.Now()
	key, err := metricKey(now, "mixed", "m0")
	require.NoError(t, err)
	writeStamped(t, c, a, "mixed", 1, now, 1)
	converged(t, []string{a, b}, 2*time.Second)
	require.Eventually(t, func() bool { return linkStats(t, sa, a, pb.Addr()).Passes > 3 }, 3*time.Second, 10*time.Millisecond)

	// A cannot read B for a while. On B: a member journalled a second
	// behind A's cursor, as the Perl module may; then a merge from A.
	pb.Blackhole(true)
	rb := direct(t, b)
	behind := linkStats(t, sa, a, pb.Addr()).Cursor - 1
	member := fmt.Sprintf("%d:42", now.Unix())
	require.NoError(t, rb.ZAdd(ctx, key, redis.Z{Score: float64(now.Unix()), Member: member}).Err())
	require.NoError(t, rb.ZAdd(ctx, "journal", redis.Z{Score: behind, Member: key}).Err())
	added := linkStats(t, sb, b, a).Added
	writeStamped(t, c, a, "mixed", 1, now.Add(time.Second), 2)
	require.Eventually(t, func() bool { return linkStats(t, sb, b, a).Added > added }, 3*time.Second, 10*time.Millisecond)
	pb.Heal()

	ra := direct(t, a)
	require.Eventually(t, func() bool { return ra.ZScore(ctx, key, member).Err() == nil }, 8*time.Second, 20*time.Millisecond,
		"the member added on B reached A")
}
