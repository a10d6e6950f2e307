package torture_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

// point is a point added: its id, which is also its value, so that every
// member is unique and names its point, and its timestamp.
type point struct{ id, micros int64 }

// seriesOf returns the host and metric of a point: ids go round the
// series.
func seriesOf(id int64) (host, metric string) {
	s := id % numSeries
	return fmt.Sprintf("web%03d", s/seriesMetrics), fmt.Sprintf("m%02d", s%seriesMetrics)
}

// seriesDay names a metric key: a series and a UTC day, the period of the
// default metric schema.
type seriesDay struct{ series, day int64 }

const microsPerDay = int64(24 * time.Hour / time.Microsecond)

// load is the writers' side: a Recorder fed by several goroutines at a
// fixed rate, and a flusher that keeps account of what was acknowledged.
//
// How the test knows which points were acknowledged while the writers keep
// adding during every Flush: before each Flush the flusher closes an epoch,
// taking the points logged since the previous one (it holds gate alone for
// that instant; a writer holds gate shared while it adds a point and logs
// it). A point of the epoch closed before Flush k was added after Flush k-2
// returned and before Flush k began, so the write that carried it ended
// after the one and before Flush k returned: its failure, if it failed, is
// among the errors of Flush k-1 or of Flush k. Every such error is a
// *federated.ServerError naming the node whose write failed. So a point is
// acknowledged when neither Flush names its node. Otherwise it may or may
// not be stored (a write that timed out may have run), and the flusher
// adds it again once a server of its node is up, as an application would
// retry it; a point added again after Flush k returned is answered by
// Flush k+1 alone. This errs towards retrying: a point whose own write
// succeeded beside a failed write of its node is written twice, which
// changes nothing. Dropping either Flush from the rule makes the test
// report lost points under writer-side faults, as it should. In the end
// every point added is acknowledged once.
//
// The Recorder runs with FailWhenFull, so that a writer never blocks in
// Add while it holds gate: a point refused for a full buffer is shed, and
// counted as such, the measure of back-pressure.
type load struct {
	t      *testing.T
	client *federated.Client
	store  *metrics.Store
	rec    *metrics.Recorder
	rate   int
	began  time.Time     // when the load began
	stepAt time.Duration // when the clock of the writer that steps back does

	gate     sync.RWMutex     // shared by a writer adding and logging, alone by the flusher closing an epoch
	epochs   [writers][]point // points added in the open epoch, by writer
	nextID   atomic.Int64
	added    atomic.Int64 // points the Recorder took, retries apart
	shed     atomic.Int64 // points not added: the writer was behind, or the buffer full
	reported atomic.Int64 // failed points, as OnError saw them

	// Owned by the flusher.
	pending        []point         // failed points not added again yet
	readded        []point         // points added again after the last Flush
	prevFailed     map[string]bool // the nodes the last Flush named
	closed         int64           // points added in closed epochs, retries included
	stamps         []int64         // the timestamp of every point added, by id
	acked          []bool          // by id
	ackedN         int
	retried        int
	flushes        int
	failingFlushes int
	longestFlush   time.Duration
	lastErr        error
	nodes          map[seriesDay]string
}

func newLoad(t *testing.T, f *fleet, rate int, duration time.Duration) *load {
	t.Helper()
	client := newClient(t, f.writerCfg)
	store, err := metrics.New(client)
	if err != nil {
		t.Fatal(err)
	}
	l := &load{t: t, client: client, store: store, rate: rate, nodes: map[seriesDay]string{},
		began: time.Now(), stepAt: duration / 3}
	rec, err := l.store.NewRecorder(metrics.RecorderOptions{
		FailWhenFull: true,
		OnError:      func(_ error, points int) { l.reported.Add(int64(points)) },
	})
	if err != nil {
		_ = l.client.Close()
		t.Fatal(err)
	}
	l.rec = rec
	return l
}

func (l *load) close(t *testing.T) {
	if err := l.rec.Close(); err != nil {
		t.Errorf("closing the recorder: %v", err)
	}
	_ = l.client.Close()
}

// write adds points at the writer's share of the rate until ctx ends. A
// writer held up longer than maxBacklog sheds what it is behind by rather
// than burst it, and a point refused for a full buffer is shed too.
func (l *load) write(ctx context.Context, w int) {
	perSecond := float64(l.rate) / writers
	maxBehind := int(perSecond * maxBacklog.Seconds())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for start, sent := time.Now(), 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int(perSecond * time.Since(start).Seconds())
		if behind := due - sent; behind > maxBehind {
			l.shed.Add(int64(behind - maxBehind))
			sent = due - maxBehind
		}
		for ; sent < due; sent++ {
			l.gate.RLock()
			id, us := l.nextID.Add(1)-1, l.clock(w).UnixMicro()
			host, metric := seriesOf(id)
			err := l.rec.Add(context.Background(), host, metric, time.UnixMicro(us), float64(id))
			if err == nil {
				l.epochs[w] = append(l.epochs[w], point{id, us})
			}
			l.gate.RUnlock()
			switch {
			case err == nil:
				l.added.Add(1)
			case errors.Is(err, metrics.ErrBufferFull):
				l.shed.Add(1)
			default:
				l.t.Errorf("Add: %v", err)
				return
			}
		}
	}
}

