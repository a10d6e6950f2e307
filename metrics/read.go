package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
)

// Reading metrics back. A range read asks every up server of the group that
// owns each period key the range touches, in pages, all servers at once,
// and merges their copies (see metrics_pages.go). Members that are not
// "$timestamp:$value" (written by hand, or by a broken writer) are skipped
// and counted, never fatal. Listings come from the journals of every
// server.

// ErrNoData is returned by Latest when a series has no point within the
// look-back.
var ErrNoData = errors.New("metrics: no data")

// MaxRangePeriods bounds the number of periods one range read may touch, so
// that a range from the zero time does not queue millions of commands.
const MaxRangePeriods = 100_000

// ErrRangeTooWide is wrapped by the error of a range read of
// MaxRangePeriods periods or more, refused before any server is asked.
var ErrRangeTooWide = errors.New("metrics: range too wide")

// journalPage is how many journal entries a listing asks for at once: a
// journal with fewer changed keys is read in one ZRANGEBYSCORE, a larger one
// with ZSCAN in pages of this size.
const journalPage = 10_000

// RangeResult is what a range read found in one series.
type RangeResult struct {
	Series    Series
	Points    []Point // sorted by time
	Malformed int     // members skipped because they do not parse, or are not scored by their timestamp, on the copy of each key with the most
}

// Range returns the points of each series whose time lies in [from, to],
// sorted by time: one result per series asked for, in the same order. A
// point's time is its timestamp rounded to the microsecond, so a range that
// holds no whole microsecond holds no point. It reads every period key the
// range touches from every up server of the key's replica group and merges
// their copies, so that a point is found as soon as any server acknowledged
// it, before the syncer has copied it to the others. Keys are read in pages
// of 1,000 members, so that a long range does not hold a server for long,
// and a page that runs out of time fails the read without marking its
// server down. A missing key has no points. Malformed members, and members
// not scored by their own timestamp (a foreign writer's), are skipped,
// counted and logged at Debug. Bad names fail with federated.ErrBadHost or
// ErrBadMetric, times before 1970 or after 9999 with ErrBadTimestamp, a
// range of MaxRangePeriods periods or more with an error that says so, and
// nothing is read. When a server is down or fails, the points of the
// others are returned with its error: what it alone acknowledged may be
// missing.
func (st *Store) Range(ctx context.Context, from, to time.Time, series ...Series) ([]RangeResult, error) {
	byKey, err := st.rangeSeries(ctx, series, from, to)
	if byKey == nil {
		return nil, err
	}
	out := make([]RangeResult, len(series))
	for i, s := range series {
		out[i] = byKey[s]
		out[i].Series = s
	}
	return out, err
}

// rangeSeries is Range by series, each asked for once.
func (st *Store) rangeSeries(ctx context.Context, series []Series, from, to time.Time) (map[Series]RangeResult, error) {
	results := make(map[Series]RangeResult, len(series))
	var owners []Series // by key reference
	for _, s := range series {
		if _, dup := results[s]; !dup {
			results[s] = RangeResult{}
			owners = append(owners, s)
		}
	}
	keys, seriesOf, err := st.rangeKeys(owners, from, to)
	if err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex
		bad = make(map[keyCopy]int)
	)
	err = st.readPages(ctx, keys, secondsRange(from, to),
		func(ref int, server string, page []redis.Z) bool {
			points, malformed := parsePage(page, nil)
			s := owners[seriesOf[ref]]
			mu.Lock()
			defer mu.Unlock()
			r := results[s]
			r.Points = append(r.Points, points...)
			results[s] = r
			bad[keyCopy{ref, server}] += malformed
			return true
		})
	for s, r := range results {
		// The copies of every server of a group, and the period keys in
		// any order: sort, and keep each point once.
		slices.SortFunc(r.Points, comparePoints)
		r.Points = slices.Compact(r.Points)
		results[s] = r
	}
	for _, n := range mostPerKey(bad) {
		s := owners[seriesOf[n.ref]]
		r := results[s]
		r.Malformed += n.count
		results[s] = r
	}
	for s, r := range results {
		if r.Malformed > 0 {
			st.c.Options().Logger.Debug("metrics: malformed metric members skipped",
				"host", s.Host, "metric", s.Metric, "count", r.Malformed)
		}
	}
	return results, err
}

