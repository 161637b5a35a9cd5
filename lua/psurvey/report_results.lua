--- psurvey.report_results: what one stage (one map()) found, in a report:
--- a result against a pset key (a sample of points and the mean per value
--- or bin) and a heatmap of the result's mean over two pset keys, for the
--- keys psurvey.report picked. Values are counted, binned and sampled in
--- SQLite. Not here: how the stage ran (psurvey.report_stage).
local svg = require('psurvey.svg')
local html = require('psurvey.html')
local stage = require('psurvey.report_stage')

local esc = html.esc
local quote, rows, one = stage.quote, stage.rows, stage.one
local section, note, figure = stage.section, stage.note, stage.figure
local M = {}

-- Points of the scatter, sampled above this.
local MAX_POINTS = 2000
-- Bands of an axis: its distinct values up to this many, else bins.
local MAX_BANDS = 40

-- SQL that holds where column C (quoted) has a finite number: NULL, NaN
-- (stored NULL) and infinities are left out of the charts.
local function finite(C)
  return ('abs(%s) < 9e999'):format(C)
end

-- SQL that holds where axis a has a value to plot.
local function has(a)
  return a.numeric and finite(a.C) or (a.C .. ' IS NOT NULL')
end

-- An axis of the result charts for column c: numbers from lo to hi, or
-- bands of its distinct values when they are few or not numbers.
local function axis(s, c)
  local C = quote(c.name)
  local d = rows(s.store, ('SELECT DISTINCT %s AS v FROM %s WHERE %s IS NOT NULL ORDER BY 1 LIMIT %d'):format(C,
    s.T, C, MAX_BANDS + 1))
  local a = { name = c.name, C = C, numeric = c.numeric }
  if #d <= MAX_BANDS then
    a.values, a.pos = {}, {}
    for i, r in ipairs(d) do
      a.values[i] = html.value(r.v, 14)
      a.pos[r.v] = i
    end
  end
  if c.numeric then
    local m = one(s.store, ('SELECT min(%s) AS lo, max(%s) AS hi FROM %s WHERE %s'):format(C, C, s.T, finite(C)))
    a.lo, a.hi = m.lo, m.hi
  end
  return a
end

-- The bucket expression of an axis in SQL: its values, or bins of 30,
-- whose two parameters are appended to params.
local function bucket(a, params)
  if a.values then return a.C end
  local w = (a.hi - a.lo) / 30
  if w <= 0 then w = 1 end
  a.bin = w
  local k = #params
  params[k + 1], params[k + 2] = a.lo, w
  return ('min(max(CAST((%s - ?%d) / ?%d AS INTEGER), 0), 29)'):format(a.C, k + 1, k + 2)
end

-- The z result against the x pset key: a sample of points and the mean
-- of z per value (or bin) of x.
local function scatter(s, x, z)
  local id = s.id .. '-scatter'
  local Z = quote(z.name)
  local n = one(s.store, ('SELECT count(*) AS n, min(%s) AS lo, max(%s) AS hi FROM %s WHERE %s AND %s'):format(Z,
    Z, s.T, finite(Z), has(x)))
  if (n.n or 0) == 0 then
    return section(id, ('%s against %s'):format(z.name, x.name), note(('No pset has both %s and %s.'):format(
      x.name, z.name)))
  end
  local step = math.max(1, math.ceil(n.n / MAX_POINTS))
  local pts = rows(s.store, ('SELECT %s AS x, %s AS z, _index FROM %s WHERE %s AND %s'
    .. ' AND abs(coalesce(_hash, _index)) %% ?1 = 0 LIMIT %d'):format(x.C, Z, s.T, finite(Z), has(x), MAX_POINTS * 2),
    step)
  local xa
  if x.numeric then
    local pad = (x.hi - x.lo) * 0.03
    xa = { x.lo - pad, x.hi + pad, title = x.name }
  else
    xa = { bands = x.values, title = x.name }
  end
  local pad = (n.hi - n.lo) * 0.05
  local p = svg.plot({ id = id .. '-chart', label = ('%s against %s'):format(z.name, x.name), x = xa,
    y = { n.lo - pad, n.hi + pad, title = z.name } })
  local function xpos(v) return xa.bands and x.pos[v] or v end
  for _, q in ipairs(pts) do
    local X = xpos(q.x)
    if type(X) == 'number' and type(q.z) == 'number' then
      p:point(X, q.z, 3, svg.ok_colour, ('#%d: %s=%s, %s=%s'):format(q._index, x.name, html.value(q.x, 30), z.name,
        html.value(q.z)))
    end
  end
  -- The mean of z per value or bin of x.
  local params = {}
  local xe = bucket(x, params)
  local means = rows(s.store, ('SELECT %s AS b, avg(%s) AS x, avg(%s) AS m, count(*) AS n FROM %s WHERE %s AND %s'
    .. ' GROUP BY 1 ORDER BY 1'):format(xe, x.numeric and x.C or 'NULL', Z, s.T, finite(Z), has(x)),
    table.unpack(params))
  local line = {}
  for _, m in ipairs(means) do
    local X = xa.bands and x.pos[m.b] or m.x
    if type(X) == 'number' and type(m.m) == 'number' then line[#line + 1] = { X, m.m } end
  end
  if #line > 1 then p:line(line, svg.colours[2], 2, ('mean of %s per %s'):format(z.name, x.values and 'value' or
    'bin')) end
  return section(id, ('%s against %s'):format(z.name, x.name), html.legend({ { svg.ok_colour, 'a pset' },
    { svg.colours[2], ('mean of %s per %s of %s'):format(z.name, x.values and 'value' or 'bin', x.name) } })
    .. figure(p:svg(), ('%d of %d psets with %s%s.'):format(#pts, n.n, z.name, step > 1 and
    (', a sample of about one in %d'):format(step) or '')))
