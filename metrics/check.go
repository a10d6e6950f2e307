package metrics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
)

// Check and Repair compare the servers of each replica group key by key:
// the cardinality and a content digest of every metric key, computed by a
// script on each server so that members cross the network only for keys
// that differ. The keys compared are those in the group's journals, and,
// unless CheckOptions.ChangedSince limits them, the metric keys the servers
// hold; keys of dropped periods are left out.

// digestBatch is how many keys a check takes at a time: their
// cardinalities are read in one call, then their digests in calls of at
// most digestMembers members.
const digestBatch = 200

// digestMembers bounds the members one digest call reads on a server, by
// the largest cardinality any server of the group holds of each key, so
// that a call holds a server for a few tens of milliseconds (about 0.2 µs
// a member): 200 daily keys of a point every 10 s took a server 0.36 s in
// one call, and of a point a second 3.6 s, past the command timeout. A key
// bigger than that is digested in ranges of its scores of about that many
// members, and repaired in those that differ.
var digestMembers int64 = 100_000

// repairBatchMembers bounds the members that one batch of a repair reads
// from a server, so that a read of big keys stays well within the command
// timeout. A key bigger than that is read alone, or, bigger than
// digestMembers, a range of its scores at a time.
const repairBatchMembers = 50_000

// DefaultMaxDiffs is how many divergent keys a GroupReport lists by default.
const DefaultMaxDiffs = 100

// CheckOptions select what Check and Repair look at. The zero value checks
// every replica group.
type CheckOptions struct {
	// Nodes limits the check to these nodes; empty means every node with
	// more than one server.
	Nodes []string
	// MaxDiffs is how many divergent keys each GroupReport lists. Default
	// 100.
	MaxDiffs int
	// Servers, for Repair, limits the servers written to, for a host that
	// repairs only its own (a syncer's anti-entropy, or redfed repair
	// --server): the other servers of their groups are only read. Empty
	// means every server of each group.
	Servers []string
	// Progress, if set, is called after each batch of keys with the keys
	// done and the keys in all, per group.
	Progress func(node string, done, total int)
	// ChangedSince, if set, limits the comparison to the keys whose
	// journal entry on some server of the group is scored at or after it,
	// by that server's clock: the keys changed since. The zero value
	// compares every key, those in no journal included (found by SCAN).
	ChangedSince time.Time
}

// CheckReport is the result of Check or Repair.
type CheckReport struct {
	Groups    []GroupReport
	Keys      int   // keys compared, all groups
	Divergent int   // keys that differed, all groups
	Repaired  int   // keys Repair wrote to, all groups
	Added     int64 // members Repair added, all groups
}

// OK reports whether every group agreed, every server answered, and no
// server was behind its group's horizon.
func (r CheckReport) OK() bool {
	for _, g := range r.Groups {
		if g.Divergent > 0 || g.Error != "" || len(g.Behind) > 0 {
			return false
		}
	}
	return true
}

// GroupReport is one replica group's part of a CheckReport.
type GroupReport struct {
	Node      string
	Servers   []string
	Keys      int
	Divergent int
	Diffs     []KeyDiff // the first MaxDiffs divergent keys
	Repaired  int
	Added     int64
	Error     string // why the group could not be fully checked
	// Incomplete says that a failure that may pass (a server down or
	// refusing writes, a timeout) kept keys from being compared or
	// repaired: a run again may do more. Keys that can never be repaired
	// (of another type, with members that are not "$timestamp:$value")
	// fail the run without it.
	Incomplete bool
	// Behind holds, by server, the horizon of each server of the group
	// older than the group's latest ("" for none): it missed a DropBefore
	// (it was stopped or cut off while it ran) and keeps the periods
	// dropped, which reads leave out, until a syncer or the next
	// DropBefore raises it. Repair raises it to the group's.
	Behind map[string]string
	// Dropped is how many keys of dropped periods Repair removed from the
	// servers it raised.
	Dropped int64
}

