--- psurvey replay FILE TABLE INDEX: runs one stored pset again, in the
--- foreground, with the worker, sandbox and limits it ran with.
local format = require('psurvey.format')
local common = require('psurvey.commands.common')

local say, usage_error = common.say, common.usage_error

local M = {
  usage = { 'replay FILE TABLE INDEX' },
  help = { { 'replay FILE TABLE INDEX', 'run pset INDEX of TABLE again, in the foreground' } },
}

function M.run(argv)
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

return M

