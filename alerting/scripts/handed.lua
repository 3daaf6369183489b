-- handed.lua: notifications up to ARGV[1] of alert KEYS[1] are in the outbox.
local ho = tonumber(redis.call('HGET', KEYS[1], 'ho') or '0')
if tonumber(ARGV[1]) > ho and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'ho', ARGV[1])
end
return 0
