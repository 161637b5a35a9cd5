--- psurvey.cli: the psurvey program's command line.
---
---   psurvey survey.lua [options] [-- args for the script]
---   psurvey results FILE [--table NAME] [--csv | --jsonl | --output INDEX]
---   psurvey -h | --help | -V | --version
---
--- Exit status: 0 all psets succeeded, 1 some failed, 2 bad usage, 3 the
--- script failed, 4 a map halted (its halt option), 128 + the signal that
--- stopped it (129 SIGHUP, 130 SIGINT, 143 SIGTERM).
local core = require('psurvey.core')
local options = require('psurvey.options')
local format = require('psurvey.format')
local errors = require('psurvey.errors')

local M = {}

local USAGE = [[
usage: psurvey survey.lua [options] [-- args for the script]
       psurvey results FILE [--table NAME] [--csv | --jsonl | --output INDEX]
       psurvey replay FILE TABLE INDEX
       psurvey --help | --version]]

local function say(fmt, ...)
  io.stderr:write('psurvey: ', fmt:format(...), '\n')
end

local function usage_error(fmt, ...)
  say(fmt, ...)
  io.stderr:write('(see psurvey --help)\n')
  return 2
end

-- Text wrapped to `width` columns, continuation lines indented by `indent`.
local function wrap(text, width, indent)
  local lines, line = {}, ''
  for word in text:gmatch('%S+') do
    if line ~= '' and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = (' '):rep(indent) .. word
    else
      line = line == '' and word or (line .. ' ' .. word)
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, '\n')
end

local HELP_EXAMPLES = {
  { 'psurvey sweep.lua', 'run sweep.lua; results go to .psurvey/sweep.db' },
  { 'psurvey sweep.lua --ncores 8 --resume', 'run on 8 workers, skipping the psets already stored' },
  { 'psurvey sweep.lua --dry-run', 'show what each map() would run, and run nothing' },
  { 'psurvey sweep.lua --halt now,fail=5 -q', 'stop a map at its 5th failure; print only failures' },
  { 'psurvey results .psurvey/sweep.db', 'list the tables, one per map()' },
  { 'psurvey results .psurvey/sweep.db --table stage1 --csv', 'export a table exactly' },
}

