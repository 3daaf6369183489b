-- lib.lua: helpers shared by every ratemon script. scripts.go prepends this
-- file to each script before loading it, so each script stays self-contained
-- for Redis (one EVALSHA, no server-side library needed).
--
-- A rule's window log is two ordered structures holding (ts, weight) pairs:
--   log  (stream)     in-order pairs. An entry (pairs of one append of one
--                     limit key) has the id "<m>-<seq>", m its newest ts,
--                     and one field p, its body: the entry's total weight
--                     in 6 bytes, then per pair, oldest first, 2 bytes x
--                     (little-endian): the pair's ts is m - x % 1024, its
--                     weight x / 1024 when that is not 0, else the next 6
--                     bytes (appendEntry in pack.go). Its pairs span at most
--                     SPAN ms, and every pair of a later entry is at or
--                     after m, so the log is in event-time order. Entries
--                     written before this form (one field n = weight, or
--                     per pair a field "<m - ts>" = weight) are still read.
--   late (sorted set) score ts, member "<weight>:<uniq>"; out-of-order pairs
-- The cursors below walk both merged, in event-time order.

local CHUNK = 256
-- SPAN bounds the event times of one log entry: an entry holding a time at
-- or before hi has an id at or before hi + SPAN.
local SPAN = 1000
-- PAIRS bounds the pairs of one log entry.
local PAIRS = 256

-- s formats an integer for a Redis argument; Lua's own tostring switches to
-- exponent notation past 14 digits.
local function s(x)
  return string.format('%d', x)
end

local function id_ms(id)
  return tonumber(string.match(id, '^(%d+)'))
end

-- chunked walks a sequence read CHUNK items at a time. fetch() returns the
-- next raw reply and whether it was the last; parse(buf, i) returns the
-- (ts, weight) of the item at i; step is how many reply slots an item uses.
local function chunked(fetch, parse, step)
  local c = {buf = nil, i = 1, last = false}
  function c.peek()
    if c.buf == nil or c.i > #c.buf then
      if c.last then return nil end
      c.buf, c.last = fetch()
      c.i = 1
      if #c.buf == 0 then
        c.last = true
        return nil
      end
    end
    return parse(c.buf, c.i)
  end
  function c.advance() c.i = c.i + step end
  return c
end

local function parse_member(buf, i)
  return tonumber(buf[i + 1]), tonumber(string.match(buf[i], '^(%d+)'))
end

local function parse_pair(buf, i)
  return buf[i], buf[i + 1]
end

local function empty() return {}, true end

local byte = string.byte

-- u6 and u3 read little-endian unsigned integers of 6 and 3 bytes of b at p.
local function u6(b, p)
  local a0, a1, a2, a3, a4, a5 = byte(b, p, p + 5)
  return a0 + 256 * (a1 + 256 * (a2 + 256 * (a3 + 256 * (a4 + 256 * a5))))
end

local function u3(b, p)
  local a0, a1, a2 = byte(b, p, p + 2)
  return a0 + 256 * (a1 + 256 * a2)
end

-- le is the n low bytes of the integer x >= 0, little-endian.
local function le(x, n)
  local t = {}
  for i = 1, n do
    local d = x % 256
    t[i] = d
    x = (x - d) / 256
  end
  return string.char(unpack(t))
end

