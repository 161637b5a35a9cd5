-- examples/greedy.lua: an iterative search that calls psurvey.map() once
-- per round. Each round evaluates a 5 x 5 grid of psets centred on the best
-- point so far, keeps the best, and halves the grid's step for the next
-- round. Nothing is random, so every run prints the same answer.
--
-- The "expensive model" here is a tilted bowl whose lowest point is at
-- (1.3, -0.4); in a real survey the worker would run a simulation.
local psurvey = require('psurvey')

-- The model's constants are the same for every pset: they travel in the
-- map() option `user` and arrive as the worker's third argument.
local model = { x0 = 1.3, y0 = -0.4, stretch = 3, tilt = 1 }

local function cost_worker(pset, system, user)
  local u, v = pset.x - user.x0, pset.y - user.y0
  return { cost = u * u + user.stretch * v * v + user.tilt * u * v }
end

-- The psets of one round: the centre plus two steps each way in x and y.
local function grid_around(x, y, step)
  local psets = {}
  for i = -2, 2 do
    for j = -2, 2 do
      psets[#psets + 1] = { x = x + i * step, y = y + j * step }
    end
  end
  return psets
end

local best = { x = 0.0, y = 0.0, cost = math.huge }
local step = 0.5
for round = 1, 8 do
  -- Each round is its own table in .psurvey/greedy.db: round1, round2, ...
  -- verbose = 0 and vstats = 0 keep psurvey's own lines for each round quiet.
  local results = psurvey.map(cost_worker, grid_around(best.x, best.y, step),
    { name = 'round' .. round, user = model, verbose = 0, vstats = 0 })
  for row in results:rows() do
    if row.cost < best.cost then best = { x = row.x, y = row.y, cost = row.cost } end
  end
  print(('round %d: step %-10g %d psets, best x = %-8.5f y = %-8.5f cost = %.3g'):format(
    round, step, #results, best.x, best.y, best.cost))
  step = step / 2
end

print(('\nanswer: x = %.4f, y = %.4f (the true minimum is at x = %g, y = %g)'):format(
  best.x, best.y, model.x0, model.y0))
