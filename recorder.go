package federated

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redfed/federated/internal/metric"
)

// Defaults of RecorderOptions.
const (
	DefaultBatchSize     = 20000
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultMaxBuffered   = 100000
)

// ErrBufferFull is returned by Recorder.Add when the buffer is full and
// RecorderOptions.FailWhenFull is set.
var ErrBufferFull = errors.New("federated: recorder buffer full")

// RecorderOptions tune a Recorder. The zero value of every field means its
// default.
type RecorderOptions struct {
	// BatchSize is how many buffered points start a flush. Default 20,000:
	// the server's cost of a point falls with the points per key in a
	// flush, since each key costs one ZADD whatever its member count.
	BatchSize int
	// FlushInterval is the longest a point waits in the buffer before a
	// flush sends it. Default 100ms.
	FlushInterval time.Duration
	// MaxBuffered is how many points may wait in the buffer; then Add
	// blocks until a flush makes room, or fails with ErrBufferFull when
	// FailWhenFull is set. Default 100,000: a buffer a few batches deep
	// makes writers wait for the servers instead of racing them for CPU.
	MaxBuffered int
	// FailWhenFull makes Add fail instead of block when the buffer is full.
	FailWhenFull bool
	// OnError, if set, is called for every failed write with the error and
	// the number of points lost in it, from the goroutine that flushed,
	// before that flush ends: once Flush returns, OnError has seen every
	// failure it returns. It runs inside the flush, so it must not call
	// Flush or Close, nor an Add that may wait for room (re-add from
	// another goroutine, or set FailWhenFull). The same errors are also
	// returned by the next Flush or Close.
	OnError func(err error, points int)
}

func (o RecorderOptions) withDefaults() RecorderOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	return o
}

// RecorderStats counts a Recorder's points.
type RecorderStats struct {
	Added    int64 // points accepted by Add
	Written  int64 // points acknowledged by Redis
	Failed   int64 // points whose write failed, reported through Flush, Close and OnError
	Buffered int64 // points waiting for a flush
	Flushes  int64 // flushes that sent something
}

// Recorder writes metric points at high rates. Add buffers a point; a flush
// groups the buffered points by node and by key and sends each node one
// script call that adds every key's members with one ZADD and journals each
// changed key once, scored with the server's clock. Flushes happen when
// BatchSize points are buffered, every FlushInterval, and on Flush and
// Close.
//
// A Recorder is safe for concurrent use. Points whose write fails (a node
// with no up server, a key that holds another type, a dropped period) are
// never dropped in silence: Flush and Close return their errors, OnError
// sees each one, and Stats counts them. Writes to a replica group fail over
// to the group's next server, since adding members is idempotent.
//
// Close the Recorder before its Client.
type Recorder struct {
	c      *Client
	opts   RecorderOptions
	period metric.Period
	step   int64 // the period's length in seconds

	mu       sync.Mutex // guards the fields below
	room     *sync.Cond // signalled when a flush empties the buffer, or on close
	series   map[seriesID]*series
	pending  []*series // series with buffered points
	buffered int
	closed   bool

	flushMu sync.Mutex // one flush at a time; guards the fields below
	spare   []*series  // the previous pending list's storage
	batches map[*node]*nodeWrite
	errs    []error // failures since the last Flush or Close
	flushes int64   // flush count, for evicting idle series

	topo *topology // the topology series were routed with; guarded by mu

	kick     chan struct{} // asks the flush loop for a flush now
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when the flush loop ends

	added, written, failed, sent atomic.Int64
}

// seriesID names the key a point goes to.
type seriesID struct {
	host, metric string
	start        int64 // Unix seconds of the period start
}

// series is one key's buffer. buf is filled by Add under mu; out is the
// batch being sent, touched only under flushMu.
type series struct {
	key       string
	node      *node
	buf       []byte // members, each followed by '\n'
	points    int
	out       []byte
	outPoints int
	pending   bool  // in the pending list
	lastFlush int64 // the flush that last sent points of this series
}

// maxCallPoints caps the points of one script call, so that a large flush
// becomes several calls per node, each with its own command timeout, and no
// server is blocked long by one script.
const maxCallPoints = 10000

