-- lib.lua: the alert lifecycle shared by observe.lua and check.lua.
-- scripts.go prepends it to each of them.
--
-- KEYS[1] is the alert state hash of one (rule, limit key). It holds the
-- lifecycle fields below and, for the last KEEP notifications, their
-- snapshot (field n<seq>), the outbox entry that owns their delivery
-- (n<seq>:own) and the sinks that have them (n<seq>:ok, ",a,b,").
--
-- ARGV[1..6]: now, resolve_after, repeat_interval, handoff grace (all ms),
-- history ttl (ms), keep.
-- Both scripts return {due, seq, state, seq, state...}: the Unix ms at which
-- the alert must be looked at again (0: never, it is over and handed off) and
-- the notifications to hand to the outbox now, each with the state it
-- announces ("" for a notification handed off again).

local A = KEYS[1]
local now, RA, RI, GRACE, TTL, KEEP =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local function s(x)
  return string.format('%d', x)
end

local NAMES = {'s', 'seq', 'ho', 'pat', 'first', 'at', 'rep', 'rn', 'clr', 'hx', 'hn',
  'cnt', 'lim', 'peak', 'until', 'newest', 'obs', 'act', 'sev', 'win', 'warn', 'svc'}
local STRINGS = {s = true, act = true, sev = true, warn = true, svc = true}

local st = {}
do
  local v = redis.call('HMGET', A, unpack(NAMES))
  for i, name in ipairs(NAMES) do
    if STRINGS[name] then
      st[name] = v[i] or ''
    else
      st[name] = tonumber(v[i]) or 0
    end
  end
end
local created = {}

local function active()
  return st.s == 'near' or st.s == 'exceeded'
end

-- notify records notification seq+1, a snapshot of the alert now.
local function notify(state, prev, rn)
  st.seq = st.seq + 1
  local snap = cjson.encode({
    seq = s(st.seq), state = state, prev = prev, repeat_n = s(rn), first = s(st.first), at = s(now),
    since = s(st.at), count = s(st.cnt), limit = s(st.lim), peak = s(st.peak), ['until'] = s(st['until']),
    newest = s(st.newest), action = st.act, severity = st.sev, window = s(st.win), warn_at = st.warn,
    service = st.svc,
  })
  local n = 'n' .. s(st.seq)
  redis.call('HSET', A, n, snap)
  local old = 'n' .. s(st.seq - KEEP)
  redis.call('HDEL', A, old, old .. ':own', old .. ':ok')
  st.rep, st.pat = now, now
  created[#created + 1] = {st.seq, state}
end

-- lifecycle resolves an alert that stayed under its threshold for
-- resolve_after and repeats one that has been active for repeat_interval.
local function lifecycle()
  if not active() then return end
  if st.clr > 0 and now >= st.clr + RA then
    local prev = st.s
    st.s, st.at = 'resolved', now
    notify('resolved', prev, 0)
  elseif now >= st.rep + RI then
    st.rn = st.rn + 1
    notify(st.s, st.s, st.rn)
  end
end

-- finish writes the state back and returns {due, seq...}.
local function finish()
  local out = {0}
  if #created > 0 then
    for _, c in ipairs(created) do
      out[#out + 1] = c[1]
      out[#out + 1] = c[2]
    end
  elseif st.ho < st.seq and now >= st.pat + GRACE then
    -- a replica died between deciding and handing off: hand off again
    local from = st.ho + 1
    if st.seq - from >= KEEP then from = st.seq - KEEP + 1 end
    for q = from, st.seq do
      out[#out + 1] = q
      out[#out + 1] = ''
    end
    st.pat = now
  end
  local due = 0
  if active() then
    due = st.rep + RI
    if st.clr > 0 and st.clr + RA < due then due = st.clr + RA end
  end
  if st.ho < st.seq and (due == 0 or st.pat + GRACE < due) then due = st.pat + GRACE end
  out[1] = due
  if st.seq == 0 then return out end -- nothing ever happened: leave no key
  local f = {}
  for _, name in ipairs(NAMES) do
    f[#f + 1] = name
    if STRINGS[name] then f[#f + 1] = st[name] else f[#f + 1] = s(st[name]) end
  end
  redis.call('HSET', A, unpack(f))
  if active() then
    redis.call('PERSIST', A)
  else
    redis.call('PEXPIRE', A, TTL)
  end
  return out
end
