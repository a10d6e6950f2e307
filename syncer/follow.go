package syncer

import (
	"context"
	"slices"
	"time"

	"github.com/redfed/federated"
)

// runLinks runs a loop for each link until ctx ends, and waits for them.
// Every PollInterval it looks for a change of nodes (Client.SetNodes,
// ReplaceNode, AddNode, RemoveNode): the links of a local server follow
// its group, started for a server that joined it, and, for one that left,
// stopped (the pass under way abandoned, the marks saved). A link started
// does not wait for those stopped, which wait for their command under way
// (a command timeout, for a peer that stopped answering), nor does the
// next look for a change: only a link of the same two servers (one that
// left and came back, or spelt otherwise) waits for the one before it, so
// that two links of one local server and peer never run at once.
func (s *Syncer) runLinks(ctx context.Context) {
	type running struct {
		stop context.CancelFunc
		done chan struct{}
	}
	type stopped struct {
		l    *link
		done chan struct{}
	}
	runs := make(map[*link]running)
	var stopping []stopped // links stopped that may not have ended yet
	start := func(l *link, after []chan struct{}) {
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, w := range after {
				select {
				case <-w:
				case <-lctx.Done():
					return
				}
			}
			l.loop(lctx)
		}()
		runs[l] = running{stop, done}
	}
	defer func() {
		for _, r := range runs {
			<-r.done
		}
		for _, st := range stopping {
			<-st.done
		}
	}()
	// A change made while the Syncer did not run.
	s.follow()
	s.mu.Lock()
	for _, l := range s.links {
		start(l, nil)
	}
	s.mu.Unlock()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		added, removed := s.follow()
		// Forget the links stopped that have ended.
		stopping = slices.DeleteFunc(stopping, func(st stopped) bool {
			select {
			case <-st.done:
				return true
			default:
				return false
			}
		})
		for _, l := range removed {
			runs[l].stop()
			stopping = append(stopping, stopped{l, runs[l].done})
			delete(runs, l)
		}
		for _, l := range added {
			var after []chan struct{}
			for _, st := range stopping {
				if federated.SameServer(st.l.local, l.local) && federated.SameServer(st.l.peer, l.peer) {
					after = append(after, st.done)
				}
			}
			start(l, after)
		}
		for _, l := range removed {
			s.opts.Logger.Info("syncer: link stopped: the peer left the local server's group", "local", l.local, "peer", l.peer)
		}
		for _, l := range added {
			s.opts.Logger.Info("syncer: link started: the peer joined the local server's group", "local", l.local, "peer", l.peer)
		}
	}
}

// follow makes the Syncer's links those of now: of each local server,
// Options.Links's if it names the server, else one from every other server
// of the server's replica group (none for a server that left the
// federation). A link that stays is kept as it is. It returns the links
// added and those removed, none when the nodes did not change since the
// last call.
func (s *Syncer) follow() (added, removed []*link) {
	version := s.c.TopologyVersion()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.linksMade && version == s.linksVersion {
		return nil, nil
	}
	s.linksMade, s.linksVersion = true, version
	var links []*link
	for _, local := range s.locals {
		// As the client spells it now: a change of nodes may spell a
		// server otherwise (db1 for DB1), and it is the same server.
		addr := spelt(s.c, []string{local})[0]
		peers, custom := s.opts.Links[local]
		if custom {
			peers = spelt(s.c, peers)
		} else {
			_, group, err := s.c.ReplicaGroup(addr)
			if err != nil {
				continue // the server left the federation
			}
			peers = slices.DeleteFunc(slices.Clone(group), func(p string) bool { return p == addr })
		}
		for _, peer := range peers {
			i := slices.IndexFunc(s.links, func(l *link) bool { return l.local == addr && l.peer == peer })
			if i >= 0 {
				links = append(links, s.links[i])
				continue
			}
			l := newLink(s, addr, peer)
			links = append(links, l)
			added = append(added, l)
		}
	}
	for _, l := range s.links {
		if !slices.Contains(links, l) {
			removed = append(removed, l)
		}
	}
	s.links = links
	return added, removed
}

// spelt returns addrs as the client spells its servers: each that names a
// server of the client another way (federated.SameServer) its spelling, the
// others as they are.
func spelt(c *federated.Client, addrs []string) []string {
	out := slices.Clone(addrs)
	servers := c.Servers()
	for i, addr := range out {
		if slices.Contains(servers, addr) {
			continue
		}
		if j := slices.IndexFunc(servers, func(s string) bool { return federated.SameServer(s, addr) }); j >= 0 {
			out[i] = servers[j]
		}
	}
	return out
}