// KeyDiff is a key whose replicas differ: its cardinality on each server
// (-1 for a key of another type).
type KeyDiff struct {
	Key   string
	Cards map[string]int64
	// Types holds, by server, the type of a key that is not a sorted set
	// there ("string", "hash"): written by something other than the
	// metrics store, it can be neither compared nor repaired.
	Types map[string]string
}

// keyDigest is one server's view of a key.
type keyDigest struct {
	card   int64
	digest string
}

// wrongTypePrefix begins the digest of a key of another type.
const wrongTypePrefix = "type:"

// otherType returns the type of a key that is not a sorted set, and ""
// for a sorted set or a missing key.
func (d keyDigest) otherType() string {
	if d.card >= 0 {
		return ""
	}
	t, _ := strings.CutPrefix(d.digest, wrongTypePrefix)
	return t
}

// WrongTypeError is the refusal to repair a key that holds another type
// than a sorted set on a server. It matches federated.ErrWrongType.
type WrongTypeError struct {
	Server, Key, Type string
}

// Error names the server, the key and what it holds.
func (e *WrongTypeError) Error() string {
	return fmt.Sprintf("metrics: server %s: key %s holds a %s, not a sorted set: not repaired there; "+
		"delete or rename it on that server, and repair again", e.Server, e.Key, e.Type)
}

// Is makes a WrongTypeError match federated.ErrWrongType.
func (e *WrongTypeError) Is(target error) bool { return target == journal.ErrWrongType }

// Check compares the replicas of every replica group and reports the keys
// that differ. It writes nothing. The error joins the failures of servers
// that could not be read; their groups report them too.
func (st *Store) Check(ctx context.Context, opts CheckOptions) (CheckReport, error) {
	return st.check(ctx, opts, false)
}

// Repair compares the replicas like Check, then gives every server (of
// opts.Servers, when set) the members it lacks of every divergent key: the
// union of the group. Writes go through the write script, so each key that
// gains members is journalled, and keys of dropped periods are left alone.
// Servers that are down are skipped, and reported.
func (st *Store) Repair(ctx context.Context, opts CheckOptions) (CheckReport, error) {
	return st.check(ctx, opts, true)
}

func (st *Store) check(ctx context.Context, opts CheckOptions, repair bool) (CheckReport, error) {
	if opts.MaxDiffs <= 0 {
		opts.MaxDiffs = DefaultMaxDiffs
	}
	nodes := opts.Nodes
	if len(nodes) == 0 {
		for _, name := range st.c.Nodes() {
			if addrs, _ := st.c.AllServers(name); len(addrs) > 1 {
				nodes = append(nodes, name)
			}
		}
	}
	var report CheckReport
	var errs []error
	for _, name := range nodes {
		g, err := st.checkGroup(ctx, name, opts, repair)
		if err != nil {
			g.Error = err.Error()
			errs = append(errs, err)
		}
		report.Add(g)
	}
	return report, errors.Join(errs...)
}

// Add adds a group's report to r, and its counts to r's: the reports of
// checks of several groups, one at a time, as one.
func (r *CheckReport) Add(g GroupReport) {
	r.Groups = append(r.Groups, g)
	r.Keys += g.Keys
	r.Divergent += g.Divergent
	r.Repaired += g.Repaired
	r.Added += g.Added
}

