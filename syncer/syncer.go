package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/metrics"
)

// Defaults of Options.
const (
	DefaultPollInterval        = 100 * time.Millisecond // Options.PollInterval
	DefaultOverlap             = 5 * time.Second        // Options.Overlap
	DefaultOverlapInterval     = 5 * time.Second        // Options.OverlapInterval
	DefaultBatch               = 1000                   // Options.Batch
	DefaultAntiEntropyInterval = 5 * time.Minute        // Options.AntiEntropyInterval
	DefaultAntiEntropyFull     = time.Hour              // Options.AntiEntropyFull
)

// Floors of Options: a shorter interval (1ns, a slip of the unit) makes a
// syncer spin, sending its servers commands back to back.
const (
	MinPollInterval        = time.Millisecond       // Options.PollInterval
	MinOverlapInterval     = 10 * time.Millisecond  // Options.OverlapInterval
	MinAntiEntropyInterval = 100 * time.Millisecond // Options.AntiEntropyInterval and AntiEntropyFull
)

// antiEntropyMargin is how much earlier than the last full run's start a
// run compares the keys changed since, beside Options.Overlap: the
// journals are scored by the servers' clocks.
const antiEntropyMargin = time.Minute

// Options tune a Syncer. The zero value of every field means its default;
// a negative one is an error.
type Options struct {
	// PollInterval is the pause between passes that found nothing more to
	// pull. Default 100ms; at least MinPollInterval.
	PollInterval time.Duration
	// Overlap is how far a pass, every OverlapInterval, reads a peer's
	// journal again before the peer's time when the last such read began
	// (up to the cursor), so that a step back of the peer's clock by less
	// than that loses nothing, nor does a writer that journals with its own
	// clock (the Perl module, redis-cli) less than that behind the peer's.
	// Default 5s.
	Overlap time.Duration
	// OverlapInterval is how often a pass reads the overlap again: the
	// longest a change of such a writer waits before it is copied, beside
	// a pass. Shorter reads more of the journal again. Default 5s; at
	// least MinOverlapInterval.
	OverlapInterval time.Duration
	// Batch is how many journal entries a read takes. Default 1000.
	Batch int
	// AntiEntropyInterval is the pause between anti-entropy runs, which
	// compare the keys of the local servers' groups and repair the local
	// servers: in each group, the keys changed since the last run that
	// compared them all and met no failure that passes, and every key once
	// AntiEntropyFull has passed since that run. Default 5m; at least
	// MinAntiEntropyInterval.
	AntiEntropyInterval time.Duration
	// AntiEntropyFull is how often an anti-entropy run compares every key,
	// however long ago it changed: a run reads every member of each key it
	// compares (about 0.2 µs a member of a server's time), so that
	// comparing the whole store at every run would cost each server as much
	// as it holds every few minutes. A run after a link pulled its peer from
	// the start again (a server that lost its data), or after a run that
	// compared every key but met a failure that passes (a key it could not
	// repair for a full server, a server down), compares every key of the
	// group too. Default 1h; at least MinAntiEntropyInterval.
	AntiEntropyFull time.Duration
	// NoAntiEntropy turns the periodic anti-entropy runs off; AntiEntropy
	// still runs one when called.
	NoAntiEntropy bool
	// Links overrides which peers each local server pulls from (local
	// address to peer addresses), whatever the nodes become. By default a
	// local server pulls from every other server of its replica group, as
	// the client's nodes have it now (see NewFromClient).
	Links map[string][]string
	// Logger receives what the syncer does besides its passes: failed
	// passes, resets, horizons raised or refused, anti-entropy results.
	// Default: the client's logger.
	Logger *slog.Logger
}

// check returns an error (federated.ErrInvalidConfig) that names the first
// negative option, or the first interval set below its floor.
func (o Options) check() error {
	for _, f := range []struct {
		name     string
		negative bool
		value    any
	}{
		{"PollInterval", o.PollInterval < 0, o.PollInterval},
		{"Overlap", o.Overlap < 0, o.Overlap},
		{"OverlapInterval", o.OverlapInterval < 0, o.OverlapInterval},
		{"Batch", o.Batch < 0, o.Batch},
		{"AntiEntropyInterval", o.AntiEntropyInterval < 0, o.AntiEntropyInterval},
		{"AntiEntropyFull", o.AntiEntropyFull < 0, o.AntiEntropyFull},
	} {
		if f.negative {
			return fmt.Errorf("%w: syncer.Options.%s is negative (%v); zero means the default", federated.ErrInvalidConfig, f.name, f.value)
		}
	}
	for _, f := range []struct {
		name         string
		value, floor time.Duration
	}{
		{"PollInterval", o.PollInterval, MinPollInterval},
		{"OverlapInterval", o.OverlapInterval, MinOverlapInterval},
		{"AntiEntropyInterval", o.AntiEntropyInterval, MinAntiEntropyInterval},
		{"AntiEntropyFull", o.AntiEntropyFull, MinAntiEntropyInterval},
	} {
		if f.value > 0 && f.value < f.floor {
			return fmt.Errorf("%w: syncer.Options.%s is %v, below its floor of %v; zero means the default", federated.ErrInvalidConfig, f.name, f.value, f.floor)
		}
	}
	return nil
}

