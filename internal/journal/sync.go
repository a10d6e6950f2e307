package journal

import "github.com/redis/go-redis/v9"

// ChangesScript reads a page of the peer's journal for the link's local
// server, with each key's cardinality, and says which entries are echoes
// of the local server's own changes.
//
// KEYS[1] is the journal, KEYS[2] the origin hash and KEYS[3] the cursor
// hash. ARGV[1] is the lowest score ("(score" for after it), ARGV[2] the
// page size and ARGV[3] the local server's origin tag ("address@token",
// with its OriginField; "" for none). It writes nothing. An origin or
// cursor hash of another type (an operator's mistake) is read as empty:
// what only the peer's own syncer uses does not stop the others.
//
// The reply is {the peer's OriginField or "", the keys end to end, {score,
// count, ...}, {score, ...}, {echo, ...}, the peer's TIME, {cardinality,
// ...}, the peer's run, {key length, ...}}. The keys come as one string
// and their lengths: a reader then makes one string of a page, where an
// array makes one of each key and an interface value to hold it, two
// thirds of what a syncer allocated. The scores come as runs, each a
// score and how many entries in a row have it, and then, for the rest of
// the page, one by one: Redis 7.0 writes a score with %.17g for each
// entry read WITHSCORES, 0.3 µs an entry, three quarters of a page's
// reading, while a journal's entries come in long runs of one score
// (each script call that writes journals its keys at one time). A run
// costs two calls (ZSCORE, ZCOUNT), so the rest of the page is read
// WITHSCORES once runs are short: after 8 runs in a row of fewer than 4
// entries, or 8 runs or more of fewer than 4 entries on average. Echo is
// 1 for an entry whose key's origin field is the local server's tag and
// the key's cardinality; the cardinality is -1 for a key that holds
// another type; the run is the server's run_id (see RunLua).
var ChangesScript = redis.NewScript(joinLua + `
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'LIMIT', '0', ARGV[2])
local n = #keys
local runs, nr, rest, i, short = {}, 0, {}, 1, 0
while i <= n do
  if short >= 8 or nr >= 16 and (i - 1) * 2 < nr * 4 then
    local zs = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', string.format('%d', i - 1), string.format('%d', n - i + 1))
    for j = 2, #zs, 2 do rest[j / 2] = zs[j] end
    break
  end
  -- The page starts at or after ARGV[1]: every entry of this score is in
  -- it, up to the page's end.
  local score = redis.call('ZSCORE', KEYS[1], keys[i])
  local c = math.min(redis.call('ZCOUNT', KEYS[1], score, score), n - i + 1)
  runs[nr + 1], runs[nr + 2] = score, c
  nr = nr + 2
  if c < 4 then short = short + 1 else short = 0 end
  i = i + c
end
local cards, echo, lens = {}, {}, {}
for i = 1, n do
  local c = redis.pcall('ZCARD', keys[i])
  if type(c) ~= 'number' then c = -1 end
  cards[i] = c
  lens[i] = #keys[i]
end
if ARGV[3] ~= '' then
  local prefix = ARGV[3] .. '#'
  -- 4,000 at a time: gopher-lua's stack takes 5,120 (see WriteScript).
  for first = 1, n, 4000 do
    -- An origin hash of another type (an operator's mistake) marks no
    -- echo: the keys are fetched back, which copies nothing wrong.
    local last = math.min(first + 3999, n)
    local tags = redis.pcall('HMGET', KEYS[2], unpack(keys, first, last))
    if tags.err then
      tags = {}
      for i = first, last do echo[i] = 0 end
    end
    for j = 1, #tags do
      local i = first + j - 1
      -- Writing a number costs more than the comparison: only for a tag.
      echo[i] = tags[j] and tags[j] == prefix .. string.format('%d', cards[i]) and 1 or 0
    end
  end
end
-- The same of a cursor hash of another type: no origin token, so that
-- what is merged from this server is marked as no one's.
local origin = redis.pcall('HGET', KEYS[3], '` + OriginField + `')
if type(origin) ~= 'string' then origin = '' end
return {origin, join(keys, n), runs, rest, echo, redis.call('TIME'), cards, ` + RunLua + `, lens}
`)

