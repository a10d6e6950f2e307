package federated

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// writeScript adds members to metric keys and journals every key that
// changed, scored with the server's own clock, in one call.
//
// KEYS[1] is the journal, KEYS[2] the horizon key (the oldest period kept)
// and KEYS[3] the origin hash (see OriginKey). ARGV[1] is the number of metric
// keys n; ARGV[2] and ARGV[3] name the origin of a merge, a server address
// and the epoch of its data set, both empty for a writer's own points;
// ARGV[4..2n+3] holds each key and its member count; after them come the
// score and member of every point, key by key. Metric keys are not
// declared in KEYS: this schema runs on standalone servers, not Redis
// Cluster.
//
// A key of a period older than the horizon is refused, so a dropped period
// never comes back. A key that holds another type gets its error and the
// other keys are still written. A key is journalled only when a member was
// added, so writing what is already there writes nothing.
//
// Every key that changed gets its field of the origin hash set or cleared. A
// merge from an origin sets it to "address@epoch#card" when the key holds
// nothing the origin lacks: the key was new here, or its field named the
// origin and the key has gained nothing since but what this merge added.
// card is the key's cardinality after the merge: a member added since by a
// writer that does not keep this hash (a plain ZADD, the Perl module)
// changes the cardinality, and the origin's syncer then fetches the key
// although the field names it. Any other change clears the field, so that
// every peer fetches the key.
//
// The reply is {members added, i1, error1, i2, error2, ...} with the 1-based
// index of each key that failed, negated for a key of a dropped period.
var writeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local horizon = redis.call('GET', KEYS[2])
local nkeys = tonumber(ARGV[1])
local tag = nil
if ARGV[2] ~= '' and ARGV[3] ~= '' then tag = ARGV[2] .. '@' .. ARGV[3] end
local tracked = tag or redis.call('EXISTS', KEYS[3]) == 1
local pos = 2 * nkeys + 4
local out = {0}
local journal, nj, total = {}, 0, 0
local set, nset, del, ndel = {}, 0, {}, 0
local function flush()
  if nj > 0 then redis.call('ZADD', KEYS[1], unpack(journal, 1, nj)) end
  if nset > 0 then redis.call('HSET', KEYS[3], unpack(set, 1, nset)) end
  if ndel > 0 then redis.call('HDEL', KEYS[3], unpack(del, 1, ndel)) end
  nj, nset, ndel = 0, 0, 0
