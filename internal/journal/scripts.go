package journal

import "github.com/redis/go-redis/v9"

// DropScript raises the horizon and removes one SCAN step's worth of the
// keys of dropped periods, with their journal entries.
//
// KEYS[1] is the journal, KEYS[2] the horizon key, KEYS[3] the origin hash
// (whose fields of the keys removed go with them). ARGV[1] is the SCAN
// cursor, ARGV[2] the COUNT, ARGV[3] the cutoff (the period string of the
// oldest period kept) and ARGV[4] the Lua pattern of a period string of the
// configured length.
//
// The horizon is raised on every call, before the scan: from the first call
// on, the write script refuses the periods being dropped, so no key can come
// back behind the cursor. It is only ever raised: a horizon, of either period
// length, at or after the cutoff stays. Periods compare by their digits, so
// the server's collation locale does not matter.
//
// A key is dropped when the text before its first ':' matches the pattern
// and comes before the cutoff; the journal, the horizon and keys of any
// other shape are never touched. The reply is {next cursor, keys removed}.
var DropScript = redis.NewScript(`
local function rank(p)
  if string.match(p, '^%d%d%d%d%-%d%d%-%d%d$') then
    return tonumber((string.gsub(p, '%D', ''))) * 100
  elseif string.match(p, '^%d%d%d%d%-%d%d%-%d%dT%d%d$') then
    return tonumber((string.gsub(p, '%D', '')))
  end
  return nil
end
local cutoff = ARGV[3]
local horizon = redis.call('GET', KEYS[2])
local kept = horizon and rank(horizon)
if not kept or kept < rank(cutoff) then
  redis.call('SET', KEYS[2], cutoff)
end
local limit = tonumber((string.gsub(cutoff, '%D', '')))
local r = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local batch, n, removed = {}, 0, 0
local function flush()
  removed = removed + redis.call('UNLINK', unpack(batch, 1, n))
  redis.call('ZREM', KEYS[1], unpack(batch, 1, n))
  redis.call('HDEL', KEYS[3], unpack(batch, 1, n))
  n = 0
end
for _, key in ipairs(r[2]) do
  local p = string.match(key, '^([^:]*):')
  if p and key ~= KEYS[1] and key ~= KEYS[2] and key ~= KEYS[3] and string.match(p, ARGV[4])
      and tonumber((string.gsub(p, '%D', ''))) < limit then
    n = n + 1
    batch[n] = key
    if n >= 1000 then flush() end
  end
end
if n > 0 then flush() end
return {r[1], removed}
`)

// digestChunk defines the digest scripts' chunk, which spells a chunk of
// members for the digest: a JSON array of strings, each quoted, by the
// cjson library that Redis and the servers that stand in for it bundle
// (cmsgpack, as fast, is missing from some). Joined by a separator,
// members that hold it could spell what other members do ("a\nb" and "c"
// against "a" and "b\nc"). Redis's cjson quotes bytes one to one; the
// demo's in-process servers write invalid UTF-8 as U+FFFD, so there
// members that differ only in such bytes look alike.
const digestChunk = `
local function chunk(m)
  return cjson.encode(m)
end
`

// DigestScript returns, for every key in ARGV, its cardinality and a SHA-1
// digest of its members in sorted-set order, chained over chunks of 1,000
// members. A missing key is {0, ""}; a key of another type {-1, "type:T"}.
var DigestScript = redis.NewScript(digestChunk + `
local out = {}
for i = 1, #ARGV do
  local key = ARGV[i]
  local t = redis.call('TYPE', key).ok
  if t == 'none' then
    out[#out + 1] = 0
    out[#out + 1] = ''
  elseif t ~= 'zset' then
    out[#out + 1] = -1
    out[#out + 1] = 'type:' .. t
  else
    local card = redis.call('ZCARD', key)
    local h = ''
    for start = 0, card - 1, 1000 do
      h = redis.sha1hex(h .. chunk(redis.call('ZRANGE', key, start, start + 999)))
    end
    out[#out + 1] = card
    out[#out + 1] = h
  end
end
return out
`)

// BoundsScript returns the scores that split the sorted set ARGV[1] into
// ranges of ARGV[2] members: the scores of its members of rank ARGV[2],
// 2×ARGV[2] and so on (from 0), as Redis writes them (exactly, to be given
// back as bounds). A missing key, or one of another type, has none.
var BoundsScript = redis.NewScript(`
local key, step = ARGV[1], tonumber(ARGV[2])
local out = {}
if redis.call('TYPE', key).ok ~= 'zset' then return out end
local card = redis.call('ZCARD', key)
for r = step, card - 1, step do
  out[#out + 1] = redis.call('ZRANGE', key, r, r, 'WITHSCORES')[2]
end
return out
`)

// RangeDigestScript returns the count and the digest (as DigestScript's)
// of the members of the sorted set ARGV[1] scored from ARGV[2] ("-inf",
// or a score) up to, not including, ARGV[3] ("+inf", which is included,
// or a score). A missing key is {0, ""}; a key of another type {-1,
// "type:T"}. The members are read by rank, from the rank of the first,
// so the script costs the members it digests and no more.
var RangeDigestScript = redis.NewScript(digestChunk + `
local key, lo, hi = ARGV[1], ARGV[2], ARGV[3]
local t = redis.call('TYPE', key).ok
if t == 'none' then return {0, ''} end
if t ~= 'zset' then return {-1, 'type:' .. t} end
local first = 0
if lo ~= '-inf' then first = redis.call('ZCOUNT', key, '-inf', '(' .. lo) end
local top = hi
if hi ~= '+inf' then top = '(' .. hi end
local n = redis.call('ZCOUNT', key, lo, top)
local h = ''
for start = first, first + n - 1, 1000 do
  local stop = math.min(start + 999, first + n - 1)
  h = redis.sha1hex(h .. chunk(redis.call('ZRANGE', key, start, stop)))
end
return {n, h}
`)

// RangeMembersScript returns the members of the sorted set ARGV[1] in the
// range of RangeDigestScript's ARGV[2] and ARGV[3]. A key that holds
// another type has none.
var RangeMembersScript = redis.NewScript(`
if redis.call('TYPE', ARGV[1]).ok ~= 'zset' then return {} end
local top = ARGV[3]
if top ~= '+inf' then top = '(' .. top end
return redis.call('ZRANGEBYSCORE', ARGV[1], ARGV[2], top)
`)

// CardsScript returns the cardinality of every key in ARGV: 0 for a
// missing key, -1 for a key of another type.
var CardsScript = redis.NewScript(`
local out = {}
for i = 1, #ARGV do
  local c = redis.pcall('ZCARD', ARGV[i])
  if type(c) ~= 'number' then c = -1 end
  out[i] = c
end
return out
`)

// MembersScript returns the members of keys, each scored at or after its
// minimum: ARGV holds key and minimum ("-inf" for all) pairs. A key that
// holds another type has none.
var MembersScript = redis.NewScript(`
local out = {}
for i = 1, #ARGV, 2 do
  local r = redis.pcall('ZRANGEBYSCORE', ARGV[i], ARGV[i + 1], '+inf')
  if type(r) ~= 'table' or r.err then r = {} end
  out[#out + 1] = r
end
return out
`)