// joinLua defines join(t, n), which joins t[1..n] into one string: by
// 1,000 at a time, then the parts, since an in-process server built on
// gopher-lua (the demo's) pushes every element of a table.concat, and a
// separator after it, on a stack of 5,120 slots.
const joinLua = `local function join(t, n)
  if n <= 1000 then return table.concat(t, '', 1, n) end
  local parts = {}
  for first = 1, n, 1000 do
    parts[#parts + 1] = table.concat(t, '', first, math.min(first + 999, n))
  end
  return join(parts, #parts)
end
`

// RunLua is a Lua expression for the server's run: its run_id, which
// changes each time the server starts, and its master_replid, which
// changes each time it takes another data set by replication (REPLICAOF
// another server, then NO ONE: a failback, or a resync from a backup)
// without starting again. A server restarted from a snapshot, or rolled
// back so, keeps its epoch but has lost what it took after the snapshot,
// so that a count read before no longer says what was added since: a
// syncer reads its checkpoints again after a new run of its peer, and a
// server's origin token is written anew. INFO is in the @dangerous
// category: for a user that may not run it the run is "", and a restart
// goes unseen.
//
// (Two INFO calls of a section each: INFO of several sections is Redis
// 7.0's, and an older server would refuse it.)
const RunLua = `(function() local i = redis.pcall('INFO', 'server') ` +
	`local id = type(i) == 'string' and string.match(i, 'run_id:(%x+)') ` +
	`if not id then return '' end ` +
	`local r = redis.pcall('INFO', 'replication') ` +
	`return id .. ':' .. (type(r) == 'string' and string.match(r, 'master_replid:(%x+)') or '') end)()`

