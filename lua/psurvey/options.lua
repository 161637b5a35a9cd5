--- psurvey.options: every option of init() and map(), their checks, their
--- environment variables and command-line flags, and how they combine.
--- Precedence, highest first: the command line, the environment
--- (PSURVEY_<NAME>), map(), init(), the default.
local errors = require('psurvey.errors')

local M = {}

local function check_int(min, max)
  return function(v)
    if math.type(v) ~= 'integer' then
      return nil, ('expected an integer, got %s'):format(type(v) == 'number' and tostring(v) or type(v))
    end
    if (min and v < min) or (max and v > max) then
      if not min then return nil, ('expected at most %d, got %d'):format(max, v) end
      if max then return nil, ('expected %d to %d, got %d'):format(min, max, v) end
      return nil, ('expected at least %d, got %d'):format(min, v)
    end
    return v
  end
end

local function parse_int(s)
  local v = math.tointeger(tonumber(s))
  if v == nil or not s:match('^%s*[-+]?%d+%s*$') then return nil, ("'%s' is not an integer"):format(s) end
  return v
end

local function check_string(v)
  if type(v) ~= 'string' or v == '' then return nil, 'expected a non-empty string, got ' .. type(v) end
  return v
end

-- Timeouts and memory limits are kept in microseconds and bytes: a billion
-- seconds (31 years) or MiB (a thousand TiB) is more than any survey needs
-- and far from overflowing either.
local AMOUNT_MAX = 1e9

local function check_amount(what)
  return function(v)
    if type(v) ~= 'number' or v ~= v or v < 0 or v > AMOUNT_MAX then
      return nil, ('expected %s from 0 to %g (0: none), got %s'):format(what, AMOUNT_MAX,
        type(v) == 'number' and tostring(v) or type(v))
    end
    return v
  end
end

local function parse_number(s)
  local v = tonumber(s)
  if v == nil then return nil, ("'%s' is not a number"):format(s) end
  return v
end

-- CUDA_VISIBLE_DEVICES takes indexes and names such as GPU-8b9d9b4f-... or
-- MIG-...: no commas or spaces, and the engine keeps 1023 bytes of them.
local GPUS_MAX, GPUS_TEXT_MAX = 64, 1023