// nodeWrite is one node's part of a flush: its script calls, sent in turn.
type nodeWrite struct {
	node  *node
	calls []*callWrite
	used  int // calls in use in this flush
}

// callWrite is one script call of a flush.
type callWrite struct {
	batch  writeBatch
	series []*series
	points int
	err    error
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

// NewRecorder returns a Recorder writing through c, and starts its flush
// loop. A negative option is an error (ErrInvalidConfig) that names it.
func (c *Client) NewRecorder(opts RecorderOptions) (*Recorder, error) {
	for _, o := range []struct {
		name     string
		negative bool
		value    any
	}{
		{"BatchSize", opts.BatchSize < 0, opts.BatchSize},
		{"FlushInterval", opts.FlushInterval < 0, opts.FlushInterval},
		{"MaxBuffered", opts.MaxBuffered < 0, opts.MaxBuffered},
	} {
		if o.negative {
			return nil, fmt.Errorf("%w: RecorderOptions.%s is negative (%v); zero means the default", ErrInvalidConfig, o.name, o.value)
		}
	}
	if !c.addLoop() {
		return nil, ErrClosed
	}
	p := c.period()
	r := &Recorder{
		c:       c,
		opts:    opts.withDefaults(),
		period:  p,
		step:    int64(p.Duration() / time.Second),
		series:  make(map[seriesID]*series),
		topo:    c.topo.Load(),
		batches: make(map[*node]*nodeWrite),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	r.room = sync.NewCond(&r.mu)
	go r.loop()
	return r, nil
}

// Add buffers one point. It validates the point (ErrBadHost, ErrBadMetric,
// ErrBadTimestamp, ErrBadValue, nothing buffered on error); it blocks while
// the buffer is full, or fails with ErrBufferFull if the options say so.
func (r *Recorder) Add(host, metricName string, t time.Time, value float64) error {
	ts := metric.Seconds(t)
	if err := metric.ValidateTimestamp(ts); err != nil {
		return err
	}
	if err := metric.ValidateValue(value); err != nil {
		return err
	}
	sec := int64(ts)
	id := seriesID{host: host, metric: metricName, start: sec - sec%r.step}

	r.mu.Lock()
	for r.buffered >= r.opts.MaxBuffered && !r.closed {
		if r.opts.FailWhenFull {
			r.mu.Unlock()
			return ErrBufferFull
		}
		r.kickFlush()
		r.room.Wait()
	}
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	s := r.series[id]
	if s == nil {
		var err error
		if s, err = r.newSeriesLocked(id); err != nil {
			r.mu.Unlock()
			return err
		}
	}
	s.buf = append(metric.AppendMember(s.buf, ts, value), '\n')
	s.points++
	if !s.pending {
		s.pending = true
		r.pending = append(r.pending, s)
	}
	r.buffered++
	full := r.buffered >= r.opts.BatchSize
	r.mu.Unlock()

	r.added.Add(1)
	if full {
		r.kickFlush()
	}
	return nil
}

// newSeriesLocked validates the names of a series seen for the first time
// and makes its buffer.
func (r *Recorder) newSeriesLocked(id seriesID) (*series, error) {
	if err := metric.ValidateHost(id.host); err != nil {
		return nil, err
	}
	if err := metric.ValidateMetric(id.metric); err != nil {
		return nil, err
	}
	key := string(metric.AppendKey(nil, r.period, time.Unix(id.start, 0).UTC(), id.host, id.metric))
	s := &series{key: key, node: r.topo.route(r.c.hashKey("", key)), lastFlush: r.flushCount()}
	r.series[id] = s
	return s, nil
}

func (r *Recorder) flushCount() int64 { return atomic.LoadInt64(&r.flushes) }

// kickFlush asks the flush loop for a flush, without waiting.
func (r *Recorder) kickFlush() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// loop flushes on a timer and when kicked, until Close or the client's
// Close.
func (r *Recorder) loop() {
	defer r.c.wg.Done()
	defer close(r.done)
	ticker := time.NewTicker(r.opts.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.c.done:
			r.shut()
			return
		case <-ticker.C:
		case <-r.kick:
		}
		r.flush(context.Background())
	}
}

// Flush sends every point added before it and waits until each is
// acknowledged by Redis or has failed. It returns the errors of every write
// that failed since the last Flush or Close, background flushes included.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flush(ctx)
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	errs := r.errs
	r.errs = nil
	return errors.Join(errs...)
}

