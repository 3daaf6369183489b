-- ingest.lua: append one ingest batch's events to a limit key and evaluate
-- it in the same call (KEYS and ARGV: see window.lua; the messages follow
-- the rules). Returns {append stats, changes, results}.
local cx, a = open()
local stats = append(cx, a)
if stats == nil then return redis.error_reply(RESEND) end
local res = evaluate(cx)
close(cx)
return {stats, res[1], res[2]}
