--- psurvey results FILE|SCRIPT.lua: what a survey stored, without writing
--- code: its tables, a table's rows, exports, and what a pset wrote.
local format = require('psurvey.format')
local common = require('psurvey.commands.common')

local say, usage_error = common.say, common.usage_error

local M = {
  usage = { 'results FILE [--table NAME] [--csv | --jsonl | --output INDEX]' },
  help = {
    { 'results FILE', 'list the tables of a database, one per map()' },
    { 'results FILE --table NAME', 'print one; --csv or --jsonl export it exactly; --output INDEX prints what'
      .. ' pset INDEX wrote (its stdout to stdout, its stderr to stderr)' },
  },
}

function M.run(argv)
  for i = 2, #argv do
    if argv[i] == '--runs' then return require('psurvey.commands.runs').run(argv) end
  end
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
  local store, code = common.open(file, 'results')
  if not store then return code end
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
    say('results: %s', common.message(e))
    return 3
  end
  return 0
end


return M