local function help()
  local out = {
    'Usage: psurvey SCRIPT.lua [OPTION]... [-- ARG...]',
    '  or:  psurvey results FILE [--table NAME] [--csv | --jsonl | --output INDEX]',
    '  or:  psurvey replay FILE TABLE INDEX',
    wrap('Run a parameter survey: SCRIPT.lua calls psurvey.map(worker, psets), which runs the worker once per'
      .. ' parameter set, in parallel, on this machine or ssh hosts, and keeps every result and every failure in'
      .. ' SQLite. Each option is also an environment variable, PSURVEY_<NAME>; the command line wins over it.',
      80, 0),
    '',
    'Options:',
  }
  local function add(flag, text)
    local head = ('  %-26s'):format(flag)
    if #head > 28 then
      out[#out + 1] = head
      head = (' '):rep(28)
    end
    local body = wrap(text, 80 - 30, 0)
    local first = true
    for line in (body .. '\n'):gmatch('(.-)\n') do
      out[#out + 1] = (first and (head .. '  ') or (' '):rep(30)) .. line
      first = false
    end
  end
  for _, spec in ipairs(options.specs) do
    if spec.name ~= 'user' and spec.name ~= 'name' and spec.flag then
      add(spec.flag .. (spec.arg ~= '' and (' ' .. spec.arg) or ''), spec.help)
    end
  end
  add('-q, --quiet', 'no progress and no statistics (--verbose 0 --vstats 0); a map with failures still ends'
    .. ' with one line')
  add('-h, --help', 'display this help and exit')
  add('-V, --version', 'output version information and exit')
  out[#out + 1] = ''
  out[#out + 1] = wrap('map() options without a flag: name (PSURVEY_NAME), user (PSURVEY_USER, a Lua literal),'
    .. ' on_result (a function). Precedence: the command line, the environment, map(), init(), the default.', 80, 0)
  out[#out + 1] = ''
  out[#out + 1] = 'Commands:'
  add('results FILE', 'list the tables of a database, one per map()')
  add('results FILE --table NAME', 'print one; --csv or --jsonl export it exactly; --output INDEX prints what'
    .. ' pset INDEX wrote (its stdout to stdout, its stderr to stderr)')
  add('replay FILE TABLE INDEX', 'run pset INDEX of TABLE again, in the foreground')
  out[#out + 1] = ''
  out[#out + 1] = 'Examples:'
  for _, e in ipairs(HELP_EXAMPLES) do
    out[#out + 1] = '  ' .. e[1]
    out[#out + 1] = (' '):rep(6) .. e[2]
  end
  out[#out + 1] = ''
  out[#out + 1] = 'Exit status:'
  for _, st in ipairs({ { '0', 'every pset succeeded' }, { '1', 'some psets failed' },
    { '2', 'a usage error or another mistake of the user\'s (a bad option value...)' },
    { '3', 'the survey script raised an error' }, { '4', 'a map halted (its halt option)' },
    { '129, 130, 143', 'stopped by SIGHUP, SIGINT (Ctrl-C) or SIGTERM; what finished is stored' } }) do
    add(st[1], st[2])
  end
  io.stdout:write(table.concat(out, '\n'), '\n')
  return 0
end

local function version()
  io.stdout:write(('psurvey %s (%s, libuv %s, SQLite %s)\n'):format(core.version, _VERSION,
    core.libuv_version, core.sqlite_version))
  return 0
end

--- Parses psurvey's own options; returns values, script, script args, or nil and an exit code.
local function parse(argv)
  local values, script, rest = {}, nil, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == '--' then
      table.move(argv, i + 1, #argv, #rest + 1, rest)
      break
    elseif a == '-q' or a == '--quiet' then
      -- No progress and no statistics; a map's one-line summary of its
      -- failures still shows.
      values.verbose, values.vstats = 0, 0
    elseif script == nil and a:match('^%-.') and a:sub(1, 2) ~= '--' then
      -- A short option psurvey does not have, before the script: not a
      -- script's name.
      return nil, usage_error("unknown option '%s'", a)
    elseif a:sub(1, 2) == '--' then
      local flag, value = a:match('^(%-%-[^=]+)=(.*)$')
      flag = flag or a
      local spec
      for _, s in ipairs(options.specs) do
        if s.flag == flag and s.name ~= 'user' and s.name ~= 'name' then spec = s end
      end
      if not spec then
        local flags = {}
        for _, s in ipairs(options.specs) do
          if s.flag then flags[#flags + 1] = s.flag end
        end
        return nil, usage_error("unknown option '%s'%s", flag, options.suggest(flag, flags))
      end
      if value == nil and spec.bare then
        -- `--resume done-and-failed` as well as `--resume=done-and-failed`,
        -- but a script argument that is not a mode is left alone.
        if argv[i + 1] and spec.bare_values[argv[i + 1]] then
          i = i + 1
          value = argv[i]
        else
          value = spec.bare
        end
      elseif value == nil then
        i = i + 1
        value = argv[i]
        if value == nil then return nil, usage_error("option '%s' needs a value (%s)", flag, spec.arg) end
      end
      local v, why = spec.parse(value)
      if why == nil then v, why = spec.check(v) end
      if why then return nil, usage_error("option '%s': %s", flag, why) end
      values[spec.name] = v
    elseif script == nil then
      script = a
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return values, script, rest
end

local function results_command(argv)
  local file, tbl, fmt, output = nil, nil, nil, nil
  local i = 2
  while i <= #argv do
    local a = argv[i]
    if a == '--table' then
      i = i + 1
      tbl = argv[i]
      if not tbl then return usage_error("option '--table' needs a table name") end
    elseif a:match('^%-%-table=') then
      tbl = a:sub(9)
    elseif a == '--csv' or a == '--jsonl' then
      fmt = a:sub(3)
    elseif a == '--output' or a:match('^%-%-output=') then
      local v = a:match('^%-%-output=(.*)')
      if not v then
        i = i + 1
        v = argv[i]
      end
      output = v and v:match('^%d+$') and tonumber(v)
      if not output or output < 1 then
        return usage_error("option '--output' needs a pset index (1, 2, ...), got %s",
          v and ("'" .. v .. "'") or 'nothing')
      end
    elseif a:sub(1, 1) == '-' then
      return usage_error("unknown option '%s' to 'results'", a)
    elseif file == nil then
      file = a
    else
      return usage_error("'results' takes one database file")
    end
    i = i + 1
  end
  if not file then return usage_error('results: which database? psurvey results FILE') end
  local f = io.open(file, 'rb')
  if not f then
    say("results: cannot open '%s'", file)
    return 3
  end
  f:close()
  local store, err = core.store(file)
  if not store then
    say('results: %s', err)
    return 3
  end
  if fmt and output then return usage_error('results: --%s and --output do not go together', fmt) end
  if not tbl then
    if fmt then return usage_error('results: --%s needs --table NAME', fmt) end
    if output then return usage_error('results: --output needs --table NAME') end
    local rows = store:stages()
    for _, r in ipairs(rows) do r.created = os.date('%Y-%m-%d %H:%M:%S', math.floor(r.created or 0)) end
    local i2 = 0
    io.stdout:write(format.table({ 'name', 'status', 'total', 'ok', 'failed', 'created' },
      function() i2 = i2 + 1 return rows[i2] end), '\n')
    return 0
  end
  local ok, e = pcall(function()
    if fmt then
      store:export(tbl, fmt)
    elseif output then
      local stage = store:stage_info(tbl)
      if not stage then error(("no table '%s'"):format(tbl), 0) end
      local row = store:cursor(stage.name, 'all', output):next()
      if not row then error(("table '%s' has no pset #%d"):format(stage.name, output), 0) end
      local out, errout = store:output(stage.name, output, row._attempt or 1)
      io.stdout:write(out or '')
      io.stderr:write(errout or '')
    else
      local cursor = store:cursor(tbl, 'all')
      local cols = cursor:columns()
      -- A stage shows its keys and how each pset ended; another table
      -- (an attempts table, _psurvey_runs) every column it has.
      local stage = store:stage_info(tbl)
      local keep = {}
      for _, c in ipairs(cols) do
        if not stage or c:sub(1, 1) ~= '_' or c == '_status' or c == '_exception' then keep[#keep + 1] = c end
      end
      io.stdout:write(format.table(keep, function() return cursor:next() end), '\n')
    end
  end)
  if not ok then
    say('results: %s', tostring(e):gsub('^[^:]*:%d+: ', ''))
    return 3
  end
  return 0
end

local function replay_command(argv)
  local file, tbl, index = argv[2], argv[3], math.tointeger(tonumber(argv[4] or ''))
  if not (file and tbl and index) or index < 1 or argv[5] then
    return usage_error('usage: psurvey replay FILE TABLE INDEX (INDEX as in the _index column)')
  end
  local psurvey = require('psurvey')
  local ok, row, pset = pcall(psurvey._replay, file, tbl, index)
  psurvey.shutdown()
  if not ok then
    say('replay: %s', tostring(row))
    return 3
  end
  local shown = {}
  for k, v in pairs(pset) do shown[#shown + 1] = ('%s=%s'):format(k, format.value(v)) end
  table.sort(shown)
  io.stdout:write(('pset #%d of %s: %s\n'):format(index, tbl, table.concat(shown, ', ')))
  if row._status == 'ok' then
    local keys = {}
    for k in pairs(row) do
      if pset[k] == nil and k:sub(1, 1) ~= '_' then keys[#keys + 1] = k end
    end
    table.sort(keys)
    io.stdout:write(('ok in %s\n'):format(format.seconds(row._duration or 0)))
    for _, k in ipairs(keys) do io.stdout:write(('  %s = %s\n'):format(k, format.value(row[k]))) end
    return 0
  end
  io.stdout:write(('%s: %s\n'):format(row._status, row._exception or ''))
  if row._traceback and row._traceback ~= '' then io.stdout:write(row._traceback, '\n') end
  return 1
end

local function traceback(e)
  if type(e) == 'table' then return e end
  -- The user's mistake (a bad option, a busy database): the message alone.
  if errors.is_user(e) then return { user = true, message = e } end
  return debug.traceback(tostring(e), 2)
end

function M.main(argv)
  local first = argv[1]
  if first == nil then
    io.stderr:write(USAGE, '\n')
    return 2
  end
  if first == '--help' or first == '-h' then return help() end
  if first == '--version' or first == '-V' then return version() end
  if first == 'results' then return results_command(argv) end
  if first == 'replay' then return replay_command(argv) end
  local values, script, rest = parse(argv)
  if not values then return script end
  if script == nil then return usage_error('no survey script given') end
  local chunk, err = loadfile(script)
  if not chunk then
    say('%s', err)
    return 3
  end
  local psurvey = require('psurvey')
  psurvey._set_cli(values, script)
  _G.arg = { [0] = script, [-1] = argv[0] }
  table.move(rest, 1, #rest, 1, _G.arg)
  local ok, e = xpcall(chunk, traceback, table.unpack(rest))
  local code, status = 0, 'done'
  if not ok then
    if type(e) == 'table' and e.user then
      say('%s', e.message)
      code, status = 2, 'error'
    elseif type(e) == 'table' and e.interrupted then
      say('%s', e.message)
      -- 128 + the signal, as a shell reports it: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.
      code, status = 128 + (math.tointeger(e.interrupted) or 2), 'interrupted'
    elseif type(e) == 'table' and e.halted then
      say('%s', e.message)
      code, status = 4, 'halted'
    else
      say('%s', tostring(e))
      code, status = 3, 'error'
    end
  elseif psurvey._failed() then
    code, status = 1, 'failed'
  end
  psurvey.shutdown(status)
  return code
end

return M
