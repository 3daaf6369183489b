-- reschedule.lua: set the next check time of alerts in the index KEYS[1],
-- unless somebody changed it since it was read.
-- ARGV: triples member, score read, next (0: remove).
for i = 1, #ARGV, 3 do
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if cur and tonumber(cur) == tonumber(ARGV[i + 1]) then
    if tonumber(ARGV[i + 2]) == 0 then
      redis.call('ZREM', KEYS[1], ARGV[i])
    else
      redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    end
  end
end
return 0
