-- examples/refine.lua: a survey in two stages. Stage 1 ('coarse') maps
-- a cheap function over a grid; stage 2 ('fine') starts from the 5 best grid
-- points of stage 1 and refines each one with a local search. Each map() call
-- is its own table in .psurvey/refine.db.
--
-- The function is Himmelblau's, which has four minima (all with value 0):
-- a coarse grid finds the basins, the fine stage finds the minima.
local psurvey = require('psurvey')

-- A plain local function. Workers may call it because it is an upvalue of
-- the worker functions below: psurvey ships upvalues along with the worker.
local function himmelblau(x, y)
  return (x * x + y - 11) ^ 2 + (x + y * y - 7) ^ 2
end

-- Stage 1 worker: one function value per grid point.
local function evaluate(pset, system, user)
  return { f = himmelblau(pset.x, pset.y) }
end

-- Stage 2 worker: a compass search from (x, y). Try a step in each of the
-- four directions; move if that is better, otherwise halve the step. The
-- starting step and the tolerance come in `user`, the same for every pset.
local function refine(pset, system, user)
  local x, y, step = pset.x, pset.y, user.step
  local f, evaluations = himmelblau(x, y), 1
  while step > user.tolerance do
    local moved = false
    for _, d in ipairs({ { 1, 0 }, { -1, 0 }, { 0, 1 }, { 0, -1 } }) do
      local nx, ny = x + d[1] * step, y + d[2] * step
      local nf = himmelblau(nx, ny)
      evaluations = evaluations + 1
      if nf < f then
        x, y, f, moved = nx, ny, nf, true
        break
      end
    end
    if not moved then step = step / 2 end
  end
  return { x_min = x, y_min = y, f_min = f, evaluations = evaluations }
end

-- Stage 1: a 21 x 21 grid over [-5, 5] x [-5, 5], 441 psets.
local grid = psurvey.product({ x = psurvey.range(-5, 5, 0.5), y = psurvey.range(-5, 5, 0.5) })
local coarse = psurvey.map(evaluate, grid, { name = 'coarse' })
print(('coarse: %d grid points evaluated, %d failed'):format(#coarse, #coarse.missing))

-- Results are read from SQLite as they are iterated. Keep the rows in a Lua
-- table (441 is small), sort them by f and take the 5 best.
local rows = {}
for row in coarse:rows() do rows[#rows + 1] = row end
table.sort(rows, function(a, b) return a.f < b.f end)

-- Stage 2's psets are plain tables built from stage 1's rows.
local starts = {}
for i = 1, 5 do
  local r = rows[i]
  print(('  best #%d: f(%5.1f, %5.1f) = %.3f'):format(i, r.x, r.y, r.f))
  starts[i] = { rank = i, x = r.x, y = r.y }
end

local fine = psurvey.map(refine, starts,
  { name = 'fine', user = { step = 0.25, tolerance = 1e-7 } })
print(('\nfine: %d starting points refined'):format(#fine))
print(fine)