-- body_pairs appends to out, as flat ts, weight, ascending, the pairs with
-- a ts in (lo, hi] of the body b of an entry with id time m.
local function body_pairs(b, m, lo, hi, out)
  local p, n = 7, #b
  while p < n do
    local x0, x1 = byte(b, p, p + 1)
    local x = x0 + 256 * x1
    local d = x % 1024
    local w = (x - d) / 1024
    if w == 0 then
      w = u6(b, p + 2)
      p = p + 8
    else
      p = p + 2
    end
    local ts = m - d
    if ts > hi then return end
    if ts > lo then
      out[#out + 1] = ts
      out[#out + 1] = w
    end
  end
end

-- body_sum is the weight of the pairs with a ts in (lo, hi] of the body b
-- of an entry with id time m: its total when they all are.
-- body_total is the stored total of the body b of an entry with id time
-- m when all its pairs have a ts in (lo, hi] (its oldest pair is its
-- first, its newest at m); nil otherwise.
local function body_total(b, m, lo, hi)
  local x0, x1 = byte(b, 7, 8)
  if m <= hi and m - (x0 + 256 * x1) % 1024 > lo then return u6(b, 1) end
  return nil
end

local function body_sum(b, m, lo, hi)
  local whole = body_total(b, m, lo, hi)
  if whole ~= nil then return whole end
  local t, total = {}, 0
  body_pairs(b, m, lo, hi, t)
  for i = 2, #t, 2 do total = total + t[i] end
  return total
end

-- entry_body encodes the pairs pend[i..j] (flat ts, weight, ascending) as
-- the body of an entry with id time m.
local function entry_body(pend, i, j, m)
  local parts, total = {}, 0
  for k = i, j, 2 do
    local d, w = m - pend[k], pend[k + 1]
    total = total + w
    if w >= 1 and w <= 63 then
      parts[#parts + 1] = le(d + 1024 * w, 2)
    else
      parts[#parts + 1] = le(d, 2) .. le(w, 6)
    end
  end
  return le(total, 6) .. table.concat(parts)
end

-- expand appends to out, as flat ts, weight, the pairs of log entry e with
-- a ts in (lo, hi], ascending or descending.
local function expand(e, lo, hi, asc, out)
  local m, f = id_ms(e[1]), e[2]
  if f[1] == 'p' then
    if asc then
      body_pairs(f[2], m, lo, hi, out)
      return
    end
    local t = {}
    body_pairs(f[2], m, lo, hi, t)
    for j = #t - 1, 1, -2 do
      out[#out + 1] = t[j]
      out[#out + 1] = t[j + 1]
    end
    return
  end
  if #f == 2 then
    if m > lo and m <= hi then
      out[#out + 1] = m
      out[#out + 1] = tonumber(f[2])
    end
    return
  end
  local first, last, step = 1, #f - 1, 2
  if not asc then first, last, step = #f - 1, 1, -2 end
  for j = first, last, step do
    local ts = m - tonumber(f[j])
    if ts > lo and ts <= hi then
      out[#out + 1] = ts
      out[#out + 1] = tonumber(f[j + 1])
    end
  end
end

-- entries returns an iterator over the log entries of key whose id could
-- hold a pair with ts in (lo, hi], oldest first or newest first. It reads
-- FIRST_READ entries, then twice as many each read up to CHUNK: a walk
-- that stops early (free_at stops once it has its limit, a few entries
-- back from the newest of a key far over it) does not read the rest of
-- the window.
local FIRST_READ = 8
local function entries(key, lo, hi, asc)
  local last, raw, ri, done, count = nil, {}, 1, false, FIRST_READ
  return function()
    if ri > #raw then
      if done then return nil end
      if asc then
        raw = redis.call('XRANGE', key, last and ('(' .. last) or s(lo + 1), s(hi + SPAN), 'COUNT', count)
      else
        raw = redis.call('XREVRANGE', key, last and ('(' .. last) or s(hi + SPAN), s(lo + 1), 'COUNT', count)
      end
      done = #raw < count
      count = math.min(2 * count, CHUNK)
      ri = 1
      if #raw == 0 then return nil end
      last = raw[#raw][1]
    end
    ri = ri + 1
    return raw[ri - 1]
  end
end

-- stream cursor over the pairs with ts in (lo, hi], ascending or descending,
-- decoding one entry at a time as the walk gets there.
local function stream_cursor(key, lo, hi, asc)
  if hi <= lo then return chunked(empty, parse_pair, 2) end
  local next_entry = entries(key, lo, hi, asc)
  return chunked(function()
    while true do
      local e = next_entry()
      if e == nil then return {}, true end
      local out = {}
      expand(e, lo, hi, asc, out)
      if #out > 0 then return out, false end
      -- Ascending, an entry with no pair in range is past hi, and so is
      -- every later one: the end. Descending, entries past hi come first
      -- and are skipped.
      if asc then return out, true end
    end
  end, parse_pair, 2)
end

-- sorted-set cursor over entries with score in (lo, hi]; key false: none
-- (a rule that never had an out-of-order entry).
local function late_cursor(key, lo, hi, asc)
  if hi <= lo or not key then return chunked(empty, parse_member, 2) end
  local off = 0
  return chunked(function()
    local r
    if asc then
      r = redis.call('ZRANGEBYSCORE', key, '(' .. s(lo), s(hi), 'WITHSCORES', 'LIMIT', off, CHUNK)
    else
      r = redis.call('ZREVRANGEBYSCORE', key, s(hi), '(' .. s(lo), 'WITHSCORES', 'LIMIT', off, CHUNK)
    end
    off = off + #r / 2
    return r, #r < 2 * CHUNK
  end, parse_member, 2)
end

-- merged cursor over a rule's log and late set, ts in (lo, hi].
local function cursor(log, late, lo, hi, asc)
  local a = stream_cursor(log, lo, hi, asc)
  local b = late_cursor(late, lo, hi, asc)
  local m = {}
  function m.peek()
    local ta, wa = a.peek()
    local tb, wb = b.peek()
    if ta == nil then
      if tb == nil then return nil end
      m.from = b
      return tb, wb
    end
    if tb == nil then
      m.from = a
      return ta, wa
    end
    if (asc and tb < ta) or ((not asc) and tb > ta) then
      m.from = b
      return tb, wb
    end
    m.from = a
    return ta, wa
  end
  function m.advance() m.from.advance() end
  return m
end

-- sum of the log's weights with ts in (lo, hi], for a rule with no late
-- entry: the entries read and summed in place, without cursors.
local function log_sum(key, lo, hi)
  local total, from, to = 0, s(lo + 1), s(hi + SPAN)
  while true do
    local r = redis.call('XRANGE', key, from, to, 'COUNT', CHUNK)
    for _, e in ipairs(r) do
      local m, f = id_ms(e[1]), e[2]
      if f[1] == 'p' then
        total = total + body_sum(f[2], m, lo, hi)
      elseif #f == 2 then
        if m > lo and m <= hi then total = total + tonumber(f[2]) end
      else
        for j = 1, #f - 1, 2 do
          local ts = m - tonumber(f[j])
          if ts > lo and ts <= hi then total = total + tonumber(f[j + 1]) end
        end
      end
    end
    if #r < CHUNK then return total end
    from = '(' .. r[#r][1]
  end
end

-- sum of weights with ts in (lo, hi].
local function range_sum(log, late, lo, hi)
  if hi <= lo then return 0 end
  if not late then return log_sum(log, lo, hi) end
  local s = 0
  local c = cursor(log, late, lo, hi, true)
  while true do
    local ts, w = c.peek()
    if ts == nil then break end
    s = s + w
    c.advance()
  end
  return s
end

-- The time the window (.., t] stops holding `limit`: walking newest first
-- over (lo, hi], the ts at which the cumulative weight reaches limit, plus
-- window. nil when the range holds less than limit.
local function free_at(log, late, lo, hi, limit, window)
  if not late then
    -- No late entry: walk the log's entries newest first, adding the
    -- total of each entry wholly inside (lo, hi] without decoding it; only
    -- the entry the limit is reached in, and those straddling lo or hi,
    -- are decoded pair by pair.
    local acc, next_entry = 0, entries(log, lo, hi, false)
    while true do
      local e = next_entry()
      if e == nil then return nil end
      local f, whole = e[2], nil
      if f[1] == 'p' then whole = body_total(f[2], id_ms(e[1]), lo, hi) end
      if whole ~= nil and acc + whole < limit then
        acc = acc + whole
      else
        local t = {}
        expand(e, lo, hi, false, t)
        for i = 1, #t, 2 do
          acc = acc + t[i + 1]
          if acc >= limit then return t[i] + window end
        end
      end
    end
  end
  local acc = 0
  local c = cursor(log, late, lo, hi, false)
  while true do
    local ts, w = c.peek()
    if ts == nil then return nil end
    acc = acc + w
    if acc >= limit then return ts + window end
    c.advance()
  end
end

-- Trip scan for deny_for rules: walks the entry times in (lo, hi] in order,
-- keeping the count of (x - window, x] for each time x starting from `base`,
-- the count of (lo - window, lo]. Returns the latest x whose count reached
-- limit and is after `after` (or nil), and the count of (hi - window, hi].
local function trip_scan(log, late, lo, hi, base, limit, window, after)
  local add = cursor(log, late, lo, hi, true)
  local rem = cursor(log, late, lo - window, hi - window, true)
  local cnt = base
  local trip = nil
  while true do
    local x = add.peek()
    if x == nil then break end
    while true do
      local ts, w = add.peek()
      if ts == nil or ts ~= x then break end
      cnt = cnt + w
      add.advance()
    end
    while true do
      local ts, w = rem.peek()
      if ts == nil or ts > x - window then break end
      cnt = cnt - w
      rem.advance()
    end
    if cnt >= limit and x > after then trip = x end
  end
  while true do
    local ts, w = rem.peek()
    if ts == nil then break end
    cnt = cnt - w
    rem.advance()
  end
  return trip, cnt
end

local function num(v, default)
  if v == false or v == nil then return default end
  return tonumber(v)
end

-- A rule's state is one field of the state hash, named after the rule (rule
-- names start with a letter or digit, the key's own fields with '_'): nine
-- little-endian integers, t newest event, c running count of the entries
-- newer than b, b boundary, m oldest entry added since the last evaluation,
-- k and ck trip-check frontier and its count, f latest trip, p last trim
-- point, q late-entry counter; UNSET stands for a time not set. One field
-- read and written with struct costs a fraction of nine decimal fields.
-- Times take 6 bytes (Unix ms fit in 47 bits until the year 6429), counts 8:
-- 58 bytes, under hash-max-listpack-value (64), so that a key's state hash
-- stays a compact listpack.
local RULE_FMT = '<i6i8i6i6i6i8i6i6i6'
local UNSET = -70368744177664 -- -2^46

local function unset(x)
  if x == UNSET then return nil end
  return x
end

-- decode and encode the nine numbers. Redis has the struct library; an
-- in-process stand-in of `serve --dev` may not, and gets the same numbers
-- as decimal text.
local decode, encode
if pcall(function() return struct.pack end) then
  decode = function(v) return struct.unpack(RULE_FMT, v) end
  encode = function(...) return struct.pack(RULE_FMT, ...) end
else
  decode = function(v)
    local out = {}
    for part in string.gmatch(v, '[^,]+') do out[#out + 1] = tonumber(part) end
    return unpack(out, 1, 9)
  end
  encode = function(...)
    local out = {...}
    for i = 1, #out do out[i] = string.format('%.17g', out[i]) end
    return table.concat(out, ',')
  end
end

-- load_rule sets rule r's state from its field's value v (false: none).
local function load_rule(r, v)
  if v then
    local t, c, b, m, k, ck, f, p, q = decode(v)
    r.t, r.c, r.b, r.m, r.k, r.ck, r.f, r.p, r.q = unset(t), c, b, unset(m), unset(k), ck, unset(f), unset(p), q
  else
    r.t, r.c, r.b, r.m, r.k, r.ck, r.f, r.p, r.q = nil, 0, -1, nil, nil, 0, nil, nil, 0
  end
end

local function pack_rule(r)
  return encode(r.t or UNSET, r.c, r.b, r.m or UNSET, r.k or UNSET, r.ck, r.f or UNSET,
    r.p or UNSET, r.q)
end

-- effective_limit applies a limit key's runtime overrides (hash field
-- "<rule>": an absolute limit, or "x<factor>"; field "*": "x<factor>" for
-- every rule) to a rule's configured limit.
local function effective_limit(ovr, name, limit)
  local v = ovr[name]
  if v ~= nil then
    if string.sub(v, 1, 1) == 'x' then
      return math.max(1, math.floor(limit * tonumber(string.sub(v, 2))))
    end
    return tonumber(v)
  end
  v = ovr['*']
  if v ~= nil and string.sub(v, 1, 1) == 'x' then
    return math.max(1, math.floor(limit * tonumber(string.sub(v, 2))))
  end
  return limit
end

local function read_overrides(key)
  local flat = redis.call('HGETALL', key)
  local ovr = {}
  for i = 1, #flat, 2 do ovr[flat[i]] = flat[i + 1] end
  return ovr
end

local function flag_json(lk, rule, reason, u, source, author)
  local j = '{"key":' .. cjson.encode(lk) .. ',"rule":' .. cjson.encode(rule) .. ',"reason":' ..
    cjson.encode(reason) .. ',"until":' .. s(u) .. ',"source":"' .. source .. '"'
  if author ~= nil and author ~= '' then j = j .. ',"author":' .. cjson.encode(author) end
  return j .. '}'
end

-- put records a state field to write when the script ends; del records one
-- to delete. close applies both, deletes last.
local function put(cx, field, value)
  cx.set[field] = value
  cx.del[field] = nil
end

local function del(cx, field)
  cx.set[field] = nil
  cx.del[field] = true
end

-- keep_state gives the state hash at least ttl ms to live (window.lua: what
-- its events need; manual.lua: what its manual entry needs). Its running
-- counts must not outlive the logs they are read with, so it expires too,
-- unless an override or a manual entry needs it longer: the state hash
-- then lives as long as the longest of those (persistent while one is),
-- and a TTL is never shortened. A new hash, which HSET creates without a
-- TTL, gets one here (PEXPIRE GT alone never sets one on such a key).
local function keep_state(cx, ttl)
  if not (cx.prev['_o'] or cx.prev['_m']) then
    redis.call('PEXPIRE', cx.st, s(ttl), 'GT')
    redis.call('PEXPIRE', cx.st, s(ttl), 'NX')
    return
  end
  local need = ttl
  for _, k in ipairs({cx.ovrk, cx.blockk, cx.allowk}) do
    local p = redis.call('PTTL', k)
    if p == -1 then -- persistent: the state too
      redis.call('PERSIST', cx.st)
      return
    end
    if p > 0 and p + 60000 > need then need = p + 60000 end
  end
  local cur = redis.call('PTTL', cx.st)
  if cur == -1 or cur < need then redis.call('PEXPIRE', cx.st, s(need)) end
end

local function close(cx)
  for _, r in ipairs(cx.rules) do
    if r.dirty then put(cx, r.name, pack_rule(r)) end
  end
  local flat = {}
  for f, v in pairs(cx.set) do
    flat[#flat + 1] = f
    flat[#flat + 1] = v
  end
  if #flat > 0 then redis.call('HSET', cx.st, unpack(flat)) end
  local gone = {}
  for f in pairs(cx.del) do
    -- a field open() read as absent needs no HDEL
    if cx.prev[f] then gone[#gone + 1] = f end
  end
  if #gone > 0 then redis.call('HDEL', cx.st, unpack(gone)) end
  if cx.keep then keep_state(cx, cx.keep) end
end

-- write_deny decides the deny flag of a limit key from its three inputs,
-- with precedence allow > manual block > automatic deny, and writes it when
-- it changed. auto is {u, rule, reason} from the rules (u = 0: none). The
-- automatic part is remembered in the state hash, so that a manual change
-- can recompute the flag without evaluating the rules. Manual entries are
-- read only when the key's marker says some may exist. Returns a change
-- {kind, allowed, until, rule, source} or nil.
local function write_deny(cx, auto)
  local now, prev = cx.now, cx.prev
  local pau = num(prev['_au'], 0)
  if auto.u > now then
    if auto.u ~= pau or auto.rule ~= (prev['_ar'] or '') or auto.reason ~= (prev['_ax'] or '') then
      put(cx, '_au', s(auto.u))
      put(cx, '_ar', auto.rule)
      put(cx, '_ax', auto.reason)
    end
  elseif pau > 0 then
    del(cx, '_au')
    del(cx, '_ar')
    del(cx, '_ax')
  end
  local want = {u = 0, rule = '', reason = '', source = 'rule', author = ''}
  local manual = prev['_m'] ~= false and prev['_m'] ~= nil
  if not (manual and redis.call('EXISTS', cx.allowk) == 1) then
    if auto.u > now then
      want = {u = auto.u, rule = auto.rule, reason = auto.reason, source = 'rule', author = ''}
    end
    local b = manual and redis.call('GET', cx.blockk)
    if b then
      local e = cjson.decode(b)
      if e['until'] > want.u and e['until'] > now then
        want = {u = e['until'], rule = '', reason = e.reason or '', source = 'manual', author = e.author or ''}
      end
    end
  end
  local pu, pr, ps = num(prev['_du'], 0), prev['_dr'] or '', prev['_ds'] or ''
  if want.u > now then
    if want.u ~= pu or want.rule ~= pr or want.source ~= ps or redis.call('EXISTS', cx.denyk) == 0 then
      redis.call('SET', cx.denyk, flag_json(cx.lk, want.rule, want.reason, want.u, want.source, want.author), 'PXAT', s(want.u))
      put(cx, '_du', s(want.u))
      put(cx, '_dr', want.rule)
      put(cx, '_ds', want.source)
      return {'deny', 0, want.u, want.rule, want.source}
    end
    return nil
  end
  if pu > 0 then
    del(cx, '_du')
    del(cx, '_dr')
    del(cx, '_ds')
    if pu > now then
      redis.call('DEL', cx.denyk)
      return {'deny', 1, 0, pr, ps}
    end
  end
  return nil
end

-- write_shadow writes or clears the shadow flag (no manual entries apply).
local function write_shadow(cx, want)
  local now, prev = cx.now, cx.prev
  local pu, pr = num(prev['_su'], 0), prev['_sr'] or ''
  if want.u > now then
    if want.u ~= pu or want.rule ~= pr or redis.call('EXISTS', cx.shadowk) == 0 then
      redis.call('SET', cx.shadowk, flag_json(cx.lk, want.rule, want.reason, want.u, 'rule', ''), 'PXAT', s(want.u))
      put(cx, '_su', s(want.u))
      put(cx, '_sr', want.rule)
      return {'shadow', 0, want.u, want.rule, 'rule'}
    end
    return nil
  end
  if pu > 0 then
    del(cx, '_su')
    del(cx, '_sr')
    if pu > now then
      redis.call('DEL', cx.shadowk)
      return {'shadow', 1, 0, pr, 'rule'}
    end
  end
  return nil
end