func (o Options) withDefaults(c *federated.Client) Options {
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Overlap == 0 {
		o.Overlap = DefaultOverlap
	}
	if o.OverlapInterval == 0 {
		o.OverlapInterval = DefaultOverlapInterval
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.AntiEntropyInterval == 0 {
		o.AntiEntropyInterval = DefaultAntiEntropyInterval
	}
	if o.AntiEntropyFull == 0 {
		o.AntiEntropyFull = DefaultAntiEntropyFull
	}
	if o.Logger == nil {
		o.Logger = c.Options().Logger
	}
	return o
}

// Syncer replicates the servers of replica groups: for each local server it
// pulls the changes of its peers, through their journals, and merges them,
// so that every server of a group ends with the union of what was written
// to any of them (multi-master). Merging what is there already writes
// nothing, which stops changes from bouncing between servers, and lets them
// travel through intermediaries. Keys of dropped periods are never copied
// back.
type Syncer struct {
	c         *federated.Client
	ownClient bool
	opts      Options
	locals    []string
	period    metric.Period // the federation's, for checking peers' horizons
	keys      journal.Keys  // beside the federation's journal
	store     *metrics.Store

	closeOnce sync.Once
	closeErr  error // Close's result, for every call

	mu sync.Mutex // guards the fields below
	// links are those of the local servers now, in their order and their
	// peers' (see follow), made for linksVersion of the client's nodes.
	links        []*link
	linksMade    bool
	linksVersion uint64
	running      bool
	closed       bool
	stop         context.CancelFunc // ends the running Run
	done         chan struct{}      // closed when the running Run returns
	ae           AntiEntropyStats
}

// ErrRunning is Run's error when the Syncer is already running.
var ErrRunning = errors.New("syncer: Run is already running")

// ErrClosed is Run's error after Close.
var ErrClosed = errors.New("syncer: closed")

// New builds a client for cfg and a Syncer for the local servers (host:port
// addresses of cfg). Close releases the client.
func New(cfg federated.Config, local []string, opts Options) (*Syncer, error) {
	c, err := federated.New(cfg)
	if err != nil {
		return nil, err
	}
	s, err := NewFromClient(c, local, opts)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	s.ownClient = true
	return s, nil
}

// NewFromClient builds a Syncer that works through an existing client,
// which stays the caller's to close.
//
// Its links follow the client's nodes: a change that gives a local
// server's group other servers (SetNodes, ReplaceNode, AddNode,
// RemoveNode) starts a link from each server that joined the group and
// stops the link from each that left, within a PollInterval while Run
// runs. A link from a server that left stops pulling it: take a server out
// as RELIABILITY.md says, once its peers' links hold what it acknowledged
// (PeerStats.SyncedTo). The links of a local server that Options.Links
// names stay those it names. Anti-entropy follows such a change too, a
// group whose servers changed starting with a run that compares every
// key.
func NewFromClient(c *federated.Client, local []string, opts Options) (*Syncer, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults(c)
	if len(local) == 0 {
		return nil, fmt.Errorf("%w: syncer: no local servers", federated.ErrInvalidConfig)
	}
	period, err := metric.ParsePeriod(c.Options().Metrics.Period)
	if err != nil {
		return nil, fmt.Errorf("%w: syncer: %w", federated.ErrInvalidConfig, err)
	}
	store, err := metrics.New(c)
	if err != nil {
		return nil, err
	}
	// The servers as the client spells them, which the links compare
	// (DB1:6379 for db1:6379, localhost for 127.0.0.1).
	given := local
	local = spelt(c, local)
	if opts.Links != nil {
		// Copied: follow reads it at every change of nodes, and the
		// caller may change its own map.
		links := make(map[string][]string, len(opts.Links))
		for _, addr := range slices.Sorted(maps.Keys(opts.Links)) {
			as := spelt(c, []string{addr})[0]
			if _, twice := links[as]; twice {
				return nil, fmt.Errorf("%w: syncer: links name server %s twice, the second time as %s", federated.ErrInvalidConfig, as, addr)
			}
			links[as] = spelt(c, opts.Links[addr])
		}
		opts.Links = links
	}
	s := &Syncer{c: c, opts: opts, locals: local, period: period,
		keys: journal.KeysOf(c.Options().Metrics.Journal), store: store}
	for i, addr := range local {
		if j := slices.Index(local[:i], addr); j >= 0 {
			if given[j] != given[i] {
				return nil, fmt.Errorf("%w: syncer: local server %s named twice, as %s and %s", federated.ErrInvalidConfig, addr, given[j], given[i])
			}
			return nil, fmt.Errorf("%w: syncer: local server %s named twice", federated.ErrInvalidConfig, addr)
		}
		if _, _, err := c.ReplicaGroup(addr); err != nil {
			return nil, fmt.Errorf("%w: syncer: local server %s: %w", federated.ErrInvalidConfig, addr, err)
		}
		peers, custom := opts.Links[addr]
		if !custom {
			continue
		}
		for j, peer := range peers {
			if peer == addr {
				return nil, fmt.Errorf("%w: syncer: server %s cannot pull from itself", federated.ErrInvalidConfig, addr)
			}
			if slices.Contains(peers[:j], peer) {
				// Two links would share, and fight over, one cursor.
				return nil, fmt.Errorf("%w: syncer: peer %s of %s named twice", federated.ErrInvalidConfig, peer, addr)
			}
			if _, _, err := c.ReplicaGroup(peer); err != nil {
				return nil, fmt.Errorf("%w: syncer: peer %s of %s: %w", federated.ErrInvalidConfig, peer, addr, err)
			}
		}
	}
	for addr := range opts.Links {
		if !slices.Contains(local, addr) {
			return nil, fmt.Errorf("%w: syncer: links name %s, which is not a local server", federated.ErrInvalidConfig, addr)
		}
	}
	s.follow()
	return s, nil
}

// Run pulls from every peer of every local server, and runs anti-entropy
// (unless Options.NoAntiEntropy), until ctx ends, Close is called or the
// client closes. It then abandons the passes under way (a cursor is only
// ever saved after the changes before it are merged), has each link save
// what it knows of its peer's keys for the next syncer (for a second at
// most, see marks.go) and returns, once every loop has stopped, ctx's
// error (context.Canceled when Close stopped it), or an error that wraps
// federated.ErrClosed when the client closed. A command under way is not
// cut: with a server that stopped answering (SIGSTOP, a partition) Run
// returns up to the client's CommandTimeout, and a second to save the
// marks, after ctx ends. Run may be
// called once at a time: ErrRunning otherwise, and this package's
// ErrClosed after Close.
//
// Run one syncer per local server: two that pull the same peer into the
// same server each merge what the other may have (PeerStats.Contended).
func (s *Syncer) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.running:
		s.mu.Unlock()
		return ErrRunning
	}
	done := make(chan struct{})
	s.running, s.stop, s.done = true, cancel, done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running, s.stop, s.done = false, nil, nil
		s.mu.Unlock()
		close(done)
	}()

	var wg sync.WaitGroup
	wg.Go(func() {
		// Every pass of a closed client fails: nothing is left to do.
		select {
		case <-s.c.Done():
			cancel()
		case <-ctx.Done():
		}
	})
	wg.Go(func() { s.runLinks(ctx) })
	if !s.opts.NoAntiEntropy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.antiEntropyLoop(ctx)
		}()
	}
	wg.Wait()
	select {
	case <-s.c.Done():
		if parent.Err() == nil {
			return fmt.Errorf("syncer: Run: %w", federated.ErrClosed)
		}
	default:
	}
	return ctx.Err()
}

