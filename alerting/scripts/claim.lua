-- claim.lua: take notification ARGV[1] of alert KEYS[1] for delivery by
-- outbox entry ARGV[2].
-- Returns {0} when the notification is gone (older than the history),
-- {2} when another outbox entry owns it (a duplicate hand-off), or
-- {1, snapshot, sinks done ",a,b,"}.
local n = 'n' .. ARGV[1]
local snap = redis.call('HGET', KEYS[1], n)
if not snap then return {0} end
local own = redis.call('HGET', KEYS[1], n .. ':own')
if not own then
  redis.call('HSET', KEYS[1], n .. ':own', ARGV[2])
elseif own ~= ARGV[2] then
  return {2}
end
return {1, snap, redis.call('HGET', KEYS[1], n .. ':ok') or ''}
