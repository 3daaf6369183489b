-- window.lua: the window store of one limit key, shared by append.lua,
-- evaluate.lua and ingest.lua (scripts.go prepends lib.lua and this file).
--
-- Every script gets the same KEYS and the head of ARGV:
--   KEYS: 1 state hash, 2 seen set, 3 ids set, 4 deny flag, 5 shadow flag,
--         6 manual block, 7 allow entry, 8 overrides,
--         then for each rule i of the key's group: log_i, late_i.
--   ARGV: 1 now, 2 ack floor, 3 limit key, 4 nrules,
--         then per rule: name, limit, window_ms, deny_for_ms, action, retention_ms.
-- The state hash holds, per rule r, the field r: its state packed as nine
-- integers (see lib.lua: t newest event, c running count, b boundary, m
-- oldest entry since the last evaluation, k and ck trip-check frontier, f
-- latest trip, p last trim point, q late-entry counter); per key: the flags
-- written (_du _dr _ds, _su _sr), the automatic deny (_au _ar _ax), markers
-- that manual entries (_m), overrides (_o) or event ids (_i) may exist, the
-- time the TTLs are due for a refresh (_x), and the ack floor of the last
-- trim of the seen set (_s).

-- RESEND is the error of a call in the ranges form with a message applied
-- before (see append); the daemon knows it by its first word.
local RESEND = 'RESEND a message of this call was applied before: send its events message by message'

-- SEEN_TRIM: how far the ack floor moves between two trims of the seen set.
local SEEN_TRIM = 100
-- TRIM_STEP: a rule's log is trimmed when its trim point has moved
-- 1/TRIM_STEP of its retention (and at most 1000 ms) since the last trim.
local TRIM_STEP = 32

-- open reads the common KEYS and ARGV head and the whole state hash in one
-- HGETALL (the hash is small: the fields above and one per rule, and an
-- HGETALL of the few present costs less than an HMGET naming all of them).
-- Returns the context and the index of the first ARGV after the rules.
local function open()
  local cx = {now = tonumber(ARGV[1]), floor = tonumber(ARGV[2]), lk = ARGV[3],
    st = KEYS[1], seen = KEYS[2], ids = KEYS[3], denyk = KEYS[4], shadowk = KEYS[5],
    blockk = KEYS[6], allowk = KEYS[7], ovrk = KEYS[8], rules = {}, maxret = 0, set = {}, del = {}, dirty = false}
  local n = tonumber(ARGV[4])
  local a = 5
  for i = 1, n do
    local r = {name = ARGV[a], limit = tonumber(ARGV[a + 1]), win = tonumber(ARGV[a + 2]),
      denyfor = tonumber(ARGV[a + 3]), action = ARGV[a + 4], ret = tonumber(ARGV[a + 5]),
      log = KEYS[7 + 2 * i], late = KEYS[8 + 2 * i]}
    if r.ret > cx.maxret then cx.maxret = r.ret end
    cx.rules[i] = r
    a = a + 6
  end
  -- prev: the hash's fields as read (absent: nil).
  local flat = redis.call('HGETALL', cx.st)
  local prev = {}
  for i = 1, #flat, 2 do prev[flat[i]] = flat[i + 1] end
  for _, r in ipairs(cx.rules) do
    load_rule(r, prev[r.name] or false)
    -- Every event the rule counted has left its window (the key was idle
    -- that long): nothing is left to subtract them with, and the logs that
    -- held them may be gone, expired with the key idle past their TTL.
    local nb = cx.now - r.win
    if r.t ~= nil and nb >= r.t and (r.c ~= 0 or nb > r.b) then
      r.c, r.b, r.k, r.ck = 0, math.max(r.b, nb), nil, 0
      r.dirty = true
    end
  end
  cx.prev = prev
  return cx, a
end