// FetchScript fetches members of keys from the peer and reads their
// checkpoints again. ARGV[1] is levelWindow in seconds, ARGV[2]
// levelFactor and ARGV[3] the most members the pages of the call hold in
// all (see mode p); then, for each key: the key, its mode (see fetchMode), the
// expected cardinality (fetchRefresh only), how many checkpoints to read
// again (the nearest first), the number n of checkpoints sent, and n pairs
// of boundary and count, nearest first.
//
// The k-th boundary of a key is its newest score, rounded down to a whole
// second, less levelSpan(k), a whole number of seconds too.
//
// The reply is one flat array: the server's run (see RunLua), the
// members fetched end to end as one string (go-redis makes a string and
// an interface value of each element of an array; the client's reply
// guard takes a string of up to 512 MiB, replyguard.DefaultMaxBulkLen),
// then, for each key in turn, status, cardinality, the number m of
// members fetched and the length of each, the number c of counts read
// again and, when c > 0, the newest score (rounded down as above) and
// the c counts, nearest first. (Redis 7.0 turns each Lua table of a
// reply into a nested array field by field: a script that only builds two
// tables per key costs the server 1.8-2.1 µs per key, against 0.6-0.7 for
// one number per key.) Status is 0 when the whole key was
// fetched, j when it was fetched from the j-th checkpoint sent, -1 when
// nothing was fetched (a miss, a refresh, or a refresh refused because the
// cardinality changed: -2). The cardinality is -1 for a key that holds
// another type, or that the script may not read, which gets neither
// members nor checkpoints. A key whose newest score or farthest boundary is
// not within ±1e14 gets no checkpoints either, and the link fetches it
// whole: Redis makes the newest score a 64-bit integer in the reply, and
// the boundaries are written with %d, both exact within that range only.
//
// Each command costs a script call 0.5-1.5 µs, so a fetch counts what it
// can instead of asking: the cardinality of a
// key fetched from a boundary is the count below it plus the members
// fetched, and the newest score is the timestamp of the last member when
// that reads as a number within ±1e14. (A member whose timestamp is not
// its score, written by hand, only moves the boundaries: a count read
// below any boundary is true, since it is read in the same call.) The
// first command on a key tells a key it cannot read by its error.
//
// Mode p fetches a page of a key too large for one call, or of one that
// may have grown since its size was read: from where mode a would, at most
// the expected cardinality's field of members, and at most what the call's
// pages have left of ARGV[3] (none when they are full), up to the
// score of the member after them (all members of one score when they
// alone fill the page). While members are left above the page, its status
// is -3, its cardinality the count below that score (the count below the
// page's start and its members), its c is 0 and the score follows, as
// Redis writes it: the next page's start. The last page is answered as in
// mode a. Mode n is mode p from the first checkpoint sent, whatever the
// count below it: the cardinality tells whether it held.
var FetchScript = redis.NewScript(joinLua + `
local window, factor, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out, o, i = {` + RunLua + `, ''}, 2, 4
local all, na = {}, 0
while i <= #ARGV do
  local key, mode, want, recount, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  i = i + 5
  local card, status, from, below = nil, -1, nil, 0
  if mode == 'r' then
    card = redis.pcall('ZCARD', key)
    if type(card) ~= 'number' then
      card = -1
    elseif tostring(card) ~= want then
      status = -2
    end
    i = i + 2 * n
  else
    for j = 1, n do
      if card == nil and not from then
        local c = redis.pcall('ZCOUNT', key, '-inf', '(' .. ARGV[i])
        if type(c) == 'table' then
          card = -1
        elseif c == tonumber(ARGV[i + 1]) or mode == 'n' then
          status, from, below = j, ARGV[i], c
        end
      end
      i = i + 2
    end
    if card == nil and not from and mode ~= 'c' then status, from = 0, '-inf' end
  end
  local newest, ms, more = nil, nil, nil
  if from and (mode == 'p' or mode == 'n') then
    -- A page: the members from the start up to the score of the one
    -- after the first want (or what the call has left), all of that
    -- score's when they fill the page. A key that fits is read in the one
    -- call, as mode a reads it.
    local limit = math.max(math.min(tonumber(want), budget), 0)
    local first = redis.pcall('ZRANGEBYSCORE', key, from, '+inf', 'LIMIT', '0', string.format('%d', limit + 1))
    if first.err or #first <= limit then
      ms = first
    elseif limit == 0 then
      ms, more = {}, from -- the call's pages are full: an empty one
    else
      -- The page ends before the score of the member after the want:
      -- the members read before those of that score, or, when they fill
      -- it, every member of that score.
      more = redis.call('ZSCORE', key, first[limit + 1])
      local before = redis.call('ZCOUNT', key, from, '(' .. more)
      if before > 0 then
        for j = #first, before + 1, -1 do first[j] = nil end
        ms = first
      else
        ms = redis.call('ZRANGEBYSCORE', key, from, more)
        more = redis.call('ZRANGEBYSCORE', key, '(' .. more, '+inf', 'WITHSCORES', 'LIMIT', '0', '1')[2]
      end
    end
  end
  if from then
    ms = ms or redis.pcall('ZRANGEBYSCORE', key, from, '+inf')
    if ms.err then
      card, status, from, ms, more = -1, -1, nil, nil, nil
    else
      card = below + #ms
      budget = budget - #ms
      if more then status = -3 end
      if #ms > 0 and not more then
        newest = tonumber(string.match(ms[#ms], '^[^:]*'))
        if newest and not (math.abs(newest) < 1e14) then newest = nil end
      end
    end
  elseif card == nil then
    card = redis.pcall('ZCARD', key)
    if type(card) ~= 'number' then card = -1 end
  end
  local m = ms and #ms or 0
  out[o + 1], out[o + 2], out[o + 3] = status, card, m
  for x = 1, m do
    out[o + 3 + x] = #ms[x]
    all[na + x] = ms[x]
  end
  na = na + m
  o = o + m + 4
  out[o] = 0 -- the number of counts, set below
  local counts = o
  if more then
    out[o + 1] = more
    o = o + 1
  end
  -- A key fetched, or refreshed, has its checkpoints read again.
  if card > 0 and (from and not more or status == -1 and mode == 'r') and recount > 0 then
    newest = math.floor(newest or tonumber(redis.call('ZREVRANGE', key, '0', '0', 'WITHSCORES')[2]))
  else
    newest = nil
  end
  if newest and math.abs(newest) < 1e14 and newest - window * factor ^ (recount - 1) > -1e14 then
    out[o + 1] = newest
    o = o + 1
    local count = 1
    for k = 0, recount - 1 do
      -- A farther boundary has no more members below it: after a count of
      -- 0 (a key younger than the boundary) the rest are 0 too.
      -- (A number joined to a string is written with %.14g: 0.40 µs for a
      -- boundary, against 0.18 with %d, the same digits for a whole number
      -- within ±1e14.)
      if count > 0 then count = redis.call('ZCOUNT', key, '-inf', string.format('(%d', newest - window * factor ^ k)) end
      out[o + 1] = count
      o = o + 1
    end
    out[counts] = recount
  end
end
out[2] = join(all, na)
return out
`)

