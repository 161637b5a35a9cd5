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
---   results:where(expr)      the rows for which expr, an SQL expression over the columns, is
---                            true ("x > 2 AND _duration < 1"): another view, read lazily
---   results:sorted(col [, descending])   the rows ordered by col (then by pset order)
---   results:best(col [, 'min' | 'max'])  the row with the smallest (largest) col, or nil
---   results:group(key)       per value of key: { [key] = value, count = rows, mean = { col = mean
---                            of each numeric result column } }, in key order
---                            (where, sorted, best and group run in SQLite: a database file)
---   psurvey's columns _index, _duration, _cpu, _memory, _worker, _host, _start, _end, _attempt
---   and _run can be read with column(), sorted by, filtered on and are in best()'s row
---   results.progress         total, active, finished (psets with a result), failures (psets that
---                            failed), exceptions, on_result_errors; tostring as paramsurvey's
---   results.stats            count, mean, min, max, p25 .. p99 of pset run time (tostring prints it);
---                            of the stored rows for psurvey.open() (computed when first read)
---   results.stats.timers     the worker's named timers (system.record, system.time), by name:
---                            name, count, mean, min, max, p25 .. p99 of their samples in
---                            seconds, as for the run time (tostring prints it). Samples come from
---                            every attempt that returned to the driver, a failed one's too (what
---                            it recorded before it failed); an attempt lost with its worker's
---                            death takes its samples with it
local format = require('psurvey.format')
local summary = require('psurvey.summary')

local M = {}

local View = {}
View.__index = View
View.__name = 'psurvey.results' -- psurvey.product takes results as an axis

--- Iterates over the rows, in pset order: for row in results:rows() do ... end
function View:rows()
  local cursor = self._store:cursor(self.name, self._view, self._q)
  return function() return cursor:next() end
end

--- The column names: pset keys, then result keys, in the order they appeared.
function View:columns()
  return self._store:cursor(self.name, self._view, self._q):columns()
end

-- psurvey's columns a user may read beside the keys (stage.h's meta columns).
local META = { _index = true, _status = true, _exception = true, _traceback = true, _attempt = true,
  _worker = true, _host = true, _start = true, _end = true, _duration = true, _cpu = true, _memory = true,
  _name = true, _hash = true, _run = true }

local function has_column(self, name)
  if META[name] then return true end
  for _, c in ipairs(self:columns()) do
    if c == name then return true end
  end
  return false
end

local function check_column(self, name, fn, level)
  if type(name) ~= 'string' then
    error(("bad argument #1 to '%s' (column name expected, got %s)"):format(fn, type(name)), level + 1)
  end
  if not has_column(self, name) then
    error(("%s: no column '%s' in %s (columns: %s)"):format(fn, name, self.name, table.concat(self:columns(), ', ')),
      level + 1)
  end
end

local function in_file(self, fn, level)
  if self._store.path == nil or self._store:path() == ':memory:' then
    error(("%s: results kept in memory cannot be queried with SQL: give map() a database file (option db)")
      :format(fn), level + 1)
  end
end

-- This view's query with changes: a new table, the view's left alone.
local function query(self, changes)
  local q = {}
  for k, v in pairs(self._q or {}) do q[k] = v end
  for k, v in pairs(changes) do q[k] = v end
  return q
end

local function derived(self, q)
  return setmetatable({ _store = self._store, _view = self._view, _q = q, name = self.name,
    _count = (q.where == (self._q or {}).where) and self._count or nil }, View)
end

--- One column's values in row order; nil where a row has no such key.
--- psurvey's columns (_duration, _worker...) too.
function View:column(name)
  if not (type(name) == 'string' and has_column(self, name)) then
    error(("no column '%s' in %s"):format(tostring(name), self.name), 2)
  end
  local out, n = {}, 0
  local cursor
  if self._store:path() == ':memory:' then
    -- A stage in memory reads whole rows: psurvey's columns are in the
    -- 'all' view, whose rows this view's status picks.
    local all = self._store:cursor(self.name, META[name] and 'all' or self._view)
    local want = self._view
    cursor = { next = function()
      while true do
        local row = all:next()
        if row == nil or not META[name] or want == 'all' or (row._status == 'ok') == (want == 'ok') then
          return row
        end
      end
    end }
  else
    cursor = self._store:cursor(self.name, self._view, query(self, { meta = META[name], columns = { name } }))
  end
  for row in function() return cursor:next() end do
    n = n + 1
    out[n] = row[name]
  end
  out.n = n
  return out
end

