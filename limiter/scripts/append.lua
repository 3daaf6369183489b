-- append.lua: add one ingest batch's events to the window logs of one limit
-- key (KEYS and ARGV: see window.lua; the messages follow the rules).
local cx, a = open()
local stats = append(cx, a)
if stats == nil then return redis.error_reply(RESEND) end
close(cx)
return stats
