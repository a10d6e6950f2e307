package syncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

// A server whose cursor hash or origin hash an operator made a string is
// still read by its peers: those keys serve its own syncer, and its
// journal is sound. Its peers stopped pulling from it, each pass failing
// with a WRONGTYPE of "reading the journal", while writes to it were
// acknowledged (with a cursor hash of another type they still are).
func TestPeerWithASyncerKeyOfAnotherTypeIsStillRead(t *testing.T) {
	for _, key := range []string{journal.CursorKey, "journal:origin"} {
		t.Run(key, func(t *testing.T) {
			servers := redistest.StartN(t, 2)
			a, b := servers[0].Addr(), servers[1].Addr()
			c := newClient(t, groupConfig(servers))
			writePoints(t, c, a, "before", 10)
			require.NoError(t, direct(t, a).Set(context.Background(), key, "x", 0).Err())
			if key == journal.CursorKey {
				writePoints(t, c, a, "after", 10)
			}
			startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
			want := members(t, a)
			require.Eventually(t, func() bool { return len(members(t, b)) == len(want) }, 10*time.Second, 20*time.Millisecond,
				"%s holds %d of %s's %d members", b, len(members(t, b)), a, len(want))
			require.Equal(t, want, members(t, b))
		})
	}
}

// A link whose own server's cursor hash has another type fails each pass
// with an error that names the key, which Redis's WRONGTYPE does not.
func TestLinkErrorNamesItsKeyOfAnotherType(t *testing.T) {
	servers := redistest.StartN(t, 2)
	a, b := servers[0].Addr(), servers[1].Addr()
	c := newClient(t, groupConfig(servers))
	writePoints(t, c, a, "w", 10)
	require.NoError(t, direct(t, b).Set(context.Background(), journal.CursorKey, "x", 0).Err())
	s, _ := startSyncer(t, c, []string{b}, syncer.Options{NoAntiEntropy: true})
	require.Eventually(t, func() bool { return linkStats(t, s, b, a).LastError != "" }, 10*time.Second, 20*time.Millisecond)
	msg := linkStats(t, s, b, a).LastError
	require.Contains(t, msg, "syncer: server "+b+": reading the cursor of "+a+" in "+journal.CursorKey+": ")
	require.Contains(t, msg, "WRONGTYPE")
}
