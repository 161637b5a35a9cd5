--- psurvey.results: what map() returns. A view on the stage's table in
--- SQLite: rows are read when iterated, so memory does not grow with the
--- number of rows.
---
---   #results                 psets that succeeded
---   results:rows()           iterator over row tables (pset and result keys), in pset order
---   results:columns()        the column names
---   results:column(name)     one column as an array (nil where absent; .n is the count)
---   results.missing          the psets that failed, same interface; rows carry _exception, _traceback
---   results:attempts()       every failed attempt (retried or final): kind, message, worker, cpu...
---   results:output(index)    what pset #index wrote: stdout, stderr (strings, '' for none), of
---                            its last attempt (or of attempt n: results:output(index, n))
---   results.progress         total, active, finished (psets with a result), failures (psets that
---                            failed), exceptions, on_result_errors; tostring as paramsurvey's
---   results.stats            count, mean, min, max, p25 .. p99 of pset run time (tostring prints it)
---   results.stats.timers     the worker's named timers (system.record, system.time), by name:
---                            name, count, mean, min, max, p25 .. p99 of their samples in
---                            seconds, as for the run time (tostring prints it). Samples come from
---                            every attempt that returned to the driver, a failed one's too (what
---                            it recorded before it failed); an attempt lost with its worker's
---                            death takes its samples with it
local format = require('psurvey.format')

local M = {}

local View = {}
View.__index = View
View.__name = 'psurvey.results' -- psurvey.product takes results as an axis

--- Iterates over the rows, in pset order: for row in results:rows() do ... end
function View:rows()
  local cursor = self._store:cursor(self.name, self._view)
  return function() return cursor:next() end
end

--- The column names: pset keys, then result keys, in the order they appeared.
function View:columns()
  return self._store:cursor(self.name, self._view):columns()
end

--- One column's values in row order; nil where a row has no such key.
function View:column(name)
  local found = false
  for _, c in ipairs(self:columns()) do found = found or c == name end
  if not found then error(("no column '%s' in %s"):format(tostring(name), self.name), 2) end
  local out, n = {}, 0
  for row in self:rows() do
    n = n + 1
    out[n] = row[name]
  end
  out.n = n
  return out
end

--- The psets of the rows, as they ran (their pset keys, without results
--- or psurvey's '_' keys), for map() again: results.missing:psets().
function View:psets()
  local out = {}
  local cursor = self._store:cursor(self.name, self._view, 0, 'psets')
  for row in function() return cursor:next() end do out[#out + 1] = row end
  return out
end

--- Every failed attempt at a pset of this stage, in the order they
--- happened: { _index, attempt, kind, message, traceback, worker, host,
--- start, duration, cpu, memory, limit_timeout, limit_memory }.
function View:attempts()
  return self._store:attempts(self.name)
end

--- What pset `index` wrote to stdout and to stderr, as kept (option
--- output): two strings, '' when it wrote nothing. Its last attempt's,
--- or attempt `attempt`'s (a failed attempt that was retried).
---@param index integer
---@param attempt? integer
---@return string stdout
---@return string stderr
function View:output(index, attempt)
  if math.type(index) ~= 'integer' then
    error(("bad argument #1 to 'output' (integer expected, got %s)"):format(math.type(index) or type(index)), 2)
  end
  if attempt == nil then
    local row = self._store:cursor(self.name, 'all', index):next()
    if not row then error(("no pset #%d in %s"):format(index, self.name), 2) end
    attempt = row._attempt or 1
  elseif math.type(attempt) ~= 'integer' then
    error(("bad argument #2 to 'output' (integer expected, got %s)"):format(math.type(attempt) or type(attempt)), 2)
  end
  local out, err = self._store:output(self.name, index, attempt)
  return out or '', err or ''
end

function View:__len()
  return self._count
end

function View:__tostring()
  if self._count == 0 then return ('(%s: no rows)'):format(self.name) end
  return format.table(self:columns(), self:rows(), 20, self._count)
end

local Stats = {}
Stats.__index = Stats
Stats.__tostring = function(s)
  if s.count == 0 then return 'no psets ran' end
  return ('run time of %d psets: mean %s, min %s, p50 %s, p90 %s, p99 %s, max %s'):format(
    s.count, format.seconds(s.mean), format.seconds(s.min), format.seconds(s.p50),
    format.seconds(s.p90), format.seconds(s.p99), format.seconds(s.max))
end

local Timer = {}
Timer.__index = Timer
Timer.__tostring = function(t)
  return ("timer '%s' of %d samples: mean %s, min %s, p50 %s, p90 %s, p99 %s, max %s"):format(
    t.name, t.count, format.seconds(t.mean), format.seconds(t.min), format.seconds(t.p50),
    format.seconds(t.p90), format.seconds(t.p99), format.seconds(t.max))
end

local Progress = {}
Progress.__tostring = function(p)
  return ('total: %d, active: %d, finished: %d, failures: %d, exceptions: %d'):format(
    p.total, p.active, p.finished, p.failures, p.exceptions)
end

local function view(store, name, kind, count)
  return setmetatable({ _store = store, _view = kind, _count = count, name = name }, View)
end

-- A store with no rows, for the results of a dry run (nothing ran).
local nothing = {
  cursor = function()
    return { next = function() return nil end, columns = function() return {} end }
  end,
  attempts = function() return {} end,
  output = function() return nil end,
}

--- What a dry run's map() returns: no rows, and progress.total = total.
function M.planned(name, total)
  return M.new(nothing, name, { total = total, ok = 0, failed = 0, exceptions = 0, stats = { count = 0 } },
    nil, nil)
end

--- The results of stage `name` after a run summarised by res.
function M.new(store, name, res, dbpath, logpath)
  local r = view(store, name, 'ok', res.ok)
  r.missing = view(store, name, 'missing', res.failed)
  r.progress = setmetatable({
    total = res.total, active = 0, finished = res.ok,
    -- As paramsurvey, an error of on_result (its out_func) is an exception
    -- too; failures stay the psets that failed, so finished + failures is
    -- the total.
    failures = res.failed, exceptions = res.exceptions + (res.on_result_errors or 0),
    resumed = res.resumed or 0, retried = res.retried or 0, on_result_errors = res.on_result_errors or 0,
  }, Progress)
  r.stats = setmetatable(res.stats, Stats)
  r.stats.timers = r.stats.timers or {}
  for timer, t in pairs(r.stats.timers) do
    t.name = timer
    setmetatable(t, Timer)
  end
  r.db = dbpath
  r.log = logpath
  r.seconds = res.seconds
  return r
end

return M
