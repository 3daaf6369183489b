-- lease.lua: take or keep the lease KEYS[1] for ARGV[1] during ARGV[2] ms.
-- Returns 1 when ARGV[1] holds it.
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
