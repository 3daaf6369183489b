-- check.lua: the resolver's look at one alert whose check time came: resolve
-- it, repeat it, or hand off a notification a dead replica left behind.
if #created == 0 then lifecycle() end
return finish()
