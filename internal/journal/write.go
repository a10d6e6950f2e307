package journal

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated/internal/metric"
)

// WriteScript adds members to metric keys and journals every key that
// changed, scored with the server's own clock, in one call.
//
// KEYS[1] is the journal, KEYS[2] the horizon key (the oldest period kept)
// and KEYS[3] the origin hash (see OriginKey). ARGV[1] is the number of metric
// keys n; ARGV[2] and ARGV[3] name the origin of a merge, a server address
// and the token of its data set (see Origin), both empty for a writer's
// own points; ARGV[4..2n+3] holds each key and its member count; after
// them come the score and member of every point, key by key. Metric keys
// are not declared in KEYS: this schema runs on standalone servers, not
// Redis Cluster.
//
// A key of a period older than the horizon is refused, so a dropped period
// never comes back. A key that holds another type gets its error and the
// other keys are still written. A key is journalled only when a member was
// added, so writing what is already there writes nothing.
//
// Every key that changed gets its field of the origin hash set or cleared. A
// merge from an origin sets it to "address@token#card" when the key holds
// nothing the origin lacks: the key was new here, or its field named the
// origin and the key has gained nothing since but what this merge added.
// card is the key's cardinality after the merge: a member added since by a
// writer that does not keep this hash (a plain ZADD, the Perl module)
// changes the cardinality, and the origin's syncer then fetches the key
// although the field names it. Any other change clears the field, so that
// every peer fetches the key.
//
// A key refused for a reason that passes (see TemporaryReplies) fails the
// whole call with Redis's error, before anything is written; so does a
// journal, horizon or origin hash of another type, with a WRONGTYPE error
// that names it. The reply is {members added, i1, error1, i2, error2, ...}
// with the 1-based index of each key that failed, negated for a key of a
// dropped period.
var WriteScript = redis.NewScript(`
-- The journal, the horizon and the origin hash are checked before anything
-- is written: a call that failed on one of them after its ZADDs left
-- members that no journal entry names, which no syncer copies, or members
-- written and reported failed.
local types = {}
for i, want in ipairs({'zset', 'string', 'hash'}) do
  types[i] = redis.call('TYPE', KEYS[i]).ok
  if types[i] ~= 'none' and types[i] ~= want then
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. types[i] .. ', not a ' .. want ..
      ': no metric is written to this server until it holds a ' .. want .. ' or is deleted')
  end
end
local t = redis.call('TIME')
-- The journal's score as text, made once: Redis would format a Lua number
-- again for every key journalled.
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local horizon = redis.call('GET', KEYS[2])
-- A key's period lies wholly before the horizon (see Dropped): compared by
-- the shorter of the two, so that a day is not before an hour of itself.
local function dropped(p)
  if #p == #horizon then return p < horizon end
  local n = math.min(#p, #horizon)
  return string.sub(p, 1, n) < string.sub(horizon, 1, n)
end
local nkeys = tonumber(ARGV[1])
local tag = nil
if ARGV[2] ~= '' and ARGV[3] ~= '' then tag = ARGV[2] .. '@' .. ARGV[3] end
-- A key's origin field, less its cardinality. (A number joined to a
-- string is written with %.14g; string.format's %d is faster.)
local marked = tag and tag .. '#'
local tracked = tag or types[3] == 'hash'
local pos = 2 * nkeys + 4
local out = {0}
local journal, nj, total = {}, 0, 0
local set, nset, del, ndel = {}, 0, {}, 0
local function passes(e)
  for _, p in ipairs({` + temporaryLua + `}) do
    if string.sub(e, 1, #p) == p then return true end
  end
  return false
end
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
  if horizon and dropped(string.match(key, '^[^:]*')) then
    err = 'period ' .. string.match(key, '^[^:]*') .. ' was dropped (the oldest kept is ' .. horizon .. ')'
    at = -i
  else
    -- By 4,000 arguments: Redis's Lua takes at most 8,000 on its stack,
    -- gopher-lua (the demo's in-process servers) 5,120.
    for first = pos, last, 4000 do
      local r = redis.pcall('ZADD', key, unpack(ARGV, first, math.min(first + 3999, last)))
      if type(r) == 'table' then
        if passes(r.err) then
          -- Redis decides out of memory and read-only once for the whole
          -- script: nothing was added, and the call fails as a whole, so
          -- that the writer sends the batch to another server.
          flush()
          return redis.error_reply(r.err .. ' (writing ' .. key .. ')')
        end
        err = r.err
        break
      end
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
      -- Or its field named the origin, and nothing was added since by
      -- another writer: the cardinality is the field's plus what was added.
      -- (Read only for a key that was not new.)
      if card == added or redis.call('HGET', KEYS[3], key) == marked .. string.format('%d', card - added) then
        set[nset + 1] = key
        set[nset + 2] = marked .. string.format('%d', card)
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
    if nj >= 4000 or nset >= 4000 or ndel >= 4000 then flush() end
  end
end
flush()
out[1] = total
return out
`)