// checkGroup checks, and with repair mends, one replica group.
func (st *Store) checkGroup(ctx context.Context, name string, opts CheckOptions, repair bool) (GroupReport, error) {
	servers, err := st.c.AllServers(name)
	g := GroupReport{Node: name, Servers: servers, Incomplete: true}
	if err != nil {
		return g, err
	}
	var errs []error
	var up []string
	for _, addr := range servers {
		if _, err := st.serverClient(addr); err != nil {
			errs = append(errs, fmt.Errorf("metrics: server %s: %w", addr, err))
			continue
		}
		up = append(up, addr)
	}
	horizon, horizons, err := st.horizons(ctx, up)
	if err != nil {
		return g, errors.Join(append(errs, err)...)
	}
	if err := st.raiseBehind(ctx, &g, horizon, horizons, opts.Servers, repair); err != nil {
		errs = append(errs, err)
	}
	keys, err := st.groupKeys(ctx, up, horizon, opts.ChangedSince)
	if err != nil {
		return g, errors.Join(append(errs, err)...)
	}
	g.Keys = len(keys)

	var divergent []string
	split := make(map[string][]scoreRange)          // the ranges that differ of divergent keys digested in ranges
	var cards []int64                               // the most members a server holds of each divergent key
	var each []int64                                // each server's cardinality of each divergent key, in up's order
	wrongType := make(map[string]map[string]string) // by key and server
	for start := 0; start < len(keys); start += digestBatch {
		batch := keys[start:min(start+digestBatch, len(keys))]
		digests, differ, err := st.digests(ctx, up, batch)
		if err != nil {
			return g, errors.Join(append(errs, err)...)
		}
		for i, key := range batch {
			if agree(digests, i) {
				continue
			}
			divergent = append(divergent, key)
			if r, ok := differ[key]; ok {
				split[key] = r
			}
			most := int64(0)
			for _, addr := range up {
				most = max(most, digests[addr][i].card)
			}
			cards = append(cards, most)
			for _, addr := range up {
				if t := digests[addr][i].otherType(); t != "" {
					if wrongType[key] == nil {
						wrongType[key] = make(map[string]string)
					}
					wrongType[key][addr] = t
				}
			}
			for _, addr := range up {
				each = append(each, digests[addr][i].card)
			}
		}
		if opts.Progress != nil {
			opts.Progress(name, start+len(batch), len(keys))
		}
	}
	if len(keys) > 0 {
		// Retention may have dropped a period from one server and not yet
		// from another while the digests were read: those keys are gone,
		// not divergent, nor counted.
		horizon, err := st.horizonOf(ctx, up)
		if err != nil {
			return g, errors.Join(append(errs, err)...)
		}
		gone := func(key string) bool { return journal.Dropped(journal.PeriodOf(key), horizon) }
		for _, key := range keys {
			if gone(key) {
				g.Keys--
			}
		}
		n := 0
		for i, key := range divergent {
			if !gone(key) {
				divergent[n], cards[n] = key, cards[i]
				copy(each[n*len(up):], each[i*len(up):(i+1)*len(up)])
				n++
			}
		}
		divergent, cards = divergent[:n], cards[:n]
	}
	g.Divergent = len(divergent)
	for i, key := range divergent[:min(len(divergent), opts.MaxDiffs)] {
		d := KeyDiff{Key: key, Cards: make(map[string]int64, len(up)), Types: wrongType[key]}
		for j, addr := range up {
			d.Cards[addr] = each[i*len(up)+j]
		}
		g.Diffs = append(g.Diffs, d)
	}
	// Every key compared on every server up: a server down leaves the run
	// incomplete, as does a repair that fails in a way that passes.
	g.Incomplete = len(errs) > 0
	if repair && len(divergent) > 0 {
		if err := st.repairKeys(ctx, &g, up, divergent, cards, split, wrongType, opts.Servers); err != nil {
			errs = append(errs, err)
		}
	}
	return g, errors.Join(errs...)
}

// agree reports whether every server has the same digest for key i.
func agree(digests map[string][]keyDigest, i int) bool {
	var first *keyDigest
	for _, d := range digests {
		if first == nil {
			first = &d[i]
		} else if d[i] != *first {
			return false
		}
	}
	return true
}