// Close flushes what is buffered, stops the flush loop, and returns the
// errors of every failed write since the last Flush. Adds after Close fail
// with ErrClosed. Close is idempotent.
func (r *Recorder) Close(ctx context.Context) error {
	r.stopOnce.Do(func() {
		close(r.stop)
		<-r.done
	})
	r.shut()
	return r.Flush(ctx)
}

// shut refuses further points and wakes blocked Adds.
func (r *Recorder) shut() {
	r.mu.Lock()
	r.closed = true
	r.room.Broadcast()
	r.mu.Unlock()
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() RecorderStats {
	r.mu.Lock()
	buffered := r.buffered
	r.mu.Unlock()
	return RecorderStats{
		Added:    r.added.Load(),
		Written:  r.written.Load(),
		Failed:   r.failed.Load(),
		Buffered: int64(buffered),
		Flushes:  r.sent.Load(),
	}
}

// flush sends what is buffered now: it takes the buffers from Add, groups
// them by node and sends every node its batch at once.
func (r *Recorder) flush(ctx context.Context) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()

	r.mu.Lock()
	if t := r.c.topo.Load(); t != r.topo {
		// Nodes were added or removed: route every series again.
		r.topo = t
		for _, s := range r.series {
			s.node = t.route(r.c.hashKey("", s.key))
		}
		clear(r.batches)
	}
	batch := r.pending
	r.pending, r.spare = r.spare[:0], nil
	r.buffered = 0
	for _, s := range batch {
		s.out, s.buf = s.buf, s.out[:0]
		s.outPoints, s.points = s.points, 0
		s.pending = false
	}
	r.room.Broadcast()
	r.mu.Unlock()

	flushNo := atomic.AddInt64(&r.flushes, 1)
	if len(batch) > 0 {
		r.send(ctx, batch, flushNo)
		r.sent.Add(1)
	}
	clear(batch)
	r.spare = batch[:0]
	if flushNo%64 == 0 {
		r.evict(flushNo)
	}
}

// send writes the taken series, node by node at once, each node's calls in
// turn, and accounts for every point.
func (r *Recorder) send(ctx context.Context, batch []*series, flushNo int64) {
	used := make([]*nodeWrite, 0, len(r.batches))
	for _, s := range batch {
		s.lastFlush = flushNo
		nw := r.batches[s.node]
		if nw == nil {
			nw = &nodeWrite{node: s.node}
			r.batches[s.node] = nw
		}
		if nw.used == 0 {
			used = append(used, nw)
		}
		cw := nw.call(s.outPoints)
		cw.series = append(cw.series, s)
		cw.points += s.outPoints
		cw.batch.add(s.key, s.out)
	}

	var wg sync.WaitGroup
	for _, nw := range used {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, cw := range nw.calls[:nw.used] {
				cw.err = r.c.writeNode(ctx, nw.node, &cw.batch)
			}
		}()
	}
	wg.Wait()

	for _, nw := range used {
		for _, cw := range nw.calls[:nw.used] {
			r.account(cw)
			clear(cw.series)
			cw.series, cw.points, cw.err = cw.series[:0], 0, nil
			cw.batch.reset()
		}
		nw.used = 0
	}
}

// account counts a call's written and failed points and reports failures.
func (r *Recorder) account(cw *callWrite) {
	points := cw.points
	if cw.err != nil {
		r.fail(fmt.Errorf("%w (%d points in %d keys)", cw.err, points, len(cw.series)), points)
		return
	}
	for i, err := range cw.batch.failed {
		n := cw.series[i].outPoints
		points -= n
		r.fail(err, n)
	}
	r.written.Add(int64(points))
}

func (r *Recorder) fail(err error, points int) {
	r.failed.Add(int64(points))
	r.errs = append(r.errs, err)
	if r.opts.OnError != nil {
		r.opts.OnError(err, points)
	}
}

// evict forgets series that have had no point for a while (past periods,
// hosts gone quiet), so that the table does not grow without end.
func (r *Recorder) evict(flushNo int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range r.series {
		if !s.pending && flushNo-s.lastFlush > 64 {
			delete(r.series, id)
		}
	}
}
