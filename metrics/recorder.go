package metrics

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
)

// Defaults of RecorderOptions.
const (
	DefaultBatchSize     = 20000
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultPointsPerFlush sets MaxBuffered's default: this many points
	// for each flush MaxFlushes lets run, and as many again buffered.
	DefaultPointsPerFlush = 300000
)

// ErrBufferFull is returned by Recorder.Add and Recorder.Write when the
// buffer is full and RecorderOptions.FailWhenFull is set.
var ErrBufferFull = errors.New("metrics: recorder buffer full")

// RecorderOptions tune a Recorder. The zero value of every field means its
// default.
type RecorderOptions struct {
	// BatchSize is how many buffered points start a flush. Default 20,000:
	// the server's cost of a point falls with the points per key in a
	// flush, since each key costs one ZADD whatever its member count. While
	// MaxFlushes flushes are under way, points wait and the next flush
	// takes them all, up to MaxBuffered / (MaxFlushes + 1): batches grow
	// with the load.
	BatchSize int
	// FlushInterval is the longest a point added with Add waits in the
	// buffer before a flush sends it. Default 100ms. Write does not wait
	// for it.
	FlushInterval time.Duration
	// MaxBuffered is how many points may be buffered or in flushes under
	// way; then Add and Write wait until a flush ends, or fail with
	// ErrBufferFull when FailWhenFull is set. Default DefaultPointsPerFlush
	// × (MaxFlushes + 1): 600,000 with one flush at a time. While flushes
	// are under way the buffer takes at most MaxBuffered / (MaxFlushes +
	// 1) points (and Add and Write wait or fail there), so that while the
	// servers lag behind the writers each flush takes about that many: the
	// more points each key gets in a script call, the less a point costs
	// the servers. A buffered point holds 17 to 285 bytes, more with more
	// series; a flush holds one script call's arguments per node besides,
	// and buffers kept for reuse hold at most 32 bytes a point.
	MaxBuffered int
	// MaxFlushes is how many flushes may be under way at once, each
	// sending every node its share in script calls of at most 10,000
	// points. Default: one per 4 CPUs (GOMAXPROCS), from 1 to 4. More
	// flushes let a server's next batch travel while it runs the last one,
	// which pays where there are cores to spare; where the client and the
	// servers share a few cores, one flush at a time makes larger batches,
	// which cost the servers less per point.
	MaxFlushes int
	// FailWhenFull makes Add and Write fail instead of wait when the
	// buffer is full.
	FailWhenFull bool
	// OnError, if set, is called for every failed write with the error and
	// the number of points lost in it, from the goroutine that flushed,
	// before the points' Write, Flush or Close returns. It runs inside the
	// flush, so it must not call Write, Flush or Close, nor an Add that may
	// wait for room (re-add from another goroutine, or set FailWhenFull).
	OnError func(err error, points int)
}

func (o RecorderOptions) withDefaults() RecorderOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxFlushes <= 0 {
		o.MaxFlushes = min(max(runtime.GOMAXPROCS(0)/4, 1), 4)
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultPointsPerFlush * (o.MaxFlushes + 1)
	}
	return o
}

// RecorderStats counts a Recorder's points.
type RecorderStats struct {
	Added    int64 // points accepted by Add and Write
	Written  int64 // points acknowledged by Redis
	Failed   int64 // points whose write failed, reported through Write, Flush, Close and OnError
	Buffered int64 // points waiting for a flush or in a flush under way
	Flushes  int64 // flushes that sent something
}

// Sample is one point of one series, for Recorder.Write.
type Sample struct {
	Host, Metric string
	Time         time.Time
	Value        float64
}

