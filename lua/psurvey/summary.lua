--- psurvey.summary: what a stored stage holds, measured in SQLite (never
--- row by row in Lua, so a million rows cost a few scans): rows by status,
--- each column's types and range, and the psets' run times.
---
---   summary.statuses(store, stage)          { { status = 'ok', count = n }, ... }, most first
---   summary.columns(store, stage)           { { name, role, types, min, max, distinct, top }, ... }
---   summary.runtime(store, stage [, where]) count, mean, min, max, p25 .. p99 (exact, seconds)
---   summary.histogram(store, stage, bins)   { lo, hi, counts = { ... } } of the run times
local M = {}

--- An SQL identifier: "name", its quotes doubled.
function M.ident(name)
  return '"' .. name:gsub('"', '""') .. '"'
end

local function rows(cursor)
  return function() return cursor:next() end
end

local function one(store, sql, ...)
  return store:query(sql, ...):next() or {}
end

function M.statuses(store, stage)
  local out = {}
  for r in rows(store:query(('SELECT _status AS status, count(*) AS count FROM %s GROUP BY _status'
    .. ' ORDER BY count DESC, status'):format(M.ident(stage)))) do
    out[#out + 1] = r
  end
  return out
end

-- The names of the kinds of value a column's mask (_psurvey_columns.types,
-- PS_M_* in core/schema.h) says it has held.
local KINDS = { { 1, 'boolean' }, { 2, 'integer' }, { 4, 'float' }, { 8, 'string' }, { 16, 'binary' },
  { 32, 'table' }, { 64, 'table' }, { 128, 'NaN' } }

local function kinds(mask)
  local names, seen = {}, {}
  for _, k in ipairs(KINDS) do
    if mask & k[1] ~= 0 and not seen[k[2]] then
      names[#names + 1] = k[2]
      seen[k[2]] = true
    end
  end
  return table.concat(names, '|')
end

--- The user's columns of a stage, in order: { name, role ('pset' or
--- 'result'), types ('integer|float'...), numeric (only numbers),
--- strings (only strings), min, max, distinct, top (for strings: the
--- most frequent values, { value, count }) }.
function M.columns(store, stage)
  local cols = {}
  for r in rows(store:query('SELECT name, role, types FROM _psurvey_columns WHERE tbl = ?1 ORDER BY position',
    stage)) do
    local mask = r.types or 0
    cols[#cols + 1] = { name = r.name, role = r.role, mask = mask, types = kinds(mask),
      numeric = mask ~= 0 and mask & ~(2 | 4 | 128 | 256) == 0, strings = mask & ~(8 | 256) == 0 and mask ~= 0 }
  end
  if #cols == 0 then return cols end
  -- One scan for every column's range and distinct count.
  local parts = {}
  for k, c in ipairs(cols) do
    local id = M.ident(c.name)
    parts[#parts + 1] = ('min(%s) AS "min%d", max(%s) AS "max%d", count(DISTINCT %s) AS "n%d"'):format(
      id, k, id, k, id, k)
  end
  local r = one(store, ('SELECT %s FROM %s'):format(table.concat(parts, ', '), M.ident(stage)))
  for k, c in ipairs(cols) do
    c.min, c.max, c.distinct = r['min' .. k], r['max' .. k], r['n' .. k] or 0
    if c.strings then
      c.top = {}
      for t in rows(store:query(('SELECT %s AS value, count(*) AS count FROM %s WHERE %s IS NOT NULL'
        .. ' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3'):format(M.ident(c.name), M.ident(stage), M.ident(c.name)))) do
        c.top[#c.top + 1] = t
      end
    end
  end
  return cols
end

--- Percentiles of column `col` (an SQL expression of psurvey's own) over
--- the `n` rows of `stage` where `where` holds, each the value of nearest
--- rank, from one sort: { [p] = value } for each p of `ps` (percent: 50,
--- 90...).
function M.percentiles(store, stage, col, where, n, ps)
  local ranks, want = {}, {}
  for _, p in ipairs(ps) do
    local rank = math.max(1, math.ceil(p / 100 * n))
    ranks[#ranks + 1] = rank
    want[rank] = want[rank] or {}
    table.insert(want[rank], p)
  end
  local out = {}
  local sql = ('SELECT rn, v FROM (SELECT %s AS v, row_number() OVER (ORDER BY %s) AS rn FROM %s WHERE %s)'
    .. ' WHERE rn IN (%s)'):format(col, col, M.ident(stage), where, table.concat(ranks, ','))
  for r in rows(store:query(sql)) do
    for _, p in ipairs(want[r.rn] or {}) do out[p] = r.v end
  end
  return out
end

--- The run times of the psets stored (those that succeeded and those that
--- failed; `where`, an SQL condition of psurvey's own, narrows them):
--- count, mean, min, max and the percentiles p25 .. p99, each the sample
--- of nearest rank, in seconds. { count = 0 } when none ran.
function M.runtime(store, stage, where)
  local cond = '_duration IS NOT NULL' .. (where and (' AND ' .. where) or '')
  local s = one(store, ('SELECT count(*) AS count, avg(_duration) AS mean, min(_duration) AS min,'
    .. ' max(_duration) AS max FROM %s WHERE %s'):format(M.ident(stage), cond))
  local out = { count = s.count or 0 }
  if out.count == 0 then return out end
  out.mean, out.min, out.max = s.mean, s.min, s.max
  for p, v in pairs(M.percentiles(store, stage, '_duration', cond, out.count, { 25, 50, 75, 90, 95, 99 })) do
    out['p' .. p] = v
  end
  return out
end

--- The run times in `bins` equal bins from the shortest to the longest.
function M.histogram(store, stage, bins)
  local t = M.ident(stage)
  local s = one(store, ('SELECT min(_duration) AS lo, max(_duration) AS hi FROM %s WHERE _duration IS NOT NULL')
    :format(t))
  local out = { lo = s.lo, hi = s.hi, counts = {} }
  for k = 1, bins do out.counts[k] = 0 end
  if s.lo == nil then return out end
  local width = (s.hi - s.lo) / bins
  if width <= 0 then
    out.counts[1] = one(store, ('SELECT count(*) AS n FROM %s WHERE _duration IS NOT NULL'):format(t)).n
    return out
  end
  for r in rows(store:query(('SELECT min(CAST((_duration - ?1) / ?2 AS INTEGER), ?3) AS b, count(*) AS n'
    .. ' FROM %s WHERE _duration IS NOT NULL GROUP BY 1'):format(t), s.lo, width, bins - 1)) do
    out.counts[r.b + 1] = r.n
  end
  return out
end

return M