// Writers' clocks disagree, as a fleet's do: writer 1's is 5 seconds
// behind the others', and writer 2's steps back 10 seconds a third of the
// way into the run (an NTP step, a VM resumed). They all write the same
// keys: the syncers must copy every point whatever its timestamp.
const (
	laggingWriter  = 1
	lag            = 5 * time.Second
	steppingWriter = 2
	step           = 10 * time.Second
)

// clock returns writer w's time now.
func (l *load) clock(w int) time.Time {
	now := time.Now()
	switch {
	case w == laggingWriter:
		return now.Add(-lag)
	case w == steppingWriter && now.Sub(l.began) >= l.stepAt:
		return now.Add(-step)
	}
	return now
}

// flush closes an epoch, flushes the Recorder, settles the points of the
// epoch and those added again after the last Flush, and adds failed points
// again, at most maxReadd, where their node has a server up.
func (l *load) flush(ctx context.Context, maxReadd int) {
	readded := l.readded
	l.readded = nil
	var epoch []point
	l.gate.Lock()
	for w := range l.epochs {
		epoch = append(epoch, l.epochs[w]...)
		l.epochs[w] = l.epochs[w][:0]
	}
	l.gate.Unlock()
	l.closed += int64(len(epoch) + len(readded))

	began := time.Now()
	err := l.rec.Flush(ctx)
	l.longestFlush = max(l.longestFlush, time.Since(began))
	l.flushes++
	// Flush's contract: every point added before it is written or failed.
	if st := l.rec.Stats(); st.Written+st.Failed < l.closed {
		l.t.Errorf("Flush returned with %d of the %d points added before it neither written nor failed",
			l.closed-st.Written-st.Failed, l.closed)
	}
	l.lastErr = err
	failed := map[string]bool{}
	if err != nil {
		l.failingFlushes++
		var unattributed []error
		attribute(err, failed, &unattributed)
		for _, e := range unattributed {
			l.t.Errorf("a Flush error names no node: %v", e)
			for g := range groups {
				failed[nodeName(g)] = true
			}
		}
	}
	l.settle(readded, failed)
	l.settle(epoch, l.prevFailed, failed)
	l.prevFailed = failed

	// Add failed points again where a server of their node is up: sending
	// the rest would only fail again.
	up := map[string]bool{}
	waiting := l.pending[:0]
	for _, p := range l.pending {
		node := l.nodeOf(p)
		ok, known := up[node]
		if !known {
			_, err := l.client.NodeToServer(node)
			ok = err == nil
			up[node] = ok
		}
		if ok && len(l.readded) < maxReadd {
			host, metric := seriesOf(p.id)
			switch err := l.rec.Add(context.Background(), host, metric, time.UnixMicro(p.micros), float64(p.id)); {
			case err == nil:
				l.readded = append(l.readded, p)
				continue
			case !errors.Is(err, metrics.ErrBufferFull):
				l.t.Errorf("adding a failed point again: %v", err)
			}
		}
		waiting = append(waiting, p)
	}
	l.pending = waiting
	l.retried += len(l.readded)
}

// settle counts each point acknowledged, unless one of the failed node sets
// names its node, in which case it is to be added again.
func (l *load) settle(points []point, failed ...map[string]bool) {
	for _, p := range points {
		for int(p.id) >= len(l.stamps) {
			l.stamps = append(l.stamps, 0)
			l.acked = append(l.acked, false)
		}
		l.stamps[p.id] = p.micros
		if slices.ContainsFunc(failed, func(nodes map[string]bool) bool { return len(nodes) > 0 && nodes[l.nodeOf(p)] }) {
			l.pending = append(l.pending, p)
			continue
		}
		if !l.acked[p.id] {
			l.acked[p.id] = true
			l.ackedN++
		}
	}
}

// keyOf returns the metric key of a point.
func (l *load) keyOf(p point) string {
	host, metric := seriesOf(p.id)
	key, err := l.client.MetricKey(time.UnixMicro(p.micros), host, metric)
	if err != nil {
		l.t.Fatalf("MetricKey: %v", err)
	}
	return key
}

// nodeOf returns the node of a point's key.
func (l *load) nodeOf(p point) string {
	sd := seriesDay{p.id % numSeries, p.micros / microsPerDay}
	node, ok := l.nodes[sd]
	if !ok {
		node = l.client.KeyToNode(l.keyOf(p))
		l.nodes[sd] = node
	}
	return node
}

// attribute collects the nodes a Flush error names, and the errors that
// name none.
func attribute(err error, nodes map[string]bool, other *[]error) {
	switch e := err.(type) {
	case *federated.ServerError:
		nodes[e.Node] = true
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			attribute(inner, nodes, other)
		}
	case interface{ Unwrap() error }:
		attribute(e.Unwrap(), nodes, other)
	default:
		*other = append(*other, err)
	}
}
