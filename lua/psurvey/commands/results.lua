--- psurvey results FILE|SCRIPT.lua: what a survey stored, without writing
--- code: its tables; a table's rows, filtered, sorted and cut; a summary
--- of each stage; the psets that failed and why; exports; what a pset
--- wrote.
local format = require('psurvey.format')
local options = require('psurvey.options')
local summary = require('psurvey.summary')
local common = require('psurvey.commands.common')

local say, usage_error = common.say, common.usage_error

local M = {
  usage = {
    'results FILE [--table NAME] [--summary | --failed [--full]]',
    '        [--csv | --jsonl] [--where EXPR] [--sort COL,-COL]',
    '        [--columns A,B] [--limit N]',
    'results FILE --table NAME --output INDEX',
    'results FILE --runs',
  },
  help = {
    { 'results FILE', 'list the tables of a database, one per map(); SCRIPT.lua for its .psurvey/SCRIPT.db' },
    { 'results FILE --table NAME', 'print one; --csv or --jsonl export it exactly (--table may be left out when'
      .. ' there is one stage); --output INDEX prints what pset INDEX wrote (its stdout to stdout, its stderr to'
      .. ' stderr)' },
    { 'results FILE --summary', 'each stage: rows by status, each column\'s types and range, run times' },
    { 'results FILE --failed', 'the psets that failed, with their values and messages; --full adds'
      .. ' tracebacks and output' },
    { '  --where EXPR', 'only the rows where EXPR, an SQL expression over the columns, is true'
      .. ' ("x > 2 AND _duration < 1"); it may only read' },
    { '  --sort COL,-COL', 'order rows by these columns, - for descending' },
    { '  --columns A,B', 'show or export these columns alone' },
    { '  --limit N', 'at most N rows' },
    { 'results FILE --runs', 'the runs that wrote the database: when, how they ended, their script, git commit,'
      .. ' note and tags' },
  },
}

-- The flags that take a value, and the field each fills.
local VALUED = { ['--table'] = 'table', ['--where'] = 'where', ['--sort'] = 'sort', ['--columns'] = 'columns',
  ['--limit'] = 'limit', ['--output'] = 'output' }
-- The flags alone, and the mode each chooses.
local MODES = { ['--csv'] = 'csv', ['--jsonl'] = 'jsonl', ['--summary'] = 'summary', ['--failed'] = 'failed' }