// rangeKeys validates series and a range and returns the period keys to
// read, each referring to its index, and the index in series of each key's
// series.
func (st *Store) rangeKeys(series []Series, from, to time.Time) (keys []pageKey, seriesOf []int, err error) {
	for _, s := range series {
		if err := validateSeries(s); err != nil {
			return nil, nil, err
		}
	}
	p := st.period
	if err := checkRange(p, from, to); err != nil {
		return nil, nil, err
	}
	starts := p.Periods(from, to)
	keys = make([]pageKey, 0, len(series)*len(starts))
	seriesOf = make([]int, 0, cap(keys))
	var key []byte
	for i, s := range series {
		for _, start := range starts {
			key = metric.AppendKey(key[:0], p, start, s.Host, s.Metric)
			keys = append(keys, pageKey{key: string(key), ref: len(keys)})
			seriesOf = append(seriesOf, i)
		}
	}
	return keys, seriesOf, nil
}

// secondsRange is the pageRange of the times [from, to]: the scores of the
// points that read back at a time in it, metric.Time rounding a score to
// the microsecond. The float64s nearest to from and to, which Seconds
// gives, would not do: they lie up to 119 ns either side, and a point 100
// ns past to was read.
func secondsRange(from, to time.Time) pageRange {
	return pageRange{min: formatScore(metric.SecondsAtOrAfter(from)), max: formatScore(metric.SecondsAtOrBefore(to))}
}

// keyCopy is one server's copy of a key of a read, by the key's reference.
type keyCopy struct {
	ref    int
	server string
}

// keyCount is a count for one key of a read.
type keyCount struct {
	ref, count int
}

// mostPerKey returns, for every key, the largest count of any of its
// copies, sorted by key reference.
func mostPerKey(counts map[keyCopy]int) []keyCount {
	most := make(map[int]int)
	for k, n := range counts {
		most[k.ref] = max(most[k.ref], n)
	}
	out := make([]keyCount, 0, len(most))
	for ref, n := range most {
		out = append(out, keyCount{ref, n})
	}
	slices.SortFunc(out, func(a, b keyCount) int { return cmp.Compare(a.ref, b.ref) })
	return out
}

// sumMost returns the sum, over the keys, of the largest count of any of
// their copies.
func sumMost(counts map[keyCopy]int) int {
	total := 0
	for _, n := range mostPerKey(counts) {
		total += n.count
	}
	return total
}

// parsePage appends the points of a page's members to dst, and counts the
// members that are not points.
func parsePage(page []redis.Z, dst []Point) (points []Point, malformed int) {
	dst = slices.Grow(dst, len(page))
	for _, z := range page {
		ts, v, ok := parsePoint(z)
		if !ok {
			malformed++
			continue
		}
		dst = append(dst, Point{Time: metric.Time(ts), Value: v})
	}
	return dst, malformed
}

// parsePoint returns the point of a member, which is one when it parses
// and its timestamp is its score. Every writer, this package's and the
// Perl module's, scores a member by its own timestamp text, which Redis
// and Go read as the same float64; a member scored otherwise (a foreign
// writer's) would put a point outside the range read, or pass for a
// key's newest.
func parsePoint(z redis.Z) (ts, value float64, ok bool) {
	m, _ := z.Member.(string)
	ts, value, err := metric.ParseMember(m)
	return ts, value, err == nil && ts == z.Score
}

