-- examples/spring.lua: a mass on a damped spring, pulled 1 m and let go,
-- swept over its stiffness k and damping c. Each pset integrates the
-- motion until the mass settles within 1 cm of rest and reports how long
-- that took and how far it overshot. Some psets fail, as real ones do:
-- no damping never settles, and negative damping is refused. The README's
-- "Looking at results" reads this survey's database.
--
--   psurvey examples/spring.lua [-- DT]     DT: the time step, 0.001 s by default
--   psurvey results spring.lua --summary
local psurvey = require('psurvey')

local dt = tonumber(arg and arg[1]) or 0.001

local function settle(p)
  if p.c < 0 then error(('damping c = %g is negative: the spring would gain energy'):format(p.c)) end
  local x, v, t, overshoot = 1.0, 0.0, 0.0, 0.0
  local still = 0 -- how long the mass has stayed within 1 cm
  while still < 1 do
    v = v + (-p.k * x - p.c * v) * dt
    x = x + v * dt
    t = t + dt
    overshoot = math.max(overshoot, -x)
    still = math.abs(x) < 0.01 and still + dt or 0
    if t > 60 then error('did not settle in 60 s') end
  end
  -- Rounded to the millisecond and the millimetre.
  return { settle = math.floor((t - 1) * 1000 + 0.5) / 1000, overshoot = math.floor(overshoot * 1000 + 0.5) / 1000 }
end

local results = psurvey.map(settle, psurvey.product({ k = { 1, 4, 16 }, c = { -0.5, 0, 0.5, 1, 2, 4, 8 } }),
  { name = 'spring' })
local best = results:best('settle')
print(('fastest to settle: k = %g, c = %g, in %.3f s'):format(best.k, best.c, best.settle))