--- Checks a list of GPU ids ({0, 1}, {'GPU-8b9d...'}, or as text '0,1');
--- returns them as strings, or nil and why not.
function M.check_gpus(v)
  if type(v) == 'string' then
    local list = {}
    if v:find('%S') then
      for id in (v .. ','):gmatch('([^,]*),') do list[#list + 1] = id:match('^%s*(.-)%s*$') end
    end
    v = list
  end
  if type(v) ~= 'table' then
    return nil, ("expected a list of GPU ids such as {0, 1} or '0,1', got %s"):format(type(v))
  end
  local n = #v
  for k in pairs(v) do
    if math.type(k) ~= 'integer' or k < 1 or k > n then
      return nil, ('expected a list of GPU ids such as {0, 1}, got a table with key %s'):format(
        type(k) == 'string' and ("'" .. k .. "'") or tostring(k))
    end
  end
  if n > GPUS_MAX then return nil, ('at most %d GPUs, got %d'):format(GPUS_MAX, n) end
  local out, seen = {}, {}
  for i = 1, n do
    local id = v[i]
    if math.type(id) == 'integer' and id >= 0 then
      id = tostring(id)
    elseif type(id) ~= 'string' or not id:match('^[%w_.:/-]+$') or id:sub(1, 1) == '-' then
      return nil, ("GPU #%d: expected an index from 0 or a name such as 'GPU-8b9d9b4f' (no commas or spaces),"
        .. ' got %s'):format(i, type(id) == 'string' and ("'" .. id .. "'") or tostring(id))
    end
    if seen[id] then return nil, ("GPU id '%s' is listed twice"):format(id) end
    seen[id] = true
    out[i] = id
  end
  if #table.concat(out, ',') > GPUS_TEXT_MAX then
    return nil, ('GPU ids of more than %d bytes together'):format(GPUS_TEXT_MAX)
  end
  return out
end

local resume_modes = { done = true, ['done-and-failed'] = true, force = true }

--- GNU parallel's --halt, for failures: 'now,fail=N', 'soon,fail=N',
--- 'now,fail=P%', 'soon,fail=P%'; 'never' (or false) for none. Returns
--- when ('now' or 'soon'), the count (or nil) and the percentage (or nil);
--- nil and why for anything else.
function M.parse_halt(v)
  if v == false or v == 'never' then return nil end
  if type(v) ~= 'string' then
    return nil, nil, nil, ("expected 'now,fail=N', 'soon,fail=N', 'now,fail=P%', 'soon,fail=P%' or 'never', got %s")
      :format(type(v))
  end
  local when, num, pct = v:match('^(%a+),fail=(%d+%.?%d*)(%%?)$')
  if (when ~= 'now' and when ~= 'soon') or not num then
    return nil, nil, nil, ("expected 'now,fail=N', 'soon,fail=N', 'now,fail=P%%', 'soon,fail=P%%' or 'never' (GNU"
      .. " parallel's --halt), got '%s'"):format(v)
  end
  local n = tonumber(num)
  if pct == '%' then
    if n <= 0 or n > 100 then
      return nil, nil, nil, ("the percentage in '%s' must be above 0 and at most 100"):format(v)
    end
    return when, nil, n
  end
  n = math.tointeger(n)
  if not n or n < 1 then return nil, nil, nil, ("the count in '%s' must be an integer of at least 1"):format(v) end
  return when, n, nil
end
local backend_names = { process = true, ssh = true, slurm = true }

--- A value given as text (environment or command line): a Lua literal,
--- data only: nil, booleans, numbers, strings and table constructors of
--- those. It is read, never run, so no code in it does anything.
local parse_literal
do
  local MAX_DEPTH = 100

  -- The end of the string token starting at i (a quote or a long bracket).
  local function string_end(s, i)
    local q = s:sub(i, i)
    if q == '"' or q == "'" then
      local j = i + 1
      while j <= #s do
        local c = s:sub(j, j)
        if c == '\\' then
          j = j + 2
        elseif c == q then
          return j
        elseif c == '\n' then
          return nil
        else
          j = j + 1
        end
      end
      return nil
    end
    local eq = s:match('^%[(=*)%[', i)
    if not eq then return nil end
    local _, close = s:find(']' .. eq .. ']', i + #eq + 2, true)
    return close
  end

  -- The index after the spaces at i; nil at a comment: nothing hides in the text.
  local function skip(s, i)
    local _, e = s:find('^%s+', i)
    if e then i = e + 1 end
    if s:sub(i, i + 1) == '--' then return nil end
    return i
  end

  local value

  local function table_of(s, i, depth)
    local t, n = {}, 0
    i = skip(s, i + 1)
    while i and s:sub(i, i) ~= '}' do
      local k, v
      local name, after = s:match('^([%a_][%w_]*)%s*=()', i)
      if name and s:sub(after, after) ~= '=' then
        k = name
        v, i = value(s, skip(s, after), depth + 1)
      elseif s:sub(i, i) == '[' and not s:match('^%[=*%[', i) then
        k, i = value(s, skip(s, i + 1), depth + 1)
        i = i and skip(s, i)
        if not i or s:sub(i, i) ~= ']' then return nil end
        i = skip(s, i + 1)
        if not i or s:sub(i, i) ~= '=' or s:sub(i, i + 1) == '==' then return nil end
        v, i = value(s, skip(s, i + 1), depth + 1)
        if k == nil or k ~= k then return nil end
      else
        n = n + 1
        k = n
        v, i = value(s, i, depth + 1)
      end
      if not i then return nil end
      t[k] = v
      i = skip(s, i)
      local sep = i and s:sub(i, i)
      if sep == ',' or sep == ';' then
        i = skip(s, i + 1)
      elseif sep ~= '}' then
        return nil
      end
    end
    if not i then return nil end
    return t, i + 1
  end

  -- The value at i and the index after it, or nil.
  function value(s, i, depth)
    if not i or depth > MAX_DEPTH then return nil end
    local c = s:sub(i, i)
    if c == '{' then return table_of(s, i, depth) end
    if c == '"' or c == "'" or c == '[' then
      local e = string_end(s, i)
      if not e then return nil end
      -- A lone string literal: loading it runs nothing.
      local chunk = load('return ' .. s:sub(i, e), '=literal', 't', {})
      local ok, v = pcall(chunk or error)
      if not ok or type(v) ~= 'string' then return nil end
      return v, e + 1
    end
    for _, word in ipairs({ 'nil', 'true', 'false' }) do
      if s:match('^' .. word .. '%f[^%w_]', i) then
        if word == 'nil' then return nil, i + 3 end
        return word == 'true', i + #word
      end
    end
    -- A numeral as Lua writes them (1, -2.5, 1e-3, 0x10, 0x1p4), with a minus.
    local num = s:match('^%-?%s*%.?%d[%w%.]*', i)
    if not num then return nil end
    if num:match('[eEpP]$') then num = num .. (s:match('^[-+][%w%.]*', i + #num) or '') end
    local v = tonumber((num:gsub('%s', '')))
    if v == nil then return nil end
    return v, i + #num
  end

  function parse_literal(s)
    local v, i = value(s, skip(s, 1), 0)
    i = i and skip(s, i)
    if i == nil or i <= #s then
      return nil, ("'%s' is not a Lua value (a constant or a table of constants)"):format(s)
    end
    return v
  end
end
M.parse_literal = parse_literal

---@class psurvey.OptionSpec
M.specs = {
  { name = 'backend', default = { 'process' }, arg = 'NAME[,NAME]',
    help = 'where workers run: process (this machine), ssh (the hosts of --hosts), slurm (the nodes of the Slurm'
      .. ' allocation it runs in), or several as one pool (process,ssh)',
    check = function(v)
      -- One name, names separated by commas, or a list of names: a list.
      local list = {}
      if type(v) == 'string' then
        for name in (v .. ','):gmatch('([^,]*),') do list[#list + 1] = name end
      elseif type(v) == 'table' then
        for i = 1, #v do list[i] = v[i] end
      else
        return nil, ("expected 'process', 'ssh', 'slurm' or a list of them, got %s"):format(type(v))
      end
      local seen = {}
      for _, name in ipairs(list) do
        if backend_names[name] == nil then
          return nil, ("expected 'process', 'ssh' or 'slurm' (or a list of them), got %s"):format(
            type(name) == 'string' and ("'" .. name .. "'") or type(name))
        end
        if seen[name] then return nil, ("'%s' is listed twice"):format(name) end
        seen[name] = true
      end
      if #list == 0 then return nil, 'expected at least one backend' end
      return list
    end,
    -- As the command line takes it: 'process,ssh'.
    show = function(v) return "'" .. table.concat(v, ',') .. "'" end },
  { name = 'ncores', default = 0, arg = 'N', check = check_int(-10000, 10000), parse = parse_int,
    help = 'worker processes on this machine; 0: one per CPU this process may use (affinity, cgroup quota);'
      .. ' -N: those CPUs but N, at least 1' },
  { name = 'gpus', default = nil, arg = 'ID[,ID]', check = M.check_gpus,
    parse = function(s) if s:match('^%s*{') then return parse_literal(s) end return s end,
    help = "this machine's GPU ids, e.g. 0,1,2,3 (default: CUDA_VISIBLE_DEVICES, else nvidia-smi -L, else none);"
      .. ' a pset takes some with _psurvey.gpus',
    show = function(v) return "'" .. table.concat(v, ',') .. "'" end },
  { name = 'limit', default = 0, arg = 'N', check = check_int(0), parse = parse_int,
    help = 'run only the first N psets of each map (0: all)' },
  { name = 'verbose', default = 1, arg = '0..3', check = check_int(0, 3), parse = parse_int,
    help = '0 quiet; 1 a line every 30 s (a live bar on a terminal); 2 every second; 3 every event' },
  { name = 'vstats', default = 1, arg = '0..3', check = check_int(0, 3), parse = parse_int,
    help = "run-time statistics, at verbose's cadence: 0 none; 1 at the end of each map and every 30 s; 2 every"
      .. " second; 3 also each pset's run time" },
  { name = 'max_tasks_per_child', default = 0, arg = 'N', check = check_int(0), parse = parse_int,
    help = 'restart a worker process after N psets (0: never)' },
  { name = 'group_size', default = 0, arg = 'N', check = check_int(0), parse = parse_int,
    help = 'psets sent to a worker at once (0: automatic, from measured run times)' },
  { name = 'timeout', default = 0, arg = 'SECONDS', check = check_amount('a number of seconds'),
    parse = parse_number,
    help = 'wall time a pset may run before it is stopped (0: no limit); per pset: _psurvey.timeout' },
  { name = 'memory', default = 0, arg = 'MIB', check = check_amount('a number of MiB'), parse = parse_number,
    help = 'Lua heap a pset may use, in MiB (0: no limit); per pset: _psurvey.memory' },
  { name = 'retries', default = 1, arg = 'N', parse = parse_int,
    help = 'attempts after a crash or a timeout (a function retry(pset, failure, attempt) in map() decides)',
    check = function(v)
      if type(v) == 'function' then return v end
      return check_int(0, 99)(v) -- a pset is tried at most 100 times
    end },
  { name = 'sandbox', default = 'default', arg = 'PROFILE',
    help = "worker environment: 'default' (full standard library) or 'strict' (an allow-list, no io/os.execute)",
    check = function(v)
      if v == 'default' or v == 'strict' then return v end
      return nil, ("expected 'default' or 'strict', got %s"):format(type(v) == 'string' and ("'" .. v .. "'")
        or type(v))
    end },
  { name = 'seed', default = 0, arg = 'N', check = check_int(), parse = parse_int,
    help = 'survey seed: each pset gets system.seed from it and its own hash, whatever runs it' },
  { name = 'resume', default = false, arg = '[MODE]', bare = 'done', bare_values = resume_modes,
    help = 'skip psets already stored: done (default), done-and-failed, or force (keep rows of a changed worker)',
    check = function(v)
      if v == true then return 'done' end
      if v == false or resume_modes[v] then return v end
      return nil, ("expected true, false, 'done', 'done-and-failed' or 'force', got %s"):format(
        type(v) == 'string' and ("'" .. v .. "'") or type(v))
    end,
    parse = function(s)
      if s == 'true' then return true end
      if s == 'false' then return false end
      return s
    end },
  { name = 'dry_run', default = false, arg = '', bare = 'true', bare_values = { ['true'] = true, ['false'] = true },
    help = 'every map() prints its plan (psets, options, workers, table) and runs nothing; nothing is written',
    parse = function(s)
      if s == 'true' or s == '1' then return true end
      if s == 'false' or s == '0' then return false end
      return nil, ("'%s' is not true, false, 1 or 0"):format(s)
    end,
    check = function(v)
      if type(v) ~= 'boolean' then return nil, 'expected true or false, got ' .. type(v) end
      return v
    end },
  { name = 'halt', default = 'never', arg = 'WHEN,fail=N',
    help = "stop a map early for its failures, as GNU parallel's --halt: now,fail=N (kill running psets), "
      .. 'soon,fail=N (let them finish), or fail=P% (from 10 finished psets on); never',
    check = function(v)
      if v == false then return 'never' end
      local _, _, _, why = M.parse_halt(v)
      if why then return nil, why end
      return v
    end },
  { name = 'workdir', default = nil, arg = 'DIR',
    help = "each pset runs in its own directory DIR/<table>/<index>, made for it (system.workdir names it)",
    check = function(v)
      if type(v) ~= 'string' or v == '' then return nil, 'expected a directory name, got ' .. type(v) end
      if v:find('\0', 1, true) then return nil, 'a directory name cannot hold a NUL byte' end
      if #v > 3000 then return nil, ('a directory name of %d bytes is too long'):format(#v) end
      return v
    end },
  { name = 'output', default = 'tail', arg = 'MODE',
    help = "what psets print: 'tail' keeps the last 64 KiB of stdout and stderr with each row, 'full' all of"
      .. " it, 'none' keeps nothing and passes it to stderr, each line tagged [#index]",
    check = function(v)
      if v == 'tail' or v == 'full' or v == 'none' then return v end
      return nil, ("expected 'tail', 'full' or 'none', got %s"):format(type(v) == 'string' and ("'" .. v .. "'")
        or type(v))
    end },
  { name = 'carbon', default = nil, arg = 'TABLE', parse = parse_literal,
    help = "send progress to Graphite's carbon every 10 s: { server = '127.0.0.1', port = 2004, prefix = 'psurvey',"
      .. " protocol = 'pickle' | 'plaintext' }; also PSURVEY_CARBON_SERVER, _PORT, _PREFIX, _PROTOCOL",
    check = function(v) return M.check_carbon(v) end,
    -- Its keys come from every layer: PSURVEY_CARBON_PORT completes init's table.
    merge = true },
  { name = 'hosts', default = nil, arg = 'FILE', check = check_string,
    help = 'ssh backend: a file of hosts, one per line: [user@]host[:port] [slots=N] [psurvey=/path] [gpus=ID,ID]' },
  { name = 'ssh', default = nil, arg = 'TABLE', parse = parse_literal,
    help = 'ssh backend: { hosts = {...}, options = { extra ssh arguments }, heartbeat = 30, reconnect = true }',
    check = function(v)
      if type(v) ~= 'table' then return nil, 'expected a table, got ' .. type(v) end
      local known = { hosts = 'table', options = 'table', heartbeat = 'number', reconnect = 'boolean',
        program = 'string' }
      for k, x in pairs(v) do
        if known[k] == nil then
          return nil, ("unknown key '%s' (known: hosts, options, heartbeat, reconnect, program)"):format(tostring(k))
        end
        if type(x) ~= known[k] then
          return nil, ("key '%s' must be a %s, got %s"):format(k, known[k], type(x))
        end
      end
      if v.heartbeat and (v.heartbeat ~= v.heartbeat or v.heartbeat <= 0) then
        return nil, "key 'heartbeat' must be > 0 seconds"
      end
      for i, o in ipairs(v.options or {}) do
        if type(o) ~= 'string' then return nil, ('options[%d] must be a string, got %s'):format(i, type(o)) end
      end
      return v
    end },
  { name = 'slurm', default = nil, arg = 'TABLE', parse = parse_literal,
    help = "slurm backend: inside an allocation, or { nodes = N, time = '1:00:00', partition, account, qos,"
      .. ' cpus_per_task, mem, gpus, extra = { sbatch options }, max_jobs, per_minute = 30, poll = 5 } to ask for'
      .. " allocations itself; listen = 'ADDRESS' (default: this host's name's address), port, heartbeat = 30",
    check = function(v)
      if type(v) ~= 'table' then return nil, 'expected a table, got ' .. type(v) end
      local known = { listen = 'string', port = 'number', srun = 'string', heartbeat = 'number', nodes = 'number',
        time = 'string', partition = 'string', account = 'string', qos = 'string', cpus_per_task = 'number',
        mem = 'string', gpus = 'string', extra = 'table', max_jobs = 'number', per_minute = 'number',
        poll = 'number' }
      local names = {}
      for k in pairs(known) do names[#names + 1] = k end
      table.sort(names)
      for k, x in pairs(v) do
        if known[k] == nil then
          return nil, ("unknown key '%s'%s (known: %s)"):format(tostring(k), M.suggest(tostring(k), names),
            table.concat(names, ', '))
        end
        if k == 'gpus' and math.type(x) == 'integer' then x = tostring(x) end
        if type(x) ~= known[k] then return nil, ("key '%s' must be a %s, got %s"):format(k, known[k], type(x)) end
      end
      for _, k in ipairs({ 'nodes', 'cpus_per_task', 'max_jobs', 'per_minute' }) do
        if v[k] ~= nil and (math.type(v[k]) ~= 'integer' or v[k] < 1) then
          return nil, ("key '%s' must be a whole number of at least 1"):format(k)
        end
      end
      if v.port and (math.type(v.port) ~= 'integer' or v.port < 0 or v.port > 65535) then
        return nil, "key 'port' must be an integer from 0 to 65535"
      end
      for _, k in ipairs({ 'heartbeat', 'poll' }) do
        if v[k] and (v[k] ~= v[k] or v[k] <= 0) then return nil, ("key '%s' must be > 0 seconds"):format(k) end
      end
      for i, o in ipairs(v.extra or {}) do
        if type(o) ~= 'string' then return nil, ('extra[%d] must be a string, got %s'):format(i, type(o)) end
      end
      return v
    end },
  { name = 'db', default = nil, arg = 'PATH',
    help = 'SQLite file for the results (default .psurvey/<script>.db); false keeps them in memory',
    check = function(v)
      if v == false or (type(v) == 'string' and v ~= '') then return v end
      return nil, 'expected a file name or false, got ' .. type(v)
    end,
    parse = function(s)
      if s == 'false' then return false end
      return s
    end },
  { name = 'note', scope = 'init', arg = 'TEXT',
    help = 'a note on this run, kept with it in each database it writes (psurvey results FILE --runs)',
    check = function(v)
      if type(v) ~= 'string' then return nil, 'expected a string, got ' .. type(v) end
      return v
    end },
  { name = 'tag', scope = 'init', arg = 'KEY=VALUE', many = true, merge = true,
    help = 'a tag of this run, kept with it like the note; repeat it for more: --tag series=B --tag host=lab1',
    parse = function(s)
      if s:match('^%s*{') then return parse_literal(s) end
      local k, v = s:match('^([^=]*)=(.*)$')
      if k == nil then return nil, ("expected KEY=VALUE, got '%s'"):format(s) end
      return { [k] = v }
    end,
    check = function(v)
      if type(v) ~= 'table' then return nil, 'expected a table of KEY = VALUE strings, got ' .. type(v) end
      local out = {}
      for k, x in pairs(v) do
        if type(k) ~= 'string' or k == '' then
          return nil, ('expected a non-empty string as a key, got %s'):format(type(k) == 'string' and "''" or
            tostring(k))
        end
        if type(x) == 'number' or type(x) == 'boolean' then x = tostring(x) end
        if type(x) ~= 'string' then return nil, ("key '%s': expected a string value, got %s"):format(k, type(x)) end
        out[k] = x
      end
      return out
    end },
  { name = 'name', scope = 'map', arg = 'NAME', check = check_string,
    help = "the map's table in the database (default stage1, stage2, ... in call order)" },
  { name = 'on_result', scope = 'map', code_only = true,
    help = "a function(row, system) the driver calls with each pset's stored row while the map runs",
    check = function(v)
      if type(v) == 'function' then return v end
      return nil, 'expected a function(row, system), got ' .. type(v)
    end,
    show = function() return 'a function' end },
  { name = 'user', scope = 'map', arg = 'VALUE', parse = parse_literal,
    help = 'any plain Lua value, passed to every worker call as its third argument',
    check = function(v) return v end },
}

--- The carbon option's table, checked: server (a host name or address),
--- port (1 to 65535), prefix (dotted words), protocol ('pickle' or
--- 'plaintext'); what is left out takes paramsurvey's defaults when used.
function M.check_carbon(v)
  if type(v) ~= 'table' then return nil, 'expected a table, got ' .. type(v) end
  local known = { server = 'string', port = 'number', prefix = 'string', protocol = 'string' }
  for k, x in pairs(v) do
    if known[k] == nil then
      return nil, ("unknown key '%s' (known: server, port, prefix, protocol)"):format(tostring(k))
    end
    if type(x) ~= known[k] then return nil, ("key '%s' must be a %s, got %s"):format(k, known[k], type(x)) end
  end
  if v.server and (v.server == '' or v.server:find('[%s/]')) then
    return nil, ("key 'server' must be a host name or address, got '%s'"):format(v.server)
  end
  if v.port and (math.type(v.port) ~= 'integer' or v.port < 1 or v.port > 65535) then
    return nil, ("key 'port' must be an integer from 1 to 65535, got %s"):format(tostring(v.port))
  end
  if v.prefix and not v.prefix:match('^[%w_-]+$') and not v.prefix:match('^[%w_-][%w_.-]*[%w_-]$') then
    return nil, ("key 'prefix' must be dotted words (letters, digits, '_', '-'), got '%s'"):format(v.prefix)
  end
  if v.prefix and v.prefix:find('..', 1, true) then
    return nil, ("key 'prefix' must be dotted words (letters, digits, '_', '-'), got '%s'"):format(v.prefix)
  end
  if v.protocol and v.protocol ~= 'pickle' and v.protocol ~= 'plaintext' then
    return nil, ("key 'protocol' must be 'pickle' or 'plaintext', got '%s'"):format(v.protocol)
  end
  return v
end

-- PSURVEY_CARBON_<KEY>: one key of the carbon option each, as text.
local carbon_parts = {
  PSURVEY_CARBON_SERVER = { 'server', function(s) return s end },
  PSURVEY_CARBON_PORT = { 'port', function(s) return math.tointeger(tonumber(s)) or s end },
  PSURVEY_CARBON_PREFIX = { 'prefix', function(s) return s end },
  PSURVEY_CARBON_PROTOCOL = { 'protocol', function(s) return s end },
}

M.by_name = {}
for _, spec in ipairs(M.specs) do
  spec.env = 'PSURVEY_' .. spec.name:upper()
  spec.flag = not spec.code_only and '--' .. spec.name:gsub('_', '-') or nil
  spec.parse = spec.parse or function(s) return s end
  M.by_name[spec.name] = spec
end

--- Environment variables psurvey reads that are not options.
-- Read by the program, not options: PSURVEY_BIN (the psurvey the specs
-- run) and PSURVEY_CENSUS (at exit, name what the engine left open).
M.other_variables = { PSURVEY_BIN = true, PSURVEY_CENSUS = true }

local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- " (did you mean 'ncores'?)" for a near miss, else "".
function M.suggest(name, candidates)
  local best, bestd = nil, 3
  for _, c in ipairs(candidates) do
    local d = distance(name, c)
    if d < bestd then best, bestd = c, d end
  end
  return best and (" (did you mean '%s'?)"):format(best) or ''
end

local function names()
  local list = {}
  for _, spec in ipairs(M.specs) do list[#list + 1] = spec.name end
  return list
end

--- Checks a table of options given to `where` ('init' or 'map'); raises at level.
function M.check_table(opts, where, level)
  if opts == nil then return {} end
  if type(opts) ~= 'table' then
    errors.raise(("bad argument to '%s' (table of options expected, got %s)"):format(where, type(opts)), level + 1)
  end
  local out = {}
  for k, v in pairs(opts) do
    local spec = M.by_name[k]
    if type(k) ~= 'string' or spec == nil then
      errors.raise(("unknown option '%s' to %s()%s"):format(tostring(k), where, M.suggest(tostring(k), names())),
        level + 1)
    end
    if spec.scope == 'map' and where == 'init' then
      errors.raise(("option '%s' belongs to map(), not init()"):format(k), level + 1)
    end
    if spec.scope == 'init' and where == 'map' then
      errors.raise(("option '%s' belongs to init(), not map(): it describes the whole run"):format(k), level + 1)
    end
    local value, why = spec.check(v)
    if why then errors.raise(("option '%s' to %s(): %s"):format(k, where, why), level + 1) end
    out[k] = value
  end
  return out
end

--- Reads PSURVEY_* variables; raises on an unknown one or a bad value.
function M.from_env(getenv, env_names, level)
  local out = {}
  for _, var in ipairs(env_names) do
    local name = var:sub(#'PSURVEY_' + 1):lower()
    local spec = M.by_name[name]
    local part = carbon_parts[var]
    if part then
      local text = getenv(var)
      if text ~= nil and text ~= '' then
        out.carbon_parts = out.carbon_parts or {}
        out.carbon_parts[part[1]] = part[2](text)
      end
    elseif spec == nil and not M.other_variables[var] then
      local vars = {}
      for _, s in ipairs(M.specs) do vars[#vars + 1] = s.env end
      errors.raise(('unknown environment variable %s%s'):format(var, M.suggest(var, vars)), level + 1)
    end
    local text = getenv(var)
    -- An empty PSURVEY_X= is not set (as paramsurvey ignores PARAMSURVEY_X=):
    -- `PSURVEY_NCORES= psurvey s.lua` turns the variable off for one run.
    if spec and spec.code_only and text ~= nil and text ~= '' then
      errors.raise(("environment variable %s: option '%s' is a function: give it to map()"):format(var, name),
        level + 1)
    end
    if spec and text ~= nil and text ~= '' then
      local value, why = spec.parse(text)
      if why == nil then value, why = spec.check(value) end
      if why then errors.raise(('environment variable %s: %s'):format(var, why), level + 1) end
      out[name] = value
    end
  end
  if out.carbon_parts then
    -- The parts complete (and win over) a PSURVEY_CARBON table.
    local carbon = {}
    for k, v in pairs(out.carbon or {}) do carbon[k] = v end
    for k, v in pairs(out.carbon_parts) do carbon[k] = v end
    out.carbon_parts = nil
    local value, why = M.check_carbon(carbon)
    if why then
      errors.raise(('environment variables PSURVEY_CARBON_*: %s'):format(why:gsub("key '(%w+)'", function(k)
        return 'PSURVEY_CARBON_' .. k:upper()
      end)), level + 1)
    end
    out.carbon = value
  end
  return out
end

--- The effective options and where each came from.
function M.resolve(layers)
  local values, from = {}, {}
  for _, spec in ipairs(M.specs) do
    values[spec.name], from[spec.name] = spec.default, 'default'
    for _, layer in ipairs(layers) do
      local v = layer.values[spec.name]
      if v ~= nil and spec.merge and type(values[spec.name]) == 'table' then
        local merged = {}
        for k, x in pairs(values[spec.name]) do merged[k] = x end
        for k, x in pairs(v) do merged[k] = x end
        values[spec.name], from[spec.name] = merged, from[spec.name] .. ', ' .. layer.name
      elseif v ~= nil then
        values[spec.name], from[spec.name] = v, layer.name
      end
    end
  end
  return values, from
end

return M