// Recorder writes metric points at high rates. Points are buffered; a flush
// groups them by node and by key and sends each node script calls that add
// every key's members with one ZADD and journal each changed key once,
// scored with the server's clock. Flushes start when BatchSize points are
// buffered, every FlushInterval, and for Write, Flush and Close; up to
// MaxFlushes run at once.
//
// A Recorder is safe for concurrent use. Points whose write fails (a node
// with no up server, a key that holds another type, a dropped period) are
// never dropped in silence. The last two are final: a key of another type
// stays so until someone deletes it, and a dropped period never comes back
// (federated.ErrWrongType, federated.ErrPeriodDropped), so writing their
// points again fails again. Write returns the failures of its own points,
// and how many they are (*WriteError): goroutines that share a Recorder
// and want to know which of their points to send again use it; their
// Writes share flushes (a group commit). Add buffers a point and returns
// at once; Flush, and Close, return every failure since the previous
// Flush, each once, which suits a Recorder with one goroutine in charge of
// it, or OnError. Stats counts them all. Writes to a replica group fail
// over to the group's next server, since adding members is idempotent.
//
// Close the Recorder before its Client; a Recorder whose Client closes
// stops taking points, and its flushes fail with federated.ErrClosed.
type Recorder struct {
	c      *federated.Client
	keys   journal.Keys
	copies int // MetricsOptions.Copies
	opts   RecorderOptions
	period metric.Period
	step   int64 // the period's length in seconds

	mu       sync.Mutex         // guards the fields below
	series   map[uint64]*series // by the hash seriesOf gives; series of one hash chained through next
	cur      *generation        // the points buffered now
	flushing []*generation      // flushes under way, oldest first
	inFlight int                // points in flushes under way
	room     chan struct{}      // closed when a flush ends, or on close; then replaced
	free     [][]byte           // member buffers to reuse (see keepLocked)
	freeSize int                // the capacity of free's buffers, in bytes
	works    []*flushWork       // flush state to reuse
	topo     uint64             // the topology version series were routed with
	flushNo  int64              // flushes taken, for evicting idle series
	closed   bool

	errMu sync.Mutex
	errs  []error // failures since the last Flush or Close

	kick     chan struct{} // asks the dispatcher to look at the buffer
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when the dispatcher ends
	flushers sync.WaitGroup

	added, written, failed, sent atomic.Int64

	seed maphash.Seed // of the series hashes
}

// seriesID names the key a point goes to.
type seriesID struct {
	host, metric string
	start        int64 // Unix seconds of the period start
}

// series is one key's buffer, guarded by Recorder.mu: its members added
// since the current generation began, each followed by '\n'.
type series struct {
	id        seriesID
	next      *series // of the same hash
	key       string
	node      string
	buf       []byte
	points    int
	pending   bool  // in the current generation
	lastFlush int64 // the flush that last took points of this series
}

// generation is the points of one flush: buffered until a flush takes
// them, then sent. done is closed once every point is written or failed,
// and failed then says which series failed, and why.
type generation struct {
	pending []*series
	points  int
	waiters int  // Writes and Flushes waiting for it: it is flushed at once
	viaAdd  bool // it holds points of Add, whose failures Flush returns
	done    chan struct{}
	failed  map[*series]error
}

func newGeneration() *generation { return &generation{done: make(chan struct{})} }

// take is a series' points in a flush.
type take struct {
	s       *series
	node    string // s.node when taken: another flush may route s again
	members []byte
	points  int
}