// Close stops Run, if it runs, and waits for it to return; then it closes
// the client if New made it. Every call waits for that and returns the same.
func (s *Syncer) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		stop, done := s.stop, s.done
		s.mu.Unlock()
		if stop != nil {
			stop()
			<-done
		}
		if s.ownClient {
			s.closeErr = s.c.Close()
		}
	})
	return s.closeErr
}

// AntiEntropy compares every key of the local servers' replica groups and
// gives the local servers what they lack. Run does it every
// AntiEntropyFull, and compares the keys changed since every
// AntiEntropyInterval, unless Options.NoAntiEntropy; call it for a repair
// on demand.
func (s *Syncer) AntiEntropy(ctx context.Context) (metrics.CheckReport, error) {
	report, _, err := s.antiEntropy(ctx, nil)
	return report, err
}

// antiEntropy compares, in the group of each local node, the keys changed
// since its time in since (every key for a node not in it) and repairs
// the local servers. It returns the nodes whose run met no failure that
// passes (see metrics.GroupReport.Incomplete).
func (s *Syncer) antiEntropy(ctx context.Context, since map[string]time.Time) (metrics.CheckReport, map[string]bool, error) {
	var (
		report metrics.CheckReport
		done   = make(map[string]bool)
		errs   []error
		full   int64
	)
	for _, node := range s.localNodes() {
		r, err := s.store.Repair(ctx, metrics.CheckOptions{Nodes: []string{node}, Servers: s.locals, ChangedSince: since[node]})
		for _, g := range r.Groups {
			report.Add(g)
		}
		if err != nil {
			errs = append(errs, err)
		}
		// Keys that can never be repaired fail every run: they are
		// reported, and do not make the next run full.
		done[node] = err == nil || len(r.Groups) == 1 && !r.Groups[0].Incomplete
		if since[node].IsZero() {
			full++
		}
	}
	err := errors.Join(errs...)
	s.mu.Lock()
	s.ae.Runs++
	s.ae.FullChecks += full
	s.ae.Keys += int64(report.Keys)
	s.ae.Repaired += int64(report.Repaired)
	s.ae.Added += report.Added
	s.ae.LastRun = time.Now()
	s.ae.LastError = ""
	if err != nil {
		s.ae.LastError = err.Error()
	}
	s.mu.Unlock()
	return report, done, err
}