// LoadCursorScript returns {epoch, cursor, seq, origin, overlap, run} from
// the cursor hash (KEYS[1]) for the peer ARGV[1], "" for a cursor, seq or
// overlap (see OverlapSuffix) not saved, and the server's run (see RunLua),
// first setting the epoch to ARGV[2] if there is none, and the origin
// (OriginField) to ARGV[2] if there is none, the server started since it
// was set, or ARGV[3] is "1": a link that found its server without what
// it merged, in the same run (a snapshot loaded in place), renews it so.
// A server whose run_id the script may not read (see RunLua) keeps its
// origin token across restarts.
var LoadCursorScript = redis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], '` + EpochField + `')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], '` + EpochField + `', epoch)
end
local run = ` + RunLua + `
local origin = redis.call('HGET', KEYS[1], '` + OriginField + `')
if not origin or ARGV[3] == '1' or run ~= '' and redis.call('HGET', KEYS[1], '` + RunField + `') ~= run then
  origin = ARGV[2]
  redis.call('HSET', KEYS[1], '` + OriginField + `', origin, '` + RunField + `', run)
end
return {epoch, redis.call('HGET', KEYS[1], ARGV[1]) or '',
  redis.call('HGET', KEYS[1], ARGV[1] .. '` + SeqSuffix + `') or '', origin,
  redis.call('HGET', KEYS[1], ARGV[1] .. '` + OverlapSuffix + `') or '', run}
`)

// SaveMarksScript sets the field ARGV[1] of the hash KEYS[1] to ARGV[2]:
// a peer's field of the marks hash (MarksKey), or a peer's page mark in
// the cursor hash (CursorKey, PageSuffix).
var SaveMarksScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// LoadMarksScript returns the field ARGV[1] of the hash KEYS[1], "" for
// none: what SaveMarksScript set.
var LoadMarksScript = redis.NewScript(`
return redis.call('HGET', KEYS[1], ARGV[1]) or ''
`)

// SaveOverlapScript sets the peer ARGV[2]'s overlap (see OverlapSuffix) to
// ARGV[3] in the cursor hash (KEYS[1]) and returns 1 if the epoch is still
// ARGV[1] and the origin ARGV[4], of the server's present run; else it
// returns 0: the server restarted since the link loaded its cursor, maybe
// without what the read merged, and the link's next load finds it.
var SaveOverlapScript = redis.NewScript(`
local run = ` + RunLua + `
if redis.call('HGET', KEYS[1], '` + EpochField + `') ~= ARGV[1]
    or redis.call('HGET', KEYS[1], '` + OriginField + `') ~= ARGV[4]
    or run ~= '' and redis.call('HGET', KEYS[1], '` + RunField + `') ~= run then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2] .. '` + OverlapSuffix + `', ARGV[3])
return 1
`)

// SaveCursorScript sets the peer ARGV[2]'s cursor to ARGV[4] and its seq
// to ARGV[6] in the cursor hash (KEYS[1]) and returns 1 if the epoch is
// still ARGV[1], the cursor still ARGV[3], the seq still ARGV[5] ("" for
// none) and the origin still ARGV[7], of the server's present run: what
// the link loaded or saved last, and the origin it read the peer's
// journal as. Else it returns 0: the server restarted since, empty or
// from a snapshot, and the pages read since may have taken for its own
// what it lost.
var SaveCursorScript = redis.NewScript(`
local seqField = ARGV[2] .. '` + SeqSuffix + `'
local run = ` + RunLua + `
if redis.call('HGET', KEYS[1], '` + EpochField + `') ~= ARGV[1]
    or (redis.call('HGET', KEYS[1], ARGV[2]) or '') ~= ARGV[3]
    or (redis.call('HGET', KEYS[1], seqField) or '') ~= ARGV[5]
    or redis.call('HGET', KEYS[1], '` + OriginField + `') ~= ARGV[7]
    or run ~= '' and redis.call('HGET', KEYS[1], '` + RunField + `') ~= run then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4], seqField, ARGV[6])
return 1
`)