// NewRecorder returns a Recorder writing to the store, and starts its
// dispatcher. A negative option is an error (federated.ErrInvalidConfig)
// that names it.
func (st *Store) NewRecorder(opts RecorderOptions) (*Recorder, error) {
	for _, o := range []struct {
		name     string
		negative bool
		value    any
	}{
		{"BatchSize", opts.BatchSize < 0, opts.BatchSize},
		{"FlushInterval", opts.FlushInterval < 0, opts.FlushInterval},
		{"MaxBuffered", opts.MaxBuffered < 0, opts.MaxBuffered},
		{"MaxFlushes", opts.MaxFlushes < 0, opts.MaxFlushes},
	} {
		if o.negative {
			return nil, fmt.Errorf("%w: RecorderOptions.%s is negative (%v); zero means the default", federated.ErrInvalidConfig, o.name, o.value)
		}
	}
	select {
	case <-st.c.Done():
		return nil, federated.ErrClosed
	default:
	}
	p := st.period
	r := &Recorder{
		c:      st.c,
		keys:   st.keys,
		copies: st.c.Options().Metrics.Copies,
		opts:   opts.withDefaults(),
		period: p,
		step:   int64(p.Duration() / time.Second),
		series: make(map[uint64]*series),
		seed:   maphash.MakeSeed(),
		cur:    newGeneration(),
		room:   make(chan struct{}),
		topo:   st.c.TopologyVersion(),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go r.dispatch()
	return r, nil
}

// Add buffers one point and returns: a flush sends it within FlushInterval.
// It validates the point (ErrBadHost, ErrBadMetric, ErrBadTimestamp,
// ErrBadValue; nothing buffered on error). While the buffer is full it
// waits for room until ctx ends, or fails with ErrBufferFull if the options
// say so. Its failure, if the write fails, is returned by the next Flush or
// Close.
func (r *Recorder) Add(ctx context.Context, host, metricName string, t time.Time, value float64) error {
	ts, err := validPoint(t, value)
	if err != nil {
		return err
	}
	// The series' hash is found before the mutex is taken.
	id, h := r.seriesOf(host, metricName, ts)
	r.mu.Lock()
	if _, err = r.addLocked(ctx, id, h, ts, value); err == nil {
		r.cur.viaAdd = true
	}
	r.mu.Unlock()
	return err
}

// Write adds points and waits until each is written or failed, flushing
// them at once together with what other goroutines added meanwhile. It
// returns the failures of its own points only, and none of others'.
//
// Every point is validated first: a bad one is an error that names it
// (federated.ErrBadHost, ErrBadMetric, ErrBadTimestamp, ErrBadValue), and
// nothing is written. Once the points are added, an error is a *WriteError
// that says how many of them failed and why, each failure a
// *federated.ServerError that names its node and server; the others were
// written. Of those failures, federated.ErrPeriodDropped (a period that
// retention dropped) and federated.ErrWrongType (a key that holds another
// type) are final, not worth retrying: writing the points again fails
// again. The others (a server down, a timeout, a refusal that passes) may
// succeed on another try, and writing a point again is always safe.
//
// While the buffer is full Write waits for room, or fails with
// ErrBufferFull if the options say so; the points added before that are
// written all the same, and the *WriteError counts the rest as failed.
// When ctx ends before the points are written, Write returns ctx's error,
// and they may still be written.
func (r *Recorder) Write(ctx context.Context, samples ...Sample) error {
	points := make([]point, len(samples))
	for i, s := range samples {
		ts, err := validPoint(s.Time, s.Value)
		if err != nil {
			return fmt.Errorf("sample %d of %d: %w", i+1, len(samples), err)
		}
		points[i].id, points[i].hash = r.seriesOf(s.Host, s.Metric, ts)
		points[i].ts, points[i].value = ts, s.Value
	}
	var gens []*generation
	// The Write's points by generation and series, in the order first
	// added, so that its failures come in that order.
	var mine []owned
	index := make(map[ownedKey]int)
	added := 0
	var addErr error
	r.mu.Lock()
	for i, s := range samples {
		if r.lookupLocked(points[i].id, points[i].hash) == nil {
			if err := validNames(s.Host, s.Metric); err != nil {
				r.mu.Unlock()
				return fmt.Errorf("sample %d of %d: %w", i+1, len(samples), err)
			}
		}
	}
	for i := range points {
		sr, err := r.addLocked(ctx, points[i].id, points[i].hash, points[i].ts, points[i].value)
		if err != nil {
			addErr = err
			break
		}
		added++
		k := ownedKey{r.cur, sr}
		if n, ok := index[k]; ok {
			mine[n].points++
		} else {
			index[k] = len(mine)
			mine = append(mine, owned{ownedKey: k, points: 1})
		}
		if len(gens) == 0 || gens[len(gens)-1] != r.cur {
			r.cur.waiters++
			gens = append(gens, r.cur)
		}
	}
	r.mu.Unlock()
	if len(gens) > 0 {
		r.kickFlush()
	}
	for _, g := range gens {
		select {
		case <-g.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var we *WriteError
	for _, o := range mine {
		if err, ok := o.g.failed[o.s]; ok {
			we = we.add(len(samples), WriteFailure{Err: err, Points: o.points, Period: r.period.Format(time.Unix(o.s.id.start, 0))})
		}
	}
	if addErr != nil {
		we = we.add(len(samples), WriteFailure{Err: addErr, Points: len(samples) - added})
	}
	if we == nil {
		return nil // not a nil *WriteError in an error
	}
	return we
}

// validPoint checks a point's time and value, and returns its timestamp in
// seconds.
func validPoint(t time.Time, value float64) (float64, error) {
	ts := metric.Seconds(t)
	if err := metric.ValidateTimestamp(ts); err != nil {
		return 0, err
	}
	return ts, metric.ValidateValue(value)
}

// validNames checks the names of a series seen for the first time.
func validNames(host, metricName string) error {
	if err := metric.ValidateHost(host); err != nil {
		return err
	}
	return metric.ValidateMetric(metricName)
}

// point is a validated point of a Write: its series' id and hash, its
// timestamp and value.
type point struct {
	id        seriesID
	hash      uint64
	ts, value float64
}

// seriesOf returns the id of the series a point goes to and its hash, the
// key of the series in the Recorder's table (two series may share one: the
// table chains them). It needs no lock.
func (r *Recorder) seriesOf(host, metricName string, ts float64) (seriesID, uint64) {
	sec := int64(ts)
	id := seriesID{host: host, metric: metricName, start: sec - sec%r.step}
	h := maphash.String(r.seed, host) ^ bits.RotateLeft64(maphash.String(r.seed, metricName), 32) ^
		uint64(id.start)*0x9e3779b97f4a7c15
	return id, h
}

// lookupLocked returns the series of id, whose hash is h, or nil if the
// Recorder has none; r.mu is held.
func (r *Recorder) lookupLocked(id seriesID, h uint64) *series {
	for s := r.series[h]; s != nil; s = s.next {
		if s.id == id {
			return s
		}
	}
	return nil
}

// addLocked buffers one validated point, waiting for room while the buffer
// is full; r.mu is held, and released while it waits. It returns the
// point's series.
func (r *Recorder) addLocked(ctx context.Context, id seriesID, h uint64, ts, value float64) (*series, error) {
	for r.cur.points >= r.roomLocked() && !r.closed {
		if r.opts.FailWhenFull {
			r.kickFlush() // a flush may be free to take the buffer
			return nil, ErrBufferFull
		}
		room := r.room
		r.mu.Unlock()
		r.kickFlush()
		select {
		case <-room:
			r.mu.Lock()
		case <-ctx.Done():
			r.mu.Lock()
			return nil, ctx.Err()
		}
	}
	if r.closed {
		return nil, federated.ErrClosed
	}
	s := r.lookupLocked(id, h)
	if s == nil {
		if err := validNames(id.host, id.metric); err != nil {
			return nil, err
		}
		key := string(metric.AppendKey(nil, r.period, time.Unix(id.start, 0).UTC(), id.host, id.metric))
		s = &series{id: id, next: r.series[h], key: key, node: r.c.KeyToNode(key), lastFlush: r.flushNo}
		r.series[h] = s
	}
	if s.buf == nil && len(r.free) > 0 {
		last := len(r.free) - 1 // and free forgets it: it may not come back
		s.buf, r.free[last], r.free = r.free[last], nil, r.free[:last]
		r.freeSize -= cap(s.buf)
	}
	s.buf = append(metric.AppendMember(s.buf, ts, value), '\n')
	s.points++
	if !s.pending {
		s.pending = true
		r.cur.pending = append(r.cur.pending, s)
	}
	r.cur.points++
	r.added.Add(1)
	if r.cur.points == r.opts.BatchSize {
		r.kickFlush()
	}
	return s, nil
}

// roomLocked returns how many points the current generation may hold; r.mu
// is held. With no flush under way it may fill MaxBuffered. While flushes
// run it takes at most MaxBuffered / (MaxFlushes + 1), so that a loaded
// Recorder's flushes keep an even size: were it to take all the room a
// small flush leaves, a large flush would follow, then a small one again,
// and the writers would wait while the servers work.
func (r *Recorder) roomLocked() int {
	if r.inFlight == 0 {
		return r.opts.MaxBuffered
	}
	return min(r.opts.MaxBuffered-r.inFlight, max(r.opts.MaxBuffered/(r.opts.MaxFlushes+1), 1))
}

// kickFlush asks the dispatcher to look at the buffer, without waiting.
func (r *Recorder) kickFlush() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// dispatch starts flushes: when BatchSize points are buffered, when a
// Write or Flush waits, and every FlushInterval, as long as fewer than
// MaxFlushes are under way. It ends on Close or the client's Close, once
// every point buffered is flushed.
func (r *Recorder) dispatch() {
	defer close(r.done)
	ticker := time.NewTicker(r.opts.FlushInterval)
	defer ticker.Stop()
	for {
		due := false
		select {
		case <-r.stop:
			r.drain()
			return
		case <-r.c.Done():
			r.shut()
			r.drain()
			return
		case <-ticker.C:
			due = true
		case <-r.kick:
		}
		for r.startFlush(due) {
		}
	}
}

// drain flushes what is left in the buffer once the Recorder is shut (the
// points of Adds that raced with Close's first Flush, or of a client that
// closed first, whose flushes then fail), and waits for every flush: no
// generation is left for a Flush to wait on when the dispatcher ends.
func (r *Recorder) drain() {
	for {
		r.flushers.Wait()
		if !r.startFlush(true) {
			return
		}
	}
}

// startFlush takes the buffered points and sends them in a goroutine of
// their own, if there are any, a flush is due (BatchSize reached, the
// buffer full, a waiter, or the interval, due) and fewer than MaxFlushes
// are under way. It reports whether it started one.
func (r *Recorder) startFlush(due bool) bool {
	r.mu.Lock()
	g := r.cur
	full := g.points >= r.opts.BatchSize || g.points >= r.roomLocked()
	if g.points == 0 || len(r.flushing) >= r.opts.MaxFlushes || !(due || full || g.waiters > 0) {
		r.mu.Unlock()
		return false
	}
	w := r.takeLocked()
	r.mu.Unlock()
	r.flushers.Add(1)
	go func() {
		defer r.flushers.Done()
		r.send(w)
		r.finish(w)
	}()
	return true
}

// takeLocked takes the current generation's points for a flush and starts
// a new generation; r.mu is held.
func (r *Recorder) takeLocked() *flushWork {
	if v := r.c.TopologyVersion(); v != r.topo {
		// Nodes were added or removed: route every series again.
		r.topo = v
		for _, first := range r.series {
			for s := first; s != nil; s = s.next {
				s.node = r.c.KeyToNode(s.key)
			}
		}
	}
	var w *flushWork
	if n := len(r.works); n > 0 {
		w, r.works = r.works[n-1], r.works[:n-1]
	} else {
		w = &flushWork{batches: make(map[string]*nodeWrite)}
	}
	if w.topo != r.topo {
		clear(w.batches)
		w.topo = r.topo
	}
	g := r.cur
	r.flushNo++
	w.gen, w.flushNo = g, r.flushNo
	for _, s := range g.pending {
		w.takes = append(w.takes, take{s: s, node: s.node, members: s.buf, points: s.points})
		s.buf, s.points, s.pending, s.lastFlush = nil, 0, false, r.flushNo
	}
	r.inFlight += g.points
	r.flushing = append(r.flushing, g)
	r.cur = newGeneration()
	if r.flushNo%64 == 0 {
		r.evictLocked()
	}
	return w
}

// finish accounts for a flush that ended: its buffers go back for reuse,
// its generation is done, and room is made.
func (r *Recorder) finish(w *flushWork) {
	g := w.gen
	r.mu.Lock()
	for _, t := range w.takes {
		r.keepLocked(t.members)
	}
	clear(w.takes)
	w.takes, w.gen = w.takes[:0], nil
	r.works = append(r.works, w)
	r.inFlight -= g.points
	for i, f := range r.flushing {
		if f == g {
			r.flushing = append(r.flushing[:i], r.flushing[i+1:]...)
			break
		}
	}
	close(r.room)
	r.room = make(chan struct{})
	r.mu.Unlock()
	r.sent.Add(1)
	close(g.done)
	r.kickFlush() // points may have piled up while MaxFlushes ran
}

// Flush sends every point added before it and waits until each is
// acknowledged by Redis or has failed, or ctx ends. It returns every write
// failure of points added with Add since the previous Flush or Close, each
// once (and those of Writes whose points shared a flush with them): Write
// is the call for a goroutine that must know its own points' failures
// while others use the same Recorder.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	wait := slices.Clone(r.flushing)
	if r.cur.points > 0 {
		wait = append(wait, r.cur)
		r.cur.waiters++
	}
	r.mu.Unlock()
	r.kickFlush()
	for _, g := range wait {
		select {
		case <-g.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	errs := r.errs
	r.errs = nil
	return errors.Join(errs...)
}

// Close flushes what is buffered, waits for every flush, stops the
// dispatcher, and returns the write failures Flush would. Each write is
// bounded by the command timeout, on each server it may go to; call Flush
// first with a context to bound the wait otherwise. Add and Write after
// Close fail with federated.ErrClosed. Close is idempotent.
func (r *Recorder) Close() error {
	ctx := context.Background()
	err := r.Flush(ctx)
	r.shut()
	r.stopOnce.Do(func() {
		close(r.stop)
		<-r.done
	})
	// The dispatcher sent what Adds that raced with the first Flush left
	// before it ended: this Flush collects their failures.
	return errors.Join(err, r.Flush(ctx))
}

// shut refuses further points and wakes Adds that wait for room.
func (r *Recorder) shut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.room)
		r.room = make(chan struct{})
	}
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() RecorderStats {
	r.mu.Lock()
	buffered := r.cur.points + r.inFlight
	r.mu.Unlock()
	return RecorderStats{
		Added:    r.added.Load(),
		Written:  r.written.Load(),
		Failed:   r.failed.Load(),
		Buffered: int64(buffered),
		Flushes:  r.sent.Load(),
	}
}

// keepLocked keeps a series' member buffer for the next series that needs
// one; r.mu is held. Buffers go from series to series, so that one which
// grew for a large series (a backfill) and then served small ones would
// stay large, and a Recorder that took a large series now and then would
// keep one more large buffer each time. So a buffer is kept only while it
// is at most four times (and 1 KiB) larger than what it last held, and
// all those kept hold at most 32 bytes for each point of MaxBuffered.
func (r *Recorder) keepLocked(buf []byte) {
	size := cap(buf)
	if size > 4*len(buf)+1024 || r.freeSize+size > 32*r.opts.MaxBuffered {
		return
	}
	r.free = append(r.free, buf[:0])
	r.freeSize += size
}

// evictLocked forgets series that have had no point for a while (past
// periods, hosts gone quiet), so that the table does not grow without end;
// r.mu is held.
func (r *Recorder) evictLocked() {
	for h, first := range r.series {
		var kept *series
		for s := first; s != nil; {
			next := s.next
			if !s.pending && r.flushNo-s.lastFlush > 64 {
				if s.buf != nil {
					r.keepLocked(s.buf)
				}
				s.next = nil
			} else {
				s.next, kept = kept, s
			}
			s = next
		}
		if kept == nil {
			delete(r.series, h)
		} else {
			r.series[h] = kept
		}
	}
}
