--- psurvey.commands.common: what the commands of the psurvey program
--- share: how they speak to the user and how they find a database.
local core = require('psurvey.core')

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

--- An error raised by the engine, without the Lua position it carries.
function M.message(e)
  return (tostring(e):gsub('^[^:]*:%d+: ', ''))
end

return M
