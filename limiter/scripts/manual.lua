-- manual.lua: a person blocks, unblocks, allows or un-allows one limit key,
-- and the deny flag follows at once (allow > manual block > automatic deny).
--
-- KEYS and the head of ARGV: see window.lua, with no rules; then ARGV:
-- op ("block"|"unblock"|"allow"|"unallow"), author, reason, until.
-- Returns {change or {}, entry json or ""}: the flag change, and the entry
-- as stored after the operation (block and allow; overlapping entries keep
-- the later end, so a shorter one never ends an entry early).

local cx, a = open()
local now, lk = cx.now, cx.lk
local op, author, reason, untilv = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])

local function store(key)
  local created = now
  local prev = redis.call('GET', key)
  if prev then
    local e = cjson.decode(prev)
    if e['until'] > untilv then untilv = e['until'] end
    created = e.created or now
  end
  local j = '{"key":' .. cjson.encode(lk) .. ',"author":' .. cjson.encode(author) .. ',"reason":' ..
    cjson.encode(reason) .. ',"created":' .. s(created) .. ',"updated":' .. s(now) .. ',"until":' .. s(untilv) .. '}'
  redis.call('SET', key, j, 'PXAT', s(untilv))
  return j
end

local entry = ''
if op == 'block' then
  entry = store(cx.blockk)
elseif op == 'allow' then
  entry = store(cx.allowk)
elseif op == 'unblock' then
  redis.call('DEL', cx.blockk)
elseif op == 'unallow' then
  redis.call('DEL', cx.allowk)
else
  return redis.error_reply('unknown op ' .. op)
end
-- Manual entries may exist from now on: evaluations read them.
put(cx, '_m', '1')
cx.prev['_m'] = '1'

local auto = {u = num(cx.prev['_au'], 0), rule = cx.prev['_ar'] or '', reason = cx.prev['_ax'] or ''}
local change = write_deny(cx, auto)
close(cx)
-- The state (with its _m marker) must outlive the entry (keep_state never
-- shortens it, and keeps it persistent while an override or entry is).
keep_state(cx, math.max(untilv - now, 0) + 60000)
return {change or {}, entry}
