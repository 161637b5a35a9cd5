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
local hosts = require('psurvey.hosts')
local errors = require('psurvey.errors')
local resources = require('psurvey.resources')

local M = {
  version = core.version,
  product = psets.product,
  add_column = psets.add_column,
  range = psets.range,
  linspace = psets.linspace,
  logspace = psets.logspace,
  sample = psets.sample,
  filter = psets.filter,
  shuffle = psets.shuffle,
}

-- The driver's state: one per Lua state.
local state = {
  init = {},       -- options given to init()
  cli = {},        -- options from the command line (psurvey survey.lua --ncores 2)
  script = nil,    -- the survey script, for the default database name
  argv = nil,      -- the psurvey program's command line, for the runs' records
  provenance = nil, -- what cites this run (argv, cwd, git): found once, at its first record
  engine = nil,    -- core.engine: loop, workers, hidden log
  stores = {},     -- path -> core.store
  stages = 0,      -- map() calls so far, for default names
  names = {},      -- table names used by this run, each once
  runs = {},       -- path -> this run's id in the database's _psurvey_runs
  backend = nil,   -- the first map()'s backend, and for ssh its hosts: one per run
  backend_names = nil, -- and its names ({ 'process', 'ssh' })
  failed = false,  -- some pset of some map() failed
  running = false, -- a map() runs now (its callbacks cannot start another)
  halted = false,  -- some map() halted (its halt option)
  finalisers = {}, -- sentinels that end the run when the Lua state closes
}

--- The psurvey program, which workers run as `psurvey worker`; raises at
--- level when there is none.
local function find_exe(level)
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
  error('cannot find the psurvey program to start workers: install psurvey or set PSURVEY_BIN', level)
end

local function script_name()
  local s = state.script or (arg and arg[0]) or 'psurvey'
  return (s:match('([^/]*)$'):gsub('%.lua$', ''))
end

--- Calls fn(...) until it stops answering 'busy' (fail, message, 'busy')
--- or `seconds` have passed:
--- another program holding the database's write lock (a DB browser, a
--- CREATE INDEX) is waited for, saying so once. Ctrl-C ends the wait.
local function patiently_for(verbose, seconds, fn, ...)
  local said, waited = false, 0
  while true do
    local a, b, c = fn(...)
    if a or c ~= 'busy' or waited >= seconds then return a, b, c end
    if not said and verbose >= 1 then io.stderr:write(('psurvey: %s: waiting for it\n'):format(b)) end
    said = true
    core.sleep(0.1)
    waited = waited + 0.1
  end
end

local function patiently(verbose, fn, ...)
  return patiently_for(verbose, math.huge, fn, ...)
end

local function open_store(db, verbose)
  if db == false then db = ':memory:' end
  if db == nil then
    core.mkdir('.psurvey')
    db = '.psurvey/' .. script_name() .. '.db'
  end
  local store = state.stores[db]
  if store == nil then
    local dir = db:match('^(.*)/[^/]*$')
    if dir and dir ~= '' and not io.open(dir .. '/.') then
      errors.raise(("option 'db': directory '%s' does not exist (for the database '%s')"):format(dir, db), 0)
    end
    local err, kind
    store, err, kind = patiently(verbose, core.store, db ~= ':memory:' and db or nil)
    if kind == 'readonly' then errors.raise(err, 0) end
    if not store then error(err, 0) end
    state.stores[db] = store
  end
  return store, db
end

local function file_hash(path)
  local f = path and io.open(path, 'rb')
  if not f then return nil end
  local text = f:read('a')
  f:close()
  return core.hash(text)
end

