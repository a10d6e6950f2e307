package syncer_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

// A syncer that starts again (a deploy) takes in what the last one saved
// of the peer's keys: the keys written while it was away are fetched from
// where it left them, not whole, so that the peer sends about a member's
// worth for each; and nothing is missed. Where the local server started
// again since, the copy says nothing and the keys are fetched whole.
func TestRestartedSyncerFetchesFromWhereTheLastLeftTheKeys(t *testing.T) {
	const keys, points = 50, 200
	for _, localRestarts := range []bool{false, true} {
		t.Run(fmt.Sprintf("local server restarted %v", localRestarts), func(t *testing.T) {
			ctx := context.Background()
			servers := redistest.StartN(t, 2)
			peer, local := servers[0], servers[1]
			c := newClient(t, groupConfig(servers))
			now := time.Now()
			write := func(at time.Time, value string) {
				var updates []journal.KeyMembers
				for k := range keys {
					key, err := metricKey(now, "web", fmt.Sprintf("m%d", k))
					require.NoError(t, err)
					updates = append(updates, journal.KeyMembers{Key: key, Members: []string{strconv.FormatInt(at.Unix(), 10) + ":" + value}})
				}
				res, err := merge(ctx, c, peer.Addr(), updates)
				require.NoError(t, err)
				require.Empty(t, res.Failed)
			}
			for p := range points {
				write(now.Add(time.Duration(p-points-5)*time.Second), strconv.Itoa(p))
			}
			_, stop := startSyncer(t, c, []string{local.Addr()}, syncer.Options{NoAntiEntropy: true})
			converged(t, []string{peer.Addr(), local.Addr()}, 10*time.Second)
			stop() // saves what the link knows

			if localRestarts {
				require.NoError(t, direct(t, local.Addr()).Save(ctx).Err())
				require.NoError(t, local.Restart())
			}
			write(now, "new")
			sent := netOutput(t, peer.Addr())
			s, _ := startSyncer(t, c, []string{local.Addr()}, syncer.Options{NoAntiEntropy: true})
			require.Eventually(t, func() bool { return s.Stats().Peers[0].Added >= keys }, 10*time.Second, 5*time.Millisecond)
			perKey := (netOutput(t, peer.Addr()) - sent) / keys
			all := converged(t, []string{peer.Addr(), local.Addr()}, 10*time.Second)
			require.Len(t, all, keys*(points+1))
			t.Logf("the peer sent %d bytes a key changed (%d members of about 15 bytes each)", perKey, points+1)
			if localRestarts {
				assert.Greater(t, perKey, int64(points*10), "every key fetched whole")
			} else {
				assert.Less(t, perKey, int64(points*2), "every key fetched from where the last syncer left it")
			}
		})
	}
}

// A syncer's user whose ACL names the cursors' key but not the copy's (a
// fleet's rules written before it) still replicates: the link does without
// the copy.
func TestSyncerWhoseUserMayNotReachTheCopy(t *testing.T) {
	ctx := context.Background()
	servers := redistest.StartN(t, 2)
	for _, s := range servers {
		require.NoError(t, direct(t, s.Addr()).Do(ctx, "ACL", "SETUSER", "syncer", "on", ">secret", "resetkeys",
			"~[0-9][0-9][0-9][0-9]-*", "~journal", "~journal:horizon", "~journal:origin", "~"+journal.CursorKey,
			"-@all", "+@read", "+@write", "+@scripting", "+@connection", "+time", "-@dangerous", "+info").Err())
	}
	cfg := groupConfig(servers)
	cfg.Options.Username, cfg.Options.Password = "syncer", "secret"
	c := newClient(t, cfg)
	a, b := servers[0].Addr(), servers[1].Addr()
	s, stop := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	writePoints(t, c, a, "web", 20)
	converged(t, []string{a, b}, 5*time.Second)
	stop()
	st := s.Stats().Peers[0]
	assert.Zero(t, st.Errors, "passes failed: %s", st.LastError)
	assert.Zero(t, direct(t, b).Exists(ctx, journal.MarksKey).Val())
}
