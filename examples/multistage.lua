-- examples/multistage.lua: paramsurvey's multistage example, ported. Stage
-- 1 computes something expensive for each (a, b); stage 2 crosses every
-- row of stage 1 (its pset keys a, b and its result key `expensive`) with
-- each c, and uses the precomputed value. Each map() call is its own table
-- in .psurvey/multistage.db.
local psurvey = require('psurvey')

local function first_stage(pset, system, user)
  -- compute something expensive related to a and b
  return { expensive = pset.a + pset.b }
end

local function second_stage(pset, system, user)
  -- compute something using the precomputed `expensive` and c
  return { final = pset.expensive + pset.c }
end

psurvey.init({ backend = 'process' })

local psets = psurvey.product({ a = { 1, 2, 3 }, b = { 4, 5, 6 } })
local results = psurvey.map(first_stage, psets, { name = 'first' })

-- paramsurvey's key line: params.product(results, {'c': [7, 8, 9]})
psets = psurvey.product(results, { c = { 7, 8, 9 } })
results = psurvey.map(second_stage, psets, { name = 'second' })

print(results)
print(('%d psets: %s'):format(#psets, tostring(results.progress)))
