package faultproxy

import "time"

// faults are the faults in force; the zero value is a healthy network.
type faults struct {
	latency     time.Duration
	dropNew     bool
	blackhole   bool
	cutToServer bool
	cutToClient bool
}

// cut reports whether bytes going dir are discarded.
func (f faults) cut(dir direction) bool {
	if dir == toServer {
		return f.cutToServer
	}
	return f.cutToClient
}

// update applies change to the faults in force and wakes every copier
// waiting on a fault, so that it re-checks.
func (p *Proxy) update(change func(*faults)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change(&p.faults)
	close(p.changed)
	p.changed = make(chan struct{})
}

// SetLatency delays every chunk read from either side by d before it is
// forwarded, on open and new connections alike. A chunk is delayed from the
// moment it was read, so a round trip takes at least 2*d. Zero or a
// negative d removes the delay, and chunks waiting are released at once.
func (p *Proxy) SetLatency(d time.Duration) {
	p.update(func(f *faults) { f.latency = max(d, 0) })
}

// DropNew, when on, makes the proxy accept each new connection and reset
// it at once (RST). The kernel completes the handshake before the proxy
// accepts, so the client's dial usually succeeds and its first read or
// write fails with a reset (or EOF, or a broken pipe); when the RST arrives
// before connect returns, the dial itself fails with the reset. Open
// connections are not affected.
func (p *Proxy) DropNew(on bool) {
	p.update(func(f *faults) { f.dropNew = on })
}

// CutAll resets (RST) every open connection now, on both sides: the client
// and the target each see "connection reset by peer". It is a one-off
// event, not a state: connections made afterwards work unless DropNew is
// on.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if c.closeLocked(true) {
			p.stats.reset.Add(1)
		}
	}
}

// Blackhole, when on, stops all traffic on open and new connections
// without a word: no data, no FIN, no RST, so a client waits until its own
// timeout. New connections are accepted but not connected to the target.
// Nothing is lost: when the blackhole lifts, held bytes are forwarded in
// order, new connections are connected, and every connection can be used
// again. See the package documentation.
func (p *Proxy) Blackhole(on bool) {
	p.update(func(f *faults) { f.blackhole = on })
}

// CutDirection sets which directions are cut: bytes going a cut direction
// are read and silently discarded, while the other direction keeps
// flowing and the connection stays open. toServer cuts client-to-target
// traffic, toClient target-to-client traffic; false restores a direction.
// A FIN still goes through a cut direction.
func (p *Proxy) CutDirection(toServer, toClient bool) {
	p.update(func(f *faults) {
		f.cutToServer = toServer
		f.cutToClient = toClient
	})
}

// Heal clears every fault: no latency, no dropping, no blackhole, both
// directions forwarded. Held chunks and connections are released at once.
// Connections that CutAll or DropNew reset stay closed.
func (p *Proxy) Heal() {
	p.update(func(f *faults) { *f = faults{} })
}