// Origin names the server a merge copies from and the token of its data
// set (OriginField, which changes each time the server starts), so that
// the server merged into can tell the origin's own changes from others:
// see WriteScript and OriginKey.
type Origin struct {
	Server string // host:port
	Token  string // the server's OriginField
}

// Batch is a batch of metric writes for one server or node: the write
// script's arguments, and what its reply said. Its arguments are pointers
// into its own slices, which go-redis writes without boxing a copy of each:
// a batch of any size costs a handful of allocations, and none when it is
// reused.
type Batch struct {
	Names  []string // the metric keys
	counts []int    // members per key
	pairs  []string // score and member of every point, key by key
	nkeys  int
	Origin Origin // of a merge; zero for a writer's own points
	args   []any  // the script's arguments, rebuilt by Args

	Added  int64         // members added, from the reply
	Failed map[int]error // errors of single keys, by index into Names
}

// Add appends a key and its members, as the Recorder buffers them: each
// "ts:value" followed by '\n'. The batch keeps views of members, which must
// not change until the batch is sent.
func (b *Batch) Add(key string, members []byte) {
	n := 0
	for len(members) > 0 {
		end := bytes.IndexByte(members, '\n')
		if end < 0 {
			end = len(members)
		}
		m := members[:end]
		if colon := bytes.IndexByte(m, ':'); colon > 0 {
			b.pairs = append(b.pairs, unsafe.String(&m[0], colon), unsafe.String(&m[0], len(m)))
			n++
		}
		members = members[min(end+1, len(members)):]
	}
	b.Names = append(b.Names, key)
	b.counts = append(b.counts, n)
}

// AddMembers appends a key and members given as strings, and returns those
// it left out: members that are not "$timestamp:..." with a timestamp
// Redis takes as a score (written by someone else), which would fail the
// whole key.
func (b *Batch) AddMembers(key string, members []string) (leftOut []string) {
	n := 0
	for _, m := range members {
		if colon, ok := memberScore(m); ok {
			b.pairs = append(b.pairs, m[:colon], m)
			n++
		} else {
			leftOut = append(leftOut, m)
		}
	}
	b.Names = append(b.Names, key)
	b.counts = append(b.counts, n)
	return leftOut
}

// Points returns how many members the batch holds.
func (b *Batch) Points() int { return len(b.pairs) / 2 }

// Args returns the script's ARGV.
func (b *Batch) Args() []any {
	b.nkeys = len(b.Names)
	args := append(b.args[:0], &b.nkeys, &b.Origin.Server, &b.Origin.Token)
	for i := range b.Names {
		args = append(args, &b.Names[i], &b.counts[i])
	}
	for i := range b.pairs {
		args = append(args, &b.pairs[i])
	}
	b.args = args
	return args
}

// Reset empties the batch for reuse, dropping its views of members.
func (b *Batch) Reset() {
	clear(b.Names)
	clear(b.pairs)
	clear(b.args)
	b.Names, b.counts, b.pairs, b.args = b.Names[:0], b.counts[:0], b.pairs[:0], b.args[:0]
	b.ClearReply()
}