// Latest returns the newest point of a host's metric. It looks back through
// the period that holds the present (by the client's clock) and earlier
// ones: Options.Metrics.Retention periods when it is set, else 7 days' worth
// (7 daily or 168 hourly periods). It reads the next period too, so that a
// writer whose clock runs ahead of the reader's across the start of a period
// is seen, and leaves out points more than 10 minutes ahead of the reader's
// clock, which would pass for the newest until it got there. It reads the
// next period, the present one and the one before first, and the earlier
// ones only when those hold no point. It asks each key for its highest
// scored member, all keys of a server at once, from every up server of the
// key's replica group, as Range does: the newest point acknowledged by any
// of them: of each server's points at the newest time, the one Redis sorts
// last (the larger member, byte by byte: "9" after "10"), and of those of
// two servers, the larger value. Malformed members are skipped: the key is
// asked for the next ones. With no point in the look-back it returns
// ErrNoData. When a server is down or fails, the error is returned with the
// newest point the others had, if any.
func (st *Store) Latest(ctx context.Context, series Series) (Point, error) {
	res, err := st.LatestEach(ctx, series)
	switch {
	case res == nil:
		return Point{}, err
	case res[0].Found:
		return res[0].Point, err
	case err != nil:
		return Point{}, err
	}
	return Point{}, fmt.Errorf("%w for host %s, metric %s, in the last %d %ss", ErrNoData, series.Host, series.Metric, st.lookBack(), st.period)
}

// LatestResult is the newest point of a series that LatestEach found.
type LatestResult struct {
	Series Series
	Point  Point
	Found  bool // false for a series with no point in the look-back
}

// LatestEach returns the newest point of each series, as Latest finds it,
// in one read of all their keys: a round trip to each server for hundreds
// of series (two, for those with no point in the last two periods), where
// a Latest of each makes one each. One result per series
// asked for, in the same order. Bad names fail as Latest does, and
// nothing is read; when a server is down or fails, the error is returned
// with what the others had.
func (st *Store) LatestEach(ctx context.Context, series ...Series) ([]LatestResult, error) {
	for _, s := range series {
		if err := validateSeries(s); err != nil {
			return nil, err
		}
	}
	p := st.period
	now := time.Now()
	next := p.Start(now).Add(p.Duration())
	each := 1 + st.lookBack() // keys of a series: ref / each is its index
	var (
		mu    sync.Mutex
		best  = make([]metric.Point, len(series))
		found = make([]bool, len(series))
		bad   = make(map[keyCopy]int)
	)
	ahead := formatScore(metric.Seconds(now.Add(latestAhead)))
	failed := &failedServers{} // by the first read, not asked by the second
	// read reads the keys from, to (exclusive) periods back of the series
	// that want them.
	read := func(from, to int, want func(i int) bool) error {
		var keys []pageKey
		var key []byte
		for i, s := range series {
			if !want(i) {
				continue
			}
			for k := from; k < to; k++ {
				key = metric.AppendKey(key[:0], p, next.Add(-time.Duration(k)*p.Duration()), s.Host, s.Metric)
				keys = append(keys, pageKey{key: string(key), ref: i*each + k})
			}
		}
		if len(keys) == 0 {
			return nil
		}
		return st.readPages(ctx, keys, pageRange{min: "-inf", max: ahead, newest: true, first: 1, failed: failed},
			func(ref int, server string, page []redis.Z) bool {
				mu.Lock()
				defer mu.Unlock()
				i := ref / each
				for skipped, z := range page {
					ts, v, ok := parsePoint(z)
					if !ok {
						continue
					}
					bad[keyCopy{ref, server}] += skipped
					// Of two copies' points at one time, the larger value, as
					// Range orders them: not the first to answer, which
					// changed from call to call.
					if !found[i] || ts > best[i].Time || ts == best[i].Time && v > best[i].Value {
						best[i], found[i] = metric.Point{Time: ts, Value: v}, true
					}
					return false
				}
				bad[keyCopy{ref, server}] += len(page)
				return true // all malformed: the next page
			})
	}
	// The next period, the present one and the one before first: a series
	// written to lately has its newest point there, and the periods before
	// are read only for the others (7 keys a series of daily periods, 168
	// of hourly ones, where one a series would do).
	recent := min(3, each)
	err := read(0, recent, func(int) bool { return true })
	err = errors.Join(err, read(recent, each, func(i int) bool { return !found[i] }))
	malformed := make([]int, len(series))
	for _, n := range mostPerKey(bad) {
		malformed[n.ref/each] += n.count
	}
	out := make([]LatestResult, len(series))
	for i, s := range series {
		out[i] = LatestResult{Series: s, Found: found[i]}
		if found[i] {
			out[i].Point = Point{Time: metric.Time(best[i].Time), Value: best[i].Value}
		}
		if malformed[i] > 0 {
			st.c.Options().Logger.Debug("metrics: malformed metric members skipped",
				"host", s.Host, "metric", s.Metric, "count", malformed[i])
		}
	}
	return out, err
}