-- tally adds weight w at ts to rule r's events of this call, summed per
-- millisecond; r.times lists the milliseconds in the order they came, and
-- r.sorted says whether that order is ascending (events mostly come in
-- order, so the sort is mostly saved).
local function tally(r, ts, w)
  local agg = r.agg
  local prev = agg[ts]
  if prev == nil then
    local n = r.n + 1
    r.n = n
    r.times[n] = ts
    if ts < r.newest then r.sorted = false else r.newest = ts end
    agg[ts] = w
  else
    agg[ts] = prev + w
  end
end

-- add_late records an out-of-order pair of rule r in its late set.
local function add_late(r, ts, w)
  r.q = r.q + 1
  r.late_added = true
  redis.call('ZADD', r.late, s(ts), s(w) .. ':' .. s(r.q))
end

-- log_pairs writes the in-order pairs of rule r (flat ts, weight,
-- ascending, none before r.t) to its log: one entry per run of at most
-- PAIRS pairs spanning at most SPAN ms (see lib.lua). An entry the stream
-- refuses (its last id is newer) goes to the late set instead.
local function log_pairs(r, pend)
  local i, n = 1, #pend
  while i <= n do
    local first = pend[i]
    local j = i
    while j + 2 <= n and pend[j + 2] - first <= SPAN and (j + 2 - i) / 2 < PAIRS do j = j + 2 end
    local m = pend[j]
    if type(redis.pcall('XADD', r.log, s(m) .. '-*', 'p', entry_body(pend, i, j, m))) == 'string' then
      r.t = m
    else
      for k = i, j, 2 do add_late(r, pend[k], pend[k + 1]) end
    end
    i = j + 2
  end
end

-- log_runs writes the entries the daemon built (packRuns in pack.go; rn of
-- them from byte p of runs) to rule r's log as they are; an entry the
-- stream refuses goes to the late set, pair by pair.
local function log_runs(r, runs, p, rn)
  for _ = 1, rn do
    local m, len = u6(runs, p), u3(runs, p + 6)
    local body = string.sub(runs, p + 9, p + 8 + len)
    if type(redis.pcall('XADD', r.log, s(m) .. '-*', 'p', body)) == 'string' then
      r.t = m
    else
      local t = {}
      body_pairs(body, m, -math.huge, math.huge, t)
      for k = 1, #t, 2 do add_late(r, t[k], t[k + 1]) end
    end
    p = p + 9 + len
  end
end

-- read_runs checks the entries argument of packRuns and returns its
-- oldest time, newest time, total weight, number of entries and where the
-- first begins; nil when there is none.
local function read_runs(runs)
  if runs == nil or runs == '' then return nil end
  local len = #runs
  if len < 21 then error('packed entries: ' .. s(len) .. ' bytes, want at least 21') end
  local rn = u3(runs, 19)
  local p = 22
  for e = 1, rn do
    if p + 8 > len then error('packed entries: entry ' .. s(e) .. ' of ' .. s(rn) .. ' is cut short') end
    p = p + 9 + u3(runs, p + 6)
  end
  if p ~= len + 1 then error('packed entries: want ' .. s(p - 1) .. ' bytes, got ' .. s(len)) end
  return u6(runs, 1), u6(runs, 7), u6(runs, 13), rn, 22
end

-- seq_item reads one item of a seen-set member: a sequence "n", or a range
-- "a-b" of them (the ranges form). Returns its first and last sequence;
-- nil for an item that is neither.
local function seq_item(item)
  local x, y = string.match(item, '^(%d+)%-(%d+)$')
  if x ~= nil then return tonumber(x), tonumber(y) end
  local n = tonumber(item)
  return n, n
end