// ClearReply forgets what a reply said, so that the batch can be sent
// again.
func (b *Batch) ClearReply() {
	b.Added = 0
	clear(b.Failed)
}

// ParseReply reads the script's reply into the batch: the members added,
// and the errors of single keys, each naming its key.
func (b *Batch) ParseReply(val any) error {
	reply, ok := val.([]any)
	if !ok || len(reply) == 0 || len(reply)%2 != 1 {
		return fmt.Errorf("unexpected reply %v from the write script", val)
	}
	b.Added, _ = reply[0].(int64)
	for j := 1; j+1 < len(reply); j += 2 {
		idx, _ := reply[j].(int64)
		msg, _ := reply[j+1].(string)
		dropped := idx < 0
		i := int(max(idx, -idx)) - 1
		if i < 0 || i >= len(b.Names) {
			return fmt.Errorf("the write script named key %d of %d", idx, len(b.Names))
		}
		if b.Failed == nil {
			b.Failed = make(map[int]error)
		}
		var cause error = scriptError(msg)
		if dropped {
			cause = droppedError(msg)
		}
		b.Failed[i] = fmt.Errorf("writing %s: %w", b.Names[i], cause)
	}
	return nil
}

// memberScore reports whether m is "$timestamp:..." with a timestamp that
// Redis takes as a score, and where its colon is. Go reads some numbers
// that Redis refuses: digits split by '_', and a literal too small for a
// float64 (Go makes it 0, Redis says it is not a valid float).
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

// scriptError is the write script's message for a key it could not write.
type scriptError string

func (e scriptError) Error() string { return string(e) }

// Is makes the server's WRONGTYPE error match ErrWrongType.
func (e scriptError) Is(target error) bool {
	return target == ErrWrongType && strings.HasPrefix(string(e), "WRONGTYPE")
}

// droppedError is the write script's message for a key of a dropped period.
type droppedError string

func (e droppedError) Error() string { return string(e) }

// Is makes a droppedError match ErrPeriodDropped.
func (e droppedError) Is(target error) bool { return target == ErrPeriodDropped }

// TemporaryReplies are the prefixes of Redis's errors for a state that
// passes: out of memory, loading, busy with a script, a read-only or
// cut-off replica, a failed snapshot (a full disk) that stops writes.
var TemporaryReplies = []string{"OOM ", "LOADING ", "BUSY ", "READONLY ", "MASTERDOWN ", "MISCONF ", "TRYAGAIN ", "NOREPLICAS "}

// temporaryLua is TemporaryReplies as a Lua table's items.
var temporaryLua = func() string {
	quoted := make([]string, len(TemporaryReplies))
	for i, p := range TemporaryReplies {
		quoted[i] = "'" + p + "'"
	}
	return strings.Join(quoted, ", ")
}()

// IsTemporaryReply reports an error reply of Redis for a state that
// passes.
func IsTemporaryReply(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	for _, prefix := range TemporaryReplies {
		if strings.HasPrefix(reply.Error(), prefix) {
			return true
		}
	}
	return false
}

// ParseReplies reads the replies of the servers that ran the batch (more
// than one when the write asked for copies): the members the first one
// added, and every key that failed on any of them, each error passed
// through wrap with the server that returned it.
func (b *Batch) ParseReplies(servers []string, vals []any, wrap func(server string, err error) error) error {
	if len(vals) == 0 || len(vals) != len(servers) {
		return fmt.Errorf("%d replies of the write script from %d servers", len(vals), len(servers))
	}
	var added int64
	var failed map[int]error
	for r, v := range vals {
		b.Failed = nil
		if err := b.ParseReply(v); err != nil {
			return wrap(servers[r], err)
		}
		if r == 0 {
			added = b.Added
		}
		for i, e := range b.Failed {
			if _, seen := failed[i]; !seen {
				if failed == nil {
					failed = make(map[int]error)
				}
				failed[i] = wrap(servers[r], e)
			}
		}
	}
	b.Added, b.Failed = added, failed
	return nil
}
