package torture_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A faultKind is what a fault does to its target.
type faultKind int

const (
	killServer     faultKind = iota // fence writers off, wait for replication, SIGKILL, restart empty
	pauseServer                     // SIGSTOP, then SIGCONT
	blackholeWrite                  // the writers' proxy forwards nothing
	blackholeSync                   // the syncers' proxy forwards nothing
	cutWrite                        // the writers' connections are reset, once or a few times
	cutSync                         // the syncers' connections are reset, once or a few times
	oneWayWrite                     // one direction of the writers' proxy is cut
	oneWaySync                      // one direction of the syncers' proxy is cut
	latencyWrite                    // the writers' proxy adds latency
	latencySync                     // the syncers' proxy adds latency
	restartSyncer                   // a host's syncer stops; a new one starts on the same servers
	isolateGroup                    // both writers' proxies of a group forward nothing
	faultKinds
)

var faultNames = [faultKinds]string{
	"SIGKILL + empty restart", "SIGSTOP/SIGCONT", "blackhole, writers' proxy", "blackhole, syncers' proxy",
	"connection resets, writers' proxy", "connection resets, syncers' proxy", "one-way cut, writers' proxy",
	"one-way cut, syncers' proxy", "latency, writers' proxy", "latency, syncers' proxy", "syncer restart",
	"writers cut off from a group",
}

// faultWeights make kills and pauses, the harshest faults, the most common.
var faultWeights = [faultKinds]int{4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2}

// fault is a planned fault. Every random choice is made when it is planned,
// from the seeded generator, so that a seed replays the same faults.
type fault struct {
	kind     faultKind
	target   sid             // the server; of restartSyncer only the host counts, of isolateGroup the group
	hold     time.Duration   // how long it lasts
	cuts     []time.Duration // of cutWrite and cutSync: when, within hold, to reset
	toServer bool            // of one-way cuts: cut the client-to-server direction, else the other
	latency  time.Duration
}

func (ft fault) String() string {
	switch ft.kind {
	case restartSyncer:
		return fmt.Sprintf("%s of host %c for %v", faultNames[ft.kind], 'a'+ft.target.host, ft.hold)
	case isolateGroup:
		return fmt.Sprintf("%s %s for %v", faultNames[ft.kind], nodeName(ft.target.group), ft.hold)
	case oneWayWrite, oneWaySync:
		return fmt.Sprintf("%s (to server: %t) on %s for %v", faultNames[ft.kind], ft.toServer, ft.target, ft.hold)
	}
	return fmt.Sprintf("%s on %s for %v", faultNames[ft.kind], ft.target, ft.hold)
}

// faultLog counts and lists the faults injected.
type faultLog struct {
	mu    sync.Mutex // guards the fields below
	done  map[string]int
	lines []string
}

func (fl *faultLog) add(name, line string) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.done[name]++
	fl.lines = append(fl.lines, line)
}

func (fl *faultLog) counts() map[string]int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return maps.Clone(fl.done)
}

func (fl *faultLog) total() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return len(fl.lines)
}

func (fl *faultLog) history() string {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return strings.Join(fl.lines, "\n")
}

// chaos plans faults from a seed and injects them, each in a goroutine of
// its own, at most one at a time per replica group and per host's syncer.
type chaos struct {
	t       *testing.T
	f       *fleet
	l       *load
	syncers [hosts]*hostSyncer
	log     *faultLog
	rng     *rand.Rand // used by run alone
	began   time.Time

	groupFree [groups]chan struct{} // holds a token while the group has no fault
	hostFree  [hosts]chan struct{}  // holds a token while the host's syncer is left alone
	wg        sync.WaitGroup        // the faults under way
}

func newChaos(t *testing.T, f *fleet, l *load, syncers [hosts]*hostSyncer, log *faultLog, seed uint64) *chaos {
	c := &chaos{t: t, f: f, l: l, syncers: syncers, log: log, rng: rand.New(rand.NewPCG(seed, seed>>1|1)), began: time.Now()}
	for _, tokens := range [][]chan struct{}{c.groupFree[:], c.hostFree[:]} {
		for i := range tokens {
			tokens[i] = make(chan struct{}, 1)
			tokens[i] <- struct{}{}
		}
	}
	return c
}

func (c *chaos) plan() fault {
	total := 0
	for _, w := range faultWeights {
		total += w
	}
	kind, n := faultKind(0), c.rng.IntN(total)
	for ; n >= faultWeights[kind]; kind++ {
		n -= faultWeights[kind]
	}
	ft := fault{
		kind:   kind,
		target: sid{c.rng.IntN(hosts), c.rng.IntN(groups)},
		hold:   time.Duration(500+c.rng.IntN(2500)) * time.Millisecond,
	}
	switch kind {
	case cutWrite, cutSync:
		for range 1 + c.rng.IntN(3) {
			ft.cuts = append(ft.cuts, time.Duration(c.rng.Int64N(int64(ft.hold))))
		}
		slices.Sort(ft.cuts)
	case oneWayWrite, oneWaySync:
		ft.toServer = c.rng.IntN(2) == 0
	case latencyWrite, latencySync:
		ft.latency = time.Duration(20+c.rng.IntN(180)) * time.Millisecond
	case restartSyncer:
		ft.hold = time.Duration(c.rng.IntN(1000)) * time.Millisecond
	case isolateGroup:
		// Longer than a write's two tries: a shorter blackhole only delays
		// writes, which go through when it lifts.
		ft.hold = 2*commandTimeout + time.Duration(c.rng.IntN(2000))*time.Millisecond
	}
	return ft
}

