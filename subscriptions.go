package federated

import (
	"sync"
	"weak"

	"github.com/redis/go-redis/v9"
)

// subscriptions are the PubSubs made on one go-redis client, held weakly,
// so that closing the client closes them too. Closing a go-redis client
// ends its PubSubs' connections but not the goroutine that a PubSub's
// Channel runs, which only the PubSub's own Close ends: a subscription
// that ends with its node or the Client would leave it behind. A PubSub
// its owner dropped is forgotten once the collector takes it.
type subscriptions struct {
	mu     sync.Mutex
	subs   []subscription // guarded by mu
	pruned int            // len(subs) after the last pruning; guarded by mu
	closed bool           // guarded by mu
}

// subscription is a PubSub, held weakly, and the first of its channels,
// hashed, which placed it.
type subscription struct {
	ps     weak.Pointer[redis.PubSub]
	hashed string
}

// add keeps ps, placed by the channel hashed, to close with the others;
// once they are closed it closes ps at once.
func (s *subscriptions) add(ps *redis.PubSub, hashed string) *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ps.Close()
		return ps
	}
	if len(s.subs) >= 2*s.pruned+16 {
		s.subs = pruneCollected(s.subs)
		s.pruned = len(s.subs)
	}
	s.subs = append(s.subs, subscription{weak.Make(ps), hashed})
	return ps
}

// closeMoved closes the PubSubs of srv whose first channel is on no node
// of t that holds srv: messages published through the client go to its
// node now, so the subscriber learns to subscribe again, as when its
// server leaves.
func (s *subscriptions) closeMoved(srv *server, t *topology) {
	s.mu.Lock()
	var moved []*redis.PubSub
	n := 0
	for _, sub := range s.subs {
		ps := sub.ps.Value()
		if ps == nil {
			continue
		}
		if !t.holds(srv, sub.hashed) {
			moved = append(moved, ps)
			continue
		}
		s.subs[n] = sub
		n++
	}
	clear(s.subs[n:])
	s.subs = s.subs[:n]
	s.pruned = min(s.pruned, n)
	s.mu.Unlock()
	for _, ps := range moved {
		_ = ps.Close()
	}
}

// closeAll closes every PubSub kept, and those added later as they come.
func (s *subscriptions) closeAll() {
	s.mu.Lock()
	subs := s.subs
	s.subs, s.closed = nil, true
	s.mu.Unlock()
	for _, sub := range subs {
		if ps := sub.ps.Value(); ps != nil {
			_ = ps.Close() // a second Close of one its owner closed only fails
		}
	}
}

// pruneCollected drops the PubSubs the collector took.
func pruneCollected(subs []subscription) []subscription {
	n := 0
	for _, sub := range subs {
		if sub.ps.Value() != nil {
			subs[n] = sub
			n++
		}
	}
	clear(subs[n:])
	return subs[:n]
}
