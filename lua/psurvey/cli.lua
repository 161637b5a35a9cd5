--- psurvey.cli: the psurvey program's command line.
---
---   psurvey survey.lua [options] [-- args for the script]
---   psurvey COMMAND ...   (COMMANDS below; each is psurvey.commands.<name>)
---   psurvey -h | --help | -V | --version
---
--- Exit status: 0 all psets succeeded, 1 some failed, 2 bad usage, 3 the
--- script failed, 4 a map halted (its halt option), 128 + the signal that
--- stopped it (129 SIGHUP, 130 SIGINT, 143 SIGTERM).
local core = require('psurvey.core')
local options = require('psurvey.options')
local errors = require('psurvey.errors')
local common = require('psurvey.commands.common')

local say, usage_error = common.say, common.usage_error

local M = {}

-- The commands, in the order the help lists them: each is a module
-- psurvey.commands.<name> with usage (lines), help ({ flag, text } pairs)
-- and run(argv) -> exit status.
local COMMANDS = { 'results', 'diff', 'report', 'status', 'replay', 'gc' }

local function command(name)
  for _, c in ipairs(COMMANDS) do
    if c == name then return require('psurvey.commands.' .. name) end
  end
end

-- A command's usage line after `lead`; a line that starts with blanks
-- goes on with the one before it, under it.
local function usage_line(lead, u)
  if u:match('^%s') then return (' '):rep(#lead) .. u end
  return lead .. u
end

local function usage()
  local lines = { 'usage: psurvey survey.lua [options] [-- args for the script]' }
  for _, name in ipairs(COMMANDS) do
    for _, u in ipairs(command(name).usage) do lines[#lines + 1] = usage_line('       psurvey ', u) end
  end
  lines[#lines + 1] = '       psurvey --help | --version'
  return table.concat(lines, '\n')
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
    wrap('Run a parameter survey: SCRIPT.lua calls psurvey.map(worker, psets), which runs the worker once per'
      .. ' parameter set, in parallel, on this machine or ssh hosts, and keeps every result and every failure in'
      .. ' SQLite. Each option is also an environment variable, PSURVEY_<NAME>; the command line wins over it.',
      80, 0),
    '',
  }
  for _, name in ipairs(COMMANDS) do
    for _, u in ipairs(command(name).usage) do table.insert(out, #out - 1, usage_line('  or:  psurvey ', u)) end
  end
  out[#out + 1] = 'Options:'
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
  for _, name in ipairs(COMMANDS) do
    for _, h in ipairs(command(name).help) do add(h[1], h[2]) end
  end
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
      if spec.many and values[spec.name] then
        -- A flag given again adds to the table (--tag a=1 --tag b=2).
        for k, x in pairs(v) do values[spec.name][k] = x end
      else
        values[spec.name] = v
      end
    elseif script == nil then
      script = a
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return values, script, rest
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
    io.stderr:write(usage(), '\n')
    return 2
  end
  if first == '--help' or first == '-h' then return help() end
  if first == '--version' or first == '-V' then return version() end
  local cmd = command(first)
  if cmd then return cmd.run(argv) end
  local values, script, rest = parse(argv)
  if not values then return script end
  if script == nil then return usage_error('no survey script given') end
  local chunk, err = loadfile(script)
  if not chunk then
    say('%s', err)
    return 3
  end
  local psurvey = require('psurvey')
  psurvey._set_cli(values, script, table.move(argv, 0, #argv, 1, {}))
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