// raiseBehind notes the servers of a group whose horizon (each, by
// server) is older than the group's latest (see GroupReport.Behind), and
// with repair raises those of only (all when empty) to it, as a syncer
// would.
func (st *Store) raiseBehind(ctx context.Context, g *GroupReport, latest string, each map[string]string, only []string, repair bool) error {
	if journal.CheckHorizon(st.period, latest) != nil {
		return nil // none, or of the other period length: nothing to raise to
	}
	var errs []error
	for addr, h := range each {
		if h == latest || h != "" && len(h) != len(latest) {
			continue
		}
		if g.Behind == nil {
			g.Behind = make(map[string]string)
		}
		g.Behind[addr] = h
		if !repair || len(only) > 0 && !slices.Contains(only, addr) {
			continue
		}
		removed, err := journal.Drop(ctx, st.c, addr, st.keys, st.period, latest)
		g.Dropped += removed
		if err != nil {
			errs = append(errs, fmt.Errorf("metrics: server %s: raising its horizon to %s: %w", addr, latest, err))
		}
	}
	return errors.Join(errs...)
}

// horizons returns the latest horizon of the servers, "" for none, and
// each one's, as reads go by them: a value that cannot be a horizon (see
// journal.ReadableHorizon) counts as none, so that it hides no key.
func (st *Store) horizons(ctx context.Context, servers []string) (latest string, each map[string]string, err error) {
	each = make(map[string]string, len(servers))
	for _, addr := range servers {
		h, err := journal.Horizon(ctx, st.c, addr, st.keys)
		if err != nil {
			return "", nil, err // it names the server
		}
		h = journal.ReadableHorizon(h)
		each[addr], latest = h, max(latest, h)
	}
	return latest, each, nil
}

// horizonOf returns the latest horizon of the servers (see horizons).
func (st *Store) horizonOf(ctx context.Context, servers []string) (string, error) {
	latest, _, err := st.horizons(ctx, servers)
	return latest, err
}

