-- evaluate.lua: bring every rule of one limit key up to date and write its
-- deny and shadow flags (KEYS and ARGV: see window.lua).
local cx = open()
local res = evaluate(cx)
close(cx)
return res