end

-- The mean of z over the x and y pset keys, one cell per pair of values
-- (or bins); cells where every pset failed are hatched.
local function heatmap(s, x, y, z)
  local id = s.id .. '-heatmap'
  local title = ('%s over %s and %s'):format(z.name, x.name, y.name)
  local Z = quote(z.name)
  local params = {}
  local xe = bucket(x, params)
  local ye = bucket(y, params)
  local ok = finite(Z)
  local cells = rows(s.store, ('SELECT %s AS bx, %s AS by, avg(CASE WHEN %s THEN %s END) AS m, count(CASE WHEN %s'
    .. ' THEN 1 END) AS n, count(*) AS total FROM %s WHERE %s AND %s GROUP BY 1, 2'):format(xe, ye, ok, Z, ok, s.T,
    has(x), has(y)), table.unpack(params))
  local function bands(a)
    if a.values then return a.values end
    local out = {}
    for i = 0, 29 do out[i + 1] = svg.num(a.lo + (i + 0.5) * a.bin) end
    return out
  end
  local function pos(a, b)
    if a.values then return a.pos[b] end
    return type(b) == 'number' and b + 1 or nil
  end
  local lo, hi = math.huge, -math.huge
  for _, c in ipairs(cells) do
    if type(c.m) == 'number' then lo, hi = math.min(lo, c.m), math.max(hi, c.m) end
  end
  if lo > hi then return section(id, title, note(('No pset has %s.'):format(z.name))) end
  local xb, yb = bands(x), bands(y)
  local p = svg.plot({ id = id .. '-chart', label = ('heatmap of %s'):format(title), left = 80,
    h = math.max(240, math.min(620, 60 + 22 * #yb)),
    x = { bands = xb, title = x.name .. (x.values and '' or ' (bins)') },
    y = { bands = yb, title = y.name .. (y.values and '' or ' (bins)') } })
  for _, c in ipairs(cells) do
    local i, j = pos(x, c.bx), pos(y, c.by)
    if i and j then
      local text = ('%s=%s, %s=%s: '):format(x.name, xb[i], y.name, yb[j])
      if type(c.m) == 'number' then
        local t = hi > lo and (c.m - lo) / (hi - lo) or 0.5
        p:rect(i - 0.5, i + 0.5, j - 0.5, j + 0.5, svg.viridis(t), text .. ('mean %s %s of %d psets%s'):format(
          z.name, svg.num(c.m), c.n, c.total > c.n and (', %d without it'):format(c.total - c.n) or ''))
      else
        p:rect(i - 0.5, i + 0.5, j - 0.5, j + 0.5, '#bbbbbb', text .. ('%d psets, none with %s'):format(c.total,
          z.name), ' stroke="#fff" stroke-width="1"')
      end
    end
  end
  return section(id, 'Heatmap: ' .. title, figure(p:svg(), ('Mean of %s in each cell; grey: psets without %s'
    .. ' (failed).'):format(z.name, z.name)) .. svg.colour_scale(id .. '-scale', lo, hi, 'mean ' .. z.name))
end

--- What the stage s found, as HTML: s holds store, id, T (as
--- psurvey.report_stage reads them) and pick ({ x, y, z } columns, or why
--- not, in why).
function M.html(s)
  local id = s.id .. '-results'
  local pick = s.pick
  if not pick.z then
    return section(id, 'Results', note(pick.why or 'This stage has no numeric result to plot.'))
  end
  if not pick.x then
    return section(id, 'Results', note(pick.why or 'This stage has no pset key to plot against.'))
  end
  local out = {}
  local x, z = axis(s, pick.x), pick.z
  out[#out + 1] = scatter(s, x, z)
  if pick.y then
    out[#out + 1] = heatmap(s, x, axis(s, pick.y), z)
  else
    out[#out + 1] = section(id .. '-heatmap-none', 'Heatmap', note('A heatmap needs two pset keys with several'
      .. ' values; this stage has one.'))
  end
  return ('<section id="%s"><h3>Results</h3><p class="note">%s</p>%s</section>\n'):format(id,
    esc(('%s against %s%s (choose with --x, --y, --z).'):format(z.name, pick.x.name, pick.y and (' and ' ..
    pick.y.name) or '')), table.concat(out))
end

return M
