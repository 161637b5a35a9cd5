--- psurvey.report: a results database as one self-contained HTML page:
--- provenance (the runs and stages as _psurvey_runs and _psurvey_tables
--- hold them, whatever columns they have), then a section per stage: how
--- it ran (psurvey.report_stage) and what it found
--- (psurvey.report_results). Here: which stages, which keys the result
--- charts use (--x, --y, --z, or a default pick), and the page. Misuse of
--- the command (an unknown table or key) is an error value, not a raise.
local html = require('psurvey.html')
local stage = require('psurvey.report_stage')
local results = require('psurvey.report_results')
local options = require('psurvey.options')

local esc, rows, quote = html.esc, stage.rows, stage.quote
local M = {}

-- Columns holding a time since the epoch, shown as dates.
local TIMES = { started = true, finished = true, created = true }
-- Masks of _psurvey_columns.types (core/schema.h PS_M_*).
local M_BOOL, M_INT, M_FLOAT, M_NOT_NUMBER = 1, 2, 4, 8 | 16 | 32 | 64

local function is_numeric(types)
  types = math.tointeger(types) or 0
  return types & (M_BOOL | M_INT | M_FLOAT) ~= 0 and types & M_NOT_NUMBER == 0
end

--- The options text of a run or a stage ("name=value (source), ...") as
--- { name, value, source } triples; nil when it does not read so.
function M.options(text)
  if type(text) ~= 'string' then return nil end
  local out, pos, s = {}, 1, text .. ', '
  while pos <= #s do
    local name, start = s:match('^([%w_]+)=()', pos)
    if not name then return nil end
    -- The value ends at the first " (source), " that is followed by the
    -- next "name=" or by the end: a value may hold commas and parentheses.
    local e, found = start, nil
    while true do
      local a, b, src = s:find(' %(([%a ]+)%), ', e)
      if not a then break end
      if b == #s or s:match('^[%w_]+=', b + 1) then
        found = { a, b, src }
        break
      end
      e = a + 1
    end
    if not found then return nil end
    out[#out + 1] = { name = name, value = s:sub(start, found[1] - 1), source = found[3] }
    pos = found[2] + 1
  end
  return out
end

-- The options of a run or a stage: those set somewhere in a table, those
-- at their default in a second one, folded.
local function options_table(text)
  local opts = M.options(text)
  if not opts then return { html = '<pre>' .. esc(html.value(text, 4000)) .. '</pre>' } end
  local set, default = {}, {}
  for _, o in ipairs(opts) do
    local list = o.source == 'default' and default or set
    list[#list + 1] = ('<tr><td>%s</td><td class="wrap"><code>%s</code></td><td>%s</td></tr>'):format(esc(o.name),
      esc(html.value(o.value, 300)), esc(o.source))
  end
  local head = '<table><thead><tr><th>option</th><th>value</th><th>from</th></tr></thead><tbody>'
  local out = {}
  if #set > 0 then out[#out + 1] = head .. table.concat(set) .. '</tbody></table>' end
  if #default > 0 then
    out[#out + 1] = ('<details><summary>%d %s at %s default</summary>%s%s</tbody></table></details>'):format(
      #default, #default == 1 and 'option' or 'options', #default == 1 and 'its' or 'their', head,
      table.concat(default))
  end
  return { html = table.concat(out) }
end

-- A row of _psurvey_runs or _psurvey_tables as label-value pairs, in its
-- columns' order: every column there is, times as dates, blobs as sizes,
-- the options as a table; then the pairs of extra.
local function record(row, columns, skip, extra)
  local pairs_ = {}
  for _, c in ipairs(columns) do
    local v = row[c]
    if not (skip and skip[c]) and v ~= nil then
      if TIMES[c] and type(v) == 'number' then
        v = html.time(v)
      elseif c == 'options' then
        v = options_table(v)
      elseif type(v) == 'string' and not utf8.len(v) then
        v = ('%d bytes'):format(#v)
      end
      pairs_[#pairs_ + 1] = { c, v }
    end
  end
  for _, p in ipairs(extra or {}) do pairs_[#pairs_ + 1] = p end
  return html.kv(pairs_)
end

-- The runs that wrote the stages shown (all runs when none did).
local function provenance(store, stages, has)
  local runs, cols = {}, {}
  if has._psurvey_runs then runs, cols = rows(store, 'SELECT * FROM _psurvey_runs ORDER BY id') end
  local wanted = {}
  for _, st in ipairs(stages) do
    if st.info.run then wanted[st.info.run] = true end
  end
  local out = { '<section id="provenance"><h2>Provenance</h2>' }
  local shown = 0
  for _, r in ipairs(runs) do
    if next(wanted) == nil or wanted[r.id] then
      shown = shown + 1
      out[#out + 1] = ('<h3 id="run-%s">Run %s</h3>'):format(esc(r.id), esc(r.id))
      local extra = {}
      if type(r.started) == 'number' and type(r.finished) == 'number' then
        extra = { { 'took', html.duration(r.finished - r.started) } }
      end
      out[#out + 1] = record(r, cols, { id = true }, extra)
    end
  end
  if shown == 0 then out[#out + 1] = '<p class="note">No run is recorded in this database.</p>' end
  out[#out + 1] = '</section>\n'
  return table.concat(out)
end

-- The stage's columns (_psurvey_columns), and its attempts table if any.
local function describe(store, st)
  st.columns = rows(store, 'SELECT name, role, types FROM _psurvey_columns WHERE tbl = ?1 ORDER BY position',
    st.info.name)
  st.pset_keys, st.results = {}, {}
  for _, c in ipairs(st.columns) do
    c.numeric = is_numeric(c.types)
    if c.role == 'pset' then st.pset_keys[#st.pset_keys + 1] = c.name else st.results[#st.results + 1] = c end
  end
  local a = rows(store, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
    st.info.name .. '_attempts')[1]
  st.attempts = a and a.name
end

-- The names of the columns of list (the numeric ones), sorted.
local function names(list, numeric_only)
  local out = {}
  for _, c in ipairs(list) do
    if not numeric_only or c.numeric then out[#out + 1] = c.name end
  end
  table.sort(out)
  return out
end

-- How many distinct values column c has, counting up to 41.
local function distinct(store, st, c)
  return rows(store, ('SELECT count(*) AS n FROM (SELECT DISTINCT %s FROM %s WHERE %s IS NOT NULL LIMIT 41)')
    :format(quote(c.name), st.T, quote(c.name)))[1].n
end

-- The keys of the result charts: those asked for (an error value when one
-- is not there), else the two numeric pset keys with the most values
-- (at least two; keys of up to 40 other values next) and the first
-- numeric result that has a value, floats before integers, by name.
local function pick(store, st, want)
  local by = {}
  for _, c in ipairs(st.columns) do by[c.name] = c end
  local keys = {}
  for _, c in ipairs(st.columns) do
    if c.role == 'pset' then keys[#keys + 1] = c end
  end
  local p = {}
  for _, axis in ipairs({ 'x', 'y' }) do
    local name = want[axis]
    if name then
      local c = by[name]
      if not c or c.role ~= 'pset' then
        local list = names(keys)
        return nil, ("--%s: no pset key '%s' in table '%s'%s (its pset keys: %s)"):format(axis, name, st.info.name,
          options.suggest(name, list), #list > 0 and table.concat(list, ', ') or 'none')
      end
      if not c.numeric and distinct(store, st, c) > 40 then
        return nil, ("--%s: pset key '%s' of table '%s' is not a number and has more than 40 values"):format(axis,
          name, st.info.name)
      end
      p[axis] = c
    end
  end
  if p.x and p.y and p.x == p.y then return nil, ("--x and --y are the same key '%s'"):format(p.x.name) end
  if want.z then
    local c = by[want.z]
    if not c or c.role == 'pset' or not c.numeric then
      local list = names(st.results, true)
      return nil, ("--z: no numeric result '%s' in table '%s'%s (its numeric results: %s)"):format(want.z,
        st.info.name, options.suggest(want.z, list), #list > 0 and table.concat(list, ', ') or 'none')
    end
    p.z = c
  end
  -- The pset keys with several values: numeric ones first, then others
  -- with at most 40 (shown as bands), the most varied first (counted up
  -- to 41; ties in column order).
  local varied = {}
  for i, c in ipairs(keys) do
    if c ~= p.x and c ~= p.y then
      local n = distinct(store, st, c)
      if n >= 2 and (c.numeric or n <= 40) then varied[#varied + 1] = { c = c, n = n, i = i } end
    end
  end
  table.sort(varied, function(a, b)
    if a.c.numeric ~= b.c.numeric then return a.c.numeric end
    if a.n ~= b.n then return a.n > b.n end
    return a.i < b.i
  end)
  for _, v in ipairs(varied) do
    if not p.x then p.x = v.c elseif not p.y then p.y = v.c end
  end
  if not p.z then
    -- Floats first (integers are often counts kept on the side), then by name.
    local candidates = table.move(st.results, 1, #st.results, 1, {})
    local function float(c) return (math.tointeger(c.types) or 0) & M_FLOAT ~= 0 and 0 or 1 end
    table.sort(candidates, function(a, b)
      if float(a) ~= float(b) then return float(a) < float(b) end
      return a.name < b.name
    end)
    for _, c in ipairs(candidates) do
      if c.numeric and rows(store, ('SELECT 1 AS y FROM %s WHERE %s IS NOT NULL LIMIT 1'):format(st.T,
        quote(c.name)))[1] then
        p.z = c
        break
      end
    end
  end
  if not p.z then
    local ok = rows(store, ('SELECT 1 AS y FROM %s WHERE _status = \'ok\' LIMIT 1'):format(st.T))[1]
    p.why = not ok and 'No pset of this stage succeeded: there is no result to plot.'
      or #st.results == 0 and 'This stage stored no results.' or 'This stage has no numeric result with a value.'
  elseif not p.x then
    p.why = 'This stage has no pset key with more than one value to plot against.'
  end
  return p
end

--- The report of the database open in store (file is its path, for the
--- title) as HTML text. opts: table (one stage; default every stage), x,
--- y, z (column names). Returns the text, or nil and a message for a
--- table or a key that is not there.
function M.html(store, file, opts)
  local has = {}
  for _, r in ipairs(rows(store, "SELECT name FROM sqlite_master WHERE type = 'table'")) do has[r.name] = true end
  if not (has._psurvey_tables and has._psurvey_columns) then
    return nil, ("'%s' is not a psurvey results database"):format(file)
  end
  local infos, cols = rows(store, 'SELECT * FROM _psurvey_tables ORDER BY created, name')
  local stages = {}
  if opts.table then
    for _, info in ipairs(infos) do
      if info.name:lower() == opts.table:lower() then stages[1] = { info = info } end
    end
    if not stages[1] then
      local list = {}
      for _, info in ipairs(infos) do list[#list + 1] = info.name end
      return nil, ("no table '%s'%s (its tables: %s)"):format(opts.table, options.suggest(opts.table, list),
        #list > 0 and table.concat(list, ', ') or 'none')
    end
  else
    for _, info in ipairs(infos) do
      if has[info.name] then stages[#stages + 1] = { info = info } end
    end
  end
  if (opts.x or opts.y or opts.z) and #stages > 1 then
    return nil, '--x, --y and --z pick keys of one table: say which with --table'
  end
  for k, st in ipairs(stages) do
    st.store, st.id, st.T = store, 's' .. k, quote(st.info.name)
    describe(store, st)
    local p, why = pick(store, st, opts)
    if not p then return nil, why end
    st.pick = p
  end
  local title = file:match('([^/]*)$'):gsub('%.db$', '')
  local out = { ('<header><h1>psurvey report: %s</h1><p class="sub">%s · written %s</p>'):format(esc(title),
    esc(file), esc(html.time(os.time()))) }
  out[#out + 1] = '<nav><ul><li><a href="#provenance">Provenance</a></li>'
  for _, st in ipairs(stages) do
    out[#out + 1] = ('<li><a href="#%s">Stage %s</a> (%s psets, %s)</li>'):format(st.id, esc(st.info.name),
      esc(html.value(st.info.total)), esc(html.value(st.info.status)))
  end
  out[#out + 1] = '</ul></nav></header>\n'
  out[#out + 1] = provenance(store, stages, has)
  if #stages == 0 then out[#out + 1] = '<p class="note">This database holds no stage.</p>' end
  for _, st in ipairs(stages) do
    out[#out + 1] = ('<section id="%s" class="stage"><h2>Stage %s</h2>'):format(st.id, esc(st.info.name))
    out[#out + 1] = '<details><summary>How this stage ran</summary>'
      .. record(st.info, cols, { name = true }) .. '</details>'
    out[#out + 1] = stage.html(st)
    out[#out + 1] = results.html(st)
    out[#out + 1] = '</section>\n'
  end
  out[#out + 1] = ('<footer>Written by psurvey report from %s. Charts are SVG: hover a mark for its numbers.'
    .. '</footer>\n'):format(esc(file))
  return html.page('psurvey report: ' .. title, table.concat(out))
end

return M
