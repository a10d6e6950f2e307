package torture_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/syncer"
)

// hostSyncer is the replication daemon of one simulated host: a Syncer of
// its four servers, with a client of its own, that a fault may restart.
type hostSyncer struct {
	cfg   federated.Config
	local []string

	mu     sync.Mutex // guards the fields below
	s      *syncer.Syncer
	cancel context.CancelFunc
	done   chan struct{}
	before syncer.Stats // counters of the syncers stopped before s
}

func (h *hostSyncer) start() error {
	// No periodic anti-entropy: the passes alone must copy every point;
	// the test runs anti-entropy once at the end, and counts what it
	// repaired.
	s, err := syncer.New(h.cfg, h.local, syncer.Options{NoAntiEntropy: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	h.mu.Lock()
	h.s, h.cancel, h.done = s, cancel, done
	h.mu.Unlock()
	return nil
}

// stop ends Run, waits for it and closes the syncer's client. It does
// nothing when the syncer is stopped.
func (h *hostSyncer) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == nil {
		return
	}
	h.cancel()
	<-h.done
	st := h.s.Stats()
	h.before.AntiEntropy.Repaired += st.AntiEntropy.Repaired
	h.before.Peers = append(h.before.Peers, st.Peers...)
	_ = h.s.Close()
	h.s = nil
}

// antiEntropy runs anti-entropy, again when a run fails (a command may
// time out on a loaded machine), and returns the keys repaired.
func (h *hostSyncer) antiEntropy(ctx context.Context) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == nil {
		return 0, errors.New("the syncer is stopped")
	}
	var repaired int64
	var errs []error
	for range 3 {
		report, err := h.s.AntiEntropy(ctx)
		repaired += int64(report.Repaired)
		if err == nil {
			return repaired, nil
		}
		errs = append(errs, err)
	}
	return repaired, errors.Join(errs...)
}

// syncedTo returns the SyncedTo of the running syncer's link of local
// pulling from peer, zero while the syncer is stopped.
func (h *hostSyncer) syncedTo(local, peer string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == nil {
		return time.Time{}
	}
	for _, p := range h.s.Stats().Peers {
		if p.Local == local && p.Peer == peer {
			return p.SyncedTo
		}
	}
	return time.Time{}
}

// describe prints the running syncer's stats of a link, for failures.
func (h *hostSyncer) describe(local, peer string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == nil {
		return "the syncer is stopped"
	}
	for _, p := range h.s.Stats().Peers {
		if p.Local == local && p.Peer == peer {
			return fmt.Sprintf("%+v", p)
		}
	}
	return "no such link"
}

// stats returns the counters of every syncer the host ran.
func (h *hostSyncer) stats() syncer.Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.before
	st.Peers = slices.Clone(st.Peers)
	if h.s != nil {
		now := h.s.Stats()
		st.AntiEntropy.Repaired += now.AntiEntropy.Repaired
		st.Peers = append(st.Peers, now.Peers...)
	}
	return st
}
