-- examples/readme.lua: five psets that each sleep 0.3 s, run in parallel,
-- printed as a table. Run it with `psurvey examples/readme.lua` or, with
-- psurvey installed as a Lua module, `lua5.4 examples/readme.lua`.
local psurvey = require('psurvey')

local function sleep_worker(pset, system, user)
  os.execute(('sleep %g'):format(pset.duration))
  return { slept = pset.duration, worker = system.worker }
end

psurvey.init({ backend = 'process' })
local psets = psurvey.product({ duration = { 0.3 }, id = psurvey.range(1, 5) })
local results = psurvey.map(sleep_worker, psets, { verbose = 2 })

print(results)
print(('%d ok, %d failed; %s'):format(#results, #results.missing, results.stats))
