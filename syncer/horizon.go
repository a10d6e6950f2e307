package syncer

import (
	"context"
	"fmt"
	"time"
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
	if time.Since(l.horizonAt) < horizonEvery && l.raising == "" {
		return l.localHorizon, nil
	}
	c := l.s.c
	local, err := c.Horizon(ctx, l.local)
	if err != nil {
		return "", err
	}
	peer, err := c.Horizon(ctx, l.peer)
	if err != nil {
		return "", err
	}
	want := l.raising
	// Period strings of one length sort in time order.
	if peer > local && peer > want {
		if err := l.checkPeerHorizon(peer); err != nil {
			if time.Since(l.warnedAt) > time.Minute {
				l.warnedAt = time.Now()
				l.s.opts.Logger.Warn("syncer: ignoring the peer's horizon", "local", l.local, "peer", l.peer, "err", err)
			}
		} else {
			want = peer
		}
	}
	if want != "" {
		l.raising = want
		removed, err := c.RaiseHorizon(ctx, l.local, want)
		if err != nil {
			return "", err
		}
		l.raising = ""
		l.s.opts.Logger.Info("syncer: raised the local server's horizon to its peer's",
			"local", l.local, "peer", l.peer, "from", local, "to", want, "removed", removed)
		local = max(local, want)
	}
	l.localHorizon, l.horizonAt = local, time.Now()
	return local, nil
}

// checkPeerHorizon refuses a peer's horizon that is not one of the
// federation's period strings (a peer configured with another period), or
// that is after the next period by this host's clock (a horizon set by
// mistake, or a clock far ahead): raising to it would wipe the local server.
// RaiseHorizon applies the same rule.
func (l *link) checkPeerHorizon(h string) error {
	p := l.s.period
	start, err := p.Parse(h)
	if err != nil {
		return err
	}
	if next := p.Next(p.Start(time.Now())); start.After(next) {
		return fmt.Errorf("horizon %s is after the next period %s", h, p.Format(next))
	}
	return nil
}