// latestAhead is how far ahead of the reader's clock a point may be for
// Latest: writers' clocks run seconds apart, and a point further ahead (a
// clock a day off, a test's point of tomorrow) would pass for the newest
// until the reader's clock got there, masking the points written since.
var latestAhead = 10 * time.Minute

// lookBack is how many periods Latest reads.
func (st *Store) lookBack() int {
	if n := st.c.Options().Metrics.Retention; n > 0 {
		return n
	}
	return int(7 * 24 * time.Hour / st.period.Duration())
}

// Hosts returns the hosts, sorted and distinct, that have a metric key
// changed at or after since (by the servers' clocks, as journalled); a zero
// since lists every host. It reads the journal of every server of the
// federation, every server of a replica group included, and unions what they
// hold. Journal entries that are not metric keys are skipped, and so are
// those of periods that retention dropped, by the latest horizon of the
// servers asked, also on a server that missed the DropBefore and still
// holds them.
//
// Each server answers with one ZRANGEBYSCORE when fewer than 10,000 of its
// keys changed since then, else with a ZSCAN of its whole journal in pages,
// so that no single command holds a server for long, and then a GET of its
// horizon. A server marked down is not asked and a server that fails stops
// being read: each gives an error that names it, and the key it failed on,
// and the error, all of them joined, comes with the hosts the other servers
// listed. Each command has a deadline of the reader's own, as Range's pages
// do: one that runs out does not mark its server down.
func (st *Store) Hosts(ctx context.Context, since time.Time) ([]string, error) {
	return st.listJournals(ctx, since, func(host, _ string) (string, bool) { return host, true })
}

// Metrics returns the metric names of a host, sorted and distinct, whose key
// changed at or after since, read from the journals as Hosts reads them. A
// bad host name fails with ErrBadHost.
func (st *Store) Metrics(ctx context.Context, host string, since time.Time) ([]string, error) {
	if err := metric.ValidateHost(host); err != nil {
		return nil, err
	}
	return st.listJournals(ctx, since, func(h, name string) (string, bool) { return name, h == host })
}

// Series returns the series, sorted by host and then by metric, whose key
// changed at or after since, read from the journals as Hosts reads them:
// in one read of every journal, where Hosts and the Metrics of each host
// read them all once each.
func (st *Store) Series(ctx context.Context, since time.Time) ([]Series, error) {
	// A host holds no ':' (ValidateHost): the first one ends it.
	names, err := st.listJournals(ctx, since, func(host, name string) (string, bool) { return host + ":" + name, true })
	out := make([]Series, len(names))
	for i, n := range names {
		out[i].Host, out[i].Metric, _ = strings.Cut(n, ":")
	}
	slices.SortFunc(out, func(a, b Series) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), strings.Compare(a.Metric, b.Metric))
	})
	return out, err
}