-- read_ranges checks the member of the ranges form (seenRanges in pack.go:
-- sequences and ranges of them, ascending, disjoint, none 0) and returns
-- them as flat first, last.
local function read_ranges(member)
  local out, prev = {}, 0
  for item in string.gmatch(member, '[^,]+') do
    local x, y = seq_item(item)
    if x == nil or x <= prev or y < x then
      error('sequence ranges: item ' .. item .. ' is not a sequence or range after ' .. s(prev))
    end
    out[#out + 1] = x
    out[#out + 1] = y
    prev = y
  end
  return out
end

-- range_bounds returns the first and last sequence of a member of the
-- ranges form (seenRanges in pack.go), its leading and trailing digits,
-- without reading the items between: read_ranges does that, and checks
-- them, only when the seen set holds a member they could overlap. A
-- member that does not begin and end with a sequence is refused.
local function range_bounds(member)
  local b = #member
  while b > 1 do
    local c = byte(member, b - 1)
    if c < 48 or c > 57 then break end
    b = b - 1
  end
  local first, last = tonumber(string.match(member, '^%d+')), tonumber(string.sub(member, b))
  if first == nil or last == nil or first < 1 or last < first then
    error('sequence ranges: ' .. string.sub(member, 1, 40) .. ' does not begin and end with a sequence')
  end
  return first, last
end

-- overlaps reports whether the sequences x..y meet one of the ranges rg
-- (flat first, last, ascending, disjoint).
local function overlaps(rg, x, y)
  local lo, hi, found = 1, #rg / 2, 0
  while lo <= hi do
    local mid = math.floor((lo + hi) / 2)
    if rg[2 * mid - 1] <= y then
      found, lo = mid, mid + 1
    else
      hi = mid - 1
    end
  end
  return found > 0 and rg[2 * found] >= x
end

-- ttls returns the period between two TTL refreshes of a limit key's keys
-- (half of its longest retention plus a minute, unless given), and the TTL
-- a key of retention ret needs with that period: a key refreshed at R and
-- written last before R + period must outlive that write by ret and a
-- minute (event times up to ingest.max_skew ahead, clocks apart). The
-- daemon computes the same (limiter.StateTTL).
local function ttls(ret, period)
  period = period or math.floor((ret + 60000) / 2)
  return period, ret + period + 60000
end

-- expire gives key a TTL of ms: on a refresh, and NX (only if it has
-- none) when this call created it.
local function expire(key, ms, refresh, created)
  if refresh then
    redis.call('PEXPIRE', key, s(ms))
  elseif created then
    redis.call('PEXPIRE', key, s(ms), 'NX')
  end
end

-- append adds the messages of ARGV from index a: nmsgs, then per message
-- seq ("0": none) and nevents, then per event ts, weight, mask ("1" at
-- position i when rule i counts it), id ("" for none); or, when nevents is
-- negative, one argument packing -nevents events of ts and weight only,
-- counted by every rule: 9 bytes each, ts in 6 and weight in 3,
-- little-endian (packEvents in pack.go). When nmsgs itself is negative,
-- -nmsgs messages of that packed kind all come in one argument, each as
-- seq in 6 bytes (0: none), its event count in 3, then its events; then
-- the seen-set member they make when all are new, and their log entries
-- (packMessages, seenMember and packRuns in pack.go): when every message
-- is new, a rule whose log the entries follow in order, with none of their
-- events out of its retention or at or before its count boundary, takes
-- the entries as they are, without a step per event; the other rules
-- count the messages. The ranges form, ARGV[a] = 'r', sends no event of
-- its own: the seen-set member of the call's sequences, as ranges
-- (seenRanges in pack.go), and the log entries (packRuns); a rule that
-- cannot take the entries as they are counts their pairs. Its first and
-- last sequences are read on every call; the items between (hundreds of
-- bytes for a key held seconds), only when the seen set holds a member
-- scored at or above the first, which they could overlap. When one of
-- those sequences was applied before, append writes nothing and returns
-- nil: the daemon then sends the call again in a form with the events of
-- each message. A message already applied (its JetStream
-- sequence is in the seen set) and an event id already counted are
-- skipped; then each rule takes its events in event-time order and drops
-- those at or before T - retention.
-- Returns {accepted weight, duplicate messages, duplicate ids, dropped weight}.
local function append(cx, a)
  local now, nrules = cx.now, #cx.rules
  local byte = string.byte
  for _, r in ipairs(cx.rules) do r.agg, r.n, r.times, r.newest, r.sorted = {}, 0, {}, -math.huge, true end
  local dupmsgs, dupids = 0, 0
  local nmsgs, blob, member, runs, ranges, rfirst, rlast
  if ARGV[a] == 'r' then
    ranges = true
    member, runs = ARGV[a + 1], ARGV[a + 2]
    if runs == nil or runs == '' then error('sequence ranges without log entries') end
    rfirst, rlast = range_bounds(member)
  else
    nmsgs = tonumber(ARGV[a]); a = a + 1
    if nmsgs < 0 then
      nmsgs, blob, member, runs = -nmsgs, ARGV[a], ARGV[a + 1], ARGV[a + 2]
    end
  end
  -- The seen set records the messages applied to this key: one member per
  -- call, the sequences it applied joined by ',', scored by the highest.
  -- A message is new unless a member scored at or above its sequence lists
  -- it; messages mostly come in order, so that range is mostly empty and
  -- one ZRANGE and one ZADD serve a call of any number of messages.
  -- A sequence at or below the floor this key's seen set was trimmed to
  -- was acknowledged on NATS, so its events are stored: a copy that
  -- JetStream redelivered meanwhile is a duplicate, although the trim has
  -- dropped its record.
  -- Only live appends (which pass the ack floor) apply the rule: a rebuild
  -- (floor 0) must replay what a trim on the emptied Redis recorded in _s.
  local trimmed = cx.floor > 0 and num(cx.prev['_s'], 0) or 0
  local newseq = {} -- sequence (a number) -> new in this call
  local seqs = {}   -- the call's sequences, first occurrences, in order
  local heads = {}  -- per message: its sequence (0: none), then where its events start, then how many
  local lo, top, fresh_all = math.huge, 0, true
  local function see(n)
    if n == 0 then return end
    if n <= trimmed then
      newseq[n] = false
      fresh_all = false
    elseif newseq[n] == nil then
      newseq[n] = true
      seqs[#seqs + 1] = n
      if n < lo then lo = n end
      if n > top then top = n end
    else
      fresh_all = false -- twice in one call
    end
  end
  -- Read every message's head first: a malformed argument is refused
  -- before anything is written (a script error undoes nothing).
  if blob then
    local p, len = 1, #blob
    for m = 1, nmsgs do
      if p + 8 > len then error('packed messages: message ' .. s(m) .. ' of ' .. s(nmsgs) .. ' is cut short') end
      local q0, q1, q2, q3, q4, q5, c0, c1, c2 = byte(blob, p, p + 8)
      local n = q0 + 256 * (q1 + 256 * (q2 + 256 * (q3 + 256 * (q4 + 256 * q5))))
      local nev = c0 + 256 * (c1 + 256 * c2)
      see(n)
      heads[#heads + 1] = n
      heads[#heads + 1] = p + 9
      heads[#heads + 1] = nev
      p = p + 9 + 9 * nev
    end
    if p ~= len + 1 then error('packed messages: want ' .. s(p - 1) .. ' bytes, got ' .. s(len)) end
  elseif not ranges then
    runs = nil
    local p = a
    for _ = 1, nmsgs do
      local n = tonumber(ARGV[p])
      see(n)
      local nev = tonumber(ARGV[p + 1])
      heads[#heads + 1] = n
      heads[#heads + 1] = p + 2
      heads[#heads + 1] = nev
      if nev < 0 then
        if #ARGV[p + 2] ~= -9 * nev then error('packed events: want ' .. s(-9 * nev) .. ' bytes, got ' .. s(#ARGV[p + 2])) end
        p = p + 3
      else
        p = p + 2 + 4 * nev
      end
    end
  end
  local rlo, rhi, rtotal, rn, rp = read_runs(runs)
  if ranges then
    -- Nothing is written before this check: a call that must go again
    -- message by message leaves no trace.
    if rfirst <= trimmed then return nil end
    local known = redis.call('ZRANGEBYSCORE', cx.seen, s(rfirst), '+inf')
    if #known > 0 then
      local rg = read_ranges(member)
      for _, m in ipairs(known) do
        for item in string.gmatch(m, '[^,]+') do
          local x, y = seq_item(item)
          if x ~= nil and overlaps(rg, x, y) then return nil end
        end
      end
    end
    redis.call('ZADD', cx.seen, s(rlast), member)
  elseif #seqs > 0 then
    local known = redis.call('ZRANGEBYSCORE', cx.seen, s(lo), '+inf')
    local function applied(n)
      if newseq[n] then
        newseq[n] = false
        fresh_all = false
      end
    end
    for _, m in ipairs(known) do
      for item in string.gmatch(m, '[^,]+') do
        local x, y = seq_item(item)
        if x == y then
          applied(x)
        elseif x ~= nil then
          -- a range (the ranges form): the call's sequences inside it
          for _, n in ipairs(seqs) do
            if n >= x and n <= y then applied(n) end
          end
        end
      end
    end
    if not (member and fresh_all) then
      -- some sequences were applied before: the member lists the others
      local add = {}
      top = 0
      for _, n in ipairs(seqs) do
        if newseq[n] then
          add[#add + 1] = s(n)
          if n > top then top = n end
        end
      end
      member = #add > 0 and table.concat(add, ',') or nil
    end
    if member then redis.call('ZADD', cx.seen, s(top), member) end
  end
  local rules = cx.rules
  -- The rules that take the daemon's entries as they are (fast), and the
  -- others, which count the messages' events (slow).
  local fast, slow = {}, {}
  for i, r in ipairs(rules) do
    local ok = false
    if rlo ~= nil and fresh_all then
      local T = now
      if r.t ~= nil and r.t > T then T = r.t end
      if rhi > T then T = rhi end
      ok = (r.t == nil or rlo >= r.t) and rlo > T - r.ret and rlo > r.b
    end
    if ok then fast[i] = true else slow[#slow + 1] = r end
  end
  local nslow = #slow
  if ranges and nslow > 0 then
    -- the ranges form: the entries' pairs are the call's events, summed
    -- per millisecond
    local p = rp
    for _ = 1, rn do
      local m, len = u6(runs, p), u3(runs, p + 6)
      local t = {}
      body_pairs(string.sub(runs, p + 9, p + 8 + len), m, -math.huge, math.huge, t)
      for k = 1, #t, 2 do
        for i = 1, nslow do tally(slow[i], t[k], t[k + 1]) end
      end
      p = p + 9 + len
    end
  end
  for h = 1, #heads, 3 do
    local n, at, nev = heads[h], heads[h + 1], heads[h + 2]
    local fresh = true
    if n ~= 0 then
      fresh = newseq[n]
      -- a sequence twice in one call counts the first time only
      newseq[n] = false
      if not fresh then dupmsgs = dupmsgs + 1 end
    end
    if fresh and blob and nslow == 0 then
      -- every rule takes the entries: nothing to count here
    elseif fresh and (blob or nev < 0) then
      local b, first = blob, at
      if not blob then b, first, nev = ARGV[at], 1, -nev end
      for p = first, first + 9 * nev - 1, 9 do
        local t0, t1, t2, t3, t4, t5, w0, w1, w2 = byte(b, p, p + 8)
        local ts = t0 + 256 * (t1 + 256 * (t2 + 256 * (t3 + 256 * (t4 + 256 * t5))))
        local w = w0 + 256 * (w1 + 256 * w2)
        for i = 1, nslow do tally(slow[i], ts, w) end
      end
    elseif fresh then
      for e = 0, nev - 1 do
        local p = at + 4 * e
        local ts, w, mask, id = tonumber(ARGV[p]), tonumber(ARGV[p + 1]), ARGV[p + 2], ARGV[p + 3]
        local count = true
        if id ~= '' then
          if redis.call('ZSCORE', cx.ids, id) then
            count = false
            dupids = dupids + 1
          else
            redis.call('ZADD', cx.ids, s(ts), id)
            if not cx.prev['_i'] then
              put(cx, '_i', '1')
              cx.prev['_i'] = '1'
              cx.ids_new = true
            end
          end
        end
        if count then
          for i = 1, nrules do
            if byte(mask, i) == 49 then tally(rules[i], ts, w) end -- '1'
          end
        end
      end
    end
  end
  -- Sequences at or below the ack floor can never come back: they are
  -- dropped once the floor has moved SEEN_TRIM past the last trim.
  if cx.floor >= num(cx.prev['_s'], 0) + SEEN_TRIM and (ranges or nmsgs > 0) then
    redis.call('ZREMRANGEBYSCORE', cx.seen, '-inf', s(cx.floor))
    put(cx, '_s', s(cx.floor))
  end
  local accepted, dropped = 0, 0
  for i, r in ipairs(cx.rules) do
    r.had_log = r.t ~= nil -- its log has an entry (TTLs below)
    if fast[i] then
      -- every pair is in order, inside the retention and after b
      log_runs(r, runs, rp, rn)
      r.c = r.c + rtotal
      if r.m == nil or rlo < r.m then r.m = rlo end
      accepted = accepted + rtotal
      r.dirty = true
      cx.dirty = true
    elseif r.n > 0 then
      local times = r.times
      if not r.sorted then table.sort(times) end
      local T = now
      if r.t ~= nil and r.t > T then T = r.t end
      local took = 0
      local pend = {} -- in-order pairs, flat ts, weight, for the log
      for _, ts in ipairs(times) do
        local w = r.agg[ts]
        if ts > T then T = ts end
        if ts <= T - r.ret then
          dropped = dropped + w
        else
          if r.t == nil or ts >= r.t then
            pend[#pend + 1] = ts
            pend[#pend + 1] = w
          else
            add_late(r, ts, w)
          end
          if ts > r.b then r.c = r.c + w end
          if r.m == nil or ts < r.m then r.m = ts end
          accepted = accepted + w
          took = took + 1
        end
      end
      log_pairs(r, pend)
      if took > 0 then
        r.dirty = true
        cx.dirty = true
      end
    end
  end
  -- TTLs: every key of the limit key lives at least its retention plus a
  -- minute past the last call that wrote to it. Refreshing them costs a
  -- command per key, so it is done once per period (see ttls), not on
  -- every call: a key refreshed at R and written last before R + period
  -- expires at R + period + retention + 1 minute or later. A log that
  -- expired and was created again by a later XADD is refreshed by that
  -- call: its expiry came after the refresh was due.
  -- A key this call created between two refreshes (a rule's first log
  -- entry, a late set's or the id set's first member) gets its TTL now,
  -- NX: the next refresh may never come, if the limit key falls idle.
  if cx.dirty then
    local refresh = now >= num(cx.prev['_x'], 0)
    local period, ttl = ttls(cx.maxret)
    expire(cx.ids, ttl, refresh, cx.ids_new)
    expire(cx.seen, math.max(ttl, 900000), refresh, false)
    for _, r in ipairs(cx.rules) do
      local _, rttl = ttls(r.ret, period)
      expire(r.log, rttl, refresh, not r.had_log and r.t ~= nil)
      expire(r.late, rttl, refresh, r.late_added)
    end
    if refresh then
      cx.keep = ttl -- close() gives it to the state hash, once HSET made it
      put(cx, '_x', s(now + period))
    end
  end
  return {accepted, dupmsgs, dupids, dropped}
end

-- evaluate brings every rule up to date at now, trims what no rule can need
-- any more, and writes the deny and shadow flags.
-- Returns {changes, results}: changes {kind, allowed (0|1), until, rule,
-- source}...; results {name, count, limit, over (0|1), until, newest ts}...
-- one per rule, in order, limit after overrides.
local function evaluate(cx)
  local now = cx.now
  local ovr = {}
  if cx.prev['_o'] then ovr = read_overrides(cx.ovrk) end
  local results = {}
  local best = {deny = {u = 0, rule = '', reason = ''}, shadow = {u = 0, rule = '', reason = ''}}
  local maxT = now
  for _, r in ipairs(cx.rules) do
    local name, W, D = r.name, r.win, r.denyfor
    local L = effective_limit(ovr, name, r.limit)
    local t = r.t
    if t == nil then
      results[#results + 1] = {name, 0, L, 0, 0, 0}
    else
      local log, late = r.log, r.q > 0 and r.late
      local c, b = r.c, r.b
      local T = now
      if t > T then T = t end
      if T > maxT then maxT = T end
      -- window count over (T - W, T]
      local nb = T - W
      local moved = false
      if nb > b then -- (a rule whose events have all left: reset by open)
        c = c - range_sum(log, late, b, nb)
        b = nb
        moved = true
      end
      local untilr, over, reason = 0, 0, ''
      local trip, k, ck = r.f, r.k, r.ck
      if D > 0 then
        if r.m ~= nil then
          local lo, base
          if k ~= nil and r.m > k and (r.p == nil or k - W >= r.p) then
            lo, base = k, ck
          else
            lo = r.m - 1
            if trip ~= nil and trip > lo then lo = trip end
            if lo > t then lo = t end
            base = range_sum(log, late, lo - W, lo)
          end
          local x, cnt = trip_scan(log, late, lo, t, base, L, W, trip or -1)
          if x ~= nil then trip = x end
          k, ck = t, cnt
        end
        if trip ~= nil and trip + D > now then
          untilr, over = trip + D, 1
          reason = 'limit ' .. s(L) .. ' per ' .. s(W) .. 'ms reached at ' .. s(trip) .. ', blocked for ' .. s(D) .. 'ms'
        end
      elseif c >= L then
        local u = free_at(log, late, T - W, T, L, W)
        if u ~= nil and u > now then
          untilr, over = u, 1
          reason = 'limit ' .. s(L) .. ' per ' .. s(W) .. 'ms reached (count ' .. s(c) .. ')'
        end
      end
      -- Trim what no rule time can need any more, once the trim point has
      -- moved TRIM_STEP of the retention (at most a second): entries before
      -- it count for nothing, and a trim per call would cost a command.
      local P = T - r.ret
      if r.p == nil or P >= r.p + math.min(1000, math.floor(r.ret / TRIM_STEP)) then
        redis.call('XTRIM', log, 'MINID', '=', s(P + 1))
        if r.q > 0 then redis.call('ZREMRANGEBYSCORE', late, '-inf', s(P)) end
        r.p = P
        r.dirty = true
      end
      if moved or c ~= r.c then
        r.c, r.b = c, b
        r.dirty = true
      end
      if D > 0 and r.m ~= nil then
        r.k, r.ck = k, ck
        if trip ~= nil then r.f = trip end
      end
      if r.m ~= nil then
        r.m = nil
        r.dirty = true
      end
      results[#results + 1] = {name, c, L, over, untilr, t}
      local slot = best[r.action]
      if slot ~= nil and untilr > slot.u then
        slot.u, slot.rule, slot.reason = untilr, name, reason
      end
    end
  end
  if cx.prev['_i'] then
    redis.call('ZREMRANGEBYSCORE', cx.ids, '-inf', s(maxT - cx.maxret))
  end
  local changes = {}
  local c1 = write_deny(cx, best.deny)
  if c1 then changes[#changes + 1] = c1 end
  local c2 = write_shadow(cx, best.shadow)
  if c2 then changes[#changes + 1] = c2 end
  return {changes, results}
end