// run plans faults and starts each once its group (or host) is free, until
// ctx ends; the faults under way then undo themselves.
func (c *chaos) run(ctx context.Context) {
	for sleep(ctx, time.Duration(100+c.rng.IntN(700))*time.Millisecond) {
		ft := c.plan()
		token := c.groupFree[ft.target.group]
		if ft.kind == restartSyncer {
			token = c.hostFree[ft.target.host]
		}
		select {
		case <-ctx.Done():
			return
		case <-token:
		}
		c.wg.Go(func() {
			defer func() { token <- struct{}{} }()
			at := time.Since(c.began)
			name := c.inject(ctx, ft)
			c.log.add(name, fmt.Sprintf("%9v %s", at.Round(time.Millisecond), ft))
		})
	}
}

// inject runs one fault and undoes it, and returns the name it counts
// under.
func (c *chaos) inject(ctx context.Context, ft fault) string {
	name := faultNames[ft.kind]
	s := ft.target
	server, proxy := c.f.servers[s.host][s.group], c.f.wproxy[s.host][s.group]
	switch ft.kind {
	case blackholeSync, cutSync, oneWaySync, latencySync:
		proxy = c.f.sproxy[s.host][s.group]
	}
	switch ft.kind {
	case killServer:
		return c.kill(ctx, ft)
	case pauseServer:
		if err := server.Pause(); err != nil {
			c.t.Errorf("pause %s: %v", s, err)
			return name
		}
		sleep(ctx, ft.hold)
		if err := server.Resume(); err != nil {
			c.t.Errorf("resume %s: %v", s, err)
		}
	case blackholeWrite, blackholeSync:
		proxy.Blackhole(true)
		sleep(ctx, ft.hold)
		proxy.Heal()
	case cutWrite, cutSync:
		start := time.Now()
		for _, at := range ft.cuts {
			if !sleep(ctx, at-time.Since(start)) {
				break
			}
			proxy.CutAll()
		}
	case oneWayWrite, oneWaySync:
		proxy.CutDirection(ft.toServer, !ft.toServer)
		sleep(ctx, ft.hold)
		proxy.Heal()
		if ft.toServer {
			return name + " (to server)"
		}
		return name + " (to client)"
	case latencyWrite, latencySync:
		proxy.SetLatency(ft.latency)
		sleep(ctx, ft.hold)
		proxy.Heal()
	case isolateGroup:
		// No server is faulty, but the writers reach neither: the group's
		// writes fail (fast, once both are marked down) and are retried.
		other := c.f.wproxy[s.peer().host][s.group]
		proxy.Blackhole(true)
		other.Blackhole(true)
		sleep(ctx, ft.hold)
		proxy.Heal()
		other.Heal()
	case restartSyncer:
		h := c.syncers[s.host]
		h.stop()
		sleep(ctx, ft.hold)
		if err := h.start(); err != nil {
			c.t.Errorf("restarting the syncer of host %c: %v", 'a'+s.host, err)
		}
	}
	return name
}

// kill kills a server without losing an acknowledged point. It fences the
// writers off the server (new connections reset, open ones cut), so that
// the server acknowledges nothing more; waits until the server's peer
// holds every member the server holds; SIGKILLs it; and restarts it,
// empty, after the hold. Writers whose current server it was fail over.
func (c *chaos) kill(ctx context.Context, ft fault) string {
	s := ft.target
	server, wp := c.f.servers[s.host][s.group], c.f.wproxy[s.host][s.group]
	name := faultNames[ft.kind] + " (standby)"
	if cur, err := c.l.client.NodeToServer(nodeName(s.group)); err == nil && cur == wp.Addr() {
		name = faultNames[ft.kind] + " (current)"
	}
	wp.DropNew(true)
	wp.CutAll()
	defer wp.DropNew(false)
	switch missing, err := waitReplicated(ctx, c.f.direct[s.host][s.group], c.f.direct[s.peer().host][s.group]); {
	case ctx.Err() != nil:
		return faultNames[ft.kind] + " (not done: the run ended first)"
	case err != nil:
		c.t.Errorf("kill %s: its peer still lacks %d of its members: %v", s, missing, err)
		return faultNames[ft.kind] + " (not done)"
	}
	if err := server.Kill(); err != nil {
		c.t.Errorf("kill %s: %v", s, err)
	}
	sleep(ctx, ft.hold)
	if err := server.Restart(); err != nil {
		c.t.Errorf("restart %s: %v", s, err)
	}
	return name
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// waitReplicated waits until to holds every member that from holds, and
// returns how many it still lacks when it gives up. It reads from once:
// fenced off the writers, from only gains what the syncers copy from to.
func waitReplicated(ctx context.Context, from, to *redis.Client) (int, error) {
	deadline := time.Now().Add(settleTimeout)
	var want map[string][]string
	var err error
	for want, err = metricMembers(ctx, from); err != nil; want, err = metricMembers(ctx, from) {
		if time.Now().After(deadline) || !sleep(ctx, 250*time.Millisecond) {
			return -1, err
		}
	}
	missing := 0
	for {
		missing = 0
		pipe := to.Pipeline()
		cmds := make(map[string]*redis.FloatSliceCmd, len(want))
		for key, members := range want {
			cmds[key] = pipe.ZMScore(ctx, key, members...)
		}
		if _, err = pipe.Exec(ctx); err == nil {
			for key, cmd := range cmds {
				// A member's score is its timestamp, never 0; 0 is "none".
				lacking := want[key][:0]
				for i, score := range cmd.Val() {
					if score == 0 {
						lacking = append(lacking, want[key][i])
					}
				}
				if want[key] = lacking; len(lacking) == 0 {
					delete(want, key)
				}
				missing += len(lacking)
			}
			if missing == 0 {
				return 0, nil
			}
		}
		if time.Now().After(deadline) {
			return missing, fmt.Errorf("not within %v (last error: %v)", settleTimeout, err)
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return missing, ctx.Err()
		}
	}
}