// groupKeys returns the union of the servers' journals, scored at or
// after since, less the keys of periods the horizon drops, sorted.
// For the zero time it adds the metric keys each server holds, found by
// SCAN: a key that a foreign writer added without journalling it is in no
// journal.
func (st *Store) groupKeys(ctx context.Context, servers []string, horizon string, since time.Time) ([]string, error) {
	keys := make(map[string]struct{})
	for _, addr := range servers {
		rc, err := st.serverClient(addr)
		if err != nil {
			return nil, err
		}
		err = st.scanJournal(ctx, rc, since, func(key string) { keys[key] = struct{}{} })
		if err != nil {
			return nil, fmt.Errorf("metrics: server %s: reading the journal: %w", addr, err)
		}
		if !since.IsZero() {
			continue
		}
		err = st.scanMetricKeys(ctx, rc, func(key string) { keys[key] = struct{}{} })
		if err != nil {
			return nil, fmt.Errorf("metrics: server %s: scanning its keys: %w", addr, err)
		}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		if !journal.Dropped(journal.PeriodOf(k), horizon) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

// scanMetricKeys calls fn with every metric key, of a sorted set, that a
// server holds: SCAN in pages of journalPage, each a short command.
func (st *Store) scanMetricKeys(ctx context.Context, rc *redis.Client, fn func(key string)) error {
	var cursor uint64
	for {
		cctx, cancel := st.readContext(ctx)
		page, next, err := rc.ScanType(cctx, cursor, "*:*:*", journalPage, "zset").Result()
		cancel()
		if err != nil {
			return err
		}
		for _, key := range page {
			if _, _, _, err := federated.ParseMetricKey(key); err == nil {
				fn(key)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// digests returns each server's digest of every key: it reads the keys'
// cardinalities, then their digests in calls of at most digestMembers
// members, on every server at once. A key larger than that is digested in
// ranges of its scores (rangeDigests); split holds, by key, its ranges
// that differ.
func (st *Store) digests(ctx context.Context, servers []string, keys []string) (out map[string][]keyDigest, split map[string][]scoreRange, err error) {
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	cards, err := onEachServer(servers, "cardinalities", func(addr string) ([]int64, error) {
		return st.cardsOn(ctx, addr, args)
	})
	if err != nil {
		return nil, nil, err
	}
	most := make([]int64, len(keys)) // the most members a server holds
	for _, c := range cards {
		for i := range most {
			most[i] = max(most[i], c[i])
		}
	}
	out = make(map[string][]keyDigest, len(servers))
	split = make(map[string][]scoreRange)
	for start := 0; start < len(keys); {
		if most[start] > digestMembers {
			d, differ, err := st.rangeDigests(ctx, servers, keys[start])
			if err != nil {
				return nil, nil, err
			}
			for _, addr := range servers {
				out[addr] = append(out[addr], d[addr])
			}
			if len(differ) > 0 {
				split[keys[start]] = differ
			}
			start++
			continue
		}
		end := batchEnd(most, start, digestMembers)
		part, err := onEachServer(servers, "digest", func(addr string) ([]keyDigest, error) {
			return st.digestOn(ctx, addr, args[start:end])
		})
		if err != nil {
			return nil, nil, err
		}
		for addr, d := range part {
			out[addr] = append(out[addr], d...)
		}
		start = end
	}
	return out, split, nil
}

// batchEnd returns where the batch of keys that begins at start ends:
// as many as hold at most limit members in all by their cardinalities,
// and digestBatch at the most, a key larger than limit alone.
func batchEnd(cards []int64, start int, limit int64) int {
	end, members := start+1, cards[start]
	for end < len(cards) && end-start < digestBatch && members+cards[end] <= limit {
		members += cards[end]
		end++
	}
	return end
}

// onEachServer runs fn on every server at once, and returns its results
// by server, or the servers' errors, each naming its server and what
// failed.
func onEachServer[T any](servers []string, what string, fn func(addr string) (T, error)) (map[string]T, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  = make(map[string]T, len(servers))
		errs []error
	)
	for _, addr := range servers {
		wg.Go(func() {
			v, err := fn(addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("metrics: server %s: %s: %w", addr, what, err))
				return
			}
			out[addr] = v
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// cardsOn returns the cardinality of each key on one server: 0 for a
// missing key, -1 for a key of another type.
func (st *Store) cardsOn(ctx context.Context, addr string, keys []any) ([]int64, error) {
	cards, err := st.runOn(ctx, addr, journal.CardsScript, keys).Int64Slice()
	if err != nil {
		return nil, err
	}
	if len(cards) != len(keys) {
		return nil, fmt.Errorf("cardinality script answered %d values for %d keys", len(cards), len(keys))
	}
	return cards, nil
}

// runOn runs script with args on one server, within the command timeout.
func (st *Store) runOn(ctx context.Context, addr string, script *redis.Script, args []any) *redis.Cmd {
	rc, err := st.serverClient(addr)
	if err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	ctx, cancel := st.withTimeout(ctx)
	defer cancel()
	return script.Run(ctx, rc, nil, args...)
}

func (st *Store) digestOn(ctx context.Context, addr string, keys []any) ([]keyDigest, error) {
	val, err := st.runOn(ctx, addr, journal.DigestScript, keys).Slice()
	if err != nil {
		return nil, err
	}
	if len(val) != 2*len(keys) {
		return nil, fmt.Errorf("digest script answered %d values for %d keys", len(val), len(keys))
	}
	out := make([]keyDigest, len(keys))
	for i := range out {
		card, _ := val[2*i].(int64)
		digest, _ := val[2*i+1].(string)
		out[i] = keyDigest{card: card, digest: digest}
	}
	return out, nil
}

// repairKeys gives each target server the members of the divergent keys that
// the others hold. cards holds the most members a server has of each key,
// to size the batches; a key digested in ranges (split) is read and
// repaired in the ranges that differ alone. A key of another type on a
// server (wrongType, by key and server) is left alone there, with an error
// that names both. A key counts as repaired when it was written to and no
// write of it failed or left members out, nor a target holds it so.
func (st *Store) repairKeys(ctx context.Context, g *GroupReport, servers, keys []string, cards []int64,
	split map[string][]scoreRange, wrongType map[string]map[string]string, targets []string) error {
	var errs []error
	repaired := make(map[string]bool)
	unrepaired := make(map[string]bool) // a write failed or left members out, or a target holds another type
	defer func() {
		g.Repaired = 0
		for key := range repaired {
			if !unrepaired[key] {
				g.Repaired++
			}
		}
	}()
	isTarget := func(addr string) bool { return len(targets) == 0 || slices.Contains(targets, addr) }
	for _, key := range keys {
		for _, addr := range servers {
			if t := wrongType[key][addr]; t != "" && isTarget(addr) {
				errs = append(errs, &WrongTypeError{Server: addr, Key: key, Type: t})
				unrepaired[key] = true
			}
		}
	}
	// mend reads the members of batch on every server with read, and
	// gives each target those it lacks, but those in failed: a target
	// whose write failed is added to it. It reports false when a read
	// failed, which ends the repair.
	mend := func(batch []string, read func(addr string) ([][]string, error), failed map[string]bool) bool {
		have := make(map[string][][]string, len(servers))
		for _, addr := range servers {
			members, err := read(addr)
			if err != nil {
				g.Incomplete = true
				errs = append(errs, err)
				return false
			}
			have[addr] = members
		}
		for _, addr := range servers {
			if !isTarget(addr) || failed[addr] {
				continue
			}
			var updates []journal.KeyMembers
			for i, key := range batch {
				if wrongType[key][addr] != "" {
					continue
				}
				if missing := missingMembers(have, addr, i); len(missing) > 0 {
					updates = append(updates, journal.KeyMembers{Key: key, Members: missing})
				}
			}
			res, err := journal.Merge(ctx, st.c, addr, st.keys, journal.Origin{}, updates)
			g.Added += res.Added
			for key, err := range res.Failed {
				errs = append(errs, err)
				unrepaired[key] = true
				failed[addr] = true
			}
			for key, members := range res.LeftOut {
				// Written by someone else: they cannot be copied with their
				// score, and the key stays divergent.
				errs = append(errs, fmt.Errorf("metrics: key %s: members %q on another server of the group are not \"$timestamp:$value\": not copied to %s", key, members, addr))
				unrepaired[key] = true
			}
			for _, key := range res.Dropped {
				unrepaired[key] = true
			}
			if err != nil {
				g.Incomplete = true
				errs = append(errs, err)
				failed[addr] = true
				for _, u := range updates {
					unrepaired[u.Key] = true
				}
				continue
			}
			for _, u := range updates {
				repaired[u.Key] = true
			}
		}
		return true
	}
	for start, end := 0, 0; start < len(keys); start = end {
		if ranges, ok := split[keys[start]]; ok {
			// One key, in ranges: a target whose write failed is not
			// written again, nor its failure said again, range after
			// range.
			end = start + 1
			key, failed := keys[start:end], make(map[string]bool)
			for _, r := range ranges {
				if !mend(key, func(addr string) ([][]string, error) {
					return st.rangeMembersOn(ctx, addr, key[0], r)
				}, failed) {
					unrepaired[key[0]] = true // its ranges before written, not those after
					return errors.Join(errs...)
				}
			}
			continue
		}
		end = batchEnd(cards, start, repairBatchMembers)
		batch := keys[start:end]
		if !mend(batch, func(addr string) ([][]string, error) {
			return journal.Members(ctx, st.c, addr, batch)
		}, make(map[string]bool)) {
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}

// missingMembers returns the members of key i that some server has and addr
// lacks, sorted.
func missingMembers(have map[string][][]string, addr string, i int) []string {
	own := make(map[string]struct{}, len(have[addr][i]))
	for _, m := range have[addr][i] {
		own[m] = struct{}{}
	}
	missing := make(map[string]struct{})
	for other, members := range have {
		if other == addr {
			continue
		}
		for _, m := range members[i] {
			if _, ok := own[m]; !ok {
				missing[m] = struct{}{}
			}
		}
	}
	return slices.Sorted(maps.Keys(missing))
}