// antiEntropyLoop runs anti-entropy every AntiEntropyInterval. In each
// group it compares every key once AntiEntropyFull has passed since the
// last run that compared every key of the group and met no failure that
// passes (at the first run, after a link of the group pulled its peer
// from the start again, and after such a run that failed, too), and else
// the keys changed since that run began: a key found divergent but not
// repaired (a local server full, a server down) is compared again at the
// next run.
func (s *Syncer) antiEntropyLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.AntiEntropyInterval)
	defer t.Stop()
	type group struct {
		servers  []string  // the group's, when its runs began
		lastFull time.Time // when the group's last full run without error began
		resets   int64     // the group's links' resets then
	}
	groups := make(map[string]*group)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		resets := s.resets()
		// The nodes of now: a change of nodes (Client.SetNodes) may have
		// renamed one, or given it other servers, whose runs then start
		// over with one that compares every key.
		nodes := s.localNodes()
		for node := range groups {
			if !slices.Contains(nodes, node) {
				delete(groups, node)
			}
		}
		for _, node := range nodes {
			servers, _ := s.c.AllServers(node)
			if g := groups[node]; g == nil || !slices.Equal(g.servers, servers) {
				groups[node] = &group{servers: servers}
			}
		}
		since := make(map[string]time.Time, len(nodes))
		for node, g := range groups {
			// Half an interval early: the ticks would otherwise come a
			// hair before AntiEntropyFull and wait for the next.
			due := time.Since(g.lastFull)+s.opts.AntiEntropyInterval/2 >= s.opts.AntiEntropyFull
			if !g.lastFull.IsZero() && !due && resets[node] == g.resets {
				since[node] = g.lastFull.Add(-antiEntropyMargin - s.opts.Overlap)
			}
		}
		start := time.Now()
		report, done, err := s.antiEntropy(ctx, since)
		for node, g := range groups {
			if since[node].IsZero() && done[node] {
				g.lastFull, g.resets = start, resets[node]
			}
		}
		switch {
		case err != nil && ctx.Err() == nil:
			s.opts.Logger.Warn("syncer: anti-entropy failed", "err", err)
		case report.Repaired > 0:
			s.opts.Logger.Info("syncer: anti-entropy repaired keys",
				"keys", report.Keys, "repaired", report.Repaired, "added", report.Added)
		}
	}
}

// localNodes returns the nodes of the local servers now, in the order of
// the servers; a server no longer in the federation has none.
func (s *Syncer) localNodes() []string {
	var nodes []string
	for _, addr := range spelt(s.c, s.locals) {
		if node, _, err := s.c.ReplicaGroup(addr); err == nil && !slices.Contains(nodes, node) {
			nodes = append(nodes, node)
		}
	}
	return nodes
}

// resets returns, by node, how many times the links of its local servers
// pulled their peers from the start again.
func (s *Syncer) resets() map[string]int64 {
	out := make(map[string]int64)
	s.mu.Lock()
	links := s.links
	s.mu.Unlock()
	for _, l := range links {
		node, _, err := s.c.ReplicaGroup(l.local)
		if err == nil {
			out[node] += l.snapshot().Resets
		}
	}
	return out
}

