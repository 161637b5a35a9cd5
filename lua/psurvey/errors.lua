--- psurvey.errors: the user's mistakes (a bad option value, a database
--- another driver writes, a resume that does not match, hosts that cannot
--- be reached), raised as plain strings like any Lua error and known again
--- by their text, so that the psurvey program prints them alone and exits
--- with status 2, where an error of the survey script itself keeps its
--- traceback and status 3.
local M = {}

local known, count = {}, 0

--- Raises msg blaming the function `level` levels up, as error(msg, level)
--- does, and remembers it as a user error.
---@param msg string
---@param level integer|nil 1: the caller of raise; 0: no position
function M.raise(msg, level)
  level = level or 1
  local text = msg
  if level > 0 then
    local info = debug.getinfo(level + 1, 'Sl')
    if info and info.currentline and info.currentline > 0 then
      text = ('%s:%d: %s'):format(info.short_src, info.currentline, msg)
    end
  end
  if count < 1000 then
    known[text] = true
    count = count + 1
  end
  error(text, 0)
end

--- Whether e is an error raise() made.
function M.is_user(e)
  return type(e) == 'string' and known[e] == true
end

return M
