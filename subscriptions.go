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
	subs   []weak.Pointer[redis.PubSub] // guarded by mu
	pruned int                          // len(subs) after the last pruning; guarded by mu
	closed bool                         // guarded by mu
}

// add keeps ps, to close with the others; once they are closed it closes
// ps at once.
func (s *subscriptions) add(ps *redis.PubSub) *redis.PubSub {
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
	s.subs = append(s.subs, weak.Make(ps))
	return ps
}

// closeAll closes every PubSub kept, and those added later as they come.
func (s *subscriptions) closeAll() {
	s.mu.Lock()
	subs := s.subs
	s.subs, s.closed = nil, true
	s.mu.Unlock()
	for _, w := range subs {
		if ps := w.Value(); ps != nil {
			_ = ps.Close() // a second Close of one its owner closed only fails
		}
	}
}

// pruneCollected drops the PubSubs the collector took.
func pruneCollected(subs []weak.Pointer[redis.PubSub]) []weak.Pointer[redis.PubSub] {
	n := 0
	for _, w := range subs {
		if w.Value() != nil {
			subs[n] = w
			n++
		}
	}
	clear(subs[n:])
	return subs[:n]
}
