package torture_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	outOfMemory                     // the writers' current server refuses writes: OOM
	readOnly                        // it becomes a replica of nothing: READONLY
	busy                            // a long script runs on it: BUSY
	loading                         // it restarts from a snapshot it loads slowly: LOADING
	faultKinds
)

var faultNames = [faultKinds]string{
	"SIGKILL + empty restart", "SIGSTOP/SIGCONT", "blackhole, writers' proxy", "blackhole, syncers' proxy",
	"connection resets, writers' proxy", "connection resets, syncers' proxy", "one-way cut, writers' proxy",
	"one-way cut, syncers' proxy", "latency, writers' proxy", "latency, syncers' proxy", "syncer restart",
	"writers cut off from a group", "OOM", "READONLY", "BUSY", "LOADING",
}

// faultWeights make kills and pauses, the harshest faults, the most common.
var faultWeights = [faultKinds]int{4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 1, 1, 1, 1}

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
	case outOfMemory, readOnly, busy, loading:
		return c.refuse(ctx, ft)
	}
	return name
}

// kill kills a server without losing an acknowledged point. It fences the
// writers off the server and waits until the server's peer holds everything
// (see fence); SIGKILLs it; and restarts it, empty, after the hold. Writers
// whose current server it was fail over.
func (c *chaos) kill(ctx context.Context, ft fault) string {
	s := ft.target
	server := c.f.servers[s.host][s.group]
	name := faultNames[ft.kind] + c.role(s)
	unfence, ok := c.fence(ctx, s)
	defer unfence()
	if !ok {
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

// role says whether s is the writers' current server of its group.
func (c *chaos) role(s sid) string {
	if cur, err := c.l.client.NodeToServer(nodeName(s.group)); err == nil && cur == c.f.wproxy[s.host][s.group].Addr() {
		return " (current)"
	}
	return " (standby)"
}

// fence fences the writers off a server (new connections reset, open ones
// cut), so that it acknowledges nothing more, and waits the way an
// operator would: until the SyncedTo of its peer's link from it is past
// the fence. It then checks that the peer holds every member the server
// holds, as SyncedTo promises. It returns the function that lifts the
// fence, and whether the server may now be stopped.
func (c *chaos) fence(ctx context.Context, s sid) (unfence func(), ok bool) {
	wp := c.f.wproxy[s.host][s.group]
	wp.DropNew(true)
	wp.CutAll()
	unfence = func() { wp.DropNew(false) }
	// A write the server read before the cut runs a moment after it; its
	// answer is lost, but the peer must get it too for the check below.
	fenced := time.Now().Add(500 * time.Millisecond)
	local, peer := c.f.sproxy[s.peer().host][s.group].Addr(), c.f.sproxy[s.host][s.group].Addr()
	for deadline := time.Now().Add(settleTimeout); !c.syncers[s.peer().host].syncedTo(local, peer).After(fenced); {
		if time.Now().After(deadline) {
			c.t.Errorf("fencing %s: its peer's link is not synced past the fence within %v", s, settleTimeout)
			return unfence, false
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return unfence, false
		}
	}
	// A script of the syncers that runs past busy-reply-threshold makes a
	// server answer BUSY for a moment: the comparison is tried again.
	missing, examples, err := lacking(ctx, c.f.direct[s.host][s.group], c.f.direct[s.peer().host][s.group])
	for deadline := time.Now().Add(settleTimeout); err != nil && time.Now().Before(deadline) && sleep(ctx, 50*time.Millisecond); {
		missing, examples, err = lacking(ctx, c.f.direct[s.host][s.group], c.f.direct[s.peer().host][s.group])
	}
	switch {
	case ctx.Err() != nil:
		return unfence, false
	case err != nil:
		c.t.Errorf("fencing %s: comparing it with its peer: %v", s, err)
		return unfence, false
	case missing > 0:
		c.t.Errorf("fencing %s at %s: its peer's link was synced past the fence, yet the peer lacks %d of its members, such as:\n  %s\n%s",
			s, fenced.Format("15:04:05.000"), missing, strings.Join(examples, "\n  "), c.syncers[s.peer().host].describe(local, peer))
		return unfence, false
	}
	return unfence, true
}

// refuse makes the writers' current server of a group refuse writes for a
// while, with a reply that passes: the writers go to the group's other
// server, and the syncers try their merges again.
func (c *chaos) refuse(ctx context.Context, ft fault) string {
	g := ft.target.group
	s := ft.target
	for h := range hosts {
		if c.role(sid{h, g}) == " (current)" {
			s = sid{h, g}
		}
	}
	name := faultNames[ft.kind] + c.role(s)
	rc := c.f.direct[s.host][s.group]
	bg := context.Background() // undone also when the run ends
	switch ft.kind {
	case outOfMemory:
		c.retry("OOM on "+s.String(), func() error { return rc.ConfigSet(bg, "maxmemory", "1").Err() })
		sleep(ctx, ft.hold)
		c.retry("OOM on "+s.String()+", undoing", func() error { return rc.ConfigSet(bg, "maxmemory", "0").Err() })
	case readOnly:
		// The replica of a master that is not there: its data stays.
		c.retry("READONLY on "+s.String(), func() error { return rc.SlaveOf(bg, "127.0.0.1", "1").Err() })
		sleep(ctx, ft.hold)
		c.retry("READONLY on "+s.String()+", undoing", func() error { return rc.SlaveOf(bg, "NO", "ONE").Err() })
	case busy:
		script := redis.NewClient(&redis.Options{Addr: c.f.servers[s.host][s.group].Addr(), DisableIdentity: true, ReadTimeout: -1})
		defer script.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = script.Eval(bg, "while true do end", nil).Err()
		}()
		sleep(ctx, ft.hold)
		for rc.ScriptKill(bg).Err() != nil && sleep(bg, 10*time.Millisecond) {
			select {
			case <-done:
				return name
			default:
			}
		}
		<-done
	case loading:
		return name + c.reload(ctx, s)
	}
	return name
}

// retry runs a command on a server until it succeeds: a script of the
// syncers that runs past busy-reply-threshold makes a server answer BUSY
// for a moment. It reports an error, and false, after settleTimeout.
func (c *chaos) retry(what string, cmd func() error) bool {
	err := cmd()
	for deadline := time.Now().Add(settleTimeout); err != nil && time.Now().Before(deadline); err = cmd() {
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		c.t.Errorf("%s: %v", what, err)
	}
	return err == nil
}

// reload restarts a server from a snapshot of what it holds, without
// losing an acknowledged point (see fence), and makes it the writers'
// current server while it loads, as it is for a client started meanwhile:
// the writers meet LOADING and go to the peer.
func (c *chaos) reload(ctx context.Context, s sid) string {
	server, rc := c.f.servers[s.host][s.group], c.f.direct[s.host][s.group]
	unfence, ok := c.fence(ctx, s)
	if !ok {
		unfence()
		return " (not done)"
	}
	if !c.retry("LOADING on "+s.String()+": SAVE", func() error { return rc.Save(context.Background()).Err() }) {
		unfence()
		return " (not done)"
	}
	restarted := make(chan error, 1)
	go func() { restarted <- server.Restart() }() // returns once loaded
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := rc.Ping(context.Background()).Err(); err != nil && strings.HasPrefix(err.Error(), "LOADING") {
			break
		}
		if time.Now().After(deadline) {
			break // loaded already, or not up: the writers meet what is there
		}
		time.Sleep(5 * time.Millisecond)
	}
	unfence()
	node, here, peer := nodeName(s.group), c.f.wproxy[s.host][s.group].Addr(), c.f.wproxy[s.peer().host][s.group].Addr()
	_ = c.l.client.MarkServerUp(here)
	if cur, _ := c.l.client.NodeToServer(node); cur != here {
		_ = c.l.client.MarkServerDown(peer)
		_ = c.l.client.MarkServerUp(peer)
	}
	if err := <-restarted; err != nil {
		c.t.Errorf("LOADING on %s: restart: %v", s, err)
	}
	// Later empty restarts stay empty.
	if err := os.Remove(filepath.Join(server.Dir(), "dump.rdb")); err != nil {
		c.t.Errorf("LOADING on %s: %v", s, err)
	}
	return ""
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

// lacking returns how many of from's metric members to lacks, and a few
// of them, with their keys.
func lacking(ctx context.Context, from, to *redis.Client) (int, []string, error) {
	want, err := metricMembers(ctx, from)
	if err != nil {
		return 0, nil, err
	}
	missing := 0
	var examples []string
	pipe := to.Pipeline()
	cmds := make(map[string]*redis.FloatSliceCmd, len(want))
	for key, members := range want {
		cmds[key] = pipe.ZMScore(ctx, key, members...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, nil, err
	}
	for key, cmd := range cmds {
		for i, score := range cmd.Val() {
			if score == 0 { // a member's score is its timestamp, never 0
				missing++
				if len(examples) < 5 {
					examples = append(examples, key+" "+want[key][i])
				}
			}
		}
	}
	return missing, examples, nil
}
