--- psurvey: run a worker function once per parameter set, in parallel, and
--- keep every result and every failure in SQLite.
---
---   local psurvey = require('psurvey')
---   local results = psurvey.map(worker, psurvey.product{ a = {1, 2}, b = {'x', 'y'} })
local core = require('psurvey.core')
local options = require('psurvey.options')
local results = require('psurvey.results')
local format = require('psurvey.format')
local psets = require('psurvey.psets')

local M = {
  version = core.version,
  product = psets.product,
  range = psets.range,
}

-- The driver's state: one per Lua state.
local state = {
  init = {},       -- options given to init()
  cli = {},        -- options from the command line (psurvey survey.lua --ncores 2)
  script = nil,    -- the survey script, for the default database name
  engine = nil,    -- core.engine: loop, workers, hidden log
  stores = {},     -- path -> core.store
  stages = 0,      -- map() calls so far, for default names
  names = {},      -- table names used by this run, each once
  failed = false,  -- some pset of some map() failed
}

--- The psurvey program, which workers run as `psurvey worker`.
local function find_exe()
  if core.exe_path then return core.exe_path end
  local env = os.getenv('PSURVEY_BIN')
  if env and env ~= '' then return env end
  local candidates = {}
  if core.module_path then
    local dir = core.module_path:match('^(.*)/[^/]*$') or '.'
    candidates[#candidates + 1] = dir .. '/../../bin/psurvey'        -- build tree: lib/psurvey/core.so
    candidates[#candidates + 1] = dir .. '/../../../../bin/psurvey'  -- prefix/lib/lua/5.4/psurvey/core.so
  end
  if core.install_bindir ~= '' then candidates[#candidates + 1] = core.install_bindir .. '/psurvey' end
  for dir in (os.getenv('PATH') or ''):gmatch('[^:]+') do candidates[#candidates + 1] = dir .. '/psurvey' end
  for _, path in ipairs(candidates) do
    local f = io.open(path, 'rb')
    if f then
      f:close()
      return path
    end
  end
  error('cannot find the psurvey program to start workers: install psurvey or set PSURVEY_BIN', 3)
end

local function script_name()
  local s = state.script or (arg and arg[0]) or 'psurvey'
  return (s:match('([^/]*)$'):gsub('%.lua$', ''))
end

local function open_store(db)
  if db == false then db = ':memory:' end
  if db == nil then
    core.mkdir('.psurvey')
    db = '.psurvey/' .. script_name() .. '.db'
  end
  local store = state.stores[db]
  if store == nil then
    local err
    store, err = core.store(db ~= ':memory:' and db or nil)
    if not store then error(err, 0) end
    state.stores[db] = store
  end
  return store, db
end

local function layers(map_opts)
  return {
    { name = 'init', values = state.init },
    { name = 'map', values = map_opts },
    { name = 'environment', values = options.from_env(os.getenv, core.env_names('PSURVEY_'), 3) },
    { name = 'command line', values = state.cli },
  }
end

local function describe(values, from)
  local parts = {}
  for _, spec in ipairs(options.specs) do
    local v = values[spec.name]
    if spec.name ~= 'user' or v ~= nil then
      local text = type(v) == 'string' and ("'" .. v .. "'") or format.value(v)
      if v == nil then text = 'nil' end
      parts[#parts + 1] = ('%s=%s (%s)'):format(spec.name, text, from[spec.name])
    end
  end
  return table.concat(parts, ', ')
end

--- Sets options for every later map().
---@param opts table|nil
function M.init(opts)
  local checked = options.check_table(opts, 'init', 2)
  options.resolve(layers({}))  -- bad environment variables fail here, early
  state.init = checked
  return M
end

--- Runs worker(pset, system, user) for every pset; returns the results.
---@param worker function
---@param list table|userdata a psurvey.product, psurvey.range or an array of pset tables
---@param opts table|nil
function M.map(worker, list, opts)
  if type(worker) ~= 'function' then
    error(("bad argument #1 to 'map' (function expected, got %s)"):format(type(worker)), 2)
  end
  local map_opts = options.check_table(opts, 'map', 2)
  local values, from = options.resolve(layers(map_opts))
  if values.backend ~= 'process' then
    error(("option 'backend' (from %s): the '%s' backend is not available yet; use 'process'"):format(
      from.backend, values.backend), 2)
  end
  local source, why = psets.source_of(list)
  if not source then error(("bad argument #2 to 'map' (%s)"):format(why), 2) end

  local ok, code = pcall(core.ship, worker)
  if not ok then error('map: the worker cannot be sent to worker processes: ' .. code, 2) end
  local user
  ok, user = pcall(core.encode, values.user)
  if not ok then
    error("option 'user': " .. tostring(user):gsub('^value', 'the value'), 2)
  end

  state.stages = state.stages + 1
  local name = values.name or ('stage' .. state.stages)
  if name:match('^_') or name:match('^sqlite_') then
    error(("option 'name': '%s' is reserved (names starting with '_' or 'sqlite_')"):format(name), 2)
  end
  local key = (values.db == false and ':memory:' or tostring(values.db)) .. '\0' .. name:lower()
  if state.names[key] then
    error(("option 'name': an earlier map() of this run already wrote table '%s'; give each map() its own "
      .. 'name (its results would be replaced)'):format(name), 2)
  end
  state.names[key] = true
  local ncores = values.ncores
  if ncores == -1 then ncores = math.max(1, core.ncpu() - 1) end
  if ncores == 0 then error("option 'ncores': 0 workers cannot run anything; use -1 or a positive count", 2) end

  local store, dbpath = open_store(values.db)
  state.engine = state.engine or core.engine(find_exe())
  local text = describe(values, from)
  local res, err, partial = state.engine:run(source, store, {
    name = name, limit = values.limit, ncores = ncores, group_size = values.group_size,
    max_tasks_per_child = values.max_tasks_per_child, verbose = values.verbose,
    vstats = values.vstats, code = code, user = user, options_text = text,
  })
  if not res then
    if partial and partial.interrupted ~= 0 then
      error(setmetatable({
        interrupted = partial.interrupted,
        message = ('interrupted: %d psets of %s are stored in %s'):format(
          partial.ok + partial.failed, name, dbpath),
      }, { __tostring = function(e) return e.message end }), 2)
    end
    error('map: ' .. err, 2)
  end
  if res.failed > 0 then state.failed = true end
  return results.new(store, name, res, dbpath, state.engine:log_path())
end

--- Results of a map() stored earlier: psurvey.open('.psurvey/s.db', 'stage1').
function M.open(db, name)
  local store, err = core.store(db)
  if not store then error(err, 2) end
  local found = store:query('SELECT total, ok, failed FROM _psurvey_tables WHERE name = ?', name)[1]
  if not found then error(("no table '%s' in '%s'"):format(name, db), 2) end
  return results.new(store, name, { total = found.total, ok = found.ok or 0, failed = found.failed or 0,
    exceptions = 0, stats = { count = 0 } }, db, nil)
end

--- The driver's memory use in GiB (resident now, and its peak).
function M.vmem()
  return core.vmem()
end

--- Used by the psurvey program: command-line options and the script's name.
function M._set_cli(values, script)
  state.cli, state.script = values, script
end

--- Whether some pset of some map() failed (the program's exit status).
function M._failed()
  return state.failed
end

--- Stops the workers and closes the databases.
function M.shutdown()
  if state.engine then state.engine:close() end
  state.engine = nil
  for path, store in pairs(state.stores) do
    store:close()
    state.stores[path] = nil
  end
end

return M
