package federated

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated/internal/metric"
)

// These calls address one server rather than a key: the syncer uses them to
// copy changes between the servers of a replica group, and Repair to mend
// divergent replicas. Each is bounded by the command timeout.

// JournalEntry is one entry of a server's journal: a metric key and the
// server's time of its last change, in Unix seconds.
type JournalEntry struct {
	Key  string
	Time float64
}

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

// ReplicaGroup returns the addresses of the servers of the node that a
// server belongs to, itself included, in configuration order.
func (c *Client) ReplicaGroup(addr string) (node string, servers []string, err error) {
	s, err := c.topo.Load().server(addr)
	if err != nil {
		return "", nil, err
	}
	servers, err = c.AllServers(s.node)
	return s.node, servers, err
}

// ServerTime returns a server's clock, as its scripts read it.
func (c *Client) ServerTime(ctx context.Context, addr string) (time.Time, error) {
	rc, err := c.serverClient(addr)
	if err != nil {
		return time.Time{}, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	t, err := rc.Time(ctx).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("federated: server %s: reading its clock: %w", addr, err)
	}
	return t, nil
}

// Journal returns up to limit entries of a server's journal scored at or
// after since, oldest first.
func (c *Client) Journal(ctx context.Context, addr string, since float64, limit int) ([]JournalEntry, error) {
	rc, err := c.serverClient(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	zs, err := rc.ZRangeByScoreWithScores(ctx, c.opts.Metrics.Journal, &redis.ZRangeBy{
		Min: formatScore(since), Max: "+inf", Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("federated: server %s: reading the journal: %w", addr, err)
	}
	entries := make([]JournalEntry, len(zs))
	for i, z := range zs {
		key, _ := z.Member.(string)
		entries[i] = JournalEntry{Key: key, Time: z.Score}
	}
	return entries, nil
}

// membersScript returns the members of keys, each scored at or after its
// minimum: ARGV holds key and minimum ("-inf" for all) pairs. A key that
// holds another type has none.
var membersScript = redis.NewScript(`
local out = {}
for i = 1, #ARGV, 2 do
  local r = redis.pcall('ZRANGEBYSCORE', ARGV[i], ARGV[i + 1], '+inf')
  if type(r) ~= 'table' or r.err then r = {} end
  out[#out + 1] = r
end
return out
`)

// Members returns, for every key, its members on one server, in one call:
// all of them when minScores is nil, else those scored at or after
// minScores[i] (math.Inf(-1) for all). A key that is missing, or that holds
// another type, has none.
func (c *Client) Members(ctx context.Context, addr string, keys []string, minScores []float64) ([][]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if minScores != nil && len(minScores) != len(keys) {
		return nil, fmt.Errorf("federated: Members: %d lowest scores for %d keys", len(minScores), len(keys))
	}
	args := make([]any, 0, 2*len(keys))
	for i, k := range keys {
		min := "-inf"
		if minScores != nil && !math.IsInf(minScores[i], -1) {
			min = formatScore(minScores[i])
		}
		args = append(args, k, min)
	}
	val, err := c.RunScript(ctx, addr, membersScript, nil, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("federated: server %s: reading members: %w", addr, err)
	}
	if len(val) != len(keys) {
		return nil, fmt.Errorf("federated: server %s: reading members: %d answers for %d keys", addr, len(val), len(keys))
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

// Merge adds members to keys on one server with the write script: a key
// gets a journal entry, scored with the server's clock, only when something
// was added to it, so merging what is there already writes nothing. Keys of
// dropped periods are refused and listed in the result, never written.
func (c *Client) Merge(ctx context.Context, addr string, updates []KeyMembers) (MergeResult, error) {
	return c.MergeFrom(ctx, addr, Origin{}, updates)
}

// MergeFrom is Merge of members copied from another server, the origin: a
// key that then holds nothing the origin lacks is marked so in the origin
// hash (see OriginKey), and the origin's syncer need not fetch it back.
// Whether a key holds nothing the origin lacks is known when the key was
// new, or when its last change was a merge from the origin already and it
// has gained no member since from anyone else. A zero Origin is Merge.
func (c *Client) MergeFrom(ctx context.Context, addr string, from Origin, updates []KeyMembers) (MergeResult, error) {
	s, err := c.topo.Load().server(addr)
	if err != nil {
		return MergeResult{}, err
	}
	var res MergeResult
	w := writeBatch{origin: from}
	points := 0
	send := func() error {
		if len(w.names) == 0 {
			return nil
		}
		defer func() { w.reset(); points = 0 }()
		if err := c.writeServer(ctx, s, nil, &w); err != nil {
			return err
		}
		res.Added += w.added
		for i, err := range w.failed {
			if errors.Is(err, ErrPeriodDropped) {
				res.Dropped = append(res.Dropped, w.names[i])
				continue
			}
			if res.Failed == nil {
				res.Failed = make(map[string]error)
			}
			res.Failed[w.names[i]] = err
		}
		return nil
	}
	for _, u := range updates {
		if len(u.Members) == 0 {
			continue
		}
		if leftOut := w.addMembers(u.Key, u.Members); len(leftOut) > 0 {
			if res.LeftOut == nil {
				res.LeftOut = make(map[string][]string)
			}
			res.LeftOut[u.Key] = leftOut
		}
		if points += len(u.Members); points >= maxCallPoints {
			if err := send(); err != nil {
				return res, err
			}
		}
	}
	return res, send()
}

// writeServer runs the write script on one server, through rc, the
// server's client the caller loaded (nil for the current one).
func (c *Client) writeServer(ctx context.Context, s *server, rc *redis.Client, w *writeBatch) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if s.down.Load() {
		return &ServerError{Node: s.node, Server: s.addr, Err: s.downReason(), down: true}
	}
	if rc == nil {
		rc = s.client.Load()
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	keys := []string{c.opts.Metrics.Journal, c.horizonKey(), c.OriginKey()}
	val, err := writeScript.Run(ctx, rc, keys, w.scriptArgs()...).Result()
	if err != nil {
		return &ServerError{Node: s.node, Server: s.addr, Err: err, down: s.down.Load()}
	}
	if err := w.parseReply(val); err != nil {
		return &ServerError{Node: s.node, Server: s.addr, Err: err}
	}
	for i, err := range w.failed {
		w.failed[i] = &ServerError{Node: s.node, Server: s.addr, Err: err}
	}
	return nil
}

// Horizon returns the oldest period a server keeps, as a period string, or
// "" when nothing was ever dropped there.
func (c *Client) Horizon(ctx context.Context, addr string) (string, error) {
	rc, err := c.serverClient(addr)
	if err != nil {
		return "", err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	h, err := rc.Get(ctx, c.horizonKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("federated: server %s: reading the horizon: %w", addr, err)
	}
	return h, nil
}

// RunScript runs a Lua script on one server, bounded by the command timeout
// as a routed command is, and with the server's health tracked the same
// way: a server marked down is not asked. The syncer keeps its cursors with
// it.
func (c *Client) RunScript(ctx context.Context, addr string, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	rc, err := c.serverClient(addr)
	if err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return script.Run(ctx, rc, keys, args...)
}

// PeriodOf returns the period string of a metric key, the text before its
// first ':', for comparing with a Horizon. Period strings of one length
// sort in time order.
func PeriodOf(key string) string {
	p, _, _ := strings.Cut(key, ":")
	return p
}

// serverClient returns the go-redis client of a server that is up.
func (c *Client) serverClient(addr string) (*redis.Client, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	s, err := c.topo.Load().server(addr)
	if err != nil {
		return nil, err
	}
	if s.down.Load() {
		return nil, &ServerError{Node: s.node, Server: s.addr, Err: s.downReason(), down: true}
	}
	return s.client.Load(), nil
}

// addMembers appends a key and members given as strings, and returns those
// it left out (see memberScore).
func (w *writeBatch) addMembers(key string, members []string) (leftOut []string) {
	n := 0
	for _, m := range members {
		if colon, ok := memberScore(m); ok {
			w.pairs = append(w.pairs, m[:colon], m)
			n++
		} else {
			leftOut = append(leftOut, m)
		}
	}
	w.names = append(w.names, key)
	w.counts = append(w.counts, n)
	return leftOut
}

// memberScore reports whether m is "$timestamp:..." with a timestamp that
// Redis takes as a score, and where its colon is. Go reads some numbers
// that Redis refuses: digits split by '_', and a literal too small for a
// float64 (Go makes it 0, Redis says it is not a valid float). A member
// Redis would refuse would fail its whole key.
func memberScore(m string) (colon int, ok bool) {
	colon = strings.IndexByte(m, ':')
	if colon <= 0 {
		return 0, false
	}
	text := m[:colon]
	ts, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(ts) || strings.IndexByte(text, '_') >= 0 {
		return 0, false
	}
	return colon, !metric.Underflows(text)
}