--- A program that never calls shutdown() still ends its run: when its Lua
--- state closes (plain lua5.4 closes it at the end of the program), a
--- sentinel's __gc calls shutdown(). Finalisers run newest first, so a new
--- sentinel is made after each store and engine: it runs while they are
--- still open. All are kept, so that none runs before the state closes.
local function keep_finaliser()
  state.finalisers[#state.finalisers + 1] = setmetatable({}, { __gc = function() M.shutdown() end })
end

--- Whether a program is on the PATH, found without starting anything.
local function on_path(name)
  for dir in (os.getenv('PATH') or ''):gmatch('[^:]+') do
    local f = io.open(dir .. '/' .. name, 'rb')
    if f then
      f:close()
      return true
    end
  end
  return false
end

--- Whether dir or a directory above it has a .git (a directory, or the
--- file of a linked work tree), looked for without starting anything.
local function in_git_tree(dir)
  if os.getenv('GIT_DIR') then return true end
  if dir:sub(1, 1) ~= '/' then dir = (core.cwd() or '.') .. '/' .. dir end
  while true do
    local f = io.open(dir .. '/.git', 'rb')
    if f then
      f:close()
      return true
    end
    local parent = dir:match('^(.*)/[^/]*$')
    if parent == nil or parent == dir then return false end
    if parent == '' then
      if dir == '/' then return false end
      parent = '/'
    end
    dir = parent
  end
end

--- The git commit of the work tree that holds the script (the full hash),
--- and whether tracked files differ from it (as `git describe --dirty`
--- says: untracked files do not count, so .psurvey/ and a run's outputs do
--- not make the next run dirty). Without git on the PATH or outside a work
--- tree nothing is started; git's complaints never reach the terminal.
local function git_of(script)
  local dir = script and script:match('^(.*)/[^/]*$') or '.'
  if dir == '' then dir = '/' end
  if not on_path('git') or not in_git_tree(dir) then return nil end
  local q = "'" .. dir:gsub("'", "'\\''") .. "'"
  local p = io.popen(('exec 2>/dev/null </dev/null; git -C %s rev-parse --verify -q HEAD &&'
    .. ' git -C %s status --porcelain --untracked-files=no && echo end'):format(q, q))
  if not p then return nil end
  local out = p:read('a') or ''
  p:close()
  local commit, rest = out:match('^(%x+)\n(.*)$')
  if not commit or #commit < 40 then return nil end
  local changes = rest:match('^(.-)end\n$')
  if changes == nil then return commit, nil end
  return commit, changes ~= ''
end

--- The command line: the psurvey program's, or the Lua interpreter's (arg).
local function command_line()
  if state.argv then return state.argv end
  local out, lo = {}, 0
  if type(arg) ~= 'table' then return out end
  while arg[lo - 1] ~= nil do lo = lo - 1 end
  for i = lo, #arg do out[#out + 1] = tostring(arg[i]) end
  return out
end

--- The engine of this run, started at its first map(): its loop, its
--- workers and its hidden log. Raises at level when it cannot start.
local function start_engine(level)
  if not state.engine then
    state.engine = core.engine(find_exe(level + 1))
    keep_finaliser()
  end
  return state.engine
end

--- This run's row in the database's runs table, made at its first map(),
--- once the database is this run's (its lock) and the engine has its log.
local function run_id(store, dbpath, values, text, verbose, level)
  if state.runs[dbpath] then return state.runs[dbpath] end
  local ok, err = store:lock()
  if not ok then errors.raise(err, 0) end
  local log = start_engine(level + 1):log_path()
  local script = state.script or (arg and arg[0])
  if not state.provenance then
    local commit, dirty = git_of(script)
    state.provenance = { argv = command_line(), cwd = core.cwd(), git_commit = commit, git_dirty = dirty }
  end
  local p = state.provenance
  state.runs[dbpath] = patiently(verbose, store.begin_run, store, {
    script = script or '', script_hash = file_hash(script) or '', host = core.hostname(), pid = core.pid(),
    psurvey = core.version, lua = _VERSION, libuv = core.libuv_version, sqlite = core.sqlite_version,
    options = text, argv = p.argv, cwd = p.cwd, git_commit = p.git_commit, git_dirty = p.git_dirty,
    note = values.note, tags = values.tag, log = log,
  })
  keep_finaliser()
  return state.runs[dbpath]
end

--- With resume: refuses to mix rows of another worker into a table.
local function check_resume(store, dbpath, name, mode, code_hash, user_hash)
  local old = store:stage_info(name)
  if not old or mode == 'force' then return end
  local rows = (old.ok or 0) + (old.failed or 0)
  local what
  if old.code_hash ~= code_hash then
    what = 'the worker function (its code or its upvalues)'
  elseif old.user_hash ~= user_hash then
    what = "the 'user' value"
  end
  if what then
    errors.raise(("resume: table '%s' in %s holds %d rows made with another version of %s: run with "
      .. '--resume=force to keep them, or without --resume for a fresh table (the old one is kept under '
      .. 'another name)'):format(name, dbpath, rows, what), 3)
  end
end

--- Without resume: an earlier run of this stage that did not finish, with
--- the same worker, is kept under another name and started over; say so,
--- and how to reuse it.
local function note_start_over(store, name, code_hash, user_hash, total, verbose)
  local old = store:stage_info(name)
  if not old or old.code_hash ~= code_hash or old.user_hash ~= user_hash then return end
  local rows = (old.ok or 0) + (old.failed or 0)
  if rows == 0 or (old.status == 'done' and rows >= total) then return end
  local text = ('%s: %d psets of an earlier run are stored (of %d it ran%s), with the same worker; this run starts'
    .. ' over and keeps them in another table: run with --resume to reuse them'):format(name, rows, old.total or 0,
    old.status == 'done' and '' or ('; it ended ' .. tostring(old.status)))
  state.engine:log(text)
  if verbose >= 1 then io.stderr:write('psurvey: ', text, '\n') end
end

--- The backends: where workers run. prepare(values, from, level) checks
--- the options and returns the backend's setup (nil for none) and a key
--- that names its workers; setup(engine, setup) adds its nodes to the pool.
local backends = {
  process = {
    prepare = function(values)
      local gpus = table.concat((resources.gpus_here(values)), ',')
      return { gpus = gpus }, 'process' .. (gpus ~= '' and (' with GPUs ' .. gpus) or '')
    end,
    setup = function(engine, setup) engine:backend('process', setup) end,
  },
  ssh = {
    prepare = function(values, from, level)
      local list = hosts.gather(values, level + 1)
      if #list == 0 then
        errors.raise(("option 'backend' (from %s): 'ssh' needs hosts: a hosts file (--hosts FILE) or "
          .. 'ssh = { hosts = {...} }'):format(from.backend), level + 1)
      end
      local names = {}
      for i, h in ipairs(list) do names[i] = h.target .. ':' .. tostring(h.port) end
      return list, 'ssh ' .. table.concat(names, ' ')
    end,
    setup = function(engine, list, values)
      local ssh = values.ssh or {}
      engine:backend('ssh', { hosts = list, ssh_args = ssh.options, heartbeat = ssh.heartbeat or 30,
        reconnect = ssh.reconnect == false and 0 or 1, ssh = ssh.program })
    end,
  },
  slurm = {
    prepare = function(values, from, level)
      local slurm = values.slurm or {}
      if (os.getenv('SLURM_JOB_ID') or '') ~= '' then return slurm, 'slurm job ' .. os.getenv('SLURM_JOB_ID') end
      if slurm.nodes == nil then
        errors.raise(("option 'backend' (from %s): 'slurm' runs inside a Slurm allocation (an sbatch script or"
          .. ' salloc), and SLURM_JOB_ID is not set here; or give slurm = { nodes = N, time = ... } for psurvey'
          .. ' to ask for allocations itself'):format(from.backend), level + 1)
      end
      if not on_path('sbatch') then
        errors.raise(("option 'backend' (from %s): slurm = { nodes = %d } asks for allocations with sbatch, which"
          .. ' is not on the PATH here'):format(from.backend, slurm.nodes), level + 1)
      end
      return slurm, ('slurm allocations of %d nodes'):format(slurm.nodes)
    end,
    setup = function(engine, slurm)
      local args = {}
      local function add(flag, value) if value ~= nil then args[#args + 1] = flag .. '=' .. tostring(value) end end
      add('--time', slurm.time)
      add('--partition', slurm.partition)
      add('--account', slurm.account)
      add('--qos', slurm.qos)
      add('--cpus-per-task', slurm.cpus_per_task)
      add('--mem', slurm.mem)
      add('--gpus', slurm.gpus)
      for _, o in ipairs(slurm.extra or {}) do args[#args + 1] = o end
      engine:backend('slurm', { listen = slurm.listen, port = slurm.port or 0, srun = slurm.srun,
        heartbeat = slurm.heartbeat or 30, nodes = (os.getenv('SLURM_JOB_ID') or '') == '' and slurm.nodes or nil,
        max_jobs = slurm.max_jobs, per_minute = slurm.per_minute, poll = slurm.poll, args = args,
        log_dir = '.psurvey/logs' })
    end,
  },
}

--- Raises at level when a chosen backend is not available here.
local function check_backends(values, from, level)
  for _, backend in ipairs(values.backend) do
    if not backends[backend] then
      errors.raise(("option 'backend' (from %s): the '%s' backend is not available yet; use 'process', 'ssh' or"
        .. " 'slurm'")
        :format(from.backend, backend), level + 1)
    end
    -- Slurm says at init() what it lacks (an allocation, nodes, sbatch):
    -- its preparation has no other effect.
    if backend == 'slurm' then backends.slurm.prepare(values, from, level + 1) end
  end
end

--- The workers of this machine for option ncores (0: one per CPU this
--- process may use; -N: those but N, at least 1; N: N), and how that
--- came about, for the verbose line.
local function workers_of(ncores)
  local usable, online = core.cpus()
  local cpus = ('%d CPU%s usable%s'):format(usable, usable == 1 and '' or 's',
    usable < online and (' of %d online'):format(online) or '')
  if ncores > 0 then return ncores, ('ncores=%d; %s'):format(ncores, cpus) end
  if ncores == 0 then return usable, 'ncores=0: one per CPU, ' .. cpus end
  local n = math.max(1, usable + ncores)
  if usable + ncores < 1 then
    return n, ('ncores=%d: %s; keeping %d for the driver leaves none, so 1 at least'):format(ncores, cpus, -ncores)
  end
  return n, ('ncores=%d: %s, %d kept for the driver'):format(ncores, cpus, -ncores)
end

--- At verbose >= 1, one line on how many workers this machine starts.
local function say_workers(name, values, ncores, cpus_text, total)
  if values.verbose < 1 then return end
  local here = false
  for _, b in ipairs(values.backend) do here = here or b == 'process' end
  if not here then return end
  if values.limit > 0 and values.limit < total then total = values.limit end
  local n = math.min(ncores, math.max(total, 1))
  io.stderr:write(('psurvey: %s: %d worker%s%s%s (%s)\n'):format(name, n, n == 1 and '' or 's',
    #values.backend > 1 and ' on this machine' or '', n < ncores and (', one per pset') or '', cpus_text))
end

--- Sets up where workers run, once per run: this machine, ssh hosts, or
--- both as one pool.
local function use_backend(values, from)
  local setups, keys = {}, {}
  for i, name in ipairs(values.backend) do  -- map() checked that each is available
    setups[i], keys[i] = backends[name].prepare(values, from, 3)
  end
  local key = table.concat(keys, ', ')
  if state.backend == nil then
    for i, name in ipairs(values.backend) do backends[name].setup(state.engine, setups[i], values) end
    state.backend, state.backend_names = key, values.backend
  elseif state.backend ~= key then
    errors.raise(("option 'backend': every map() of a run uses the same workers; this run started with %s"):format(
      state.backend), 3)
  end
end

local function layers(map_opts, init_opts)
  return {
    { name = 'init', values = init_opts or state.init },
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
      if spec.show and v ~= nil then text = spec.show(v) end
      if v == nil then text = 'nil' end
      parts[#parts + 1] = ('%s=%s (%s)'):format(spec.name, text, from[spec.name])
    end
  end
  return table.concat(parts, ', ')
end

--- A dry run's plan of one map(), on stderr: the psets (count, first and
--- last three), the workers and where, the table, and every option with
--- where it came from. Nothing runs and nothing is written.
local function print_plan(name, source, total, values, from, ncores)
  local out = { ('psurvey: dry run of map %s: nothing runs, nothing is written'):format(name) }
  local function pset_line(i)
    return ('    #%d %s'):format(i, core.brief(core.encode(source:get(i), true), 100))
  end
  out[#out + 1] = ('  psets: %d%s'):format(total, total < #source and (' (limit: the first %d of %d)'):format(total,
    #source) or '')
  for i = 1, math.min(3, total) do out[#out + 1] = pset_line(i) end
  if total > 6 then out[#out + 1] = '    ...' end
  for i = math.max(4, total - 2), total do out[#out + 1] = pset_line(i) end
  local where = {}
  for _, backend in ipairs(values.backend) do
    if backend == 'process' then
      where[#where + 1] = ('%d on this machine (%s)'):format(ncores, core.hostname())
    elseif backend == 'ssh' then
      for _, h in ipairs(hosts.gather(values, 4)) do
        where[#where + 1] = ('%s on %s%s'):format(h.slots and tostring(h.slots) or 'one per core', h.target,
          h.port and (':' .. h.port) or '')
      end
    end
  end
  out[#out + 1] = '  workers: ' .. table.concat(where, ', ')
  local db = values.db == false and 'memory' or values.db or ('.psurvey/' .. script_name() .. '.db')
  out[#out + 1] = ('  table: %s in %s'):format(name, db)
  -- Options wrapped to 80 columns, at the separators between them.
  local line = '  options:'
  for part in (describe(values, from) .. ', '):gmatch('(.-), ') do
    if #line + #part + 2 > 80 and line ~= '  options:' then
      out[#out + 1] = line .. ','
      line = '   '
    end
    line = line .. (line:match(':$') and ' ' or (line == '   ' and ' ' or ', ')) .. part
  end
  out[#out + 1] = line
  io.stderr:write(table.concat(out, '\n'), '\n')
end

--- What the engine needs to send a stage's progress to carbon, with
--- paramsurvey's defaults; the engine names the points
--- <prefix>.<script>.<stage> (ps_carbon_component makes the parts).
local function carbon_of(c)
  if c == nil then return nil end
  return { host = c.server or '127.0.0.1', port = c.port or 2004, protocol = c.protocol or 'pickle',
    prefix = c.prefix or 'psurvey', script = script_name() }
end

--- Sets options for every later map().
---@param opts table|nil
function M.init(opts)
  -- paramsurvey's carbon_server, carbon_port and carbon_prefix, the one
  -- set of aliases taken (README, "Coming from paramsurvey").
  if type(opts) == 'table' and (opts.carbon_server ~= nil or opts.carbon_port ~= nil or opts.carbon_prefix ~= nil) then
    local copy, carbon = {}, {}
    for k, v in pairs(opts) do copy[k] = v end
    for k, v in pairs(opts.carbon or {}) do carbon[k] = v end
    carbon.server = opts.carbon_server or carbon.server
    carbon.port = opts.carbon_port or carbon.port
    carbon.prefix = opts.carbon_prefix or carbon.prefix
    copy.carbon_server, copy.carbon_port, copy.carbon_prefix = nil, nil, nil
    copy.carbon = carbon
    opts = copy
  end
  local checked = options.check_table(opts, 'init', 2)
  -- Bad environment variables and unavailable backends fail here, early.
  local values, from = options.resolve(layers({}, checked))
  check_backends(values, from, 2)
  state.init = checked
  return M
end

--- Runs worker(pset, system, user) for every pset; returns the results.
---@param worker function
---@param list table|userdata a psurvey.product, psurvey.range or an array of pset tables
---@param opts table|nil
function M.map(worker, list, opts)
  -- From on_result or a retry function: refused before anything is named,
  -- opened or counted.
  if state.running then error('map() cannot be called while a map() runs', 2) end
  if type(worker) ~= 'function' then
    error(("bad argument #1 to 'map' (function expected, got %s)"):format(type(worker)), 2)
  end
  local map_opts = options.check_table(opts, 'map', 2)
  local values, from = options.resolve(layers(map_opts))
  check_backends(values, from, 2)
  local source, why = psets.source_of(list)
  if not source then error(("bad argument #2 to 'map' (%s)"):format(why), 2) end

  local ok, code = pcall(core.ship, worker)
  if not ok then error('map: the worker cannot be sent to worker processes: ' .. code, 2) end
  local user
  ok, user = pcall(core.encode, values.user)
  if not ok then
    errors.raise("option 'user': " .. tostring(user):gsub('^value', 'the value'), 2)
  end
  -- Both travel in one frame to every worker.
  if #code + #user > core.value_max then
    errors.raise(("option 'user': the worker (%.1f MiB) and 'user' (%.1f MiB) together are over the %d MiB a"
      .. ' worker may take: pass large data as a file name and read it in the worker'):format(#code / 2^20,
      #user / 2^20, core.value_max // 2^20), 2)
  end

  state.stages = state.stages + 1
  local name = values.name or ('stage' .. state.stages)
  if name:find('\0', 1, true) then errors.raise("option 'name': a table name cannot hold a NUL byte", 2) end
  if #name > core.name_max then
    errors.raise(("option 'name': a table name of %d bytes is too long (at most %d)"):format(#name, core.name_max), 2)
  end
  local lower = name:lower()
  if lower:match('^_') or lower:match('^sqlite_') or lower:match('_attempts$') or lower:match('_output$') then
    errors.raise(("option 'name': '%s' is reserved (names starting with '_' or 'sqlite_', or ending with "
      .. "'_attempts' or '_output')"):format(name), 2)
  end
  -- A name used again in this run (a loop with a fixed name) gets the
  -- first free of name_2, name_3, ...: every round runs and keeps its rows,
  -- and a run of the same script names them the same, so --resume finds
  -- them. SQLite's table names ignore ASCII case: 'Grid' and 'grid' are one.
  local db_key = (values.db == false and ':memory:' or tostring(values.db)) .. '\0'
  local renamed
  if state.names[db_key .. lower] then
    local n = 2
    while state.names[db_key .. lower .. '_' .. n] do n = n + 1 end
    renamed = ("table '%s' was written earlier in this run%s: this map() writes '%s'"):format(
      state.names[db_key .. lower], state.names[db_key .. lower] ~= name
      and (" (as '%s': names that differ only in letter case are one table)"):format(name) or '',
      name .. '_' .. n)
    name = name .. '_' .. n
    if #name > core.name_max then
      errors.raise(("option 'name': a table name of %d bytes is too long (at most %d)"):format(#name,
        core.name_max), 2)
    end
    lower = name:lower()
  end
  state.names[db_key .. lower] = name
  local ncores, cpus_text = workers_of(values.ncores)
  local total = #source -- what this map runs, with the limit
  if values.limit > 0 and values.limit < total then total = values.limit end

  if values.dry_run then
    print_plan(name, source, total, values, from, ncores)
    return results.planned(name, total)
  end

  local code_hash = core.hash(core.ship(worker, true))
  local user_hash = core.hash(core.encode(values.user, true))
  local store, dbpath = open_store(values.db, values.verbose)
  local text = describe(values, from)
  local run_values, run_from = options.resolve(layers({}))
  local run = run_id(store, dbpath, run_values, describe(run_values, run_from), values.verbose, 3)
  if values.resume then check_resume(store, dbpath, name, values.resume, code_hash, user_hash) end
  if renamed then
    state.engine:log(renamed)
    if values.verbose >= 2 then io.stderr:write('psurvey: ', renamed, '\n') end
  end
  if not values.resume then
    note_start_over(store, name, code_hash, user_hash, total, values.verbose)
  end
  use_backend(values, from)
  say_workers(name, values, ncores, cpus_text, #source)
  local halt_when, halt_fail, halt_pct = options.parse_halt(values.halt)
  state.running = true
  local ran, res, err, partial = pcall(state.engine.run, state.engine, source, store, {
    name = name, limit = values.limit, ncores = ncores, group_size = values.group_size,
    max_tasks_per_child = values.max_tasks_per_child, verbose = values.verbose,
    vstats = values.vstats, code = code, user = user, options_text = text,
    timeout = values.timeout, memory = values.memory, retries = values.retries,
    sandbox = values.sandbox == 'strict' and 1 or 0, seed = values.seed,
    resume = values.resume and 1 or 0, resume_keep_failed = values.resume == 'done-and-failed' and 1 or 0,
    run = run, code_hash = code_hash, user_hash = user_hash, on_result = values.on_result,
    halt = halt_when == 'now' and 2 or halt_when == 'soon' and 1 or 0, halt_fail = halt_fail, halt_pct = halt_pct,
    halt_text = values.halt, workdir = values.workdir, carbon = carbon_of(values.carbon),
    output = values.output == 'full' and 1 or values.output == 'none' and 2 or 0,
  })
  state.running = false
  if not ran then error(res, 0) end
  if not res then
    if partial and partial.interrupted ~= 0 then
      error(setmetatable({
        interrupted = partial.interrupted,
        message = ('interrupted: %d psets of %s are stored in %s: run it again with --resume to finish the rest%s')
          :format(partial.ok + partial.failed, name, dbpath, partial.error ~= 'interrupted' and (' (' .. err .. ')')
          or ''),
      }, { __tostring = function(e) return e.message end }), 2)
    end
    if partial and partial.error == 'hosts' then errors.raise('map: ' .. err, 2) end
    if partial and partial.error == 'halted' then
      state.failed, state.halted = true, true
      error(setmetatable({
        halted = true,
        message = ("map: %s %s: %d psets are stored in %s (%d ok, %d failed); fix what fails and run it again with "
          .. '--resume to finish the rest'):format(name, err, partial.ok + partial.failed, dbpath, partial.ok,
          partial.failed),
      }, { __tostring = function(e) return e.message end }), 2)
    end
    error('map: ' .. err, 2)
  end
  if res.failed > 0 or res.on_result_errors > 0 then state.failed = true end
  return results.new(store, name, res, dbpath, state.engine:log_path())
end

--- Results of a map() stored earlier: psurvey.open('.psurvey/s.db', 'stage1').
function M.open(db, name)
  local store, err = core.store(db)
  if not store then error(err, 2) end
  local found = store:stage_info(name)
  if not found then error(("no table '%s' in '%s'"):format(name, db), 2) end
  return results.stored(store, found, db)
end

--- Runs pset `index` of stage `name` again, alone, in the same sandbox
--- profile and with the limits of its last attempt; the worker's output
--- goes to this terminal. Returns the row (with _status, _exception,
--- _traceback and the results). Used by `psurvey replay`.
function M._replay(db, name, index)
  local store, err = core.store(db)
  if not store then error(err, 0) end
  local stage = store:stage_info(name)
  if not stage then error(("no table '%s' in '%s'"):format(name, db), 0) end
  name = stage.name
  local code, user = store:stage_worker(name)
  if not code then
    error(("table '%s' was written by an older psurvey that did not keep the worker's code"):format(name), 0)
  end
  local pset = store:cursor(name, 'all', index, 'psets'):next()
  if not pset then error(("table '%s' has no pset #%d"):format(name, index), 0) end
  local last = store:last_limits(name, index) or {}
  local scratch = core.store(nil)
  state.engine = state.engine or core.engine(find_exe(3))
  state.engine:backend('process', {})
  local res, why = state.engine:run(core.array({ pset }), scratch, {
    name = 'replay', ncores = 1, verbose = 0, vstats = 0, code = code, user = user,
    options_text = 'replay', timeout = last.limit_timeout or stage.timeout or 0,
    memory = last.limit_memory or stage.memory or 0, retries = 0,
    sandbox = stage.sandbox == 'strict' and 1 or 0, seed = stage.seed or 0, output = 1,
  })
  if not res then error('replay: ' .. why, 0) end
  -- What it wrote, kept whole, comes to this terminal, both streams on stderr.
  local wrote, errout = scratch:output('replay', 1, 1)
  io.stderr:write(wrote or '', errout or '')
  local out = scratch:cursor('replay', 'all'):next()
  out._index = index
  return out, pset
end

--- Where workers run: one entry per node of the backends in use, as
--- paramsurvey lists them: { host = ..., num_cores = N, memory = GiB,
--- gpus = { ids }, backend = 'process' | 'ssh', connected = bool }. Before
--- the first map() starts workers, from init()'s options: this machine as
--- it is, ssh hosts without num_cores and memory (known once they connect).
---@return table[]
function M.current_resources()
  local values = options.resolve(layers({}))
  if state.backend_names then values.backend = state.backend_names end
  return resources.current(state.engine, values)
end

--- The CPUs of current_resources(), summed (hosts not yet connected count 0).
---@return integer
function M.current_core_count()
  local n = 0
  for _, r in ipairs(M.current_resources()) do n = n + (r.num_cores or 0) end
  return n
end

--- The backends in use (or that the next map() would use): 'process',
--- 'ssh' or 'process,ssh'.
---@return string
function M.backend()
  local names = state.backend_names or options.resolve(layers({})).backend
  return table.concat(names, ',')
end

--- The driver's memory use in GiB (resident now, and its peak).
function M.vmem()
  return core.vmem()
end

--- Used by the psurvey program: command-line options, the script's name
--- and the program's whole command line (argv[0] first).
function M._set_cli(values, script, argv)
  state.cli, state.script, state.argv = values, script, argv
end

--- Whether some pset of some map() failed (the program's exit status).
function M._failed()
  return state.failed
end

--- Ends the run, as shutdown() does, and gives the exit status the psurvey
--- program would: 0 every pset succeeded, 1 some failed (or an on_result
--- raised), 4 a map halted. For a plain Lua program:
--- os.exit(psurvey.exit_status()), as os.exit does not close the state.
function M.exit_status()
  M.shutdown()
  if state.halted then return 4 end
  if state.failed then return 1 end
  return 0
end

--- Stops the workers and closes the databases; status ('done', 'failed',
--- 'interrupted', 'error') goes to each database's runs table.
function M.shutdown(status)
  if state.engine then state.engine:close() end
  state.engine = nil
  state.backend, state.backend_names = nil, nil
  -- After a signal, a database another program holds is waited for 1 s at most.
  local wait = status == 'interrupted' and 1 or math.huge
  for path, id in pairs(state.runs) do
    pcall(patiently_for, 1, wait, state.stores[path].end_run, state.stores[path], id,
      status or (state.halted and 'halted' or state.failed and 'failed' or 'done'))
    state.runs[path] = nil
  end
  for path, store in pairs(state.stores) do
    store:close()
    state.stores[path] = nil
  end
end

return M
