-- Named timers inside the worker (paramsurvey's stats example): each pset
-- spins the CPU for 50 ms and sleeps for 50 ms, timing each part; the
-- samples of every pset are gathered by name in results.stats.timers.
--
--   psurvey examples/stats.lua
local psurvey = require('psurvey')

local function spin(system, seconds)
  local t = system.clock()
  while system.clock() < t + seconds do end -- spins, eating CPU
end

local results = psurvey.map(function(_, system)
  system.time('cpu loop', spin, system, 0.05)
  local t0 = system.clock()
  system.sleep(0.05) -- waits without the CPU
  system.record('sleep', system.clock() - t0)
end, psurvey.range(1, 8))

-- What vstats 1 prints at the end of the map, one line a timer:
--   timer 'cpu loop' of 8 samples: mean 50 ms, min 50 ms, p50 50 ms, ...
for _, name in ipairs({ 'cpu loop', 'sleep' }) do print(results.stats.timers[name]) end
