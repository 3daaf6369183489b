-- done.lua: record that sink ARGV[2] has notification ARGV[1] of alert
-- KEYS[1], so that a replica taking over its delivery skips that sink.
local n = 'n' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], n) == 0 then return 0 end
local ok = redis.call('HGET', KEYS[1], n .. ':ok') or ','
if not string.find(ok, ',' .. ARGV[2] .. ',', 1, true) then
  redis.call('HSET', KEYS[1], n .. ':ok', ok .. ARGV[2] .. ',')
end
return 1
