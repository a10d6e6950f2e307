package federated

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// writeScript adds members to metric keys and journals every key that
// changed, scored with the server's own clock, in one call.
//
// KEYS[1] is the journal and KEYS[2] the horizon key (the oldest period
// kept). The metric keys travel in ARGV[1], each followed by "\n", and their
// members in ARGV[2]: the members of one key joined by "\n", each key's list
// followed by "\t". Packing them into two arguments keeps a large batch to
// two allocations on the client; metric keys and members never hold "\n" or
// "\t". Metric keys are therefore not declared in KEYS: this schema runs on
// standalone servers, not Redis Cluster.
//
// A key of a period older than the horizon is refused, so a dropped period
// never comes back. A key that holds another type gets its error and the
// other keys are still written. A key is journalled only when a member was
// added, so writing what is already there writes nothing.
//
// The reply is {members added, i1, error1, i2, error2, ...} with the 1-based
// index of each key that failed.
var writeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local horizon = redis.call('GET', KEYS[2])
local out = {0}
local journal, nj, total = {}, 0, 0
local lists = string.gmatch(ARGV[2], '([^\t]*)\t')
local i = 0
for key in string.gmatch(ARGV[1], '([^\n]*)\n') do
  i = i + 1
  local members = lists()
  local period = string.match(key, '^[^:]*')
  local err, added = nil, 0
  if horizon and period < horizon then
    err = 'period ' .. period .. ' was dropped (the oldest kept is ' .. horizon .. ')'
  else
    local z, n = {}, 0
    for m in string.gmatch(members, '[^\n]+') do
      z[n + 1] = string.match(m, '^[^:]+')
      z[n + 2] = m
      n = n + 2
      if n >= 7000 then
        local r = redis.pcall('ZADD', key, unpack(z, 1, n))
        if type(r) == 'table' then err = r.err break end
        added, n = added + r, 0
      end
    end
    if not err and n > 0 then
      local r = redis.pcall('ZADD', key, unpack(z, 1, n))
      if type(r) == 'table' then err = r.err else added = added + r end
    end
  end
  if err then
    out[#out + 1] = i
    out[#out + 1] = err
  elseif added > 0 then
    total = total + added
    journal[nj + 1] = now
    journal[nj + 2] = key
    nj = nj + 2
    if nj >= 7000 then
      redis.call('ZADD', KEYS[1], unpack(journal, 1, nj))
      nj = 0
    end
  end
end
if nj > 0 then redis.call('ZADD', KEYS[1], unpack(journal, 1, nj)) end
out[1] = total
return out
`)

// writeBatch is a batch of metric writes for one node.
type writeBatch struct {
	names   []string // the metric keys
	keys    []byte   // the same keys, each followed by '\n'
	members []byte   // each key's members joined by '\n', each list followed by '\t'

	added  int64         // members added, from the reply
	failed map[int]error // errors of single keys, by index into names
}

// add appends a key and its members: "m1\nm2\n" as the Recorder buffers
// them, or a single member.
func (w *writeBatch) add(key string, members []byte) {
	w.names = append(w.names, key)
	w.keys = append(append(w.keys, key...), '\n')
	w.members = append(append(w.members, members...), '\t')
}

// reset empties the batch for reuse.
func (w *writeBatch) reset() {
	clear(w.names)
	w.names, w.keys, w.members, w.added = w.names[:0], w.keys[:0], w.members[:0], 0
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
		i := int(idx) - 1
		if i < 0 || i >= len(w.names) {
			return fmt.Errorf("federated: write script named key %d of %d", idx, len(w.names))
		}
		if w.failed == nil {
			w.failed = make(map[int]error)
		}
		w.failed[i] = fmt.Errorf("federated: writing %s: %s", w.names[i], msg)
	}
	return nil
}

// writeNode sends a write batch to a node's current server. Writes are
// idempotent (adding a member that is there changes nothing), so on any
// failure of the server, a timeout included, the batch goes to the next up
// server of the group, each server at most once, each try with its own
// command timeout.
func (c *Client) writeNode(ctx context.Context, n *node, w *writeBatch) error {
	if c.closed.Load() {
		return ErrClosed
	}
	keys := []string{c.opts.Metrics.Journal, c.horizonKey()}
	var last error
	for range n.servers {
		s, err := c.currentServer(n)
		if err != nil {
			if last != nil {
				return errors.Join(last, err)
			}
			return err
		}
		actx, cancel := c.withTimeout(ctx)
		val, err := writeScript.Run(actx, s.client.Load(), keys, w.keys, w.members).Result()
		fault := err != nil && isServerFault(actx, err)
		cancel()
		if err == nil {
			return w.parseReply(val)
		}
		if !fault || ctx.Err() != nil {
			return &ServerError{Node: n.name, Server: s.addr, Err: err, down: s.down.Load()}
		}
		last = &ServerError{Node: n.name, Server: s.addr, Err: err, down: true}
	}
	return last
}
