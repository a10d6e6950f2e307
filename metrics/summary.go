package metrics

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Summary is a series' range cut down to the points a chart can draw.
type Summary struct {
	// Points are sorted by time. They are every point of the range when it
	// holds at most the number asked for; else, for each of that number
	// halved of equal spans of the range, its lowest and its highest point
	// (one, when that is the same point), so that spikes survive.
	Points []Point
	// Total is how many points the range holds. When the copies of the
	// servers together held too many to keep them all while reading (more
	// than 20,000, and than maxPoints a copy), it is the sum, over the
	// period keys, of the points on the copy with the most.
	Total int
	// Malformed counts the members skipped because they do not parse, on
	// the copy of each key with the most.
	Malformed int
}

// Downsampled reports whether the range held more points than Points.
func (s Summary) Downsampled() bool { return len(s.Points) < s.Total }

// Summarize reads the range [from, to] of a host's metric as Range does,
// from every up server of each key's replica group and in pages, and keeps
// at most maxPoints of its points (see Summary), so that its memory does
// not grow with the range: a month of a point a second is read in
// thousands of short commands and comes back as maxPoints points. It fails
// as Range does, and with maxPoints under 2.
func (st *Store) Summarize(ctx context.Context, series Series, from, to time.Time, maxPoints int) (Summary, error) {
	if maxPoints < 2 {
		return Summary{}, fmt.Errorf("metrics: Summarize: maxPoints %d: want at least 2", maxPoints)
	}
	host, metricName := series.Host, series.Metric
	keys, _, err := st.rangeKeys([]Series{series}, from, to)
	if err != nil {
		return Summary{}, err
	}
	sum := newSummarizer(from, to, maxPoints, st.mostCopies(keys))
	err = st.readPages(ctx, keys, secondsRange(from, to), sum.add)
	out := sum.result()
	if out.Malformed > 0 {
		st.c.Options().Logger.Debug("metrics: malformed metric members skipped",
			"host", host, "metric", metricName, "count", out.Malformed)
	}
	return out, err
}

// mostCopies returns the most servers that any of keys is read from.
func (st *Store) mostCopies(keys []pageKey) int {
	most := 1
	for _, k := range keys {
		servers, _ := st.c.AllServers(st.c.KeyToNode(k.key))
		most = max(most, len(servers))
	}
	return most
}

// keepPoints is how many points, all copies together, a summary keeps
// while reading, at least, to count the points of the range exactly and to
// return every one when there are few enough: 20,000 points take 640 KB.
const keepPoints = 20_000

// summarizer folds pages into a Summary as they come. It keeps every
// point, up to rawLimit, and the lowest and highest point of each bucket.
type summarizer struct {
	from     time.Time
	span     time.Duration
	maxPts   int
	rawLimit int

	mu        sync.Mutex // guards the fields below: pages come from one goroutine per server
	raw       []Point    // every point read, nil once there were more than rawLimit
	overflow  bool
	buckets   []bucket // maxPts/2 of them, made once more points than maxPts were read
	counts    map[keyCopy]int
	malformed map[keyCopy]int
}

// bucket is the lowest and the highest point of one span of the range.
type bucket struct {
	lo, hi Point
	any    bool
}

// newSummarizer returns the summarizer of a range. Its buckets are made
// once more points than maxPoints were read, so that what it holds grows
// with the points read and never with maxPoints alone: a maxPoints of 2⁴⁰
// for a range of ten points made buckets of 40 TB up front, and the
// process died.
func newSummarizer(from, to time.Time, maxPoints, copies int) *summarizer {
	rawLimit := math.MaxInt // maxPoints*copies, that does not overflow
	if maxPoints <= math.MaxInt/copies {
		rawLimit = maxPoints * copies
	}
	return &summarizer{
		from: from, span: to.Sub(from), maxPts: maxPoints, rawLimit: max(keepPoints, rawLimit),
		counts:    make(map[keyCopy]int),
		malformed: make(map[keyCopy]int),
	}
}

// fold puts points in the buckets, made at the first call.
func (s *summarizer) fold(points []Point) {
	if s.buckets == nil {
		s.buckets = make([]bucket, s.maxPts/2)
	}
	for _, p := range points {
		s.buckets[s.bucketOf(p.Time)].add(p)
	}
}

// add takes one page of one copy of a key (a pageFunc), and asks for the
// next.
func (s *summarizer) add(ref int, server string, page []redis.Z) bool {
	points, malformed := parsePage(page, nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyCopy{ref, server}
	s.counts[k] += len(points)
	s.malformed[k] += malformed
	if s.overflow {
		s.fold(points)
		return true
	}
	s.raw = append(s.raw, points...)
	if len(s.raw) > s.rawLimit { // and so than maxPts: the buckets are smaller
		s.fold(s.raw)
		s.raw, s.overflow = nil, true
	}
	return true
}

// bucketOf returns the index of the bucket of t, a time in the range or
// a microsecond past it (rounded).
func (s *summarizer) bucketOf(t time.Time) int {
	n := len(s.buckets)
	d := t.Sub(s.from)
	switch {
	case s.span <= 0 || d <= 0:
		return 0
	case d >= s.span:
		return n - 1
	}
	// d×n/span in whole numbers, so that a point on the boundary of two
	// spans is the later one's (in floating point, 6156 s of 10,800 in
	// 5,000 spans was 2849.9999999999995): d < span, so the quotient fits.
	hi, lo := bits.Mul64(uint64(d), uint64(n))
	i, _ := bits.Div64(hi, lo, uint64(s.span))
	return int(i)
}

// add folds p into the bucket. Ties go to the earlier point, so that the
// result does not depend on which copy came first.
func (b *bucket) add(p Point) {
	if !b.any {
		b.lo, b.hi, b.any = p, p, true
		return
	}
	if p.Value < b.lo.Value || p.Value == b.lo.Value && p.Time.Before(b.lo.Time) {
		b.lo = p
	}
	if p.Value > b.hi.Value || p.Value == b.hi.Value && p.Time.Before(b.hi.Time) {
		b.hi = p
	}
}

// result returns the Summary of what was added.
func (s *summarizer) result() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Summary
	out.Malformed = sumMost(s.malformed)
	if s.overflow {
		out.Total = sumMost(s.counts)
	} else {
		slices.SortFunc(s.raw, comparePoints)
		raw := slices.Compact(s.raw)
		if out.Total = len(raw); len(raw) <= s.maxPts {
			out.Points = raw
			return out
		}
		s.fold(raw)
	}
	out.Points = make([]Point, 0, 2*len(s.buckets))
	for _, b := range s.buckets {
		switch {
		case !b.any:
		case b.lo.Time.Equal(b.hi.Time) && b.lo.Value == b.hi.Value:
			out.Points = append(out.Points, b.lo)
		case b.lo.Time.After(b.hi.Time):
			out.Points = append(out.Points, b.hi, b.lo)
		default:
			out.Points = append(out.Points, b.lo, b.hi)
		}
	}
	// Buckets are in time order, but a point outside the range may have
	// gone to an end bucket out of order.
	slices.SortStableFunc(out.Points, func(a, b Point) int { return a.Time.Compare(b.Time) })
	return out
}
