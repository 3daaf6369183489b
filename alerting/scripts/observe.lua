-- observe.lua: apply what the evaluations of one batch said about one
-- (rule, limit key), merged in time order by the caller.
--
-- ARGV[7..]: ex_t, ex_u, nr_t, nr_c, ul_t, uw_t, obs_t, count, limit, newest,
--            action, severity, window_ms, warn_at, service
--   ex_t  time of the last observation over the limit (0: none); ex_u the
--         latest flag end seen;
--   nr_t  time of the last observation at or over warn_at (0: none); nr_c the
--         latest time its window empties (newest event + window);
--   ul_t  first time under the limit after ex_t (0: none);
--   uw_t  first time under warn_at after nr_t (0: none).

local ex_t, ex_u, nr_t, nr_c, ul_t, uw_t, obs_t =
  tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]),
  tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])

if obs_t >= st.obs then
  st.obs, st.cnt, st.lim, st.newest = obs_t, tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
  st.act, st.sev, st.win, st.warn, st.svc = ARGV[17], ARGV[18], tonumber(ARGV[19]), ARGV[20], ARGV[21]
  if ex_t > 0 and ul_t == 0 then st['until'] = ex_u else st['until'] = 0 end
end

-- clear is when the key falls under a threshold given the last observation
-- over it (t, c) and the first one under it since (u).
local function clear(c, u)
  if u > 0 and u < c then return u end
  return c
end

local function open(state, clr)
  if clr + RA <= now then return false end -- already over: a stale observation
  local prev = st.s
  if prev ~= 'near' then
    prev = ''
    st.first, st.rn, st.peak, st.hx, st.hn = now, 0, 0, 0, 0
  end
  st.s, st.at, st.clr = state, now, clr
  if st.cnt > st.peak then st.peak = st.cnt end
  notify(state, prev, 0)
  return true
end

if st.s == 'exceeded' then
  if ex_t > 0 and ex_u > st.clr then st.clr = ex_u end
  if ul_t > 0 and ul_t > st.hx and ul_t < st.clr then st.clr = ul_t end
elseif ex_t > 0 then
  open('exceeded', clear(ex_u, ul_t)) -- from nothing, or escalating from near
elseif st.s == 'near' then
  if nr_t > 0 and nr_c > st.clr then st.clr = nr_c end
  if uw_t > 0 and uw_t > st.hn and uw_t < st.clr then st.clr = uw_t end
elseif nr_t > 0 then
  open('near', clear(nr_c, uw_t))
end
if active() then
  if ex_t > st.hx then st.hx = ex_t end
  if nr_t > st.hn then st.hn = nr_t end
  if st.cnt > st.peak then st.peak = st.cnt end
end
if #created == 0 then lifecycle() end
return finish()
