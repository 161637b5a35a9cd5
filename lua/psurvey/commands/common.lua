--- psurvey.commands.common: what the commands of the psurvey program
--- share: how they speak to the user and how they find a database.
local core = require('psurvey.core')
local options = require('psurvey.options')

local M = {}

--- Writes "psurvey: <message>" to stderr.
function M.say(fmt, ...)
  io.stderr:write('psurvey: ', fmt:format(...), '\n')
end

--- Says what is wrong with the command line; returns its exit status, 2.
function M.usage_error(fmt, ...)
  M.say(fmt, ...)
  io.stderr:write('(see psurvey --help)\n')
  return 2
end

--- The database a command was given: a database file, or a survey script
--- (name.lua), whose default database is .psurvey/<name>.db in the working
--- directory. Returns the store and its path, or nil and an exit status
--- after saying why.
function M.open(target, command)
  local path = target
  if target:match('%.lua$') then
    path = '.psurvey/' .. target:match('([^/]*)%.lua$') .. '.db'
    if not io.open(path, 'rb') then
      M.say("%s: no database for '%s' here: %s does not exist (has it run in this directory?)",
        command, target, path)
      return nil, 3
    end
  end
  local f = io.open(path, 'rb')
  if not f then
    M.say("%s: cannot open '%s'", command, path)
    return nil, 3
  end
  f:close()
  local store, err = core.store(path)
  if not store then
    M.say('%s: %s', command, err)
    return nil, 3
  end
  return store, path
end

--- Reads a command's arguments after argv[1]: `valued` maps each flag
--- that takes a value (`--flag V` or `--flag=V`) to its field, `alone`
--- each flag without one to a function(o, flag) that notes it (returning
--- a message to refuse it). The one other argument is o.file. Returns o,
--- or nil and exit status 2 after saying what is wrong.
function M.arguments(argv, command, valued, alone)
  local o = {}
  local i = 2
  while i <= #argv do
    local a = argv[i]
    local flag, value = a:match('^(%-%-[^=]+)=(.*)$')
    flag = flag or a
    if valued[flag] then
      if value == nil then
        i = i + 1
        value = argv[i]
      end
      if value == nil or value == '' then
        return nil, M.usage_error("%s: option '%s' needs a value", command, flag)
      end
      o[valued[flag]] = value
    elseif alone[a] then
      local why = alone[a](o, a)
      if why then return nil, M.usage_error('%s: %s', command, why) end
    elseif a:sub(1, 1) == '-' and a ~= '-' then
      local known = {}
      for f in pairs(valued) do known[#known + 1] = f end
      for f in pairs(alone) do known[#known + 1] = f end
      table.sort(known)
      return nil, M.usage_error("%s: unknown option '%s'%s", command, a, options.suggest(flag, known))
    elseif o.file == nil then
      o.file = a
    else
      return nil, M.usage_error("%s: one database at a time (got '%s' and '%s')", command, o.file, a)
    end
    i = i + 1
  end
  return o
end

--- An error raised by the engine, without the Lua position it carries.
function M.message(e)
  return (tostring(e):gsub('^[^:]*:%d+: ', ''))
end

return M
