package syncer_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

// A server's data set can go back without the server starting again: it
// takes a backup's by replication (REPLICAOF the backup, then NO ONE, as
// a failback or a resync does). Its run_id stays; its master_replid, part
// of the run a syncer reads, does not.

// replicate makes replica take master's data set by replication, and
// stand alone again.
func replicate(t *testing.T, replica, master string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, direct(t, master).ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err())
	r := direct(t, replica)
	host, port, _ := strings.Cut(master, ":")
	require.NoError(t, r.Do(ctx, "REPLICAOF", host, port).Err())
	require.Eventually(t, func() bool {
		info := r.Info(ctx, "replication").Val()
		return strings.Contains(info, "master_link_status:up") && !strings.Contains(info, "master_sync_in_progress:1")
	}, 10*time.Second, 5*time.Millisecond, "%s took the data set of %s", replica, master)
	require.NoError(t, r.Do(ctx, "REPLICAOF", "NO", "ONE").Err())
}

// A syncer that stops right after its local server went back to a
// backup's data set saves marks that name merges the server no longer
// holds: the next syncer must not take them in.
func TestSavedMarksAfterALocalRollbackAreLeft(t *testing.T) {
	ctx := context.Background()
	servers := redistest.StartN(t, 3)
	peer, local, backup := servers[0].Addr(), servers[1].Addr(), servers[2].Addr()
	c := newClient(t, groupConfig(servers[:2]))
	now := time.Now()
	write := func(at time.Time, value string) {
		var updates []journal.KeyMembers
		for k := range 5 {
			key, err := metricKey(now, "web", fmt.Sprintf("m%d", k))
			require.NoError(t, err)
			updates = append(updates, journal.KeyMembers{Key: key, Members: []string{strconv.FormatInt(at.UnixMilli(), 10) + "e-3:" + value}})
		}
		_, err := merge(ctx, c, peer, updates)
		require.NoError(t, err)
	}
	for i := range 10 {
		write(now.Add(time.Duration(i-200)*time.Second), "a"+strconv.Itoa(i))
	}
	// Passes 3 s apart: the rollback falls between two.
	s, stop := startSyncer(t, c, []string{local}, syncer.Options{NoAntiEntropy: true, PollInterval: 3 * time.Second})
	converged(t, []string{peer, local}, 10*time.Second)
	replicate(t, backup, local) // the backup of the local server
	for i := range 30 {
		write(now.Add(time.Duration(2*i-60)*time.Second), "b"+strconv.Itoa(i))
	}
	converged(t, []string{peer, local}, 10*time.Second)
	passes := s.Stats().Peers[0].Passes
	require.Eventually(t, func() bool { return s.Stats().Peers[0].Passes > passes }, 10*time.Second, time.Millisecond)
	replicate(t, local, backup) // the local server goes back to it
	stop()                      // before the link's next pass: it saves its marks

	startSyncer(t, c, []string{local}, syncer.Options{NoAntiEntropy: true})
	converged(t, []string{peer, local}, 10*time.Second)
}

// A peer whose data set went back, by a restart from a snapshot or by
// replication from a backup, has lost what it took since: a count below
// a checkpoint read before no longer says that nothing was added below
// the boundary (a member lost and a late one added leave it as it was).
// The link must read its checkpoints again.
func TestPeerRolledBackDoesNotHideALateMember(t *testing.T) {
	for _, how := range []string{"restarted from a snapshot", "replicated from a backup"} {
		t.Run(how, func(t *testing.T) {
			servers := redistest.StartN(t, 3)
			a, b, backup := servers[0].Addr(), servers[1].Addr(), servers[2].Addr()
			c := newClient(t, groupConfig(servers[:2]))
			startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
			ctx := context.Background()
			now := time.Now()
			key, err := metricKey(now, "late", "m")
			require.NoError(t, err)
			base := float64(now.Unix() - 60)
			write := func(ts float64, v int) string {
				t.Helper()
				m := strconv.FormatFloat(ts, 'f', -1, 64) + ":" + strconv.Itoa(v)
				require.Eventually(t, func() bool {
					_, err := merge(ctx, c, a, []journal.KeyMembers{{Key: key, Members: []string{m}}})
					return err == nil
				}, 5*time.Second, 20*time.Millisecond, "write %s to A", m)
				return m
			}
			onB := func(m string) func() bool {
				return func() bool { return direct(t, b).ZScore(ctx, key, m).Err() == nil }
			}
			var last string
			for i := range 11 { // the newest is base+10: the nearest boundary base+8
				last = write(base+float64(i), i)
			}
			require.Eventually(t, onB(last), 3*time.Second, 10*time.Millisecond)
			if how == "restarted from a snapshot" {
				require.NoError(t, direct(t, a).Save(ctx).Err())
			} else {
				replicate(t, backup, a)
			}

			// A late member, below the boundary, taken after the snapshot:
			// B gets it.
			lost := write(base+5.5, 100)
			require.Eventually(t, onB(lost), 3*time.Second, 10*time.Millisecond)
			if how == "restarted from a snapshot" {
				require.NoError(t, servers[0].Restart())
			} else {
				replicate(t, a, backup)
			}
			require.Eventually(t, func() bool { return direct(t, a).Ping(ctx).Err() == nil }, 5*time.Second, 10*time.Millisecond)
			assert.Error(t, direct(t, a).ZScore(ctx, key, lost).Err(), "A lost what it took after the snapshot")

			// Another late member below the same boundary: A holds as many
			// members below it as when the link last counted.
			late := write(base+6.5, 101)
			require.Eventually(t, onB(late), 3*time.Second, 10*time.Millisecond, "the late member reached B")
		})
	}
}