local function list_of(text)
  local out = {}
  for item in text:gmatch('[^,]+') do out[#out + 1] = item:match('^%s*(.-)%s*$') end
  return out
end

local function parse(argv)
  local alone = { ['--full'] = function(o) o.full = true end }
  for flag, mode in pairs(MODES) do
    alone[flag] = function(o)
      if o.mode and o.mode ~= mode then return ('--%s and %s do not go together'):format(o.mode, flag) end
      o.mode = mode
    end
  end
  local o, code = common.arguments(argv, 'results', VALUED, alone)
  if not o then return nil, code end
  if not o.file then return nil, usage_error('results: which database? psurvey results FILE (or SCRIPT.lua)') end
  if o.output then
    o.index = o.output:match('^%d+$') and tonumber(o.output)
    if not o.index or o.index < 1 then
      return nil, usage_error("results: option '--output' needs a pset index (1, 2, ...), got '%s'", o.output)
    end
    if o.mode then return nil, usage_error('results: --%s and --output do not go together', o.mode) end
    if not o.table then return nil, usage_error('results: --output needs --table NAME') end
  end
  if o.limit then
    o.limit = o.limit:match('^%d+$') and math.tointeger(tonumber(o.limit))
    if not o.limit or o.limit < 1 then
      return nil, usage_error("results: option '--limit' needs a count of rows (1, 2, ...)")
    end
  end
  if o.full and o.mode ~= 'failed' then return nil, usage_error('results: --full goes with --failed') end
  if o.mode == 'summary' and (o.where or o.sort or o.columns or o.limit) then
    return nil, usage_error('results: --summary describes whole stages: it takes no --where, --sort, --columns'
      .. ' or --limit')
  end
  o.query = { where = o.where, order = o.sort and list_of(o.sort), columns = o.columns and list_of(o.columns),
    limit = o.limit }
  for _, c in ipairs(o.query.columns or {}) do
    if c:sub(1, 1) == '_' then o.query.meta = true end
  end
  for _, c in ipairs(o.query.order or {}) do
    if not c:match('^%-?[^%-]') then return nil, usage_error("results: --sort: a column name, not '%s'", c) end
  end
  return o
end

-- The stages, in the order they were made; the set-aside rows of a
-- resume ('unmatched') are not stages of their own.
local function stages(store)
  local out = {}
  for _, s in ipairs(store:stages()) do
    if s.status ~= 'unmatched' then out[#out + 1] = s end
  end
  return out
end

local function table_names(store)
  local names = {}
  local cursor = store:query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
    .. ' ORDER BY name')
  for r in function() return cursor:next() end do names[#names + 1] = r.name end
  return names
end

-- The table the user named: a stage, or another table of the database
-- (an attempts table, _psurvey_runs). Raises with a did-you-mean.
local function find_table(store, file, name)
  local stage = store:stage_info(name)
  if stage then return stage.name, stage end
  local names = table_names(store)
  for _, n in ipairs(names) do
    if n:lower() == name:lower() then return n, nil end
  end
  local mine = {}
  for _, s in ipairs(stages(store)) do mine[#mine + 1] = s.name end
  error(("no table '%s' in %s%s; its stages: %s"):format(name, file, options.suggest(name, names),
    #mine > 0 and table.concat(mine, ', ') or 'none'), 0)
end

-- The stage a mode works on when --table is left out: the one there is.
local function only_stage(store, file, what)
  local all = stages(store)
  if #all == 1 then return all[1].name end
  local names = {}
  for _, s in ipairs(all) do names[#names + 1] = s.name end
  error(('%s needs --table NAME: %s has %s'):format(what, file,
    #all == 0 and 'no stages' or ('%d stages (%s)'):format(#all, table.concat(names, ', '))), 0)
end

local BLOCKS = { '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█' }

-- One line of Unicode blocks, a count each.
local function sparkline(counts)
  local top = 0
  for _, n in ipairs(counts) do top = math.max(top, n) end
  local out = {}
  for k, n in ipairs(counts) do
    out[k] = n == 0 and ' ' or BLOCKS[math.max(1, math.ceil(n / top * #BLOCKS))]
  end
  return table.concat(out)
end

local function shown(c, v)
  if v == nil then return '' end
  if c.types == 'boolean' then return v == 1 and 'true' or 'false' end
  if type(v) == 'string' and #v > 24 then return v:sub(1, 21) .. '...' end
  return format.value(v)
end

local function print_summary(store, name)
  local info = store:stage_info(name)
  local parts = {}
  for _, s in ipairs(summary.statuses(store, name)) do parts[#parts + 1] = ('%s %d'):format(s.status, s.count) end
  local stored = (info.ok or 0) + (info.failed or 0)
  io.stdout:write(('%s (%s): %d of %d psets stored%s\n'):format(name, info.status or '?', stored, info.total or 0,
    #parts > 0 and (': ' .. table.concat(parts, ', ')) or ''))
  local cols = summary.columns(store, name)
  local i = 0
  io.stdout:write(format.table({ 'column', 'role', 'type', 'min', 'max', 'distinct', 'top values' }, function()
    i = i + 1
    local c = cols[i]
    if not c then return nil end
    local top = {}
    for _, t in ipairs(c.top or {}) do top[#top + 1] = ('%s (%d)'):format(shown(c, t.value), t.count) end
    return { column = c.name, role = c.role, type = c.types, min = shown(c, not c.strings and c.min or nil),
      max = shown(c, not c.strings and c.max or nil), distinct = c.distinct, ['top values'] = table.concat(top, ', ') }
  end):gsub('\n', '\n  '):gsub('^', '  '), '\n')
  local rt = summary.runtime(store, name)
  if rt.count == 0 then
    io.stdout:write('  run time: no psets ran\n')
    return
  end
  io.stdout:write(('  run time of %d psets: mean %s, p25 %s, p50 %s, p75 %s, p90 %s, p99 %s, max %s\n'):format(
    rt.count, format.seconds(rt.mean), format.seconds(rt.p25), format.seconds(rt.p50), format.seconds(rt.p75),
    format.seconds(rt.p90), format.seconds(rt.p99), format.seconds(rt.max)))
  local h = summary.histogram(store, name, 30)
  io.stdout:write(('  %s %s %s\n'):format(format.seconds(h.lo), sparkline(h.counts), format.seconds(h.hi)))
end

local function indented(text, prefix)
  return prefix .. text:gsub('\n+$', ''):gsub('\n', '\n' .. prefix)
end

local function print_failed(store, name, o)
  local info = store:stage_info(name)
  local q = {}
  for k, v in pairs(o.query) do q[k] = v end
  q.columns, q.meta = nil, nil
  local cursor = store:cursor(name, 'missing', q)
  local keys = {}
  for _, c in ipairs(cursor:columns()) do
    if c:sub(1, 1) ~= '_' then keys[#keys + 1] = c end
  end
  if o.where then
    io.stdout:write(('%s: %d failed psets where %s (of %d failed, %d psets)\n'):format(name,
      store:count(name, 'missing', { where = o.where }), o.where, info.failed or 0, info.total or 0))
  else
    io.stdout:write(('%s: %d of %d psets failed\n'):format(name, info.failed or 0, info.total or 0))
  end
  for row in function() return cursor:next() end do
    local values = {}
    for _, k in ipairs(keys) do
      if row[k] ~= nil then values[#values + 1] = ('%s=%s'):format(k, format.value(row[k])) end
    end
    io.stdout:write(('#%d  %s\n'):format(row._index, table.concat(values, ', ')))
    io.stdout:write(indented(('%s: %s'):format(row._status, row._exception or ''), '    '), '\n')
    if o.full then
      if row._traceback and row._traceback ~= '' then io.stdout:write(indented(row._traceback, '    '), '\n') end
      local last = store:cursor(name, 'all', row._index):next()
      local out, err = store:output(name, row._index, last and last._attempt or 1)
      if out and out ~= '' then io.stdout:write('    stdout:\n', indented(out, '      '), '\n') end
      if err and err ~= '' then io.stdout:write('    stderr:\n', indented(err, '      '), '\n') end
    end
  end
end

local function print_stages(store)
  local rows = store:stages()
  for _, r in ipairs(rows) do r.created = os.date('%Y-%m-%d %H:%M:%S', math.floor(r.created or 0)) end
  local i = 0
  io.stdout:write(format.table({ 'name', 'status', 'total', 'ok', 'failed', 'created' },
    function() i = i + 1 return rows[i] end), '\n')
end

local function print_table(store, name, stage, o)
  local cursor = store:cursor(name, 'all', o.query)
  local keep = {}
  for _, c in ipairs(cursor:columns()) do
    -- A stage shows its keys and how each pset ended, unless --columns
    -- chose; another table (an attempts table, _psurvey_runs) every column.
    if o.query.columns or not stage or c:sub(1, 1) ~= '_' or c == '_status' or c == '_exception' then
      keep[#keep + 1] = c
    end
  end
  io.stdout:write(format.table(keep, function() return cursor:next() end), '\n')
end

-- The query's mistakes (a bad expression, an unknown column) are the
-- user's: found before anything is printed, and reported as a usage error.
local function check_query(store, name, o)
  -- One part at a time, so that the error names the option at fault.
  for _, part in ipairs({ { '--where', 'where' }, { '--sort', 'order' }, { '--columns', 'columns' } }) do
    local value = o.query[part[2]]
    if value ~= nil then
      local ok, e = pcall(store.cursor, store, name, 'all', { [part[2]] = value, meta = o.query.meta, limit = 1 })
      if not ok then error({ usage = ('%s: %s'):format(part[1], common.message(e)) }, 0) end
    end
  end
end

local function run(store, file, o)
  local name, stage
  if o.table then name, stage = find_table(store, file, o.table) end
  if name then check_query(store, name, o) end
  if o.mode == 'csv' or o.mode == 'jsonl' then
    name = name or only_stage(store, file, '--' .. o.mode)
    check_query(store, name, o)
    store:export(name, o.mode, nil, o.query)
  elseif o.index then
    local row = store:cursor(name, 'all', o.index):next()
    if not row then error(("table '%s' has no pset #%d"):format(name, o.index), 0) end
    local out, errout = store:output(name, o.index, row._attempt or 1)
    io.stdout:write(out or '')
    io.stderr:write(errout or '')
  elseif o.mode == 'summary' or o.mode == 'failed' then
    local show = o.mode == 'summary' and print_summary or print_failed
    if name then
      if not stage then error(("'%s' is not a stage's table: --%s reads stages"):format(name, o.mode), 0) end
      show(store, name, o)
    else
      for k, s in ipairs(stages(store)) do
        if k > 1 then io.stdout:write('\n') end
        check_query(store, s.name, o)
        show(store, s.name, o)
      end
    end
  elseif name then
    print_table(store, name, stage, o)
  elseif o.where or o.sort or o.columns or o.limit then
    name = only_stage(store, file, '--where, --sort, --columns and --limit')
    check_query(store, name, o)
    print_table(store, name, true, o)
  else
    print_stages(store)
  end
end

function M.run(argv)
  for i = 2, #argv do
    if argv[i] == '--runs' then return require('psurvey.commands.runs').run(argv) end
  end
  local o, code = parse(argv)
  if not o then return code end
  local store, path = common.open(o.file, 'results')
  if not store then return path end
  local ok, e = pcall(run, store, o.file, o)
  if not ok and type(e) == 'table' then return usage_error('results: %s', e.usage) end
  if not ok then
    say('results: %s', common.message(e))
    return 3
  end
  return 0
end

return M
