package syncer

import (
	"context"
	"time"

	"github.com/redfed/federated/internal/journal"
)

// horizonEvery is how often a link reads the horizons of its two servers:
// they change once a period at most, and the local server's write script
// refuses dropped periods whatever the link knows.
const horizonEvery = time.Second

// horizon returns the local server's horizon, raised to the peer's when the
// peer's is later: the local server missed a DropBefore or came back empty,
// and must neither keep nor take writes of the periods dropped. A raise
// that failed part way, after the horizon was set but before every old key
// was removed, is run again by the next pass until it completes.
func (l *link) horizon(ctx context.Context) (string, error) {
	if l.now().Sub(l.horizonAt) < horizonEvery && l.raising == "" {
		return l.localHorizon, nil
	}
	local, peer, err := l.servers.horizons(ctx)
	if err != nil {
		return "", err
	}
	want := l.raising
	// Period strings of one length sort in time order.
	if peer > local && peer > want {
		if err := l.checkPeerHorizon(peer); err != nil {
			if l.now().Sub(l.warnedAt) > time.Minute {
				l.warnedAt = l.now()
				l.s.opts.Logger.Warn("syncer: ignoring the peer's horizon", "local", l.local, "peer", l.peer, "err", err)
			}
		} else {
			want = peer
		}
	}
	if want != "" {
		l.raising = want
		removed, err := l.servers.drop(ctx, want)
		if err != nil {
			return "", err
		}
		l.raising = ""
		l.s.opts.Logger.Info("syncer: raised the local server's horizon to its peer's",
			"local", l.local, "peer", l.peer, "from", local, "to", want, "removed", removed)
		local = max(local, want)
	}
	l.localHorizon, l.horizonAt = local, l.now()
	return local, nil
}

// checkPeerHorizon refuses a peer's horizon that raising the local server
// to would wrongly wipe it (see journal.CheckHorizon).
func (l *link) checkPeerHorizon(h string) error {
	return journal.CheckHorizon(l.s.period, h)
}