// listJournals collects pick(host, metric) of every metric key journalled
// on any server at or after since, less the keys of periods that
// retention dropped.
func (st *Store) listJournals(ctx context.Context, since time.Time, pick func(host, metricName string) (string, bool)) ([]string, error) {
	// A server that missed a DropBefore (stopped while it ran) keeps the
	// dropped periods' keys and journal entries, and its old horizon,
	// until a syncer or the next drop removes them: the entries go by the
	// latest horizon of all the servers, as reads and Check do.
	type entry struct{ period, value string }
	var (
		mu      sync.Mutex
		found   = make(map[entry]struct{})
		horizon string
	)
	err := st.c.ForEachServer(ctx, func(ctx context.Context, addr string, rc *redis.Client) error {
		if _, err := st.serverClient(addr); err != nil {
			return err
		}
		local := make(map[entry]struct{})
		err := st.scanJournal(ctx, rc, since, func(key string) {
			_, host, name, err := federated.ParseMetricKey(key)
			if err != nil {
				return
			}
			if v, ok := pick(host, name); ok {
				local[entry{journal.PeriodOf(key), v}] = struct{}{}
			}
		})
		mu.Lock()
		maps.Copy(found, local)
		mu.Unlock()
		if err != nil {
			// Named as Range names its keys: a journal that an operator
			// made a string answers WRONGTYPE, which says no more.
			return fmt.Errorf("reading the journal %s: %w", st.keys.Journal, err)
		}
		// After the journal, so that a drop that overtook its read is
		// seen; on the server's own client with the reader's deadline, as
		// Range reads it, so that a timeout does not mark the server down.
		// Of any reply, as Range reads it: one of another type or shape,
		// or that is no period string, counts as none.
		cctx, cancel := st.readContext(ctx)
		v, err := rc.Do(cctx, "get", st.keys.Horizon).Result()
		cancel()
		var reply redis.Error
		if err != nil && !errors.Is(err, redis.Nil) && !errors.As(err, &reply) {
			return fmt.Errorf("reading the horizon %s: %w", st.keys.Horizon, err)
		}
		h, _ := v.(string)
		mu.Lock()
		horizon = max(horizon, journal.ReadableHorizon(h))
		mu.Unlock()
		return nil
	})
	listed := make(map[string]struct{}, len(found))
	for e := range found {
		if !journal.Dropped(e.period, horizon) {
			listed[e.value] = struct{}{}
		}
	}
	return slices.Sorted(maps.Keys(listed)), err
}

// scanJournal calls fn with every member of a server's journal scored at or
// after since.
func (st *Store) scanJournal(ctx context.Context, rc *redis.Client, since time.Time, fn func(key string)) error {
	journal := st.keys.Journal
	minScore, minArg := metric.Seconds(since), formatScore(metric.Seconds(since))
	if since.IsZero() {
		minArg = "-inf"
	}
	cctx, cancel := st.readContext(ctx)
	keys, err := rc.ZRangeByScore(cctx, journal, &redis.ZRangeBy{Min: minArg, Max: "+inf", Count: journalPage}).Result()
	cancel()
	if err != nil {
		return err
	}
	if len(keys) < journalPage {
		for _, k := range keys {
			fn(k)
		}
		return nil
	}
	// A big journal. Paging ZRANGEBYSCORE by offset would skip entries that
	// move to the end when their key changes meanwhile; ZSCAN returns every
	// entry present from start to end at least once.
	var cursor uint64
	for {
		cctx, cancel := st.readContext(ctx)
		page, next, err := rc.ZScan(cctx, journal, cursor, "", journalPage).Result()
		cancel()
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(page); i += 2 {
			score, err := strconv.ParseFloat(page[i+1], 64)
			if err == nil && (since.IsZero() || score >= minScore) {
				fn(page[i])
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// validateSeries checks a series' names as Record does.
func validateSeries(s Series) error {
	if err := metric.ValidateHost(s.Host); err != nil {
		return err
	}
	return metric.ValidateMetric(s.Metric)
}

// checkRange validates the ends of a range and the number of periods it
// touches.
func checkRange(p metric.Period, from, to time.Time) error {
	for _, t := range []time.Time{from, to} {
		if err := metric.ValidateTimestamp(metric.Seconds(t)); err != nil {
			return err
		}
	}
	// The periods themselves, as rangeKeys reads them: the duration
	// divided by the period's length missed the one or two partial
	// periods at the ends, and let 100,001 through.
	if n := p.Count(from, to); n >= MaxRangePeriods {
		return fmt.Errorf("%w: %s to %s touches %d %s periods, at most %d may be read at once",
			ErrRangeTooWide, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), n, p, MaxRangePeriods-1)
	}
	return nil
}

// formatScore formats a score for ZRANGEBYSCORE without losing precision.
func formatScore(s float64) string {
	return strconv.FormatFloat(s, 'f', -1, 64)
}

// appendPoints converts schema points to Points.
func appendPoints(dst []Point, src []metric.Point) []Point {
	dst = slices.Grow(dst, len(src))
	for _, p := range src {
		dst = append(dst, Point{Time: metric.Time(p.Time), Value: p.Value})
	}
	return dst
}

// comparePoints orders points by time, then value.
func comparePoints(a, b Point) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Value, b.Value)
}
