-- examples/robust.lua: per-pset limits and retries on a model that
-- misbehaves. One pset hangs in a child process the first time it runs (a
-- stuck licence server, say); one needs more memory than the map allows.
-- The timeout stops the first and the retry function runs it again; the
-- memory limit stops the second and the retry function doubles its limit
-- until it fits. Every pset ends up done, and every failed attempt is in
-- the attempts table beside the results.
--
--   psurvey examples/robust.lua
--   sqlite3 .psurvey/robust.db 'select * from stage1_attempts'
local psurvey = require('psurvey')

-- A stand-in for a simulation: the mean of n random numbers, drawn from
-- the pset's own seed so that any worker gets the same answer.
local function model(pset, system)
  if pset.flaky and system.attempt == 1 then os.execute('sleep 30') end
  math.randomseed(system.seed)
  local cells = {}
  for i = 1, pset.cells do cells[i] = math.random() end
  local sum = 0
  for i = 1, #cells do sum = sum + cells[i] end
  return { mean = sum / #cells }
end

local psets = {
  { cells = 1000, flaky = false },
  { cells = 10000, flaky = true },
  { cells = 100000, flaky = false },
  -- Per-pset options live under _psurvey; they are not a column.
  { cells = 400000, flaky = false, _psurvey = { name = 'the big one' } },
}

local results = psurvey.map(model, psets, {
  timeout = 2, -- seconds of wall time per pset
  memory = 4,  -- MiB of Lua heap per pset
  seed = 42,   -- the survey's seed: each pset's system.seed derives from it
  -- Called for every failed attempt: nil gives up, a table of per-pset
  -- options (maybe empty) tries again with those changed.
  retries = function(pset, failure, attempt)
    if failure.kind == 'memory' and attempt < 4 then return { memory = failure.memory * 2 } end
    if failure.kind == 'timeout' and attempt < 3 then return {} end
  end,
})

print(results)
for _, a in ipairs(results:attempts()) do
  print(('pset #%d, attempt %d: %s (%s)'):format(a._index, a.attempt, a.kind, a.message))
end
print(('%d of %d psets done, %d attempts retried'):format(#results, results.progress.total,
  results.progress.retried))
