--- psurvey report FILE|SCRIPT.lua: a results database as one
--- self-contained HTML page (psurvey.report): provenance, throughput,
--- busy workers, run times, failures, the slowest psets and the results.
local report = require('psurvey.report')
local common = require('psurvey.commands.common')

local say, usage_error = common.say, common.usage_error

local M = {
  usage = { 'report FILE [--table NAME] [-o OUT] [--x KEY --y KEY --z RESULT]' },
  help = {
    { 'report FILE', 'write one self-contained HTML page (no scripts, nothing loaded from elsewhere) on every'
      .. ' stage of FILE (a database, or SCRIPT.lua for .psurvey/SCRIPT.db): provenance, throughput, busy'
      .. ' workers, run times, failures, the slowest psets, and a result over the pset keys. It goes to'
      .. ' NAME.html in the working directory for FILE NAME.db; -o OUT.html names another' },
    { 'report FILE --table NAME', 'the report of one stage; --x KEY and --y KEY pick its pset keys,'
      .. ' --z RESULT its result (default: the two numeric pset keys with the most values, and the first'
      .. ' numeric result, floats before integers, by name)' },
  },
}

local VALUED = { ['--table'] = 'table', ['-o'] = 'output', ['--output'] = 'output', ['--x'] = 'x', ['--y'] = 'y',
  ['--z'] = 'z' }

function M.run(argv)
  local opts, code = common.arguments(argv, 'report', VALUED, {})
  if not opts then return code end
  local file = opts.file
  if not file then return usage_error('report: which database? psurvey report FILE') end
  local store, path = common.open(file, 'report')
  if not store then return path end
  local out = opts.output or (path:match('([^/]*)$'):gsub('%.db$', '') .. '.html')
  local ok, text, why = pcall(report.html, store, path, opts)
  store:close()
  if not ok then
    say('report: %s', common.message(text))
    return 3
  end
  if not text then return usage_error('report: %s', why) end
  -- Written beside it, then renamed: a report is never seen half written.
  local tmp = out .. '.tmp'
  local f, err = io.open(tmp, 'wb')
  local ok2 = f ~= nil
  if f then
    ok2, err = f:write(text)
    if ok2 then
      ok2, err = f:close()
    else
      f:close()
    end
  end
  if ok2 then ok2, err = os.rename(tmp, out) end
  if not ok2 then
    if f then os.remove(tmp) end
    say('report: cannot write the report: %s', err)
    return 3
  end
  io.stderr:write(('psurvey: report: wrote %s (%d KiB)\n'):format(out, (#text + 1023) // 1024))
  return 0
end

return M
