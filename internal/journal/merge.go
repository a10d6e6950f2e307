package journal

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Runner runs a script on one server, with the client's command timeout
// and health tracking: federated.Client's RunOnServer.
type Runner interface {
	RunOnServer(ctx context.Context, addr string, script *redis.Script, keys []string, args ...any) *redis.Cmd
}

// maxCallPoints caps the points of one script call, so that no server is
// blocked long by one script, and each call has its own command timeout.
const maxCallPoints = 10000

// KeyMembers is a metric key and members ("$timestamp:$value") to add to it.
type KeyMembers struct {
	Key     string
	Members []string
}

// MergeResult says what a Merge did.
type MergeResult struct {
	Added   int64            // members that were new to their keys
	Dropped []string         // keys refused because their period was dropped
	Failed  map[string]error // keys that failed, for instance holding another type
	// LeftOut holds, by key, the members not written because they are not
	// "$timestamp:..." with a timestamp Redis takes as a score (written by
	// someone else); the key's other members are written.
	LeftOut map[string][]string
}

// Merge adds members to keys on one server with WriteScript, in calls of
// at most 10,000 members: a key gets a journal entry, scored with the
// server's clock, only when something was added to it, so merging what is
// there already writes nothing. Keys of dropped periods are refused and
// listed in the result, never written. With an origin (a merge of what a
// syncer copied from another server), a key that then holds nothing the
// origin lacks is marked so in the origin hash, and the origin's syncer
// need not fetch it back; a zero Origin is a writer's own write.
func Merge(ctx context.Context, run Runner, addr string, keys Keys, from Origin, updates []KeyMembers) (MergeResult, error) {
	var m Merger
	return m.Merge(ctx, run, addr, keys, from, updates)
}

// Merger merges as Merge does, and keeps its buffers from one merge to
// the next: a syncer's link merges page after page. It serves one merge
// at a time.
type Merger struct {
	b Batch
}

// Merge does what the function Merge does.
func (mg *Merger) Merge(ctx context.Context, run Runner, addr string, keys Keys, from Origin, updates []KeyMembers) (MergeResult, error) {
	var res MergeResult
	b := &mg.b
	b.Origin = from
	defer func() {
		// After a key fetched whole, whose members all went in one call,
		// keep no arrays that large for the next merges.
		if cap(b.pairs) > 4*maxCallPoints {
			mg.b = Batch{}
		}
	}()
	send := func() error {
		if len(b.Names) == 0 {
			return nil
		}
		defer b.Reset()
		val, err := run.RunOnServer(ctx, addr, WriteScript, keys.Write, b.Args()...).Result()
		if err != nil {
			return err
		}
		if err := b.ParseReply(val); err != nil {
			return fmt.Errorf("server %s: %w", addr, err)
		}
		res.Added += b.Added
		for i, err := range b.Failed {
			if errors.Is(err, ErrPeriodDropped) {
				res.Dropped = append(res.Dropped, b.Names[i])
				continue
			}
			if res.Failed == nil {
				res.Failed = make(map[string]error)
			}
			res.Failed[b.Names[i]] = fmt.Errorf("server %s: %w", addr, err)
		}
		return nil
	}
	for _, u := range updates {
		if len(u.Members) == 0 {
			continue
		}
		if leftOut := b.AddMembers(u.Key, u.Members); len(leftOut) > 0 {
			if res.LeftOut == nil {
				res.LeftOut = make(map[string][]string)
			}
			res.LeftOut[u.Key] = leftOut
		}
		if b.Points() >= maxCallPoints {
			if err := send(); err != nil {
				return res, err
			}
		}
	}
	return res, send()
}

// Members returns every member of each key on one server, in one call. A
// key that is missing, or that holds another type, has none.
func Members(ctx context.Context, run Runner, addr string, keys []string) ([][]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, "-inf")
	}
	val, err := run.RunOnServer(ctx, addr, MembersScript, nil, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("reading members: %w", err)
	}
	if len(val) != len(keys) {
		return nil, fmt.Errorf("server %s: reading members: %d answers for %d keys", addr, len(val), len(keys))
	}
	out := make([][]string, len(keys))
	for i, v := range val {
		ms, _ := v.([]any)
		out[i] = make([]string, 0, len(ms))
		for _, m := range ms {
			if s, ok := m.(string); ok {
				out[i] = append(out[i], s)
			}
		}
	}
	return out, nil
}

// horizonScript returns the horizon, KEYS[1], or "" for none.
var horizonScript = redis.NewScript(`return redis.call('GET', KEYS[1]) or ''`)

// Horizon returns the oldest period a server keeps, as a period string, or
// "" when nothing was ever dropped there.
func Horizon(ctx context.Context, run Runner, addr string, keys Keys) (string, error) {
	h, err := run.RunOnServer(ctx, addr, horizonScript, []string{keys.Horizon}).Text()
	if err != nil {
		return "", fmt.Errorf("reading the horizon: %w", err)
	}
	return h, nil
}