end
for i = 1, nkeys do
  local key = ARGV[2 * i + 2]
  local last = pos + 2 * tonumber(ARGV[2 * i + 3]) - 1
  local err, added, at = nil, 0, i
  if horizon and string.match(key, '^[^:]*') < horizon then
    err = 'period ' .. string.match(key, '^[^:]*') .. ' was dropped (the oldest kept is ' .. horizon .. ')'
    at = -i
  else
    for first = pos, last, 7000 do
      local r = redis.pcall('ZADD', key, unpack(ARGV, first, math.min(first + 6999, last)))
      if type(r) == 'table' then err = r.err break end
      added = added + r
    end
  end
  pos = last + 1
  if err then
    out[#out + 1] = at
    out[#out + 1] = err
  end
  -- Should a later chunk of a key fail, what its first chunks added stays:
  -- it is journaled all the same, so that the syncers copy it.
  if added > 0 then
    total = total + added
    if tag then
      -- The key was new here when it holds only what was added.
      local card = redis.call('ZCARD', key)
      local cur = redis.call('HGET', KEYS[3], key)
      -- Or its field named the origin, and nothing was added since by
      -- another writer: the cardinality is the field's plus what was added.
      if card == added or cur == tag .. '#' .. (card - added) then
        set[nset + 1] = key
        set[nset + 2] = tag .. '#' .. card
        nset = nset + 2
      else
        ndel = ndel + 1
        del[ndel] = key
      end
    elseif tracked then
      ndel = ndel + 1
      del[ndel] = key
    end
    journal[nj + 1] = now
    journal[nj + 2] = key
    nj = nj + 2
    if nj >= 7000 or nset >= 7000 or ndel >= 7000 then flush() end
  end
end
flush()
out[1] = total
return out
`)

// Origin names the server a merge copies from and the epoch of its data
// set (a token that changes when the server comes back empty), so that the
// server merged into can tell the origin's own changes from others: see
// Client.MergeFrom and Client.OriginKey.
type Origin struct {
	Server string // host:port
	Epoch  string
}

// writeBatch is a batch of metric writes for one node. Its arguments are
// pointers into its own slices, which go-redis writes without boxing a copy
// of each: a batch of any size costs a handful of allocations.
type writeBatch struct {
	names  []string // the metric keys
	counts []int    // members per key
	pairs  []string // score and member of every point, key by key
	nkeys  int
	origin Origin // of a merge; zero for a writer's own points
	args   []any  // the script's arguments, rebuilt by send

	added  int64         // members added, from the reply
	failed map[int]error // errors of single keys, by index into names
}

// add appends a key and its members, as the Recorder buffers them: each
// "ts:value" followed by '\n'. The batch keeps views of members, which must
// not change until the batch is sent.
func (w *writeBatch) add(key string, members []byte) {
	n := 0
	for len(members) > 0 {
		end := bytes.IndexByte(members, '\n')
		if end < 0 {
			end = len(members)
		}
		m := members[:end]
		if colon := bytes.IndexByte(m, ':'); colon > 0 {
			w.pairs = append(w.pairs, unsafe.String(&m[0], colon), unsafe.String(&m[0], len(m)))
			n++
		}
		members = members[min(end+1, len(members)):]
	}
	w.names = append(w.names, key)
	w.counts = append(w.counts, n)
}

// scriptArgs returns the script's ARGV.
func (w *writeBatch) scriptArgs() []any {
	w.nkeys = len(w.names)
	args := append(w.args[:0], &w.nkeys, &w.origin.Server, &w.origin.Epoch)
	for i := range w.names {
		args = append(args, &w.names[i], &w.counts[i])
	}
	for i := range w.pairs {
		args = append(args, &w.pairs[i])
	}
	w.args = args
	return args
}

// reset empties the batch for reuse, dropping its views of members.
func (w *writeBatch) reset() {
	clear(w.names)
	clear(w.pairs)
	clear(w.args)
	w.names, w.counts, w.pairs, w.args, w.added = w.names[:0], w.counts[:0], w.pairs[:0], w.args[:0], 0
	clear(w.failed)
}

// parseReply reads the script's reply into the batch.
func (w *writeBatch) parseReply(val any) error {
	reply, ok := val.([]any)
	if !ok || len(reply) == 0 || len(reply)%2 != 1 {
		return fmt.Errorf("federated: unexpected reply %v from the write script", val)
	}
	w.added, _ = reply[0].(int64)
	for j := 1; j+1 < len(reply); j += 2 {
		idx, _ := reply[j].(int64)
		msg, _ := reply[j+1].(string)
		dropped := idx < 0
		i := int(max(idx, -idx)) - 1
		if i < 0 || i >= len(w.names) {
			return fmt.Errorf("federated: write script named key %d of %d", idx, len(w.names))
		}
		if w.failed == nil {
			w.failed = make(map[int]error)
		}
		var cause error = scriptError(msg)
		if dropped {
			cause = droppedError(msg)
		}
		w.failed[i] = fmt.Errorf("writing %s: %w", w.names[i], cause)
	}
	return nil
}

// scriptError is the write script's message for a key it could not write.
type scriptError string

func (e scriptError) Error() string { return string(e) }

// Is makes the server's WRONGTYPE error match ErrWrongType, and its
// refusals that pass (see ErrTemporary) match ErrTemporary.
func (e scriptError) Is(target error) bool {
	switch target {
	case ErrWrongType:
		return strings.HasPrefix(string(e), "WRONGTYPE")
	case ErrTemporary:
		for _, prefix := range temporaryReplies {
			if strings.HasPrefix(string(e), prefix) {
				return true
			}
		}
	}
	return false
}

// temporaryReplies are the prefixes of Redis's errors for a state that
// passes.
var temporaryReplies = []string{"OOM ", "LOADING ", "BUSY ", "READONLY ", "MASTERDOWN ", "TRYAGAIN ", "NOREPLICAS "}

// isTemporaryReply reports an error reply of Redis for a state that
// passes.
func isTemporaryReply(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	for _, prefix := range temporaryReplies {
		if strings.HasPrefix(reply.Error(), prefix) {
			return true
		}
	}
	return false
}

// droppedError is the write script's message for a key of a dropped period.
type droppedError string

func (e droppedError) Error() string { return string(e) }

// Is makes a droppedError match ErrPeriodDropped.
func (e droppedError) Is(target error) bool { return target == ErrPeriodDropped }

// writeNode sends a write batch to a node's current server. Writes are
// idempotent (adding a member that is there changes nothing), so on any
// failure of the server, a timeout included, the batch goes to the next up
// server of the group, or again to the same server when the failure came
// from its replaced client (see retries); each try has its own command
// timeout. A server that refuses the write for a reason that passes (out of
// memory, loading, busy with a script, a read-only replica: ErrTemporary)
// is left for the next up server of the group, which becomes the node's
// current one; the refusing server is not marked down, since it answers.
//
// With MetricsOptions.Copies above one, the batch then goes on to further
// servers of the group (writeCopies), and the write succeeds only once
// that many servers hold it.
func (c *Client) writeNode(ctx context.Context, n *node, w *writeBatch) error {
	s, err := c.writeCurrent(ctx, n, w)
	if err != nil || c.opts.Metrics.Copies <= 1 {
		return err
	}
	return c.writeCopies(ctx, n, s, w)
}

// writeCurrent is writeNode's first copy. When it returns no error, the
// server it returns took the batch.
func (c *Client) writeCurrent(ctx context.Context, n *node, w *writeBatch) (*server, error) {
	var tries retries
	for {
		s, err := c.currentServer(n)
		if err != nil {
			return nil, err // every server down: the error names each and why
		}
		rc := s.client.Load()
		err = c.writeServer(ctx, s, rc, w)
		if ctx.Err() != nil {
			return s, err
		}
		if w.refused(err) {
			if !tries.leave(n) || !c.leave(n, s, w.refusal(err)) {
				return s, err
			}
			w.clearReply()
			continue
		}
		var se *ServerError
		if err == nil || !errors.As(err, &se) || !tries.again(n, s, rc != s.client.Load()) {
			return s, err // written, refused by Redis, or no try left
		}
	}
}

// writeCopies sends a batch that first took on to the servers of n after
// it, in group order, until MetricsOptions.Copies servers hold it, so that
// the write outlives the loss of any one of them before the syncer has
// copied it. Each copy is a writer's own write on its server (the batch's
// origin is zero): the script clears the key's origin field there as for
// any writer's change, and a syncer that fetches the key then adds
// nothing. Each copy has its own command timeout and the first copy's
// rules: a server that is down, fails, or refuses the write for a reason
// that passes is left for the next, and a failure that came from a
// replaced client is tried once more on the new one. A key that fails on
// a copy fails the write of that key, as on the first. With fewer servers
// than Copies holding the batch, the write fails, with a *ServerError that
// names the node, the copies made and each server that failed, and
// matches ErrServerDown where one was down: the caller sends it again,
// which is safe since writes are idempotent.
func (c *Client) writeCopies(ctx context.Context, n *node, first *server, w *writeBatch) error {
	// The batch's reply is the first copy's, with the keys that failed on
	// any copy; each further copy parses its reply into a map of its own.
	added, failed := w.added, w.failed
	w.failed = nil
	defer func() { w.added, w.failed = added, failed }()
	held := []string{first.addr}
	var faults []error
	from := slices.Index(n.servers, first)
	for k := 1; k < len(n.servers) && len(held) < c.opts.Metrics.Copies; k++ {
		s := n.servers[(from+k)%len(n.servers)]
		w.clearReply()
		err := c.writeCopy(ctx, s, w)
		if errors.Is(err, ErrClosed) || (err != nil && ctx.Err() != nil) {
			return err
		}
		if err != nil || w.refused(nil) {
			faults = append(faults, w.refusal(err))
			continue
		}
		held = append(held, s.addr)
		for i, e := range w.failed {
			if _, seen := failed[i]; !seen {
				if failed == nil {
					failed = make(map[int]error)
				}
				failed[i] = e
			}
		}
	}
	if len(held) < c.opts.Metrics.Copies {
		return &ServerError{Node: n.name, Err: &copiesError{want: c.opts.Metrics.Copies, held: held, faults: faults}}
	}
	return nil
}

// writeCopy writes a batch on one server, and once more when the failure
// came from a client of the server that has since been replaced, which
// says nothing of the server as it is now (see retries).
func (c *Client) writeCopy(ctx context.Context, s *server, w *writeBatch) error {
	rc := s.client.Load()
	err := c.writeServer(ctx, s, rc, w)
	var se *ServerError
	if err != nil && ctx.Err() == nil && errors.As(err, &se) && rc != s.client.Load() {
		w.clearReply()
		err = c.writeServer(ctx, s, nil, w)
	}
	return err
}

// copiesError is the failure of a metric write that fewer servers of its
// group took than MetricsOptions.Copies asks.
type copiesError struct {
	want   int
	held   []string // the servers that took the write
	faults []error  // of the servers that did not, each a *ServerError
}

// Error says how many copies were made, where, and why each other server
// of the group made none.
func (e *copiesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "metric write not acknowledged: %d of %d copies made (on %s)", len(e.held), e.want, strings.Join(e.held, ", "))
	if len(e.faults) == 0 {
		b.WriteString("; the group has no other server")
	}
	for _, err := range e.faults {
		var se *ServerError
		if errors.As(err, &se) {
			fmt.Fprintf(&b, "; %s: %v", se.Server, se.Err)
		} else {
			fmt.Fprintf(&b, "; %v", err)
		}
	}
	return b.String()
}

// Unwrap returns each server's failure, so that the write matches
// ErrServerDown when a server was down, and ErrTemporary when one refused.
func (e *copiesError) Unwrap() []error { return e.faults }

// refused reports whether the server refused the write, or one of its keys,
// for a reason that passes, given the error of the whole call.
func (w *writeBatch) refused(err error) bool {
	if err != nil {
		return errors.Is(err, ErrTemporary)
	}
	for _, e := range w.failed {
		if errors.Is(e, ErrTemporary) {
			return true
		}
	}
	return false
}

// refusal returns the error of a refused write: the whole call's, or the
// first key's that passes.
func (w *writeBatch) refusal(err error) error {
	if err != nil {
		return err
	}
	for _, e := range w.failed {
		if errors.Is(e, ErrTemporary) {
			return e
		}
	}
	return nil
}

// clearReply forgets the reply of a try, so that the batch can be sent
// again.
func (w *writeBatch) clearReply() {
	w.added = 0
	clear(w.failed)
}

// leave moves a node's commands off s, which refused a write, to the next
// up server of its group. It reports false when there is none.
func (c *Client) leave(n *node, s *server, cause error) bool {
	from := -1
	for i, x := range n.servers {
		if x == s {
			from = i
		}
	}
	for k := 1; k < len(n.servers); k++ {
		j := (from + k) % len(n.servers)
		next := n.servers[j]
		if next.down.Load() {
			continue
		}
		if n.current.CompareAndSwap(int32(from), int32(j)) {
			c.opts.Logger.Warn("federated: node failed over: its server refuses writes", "node", n.name,
				"from", s.addr, "to", next.addr, "err", cause)
		}
		return true
	}
	return false
}