--- The rows for which `expr` is true: an SQL expression over the columns
--- (pset keys, result keys and psurvey's), checked now: it may only read.
function View:where(expr)
  if type(expr) ~= 'string' then
    error(("bad argument #1 to 'where' (SQL expression expected, got %s)"):format(type(expr)), 2)
  end
  in_file(self, 'where', 2)
  local old = self._q and self._q.where
  local q = query(self, { where = old and ('(' .. old .. ') AND (' .. expr .. ')') or expr })
  -- Opening a cursor prepares the statement: a bad expression fails here,
  -- not at the first row read.
  local ok, err = pcall(self._store.cursor, self._store, self.name, self._view, { where = expr, limit = 1 })
  if not ok then error(('where: %s'):format(tostring(err):gsub('^[^:]*:%d+: ', '')), 2) end
  return derived(self, q)
end

--- The rows ordered by `col`, ascending unless `descending`; rows with the
--- same value keep pset order.
function View:sorted(col, descending)
  check_column(self, col, 'sorted', 2)
  in_file(self, 'sorted', 2)
  local order = { (descending and '-' or '') .. col }
  for _, o in ipairs((self._q or {}).order or {}) do order[#order + 1] = o end
  return derived(self, query(self, { order = order }))
end

--- The row whose `col` is smallest ('min', the default) or largest
--- ('max'), with psurvey's columns; nil when no row has a value there.
function View:best(col, how)
  check_column(self, col, 'best', 2)
  in_file(self, 'best', 2)
  if how ~= nil and how ~= 'min' and how ~= 'max' then
    error(("bad argument #2 to 'best' ('min' or 'max' expected, got %s)"):format(tostring(how)), 2)
  end
  local where = summary.ident(col) .. ' IS NOT NULL'
  local old = self._q and self._q.where
  local q = query(self, { where = old and ('(' .. old .. ') AND ' .. where) or where,
    order = { (how == 'max' and '-' or '') .. col }, limit = 1, meta = true })
  return self._store:cursor(self.name, self._view, q):next()
end

--- Per value of `key` (a column), in order of value: { [key] = value,
--- count = rows, mean = { col = mean } } over the numeric result columns.
function View:group(key)
  check_column(self, key, 'group', 2)
  in_file(self, 'group', 2)
  local means, names, boolean = {}, {}, false
  for _, c in ipairs(summary.columns(self._store, self.name)) do
    if c.name == key then boolean = c.types == 'boolean' end
    if c.role == 'result' and c.numeric and c.name ~= key then
      means[#means + 1] = ('avg(%s) AS %s'):format(summary.ident(c.name), summary.ident('mean.' .. c.name))
      names[#names + 1] = c.name
    end
  end
  local conds = { self._view == 'ok' and "_status = 'ok'" or self._view == 'missing' and "_status <> 'ok'" or nil }
  if self._q and self._q.where then conds[#conds + 1] = '(\n' .. self._q.where .. '\n)' end
  local sql = ('SELECT %s AS "group", count(*) AS "count"%s FROM %s%s GROUP BY 1 ORDER BY 1'):format(
    summary.ident(key), #means > 0 and (', ' .. table.concat(means, ', ')) or '', summary.ident(self.name),
    #conds > 0 and (' WHERE ' .. table.concat(conds, ' AND ')) or '')
  local out = {}
  local cursor = self._store:query(sql)
  for r in function() return cursor:next() end do
    local value = r.group
    if boolean and value ~= nil then value = value == 1 end -- stored 0 or 1 (celltypes.h)
    local g = { [key] = value, count = r.count, mean = {} }
    for _, n in ipairs(names) do g.mean[n] = r['mean.' .. n] end
    out[#out + 1] = g
  end
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
  if self._count == nil then self._count = self._store:count(self.name, self._view, self._q) end
  return self._count
end

function View:__tostring()
  if #self == 0 then return ('(%s: no rows)'):format(self.name) end
  return format.table(self:columns(), self:rows(), 20, #self)
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
  path = function() return nil end,
  cursor = function()
    return { next = function() return nil end, columns = function() return {} end }
  end,
  attempts = function() return {} end,
  output = function() return nil end,
}

--- The results of stage `info` (store:stage_info's record) as stored,
--- for psurvey.open(): its counts as last committed (a stage being run by
--- another program shows how far it has got), its status, and run-time
--- statistics of its stored rows, measured when first read.
function M.stored(store, info, dbpath)
  local r = M.new(store, info.name, { total = info.total, ok = info.ok or 0, failed = info.failed or 0,
    exceptions = 0, stats = {} }, dbpath, nil)
  r.status = info.status
  r.stats = setmetatable({}, { __index = function(t, k)
    if Stats[k] then return Stats[k] end
    local measured = summary.runtime(store, info.name)
    measured.timers = {}
    setmetatable(t, Stats)
    for key, v in pairs(measured) do rawset(t, key, v) end
    return rawget(t, k)
  end, __tostring = function(t) return Stats.__tostring(t) end })
  return r
end

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
