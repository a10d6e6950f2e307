package torture_test

import (
	"context"
	"errors"
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
	s, err := syncer.New(h.cfg, h.local, syncer.Options{AntiEntropyInterval: 10 * time.Second})
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
