package metrics

import (
	"context"
	"fmt"
	"sync"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
)

// maxCallPoints caps the points of one script call, so that a large flush
// becomes several calls per node, each with its own command timeout, and no
// server is blocked long by one script.
const maxCallPoints = 10000

// flushWork is one flush: the points it took, and its script calls by
// node. It is reused by later flushes, so that a flush allocates little.
type flushWork struct {
	gen     *generation
	flushNo int64
	takes   []take
	topo    uint64 // the topology version batches' nodes belong to
	batches map[string]*nodeWrite
	used    []*nodeWrite
}

// nodeWrite is one node's part of a flush: its script calls, sent in turn.
// Each call's batch is built in batch just before it is sent, so that a
// flush holds the script's arguments of one call per node, not of all its
// points.
type nodeWrite struct {
	node  string
	calls []*callWrite
	used  int // calls in use in this flush
	batch journal.Batch
}

// callWrite is one script call of a flush.
type callWrite struct {
	takes  []*take
	points int
	err    error
	failed map[int]error // errors of single keys, by index into takes
}

// call returns the node's call that has room for points more.
func (nw *nodeWrite) call(points int) *callWrite {
	if nw.used > 0 {
		if cw := nw.calls[nw.used-1]; cw.points+points <= maxCallPoints || cw.points == 0 {
			return cw
		}
	}
	if nw.used == len(nw.calls) {
		nw.calls = append(nw.calls, &callWrite{})
	}
	nw.used++
	return nw.calls[nw.used-1]
}

// topologyRounds is how many times a flush writes its points again when
// the topology changes while it runs.
const topologyRounds = 3

// send writes a flush's points, every node at once, each node's calls in
// turn, and accounts for every point. When the topology changed while it
// ran (AddNode, RemoveNode, ReplaceNode, SetNodes), a point written may be
// where its key no longer is, and one may have failed on a node that left:
// it writes every point again, on its key's node of now (a metric write is
// idempotent: what a server holds already adds nothing, and journals
// nothing), and accounts for what that round did.
func (r *Recorder) send(w *flushWork) {
	r.sendTakes(w, func(t *take) string { return t.node })
	for range topologyRounds {
		v := r.c.TopologyVersion()
		if v == w.topo {
			break
		}
		w.topo = v
		r.reset(w)
		r.sendTakes(w, func(t *take) string { return r.c.KeyToNode(t.s.key) })
	}
	for _, nw := range w.used {
		for _, cw := range nw.calls[:nw.used] {
			r.account(w.gen, cw)
		}
	}
	r.reset(w)
}

// reset empties a flush's calls for the next round or flush, keeping their
// storage.
func (r *Recorder) reset(w *flushWork) {
	for _, nw := range w.used {
		for _, cw := range nw.calls[:nw.used] {
			clear(cw.takes)
			cw.takes, cw.points, cw.err, cw.failed = cw.takes[:0], 0, nil, nil
		}
		nw.used = 0
	}
	w.used = w.used[:0]
}

// sendTakes groups a flush's points by node (nodeOf) into script calls
// and sends them, every node at once, each node's calls in turn.
func (r *Recorder) sendTakes(w *flushWork, nodeOf func(*take) string) {
	for i := range w.takes {
		t := &w.takes[i]
		node := nodeOf(t)
		nw := w.batches[node]
		if nw == nil {
			nw = &nodeWrite{node: node}
			w.batches[node] = nw
		}
		if nw.used == 0 {
			w.used = append(w.used, nw)
		}
		cw := nw.call(t.points)
		cw.takes = append(cw.takes, t)
		cw.points += t.points
	}

	ctx := context.Background() // shared by every waiter: each call has its command timeout
	var wg sync.WaitGroup
	for _, nw := range w.used[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sendNode(ctx, nw)
		}()
	}
	if len(w.used) > 0 {
		r.sendNode(ctx, w.used[0])
	}
	wg.Wait()
}

// sendNode builds and sends a node's calls of a flush, in turn.
func (r *Recorder) sendNode(ctx context.Context, nw *nodeWrite) {
	b := &nw.batch
	for _, cw := range nw.calls[:nw.used] {
		for _, t := range cw.takes {
			b.Add(t.s.key, t.members)
		}
		cw.err = r.write(ctx, nw.node, b)
		cw.failed, b.Failed = b.Failed, nil
		b.Reset()
	}
}

// write sends a batch to a node, to as many of its servers as
// MetricsOptions.Copies asks, and reads the replies into it: the failures
// of single keys are then in the batch.
func (r *Recorder) write(ctx context.Context, node string, b *journal.Batch) error {
	replies, err := r.c.RunOnNode(ctx, node, federated.ScriptCall{
		Script: journal.WriteScript, Keys: r.keys.Write, Args: b.Args(), Idempotent: true, Copies: r.copies})
	if err != nil {
		return err
	}
	return parseWrite(b, node, replies)
}

// parseWrite reads the write script's replies of the servers that ran a
// batch into it, each failure of a single key a *federated.ServerError that
// names its server.
func parseWrite(b *journal.Batch, node string, replies []federated.ScriptReply) error {
	servers, vals := make([]string, len(replies)), make([]any, len(replies))
	for i, rp := range replies {
		servers[i], vals[i] = rp.Server, rp.Val
	}
	return b.ParseReplies(servers, vals, func(server string, err error) error {
		return &federated.ServerError{Node: node, Server: server, Err: err}
	})
}

// account counts a call's written and failed points and reports failures:
// to Flush and Close, to OnError, and to the Writes of the series.
func (r *Recorder) account(g *generation, cw *callWrite) {
	points := cw.points
	if cw.err != nil {
		err := fmt.Errorf("%w (%d points in %d keys)", cw.err, points, len(cw.takes))
		r.fail(g, err, points)
		for _, t := range cw.takes {
			g.fail(t.s, err)
		}
		return
	}
	for i, err := range cw.failed {
		t := cw.takes[i]
		points -= t.points
		r.fail(g, err, t.points)
		g.fail(t.s, err)
	}
	r.written.Add(int64(points))
}

// fail records a failure of a generation's points for OnError and, if
// the generation holds points of Add, for Flush and Close.
func (r *Recorder) fail(g *generation, err error, points int) {
	r.failed.Add(int64(points))
	if g.viaAdd {
		r.errMu.Lock()
		r.errs = append(r.errs, err)
		r.errMu.Unlock()
	}
	if r.opts.OnError != nil {
		r.opts.OnError(err, points)
	}
}

// fail records the failure of a series' points in the generation, for the
// Writes that wait for it. Only the flush of the generation calls it,
// before done is closed.
func (g *generation) fail(s *series, err error) {
	if g.failed == nil {
		g.failed = make(map[*series]error)
	}
	g.failed[s] = err
}
