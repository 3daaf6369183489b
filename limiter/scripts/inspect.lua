-- inspect.lua: read-only view of one limit key, for GET /v1/check and
-- `ratemon check`. Writes nothing.
--
-- KEYS[1] state hash, KEYS[2] deny flag, KEYS[3] shadow flag, KEYS[4] overrides,
-- then for each rule i of the key's group: log_i, late_i.
-- ARGV: now, nrules, then per rule: name, limit, window_ms, deny_for_ms.
-- Returns {deny_pttl, deny_value, shadow_pttl, shadow_value, results}:
--   results: {name, count, limit, remaining, reset_ms, until}... one per rule.

local now = tonumber(ARGV[1])
local nrules = tonumber(ARGV[2])
local st = KEYS[1]
local ovr = read_overrides(KEYS[4])

local results = {}
local a = 3
for i = 1, nrules do
  local name, L, W, D = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  L = effective_limit(ovr, name, L)
  local log, late = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local r = {}
  load_rule(r, redis.call('HGET', st, name))
  local t = r.t
  local count, untilr = 0, 0
  local T = now
  if t ~= nil then
    local c, b, trip = r.c, r.b, r.f
    if t > T then T = t end
    local nb = T - W
    if nb >= t then
      c = 0 -- every event counted has left the window (window.lua evaluate)
    elseif nb > b then
      c = c - range_sum(log, late, b, nb)
    end
    count = c
    if D > 0 then
      if trip ~= nil and trip + D > now then untilr = trip + D end
    elseif c >= L then
      untilr = free_at(log, late, T - W, T, L, W) or 0
      if untilr <= now then untilr = 0 end
    end
  end
  local remaining = L - count
  if remaining < 0 then remaining = 0 end
  if untilr > 0 then remaining = 0 end
  local reset = 0
  if untilr > 0 then
    reset = untilr - now
  elseif count > 0 then
    local cur = cursor(log, late, T - W, T, true)
    local oldest = cur.peek()
    if oldest ~= nil then reset = oldest + W - now end
  end
  if reset < 0 then reset = 0 end
  results[#results + 1] = {name, count, L, remaining, reset, untilr}
end
local dv = redis.call('GET', KEYS[2]) or ''
local sv = redis.call('GET', KEYS[3]) or ''
return {redis.call('PTTL', KEYS[2]), dv, redis.call('PTTL', KEYS[3]), sv, results}