// Stats is a snapshot of a Syncer's counters.
type Stats struct {
	Peers       []PeerStats
	AntiEntropy AntiEntropyStats
}

// PeerStats count one local server's pulls from one peer.
type PeerStats struct {
	Local, Peer string
	// Cursor is the peer journal time, Unix seconds, up to which its changes
	// are merged.
	Cursor float64
	// Lag is how old the local server's copy of the peer's changes may be:
	// the time since the last pass that left nothing after the cursor
	// began. Once SyncedTo is set, every change the peer acknowledged more
	// than Lag ago is in the local server. It stays under PollInterval
	// plus a pass while the link keeps up, and grows while passes fail or
	// fall behind. Before the first such pass, after the link started or
	// found the local server without what it had merged (Resets), it is
	// the time since then, and promises nothing.
	Lag time.Duration
	// SyncedTo is when, by this host's clock, the pass that Lag counts
	// from began, or the last complete read of the overlap, whichever is
	// earlier (zero until both happened since the link started or last
	// found the local server without what it had merged): every change
	// the peer acknowledged before it is in the local server, also one
	// journalled by a writer with its own clock (the Perl module,
	// redis-cli), as long as that clock is less than Overlap behind the
	// peer's. Stop a server once SyncedTo of each of its peers' links to it
	// is after the writers were moved off it.
	SyncedTo time.Time
	// LagP50 and LagP99 summarize the replication delay of the last 1,024
	// batches that merged something: when the batch was applied, less the
	// peer journal time of its newest change.
	LagP50, LagP99 time.Duration
	// Delays counts the replication delay of every batch that merged
	// something since the link started, in the buckets of DelayBounds.
	Delays  DelayHistogram
	Passes  int64 // passes made
	Keys    int64 // changed keys fetched
	Added   int64 // members added to the local server
	Skipped int64 // keys of dropped periods left alone
	// Echoes counts the journal entries of the peer not fetched because
	// they were merges of the local server's own changes.
	Echoes int64
	Errors int64 // passes that failed
	// Resets counts the times the local server was found to have lost its
	// data (it came back empty, or with an older cursor), after which the
	// peer was pulled again from its first change.
	Resets int64
	// Contended counts the passes that found the link's cursor saved by
	// another syncer pulling the same peer into the same local server
	// (a deploy that started the new syncer before the old one stopped):
	// each goes on from the other's cursor, and both merge what the
	// other may have. Run one syncer per server.
	Contended int64
	// LastError is why the last pass that failed did, or the last merge
	// Redis refused; LastErrorAt is when, by this host's clock (zero
	// before the first). LastSuccess is when the last pass that met no
	// error ended: the link is failing now while LastErrorAt is after it.
	LastError   string
	LastErrorAt time.Time
	LastSuccess time.Time
}

// DelayBounds are the upper bounds of DelayHistogram's buckets: from a
// millisecond, under the default PollInterval, to a minute, beyond which a
// link is not keeping up.
var DelayBounds = []time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	30 * time.Second, time.Minute,
}

// DelayHistogram counts replication delays: Buckets[i] is how many were at
// most DelayBounds[i] (cumulative, as Prometheus histograms count), Count
// how many there were in all and Sum their total.
type DelayHistogram struct {
	Count   uint64
	Sum     time.Duration
	Buckets []uint64
}

// observe counts one delay.
func (h *DelayHistogram) observe(d time.Duration) {
	if h.Buckets == nil {
		h.Buckets = make([]uint64, len(DelayBounds))
	}
	h.Count++
	h.Sum += d
	for i := len(DelayBounds) - 1; i >= 0 && d <= DelayBounds[i]; i-- {
		h.Buckets[i]++
	}
}

// AntiEntropyStats count anti-entropy runs.
type AntiEntropyStats struct {
	Runs       int64
	FullChecks int64 // comparisons of every key of a group, all runs, done or failed
	Keys       int64 // keys compared, all runs
	Repaired   int64 // keys repaired, all runs
	Added      int64 // members added, all runs
	LastRun    time.Time
	LastError  string
}

// Stats returns the syncer's counters.
func (s *Syncer) Stats() Stats {
	var st Stats
	s.mu.Lock()
	links := s.links
	st.AntiEntropy = s.ae
	s.mu.Unlock()
	for _, l := range links {
		st.Peers = append(st.Peers, l.snapshot())
	}
	return st
}
