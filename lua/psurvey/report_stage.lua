--- psurvey.report_stage: how one stage (one map()) ran, in a report: its
--- counts and hosts, throughput over time, busy slots per worker, the
--- run-time histogram, failures and the slowest psets; and the helpers the
--- report's modules share to read. Every aggregate is one SQL statement
--- (store:query) that buckets or samples in SQLite, so a stage of a
--- million psets gives a few thousand rows to Lua at most. Not here: what
--- it found (psurvey.report_results), the page and provenance
--- (psurvey.report).
local stored = require('psurvey.summary')
local svg = require('psurvey.svg')
local html = require('psurvey.html')

local esc = html.esc
local M = {}

-- Buckets of the time charts and bins of the histogram, at most; fewer
-- for few psets (about twice the square root of their number).
local TIME_BUCKETS, BUSY_BUCKETS, HIST_BINS = 60, 80, 40

local function buckets(most, n)
  return math.max(5, math.min(most, math.ceil(2 * math.sqrt(n))))
end
-- Lanes of the busy chart, one per worker up to this many (else one per host).
local MAX_LANES = 40

--- A table or column name quoted for SQL.
M.quote = stored.ident
local quote = M.quote

--- All rows of a query (small by construction), and its columns.
function M.rows(store, sql, ...)
  local c = store:query(sql, ...)
  local cols = c:columns()
  local out = {}
  while true do
    local r = c:next()
    if not r then break end
    out[#out + 1] = r
  end
  c:close()
  return out, cols
end
local rows = M.rows

--- The first row of a query, or an empty table.
function M.one(store, sql, ...)
  return rows(store, sql, ...)[1] or {}
end
local one = M.one

-- The unit of a time axis that spans `span` seconds: its divisor and name.
local function time_unit(span)
  if span >= 3 * 3600 then return 3600, 'h' end
  if span >= 300 then return 60, 'min' end
  if span < 0.5 then return 1e-3, 'ms' end
  return 1, 's'
end

--- A section of the page: its id, its title, its body (HTML).
function M.section(id, title, body)
  return ('<section id="%s"><h3>%s</h3>%s</section>\n'):format(id, esc(title), body)
end
local section = M.section

--- A paragraph of plain text, escaped.
function M.note(text)
  return '<p class="note">' .. esc(text) .. '</p>'
end
local note = M.note

--- A chart (SVG text) and its caption (plain text).
function M.figure(svgtext, caption)
  return '<figure>' .. svgtext .. '<figcaption>' .. esc(caption) .. '</figcaption></figure>'
end
local figure = M.figure

-- Counts, times and hosts of the stage.
local function summary(s)
  local o = s.overview
  local items = {
    { tostring(s.info.total or o.n), 'psets' },
    { tostring(o.ok), 'succeeded' },
    { tostring(o.n - o.ok), 'failed', bad = o.n > o.ok },
  }
  if o.t0 and o.t1 then items[#items + 1] = { html.duration(o.t1 - o.t0), 'from first start to last end' } end
  if o.busy and o.n > 0 then items[#items + 1] = { html.duration(o.busy / o.n), 'mean run time' } end
  local out = { html.stats(items) }
  local hosts = rows(s.store, ('SELECT _host AS host, count(*) AS psets, coalesce(sum(_status = \'ok\'), 0) AS ok,'
    .. ' count(DISTINCT _worker) AS workers, sum(_duration) AS busy FROM %s WHERE _status IS NOT NULL'
    .. ' GROUP BY 1 ORDER BY 2 DESC LIMIT 50'):format(s.T))
  if #hosts > 0 then
    for _, h in ipairs(hosts) do h.busy = h.busy and html.duration(h.busy) end
    out[#out + 1] = html.table({ 'host', 'workers', 'psets', 'ok', 'busy' }, hosts,
      { busy = 'busy (sum of run times)', workers = 'worker ids' })
  end
  return section(s.id .. '-summary', 'Summary', table.concat(out))
end

-- Psets finished per second, in buckets of the stage's time, the failed
-- stacked over the succeeded.
local function throughput(s)
  local o = s.overview
  if not (o.t0 and o.t1) or o.ended == 0 then
    return section(s.id .. '-throughput', 'Throughput', note('No pset has finished in this stage.'))
  end
  local span = math.max(o.t1 - o.t0, 1e-6)
  local nb = buckets(TIME_BUCKETS, o.ended)
  local w = span / nb
  local data = rows(s.store, ('SELECT min(CAST((_end - ?1) / ?2 AS INTEGER), ?3 - 1) AS b, count(*) AS n,'
    .. ' coalesce(sum(_status = \'ok\'), 0) AS ok FROM %s WHERE _end IS NOT NULL GROUP BY 1'):format(s.T),
    o.t0, w, nb)
  local div, unit = time_unit(span)
  local top = 0
  for _, d in ipairs(data) do top = math.max(top, d.n / w) end
  local p = svg.plot({ id = s.id .. '-throughput-chart', label = 'psets finished per second over time',
    x = { 0, span / div, title = ('time since the first start (%s)'):format(unit) },
    y = { 0, top * 1.08, title = 'psets finished per second' } })
  for _, d in ipairs(data) do
    local b = math.max(0, d.b)
    local x0, x1 = b * w / div, (b + 1) * w / div
    local text = ('%s–%s %s: %d finished (%d failed), %s/s'):format(svg.num(x0), svg.num(x1), unit, d.n,
      d.n - d.ok, svg.num(d.n / w))
    if d.ok > 0 then p:rect(x0, x1, 0, d.ok / w, svg.ok_colour, text) end
    if d.n > d.ok then p:rect(x0, x1, d.ok / w, d.n / w, svg.fail_colour, text) end
  end
  return section(s.id .. '-throughput', 'Throughput over time', html.legend({ { svg.ok_colour, 'succeeded' },
    { svg.fail_colour, 'failed' } }) .. figure(p:svg(), ('%d psets finished over %s, in %d buckets of %s.'):format(
    o.ended, html.duration(span), nb, html.duration(w))))
end

-- How busy each worker (or each host, when workers are many) was, in
-- buckets of time: a pset's run time is split over the buckets it spans.
local function busy(s)
  local o = s.overview
  if not (o.t0 and o.t1) or o.ended == 0 then
    return section(s.id .. '-busy', 'Busy slots', note('No pset has run in this stage.'))
  end
  local nworkers = one(s.store, ('SELECT count(*) AS n FROM (SELECT DISTINCT _host, _worker FROM %s'
    .. ' WHERE _start IS NOT NULL)'):format(s.T)).n or 0
  local per_worker = nworkers <= MAX_LANES
  local span = math.max(o.t1 - o.t0, 1e-6)
  local nb = buckets(BUSY_BUCKETS, o.ended)
  local w = span / nb
  local data = rows(s.store, ([[
WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ?3 - 1),
r AS (SELECT _host AS h, %s AS w, _start AS s, _end AS e,
        min(CAST((_start - ?1) / ?2 AS INTEGER), ?3 - 1) AS b0, min(CAST((_end - ?1) / ?2 AS INTEGER), ?3 - 1) AS b1
      FROM %s WHERE _start IS NOT NULL AND _end IS NOT NULL AND _end >= _start)
SELECT b, h, w, sum(busy) AS busy FROM (
  SELECT b0 AS b, h, w, e - s AS busy FROM r WHERE b0 = b1
  UNION ALL
  SELECT k.i, h, w, min(e, ?1 + (k.i + 1) * ?2) - max(s, ?1 + k.i * ?2) FROM r JOIN k ON k.i BETWEEN r.b0 AND r.b1
  WHERE r.b0 < r.b1)
GROUP BY b, h, w ORDER BY h, w, b]]):format(per_worker and '_worker' or 'NULL', s.T), o.t0, w, nb)
  -- The lanes, in order of host then worker, and their capacity in slots.
  local lanes, index, hosts, host_colour = {}, {}, {}, {}
  for _, d in ipairs(data) do
    local key = tostring(d.h) .. '\0' .. tostring(d.w)
    if not index[key] then
      lanes[#lanes + 1] = { h = d.h, w = d.w, peak = 0 }
      index[key] = #lanes
      if not host_colour[tostring(d.h)] then
        hosts[#hosts + 1] = tostring(d.h)
        host_colour[tostring(d.h)] = svg.colours[(#hosts - 1) % #svg.colours + 1]
      end
    end
    local lane = lanes[index[key]]
    lane.peak = math.max(lane.peak, d.busy / w)
  end
  local bands = {}
  for i, lane in ipairs(lanes) do
    lane.cap = per_worker and 1 or math.max(1, math.ceil(lane.peak - 1e-9))
    bands[i] = per_worker and ('%s · %s'):format(lane.h or '?', lane.w or '?')
      or ('%s (%d slots)'):format(lane.h or '?', lane.cap)
  end
  local div, unit = time_unit(span)
  local p = svg.plot({ id = s.id .. '-busy-chart', label = 'busy slots per worker over time',
    h = 70 + 18 * math.max(#lanes, 1), left = 130,
    x = { 0, span / div, title = ('time since the first start (%s)'):format(unit) },
    y = { bands = bands, title = per_worker and 'worker' or 'host' } })
  for _, d in ipairs(data) do
    local i = index[tostring(d.h) .. '\0' .. tostring(d.w)]
    local lane = lanes[i]
    local frac = math.min(1, d.busy / (w * lane.cap))
    if frac > 0.005 then
      local x0, x1 = d.b * w / div, (d.b + 1) * w / div
      local text = ('%s: %s–%s %s, %s'):format(bands[i], svg.num(x0), svg.num(x1), unit,
        per_worker and ('%d%% busy'):format(math.floor(frac * 100 + 0.5))
        or ('%s busy slots'):format(svg.num(d.busy / w)))
      p:rect(x0, x1, i - 0.4, i + 0.4, host_colour[tostring(d.h)], text,
        (' fill-opacity="%.2f"'):format(0.15 + 0.85 * frac))
    end
  end
  local legend = {}
  for _, h in ipairs(hosts) do legend[#legend + 1] = { host_colour[h], h } end
  local caption = per_worker
    and ('One lane per worker (%d); the darker, the busier: the share of each bucket of %s spent running psets.')
      :format(#lanes, html.duration(w))
    or ('%d workers, shown as one lane per host; the darker, the more of its slots were busy in each bucket of %s.')
      :format(nworkers, html.duration(w))
  return section(s.id .. '-busy', 'Busy slots per worker and host', html.legend(legend)
    .. figure(p:svg(), caption))
end

-- The histogram of run times, on a log scale when they span more than
-- two decades, with p50, p90 and p99 marked.
local function runtime(s)
  local id = s.id .. '-runtime'
  local r = one(s.store, ('SELECT count(*) AS n, min(_duration) AS lo, max(_duration) AS hi,'
    .. ' min(CASE WHEN _duration > 0 THEN _duration END) AS pos FROM %s WHERE _duration IS NOT NULL'):format(s.T))
  if (r.n or 0) == 0 then return section(id, 'Run time', note('No pset has a run time in this stage.')) end
  -- A log scale when the run times above zero span two decades (and
  -- SQLite has its math functions, SQLITE_ENABLE_MATH_FUNCTIONS); a run
  -- time of zero (too short for the clock) goes in the first bin.
  local log = r.pos and r.hi / r.pos > 100 and pcall(one, s.store, 'SELECT log(10) AS v')
  local nb = buckets(HIST_BINS, r.n)
  local lo, hi = r.lo, r.hi
  if log then lo, hi = math.log(r.pos, 10), math.log(hi, 10) end
  if hi <= lo then hi = lo + (log and 0.1 or math.max(lo * 0.1, 1e-6)) end
  local w = (hi - lo) / nb
  local v = log and 'CASE WHEN _duration > 0 THEN log(_duration) / log(10) ELSE ?1 END' or '_duration'
  local data = rows(s.store, ('SELECT min(max(CAST((%s - ?1) / ?2 AS INTEGER), 0), ?3 - 1) AS b, count(*) AS n,'
    .. ' coalesce(sum(_status = \'ok\'), 0) AS ok FROM %s WHERE _duration IS NOT NULL GROUP BY 1'):format(v, s.T),
    lo, w, nb)
  local top = 0
  for _, d in ipairs(data) do top = math.max(top, d.n) end
  local pct = stored.percentiles(s.store, s.info.name, '_duration', '_duration IS NOT NULL', r.n, { 50, 90, 99 })
  local function fmt(x) return html.duration(log and 10 ^ x or x) end
  local ticks
  if log then
    ticks = {}
    for k = math.floor(lo), math.ceil(hi) do ticks[#ticks + 1] = k end
  end
  local p = svg.plot({ id = id .. '-chart', label = 'histogram of pset run times',
    x = { lo, hi, title = log and 'run time (log scale)' or 'run time', ticks = ticks, format = fmt },
    y = { 0, top * 1.15, title = 'psets' } })
  for _, d in ipairs(data) do
    local x0, x1 = lo + d.b * w, lo + (d.b + 1) * w
    local text = ('%s to %s: %d psets (%d failed)'):format(fmt(x0), fmt(x1), d.n, d.n - d.ok)
    if d.ok > 0 then p:rect(x0, x1, 0, d.ok, svg.ok_colour, text) end
    if d.n > d.ok then p:rect(x0, x1, d.ok, d.n, svg.fail_colour, text) end
  end
  local items = {}
  for _, q in ipairs({ 50, 90, 99 }) do
    if pct[q] then
      local x = log and (pct[q] > 0 and math.log(pct[q], 10) or lo) or pct[q]
      p:vline(x, '#1a1a1a', ('p%d'):format(q))
      items[#items + 1] = { html.duration(pct[q]), ('p%d'):format(q) }
    end
  end
  table.insert(items, 1, { html.duration(r.lo), 'min' })
  if log and r.lo == 0 then items[#items + 1] = { html.duration(r.pos), 'least above 0' } end
  items[#items + 1] = { html.duration(r.hi), 'max' }
  return section(id, 'Run time', html.stats(items) .. html.legend({ { svg.ok_colour, 'succeeded' },
    { svg.fail_colour, 'failed' } }) .. figure(p:svg(), ('Run time (_duration) of %d psets in %d bins%s;'
    .. ' dashed lines at the 50th, 90th and 99th percentiles.'):format(r.n, nb, log and ' of equal ratio' or '')))
end

-- A pset as "key=value, ..." from a row holding its keys.
local function pset_text(s, row)
  local parts = {}
  for _, k in ipairs(s.pset_keys) do
    if row[k] ~= nil then parts[#parts + 1] = k .. '=' .. html.value(row[k], 40) end
  end
  return table.concat(parts, ', ')
end

local function examples_html(s, list)
  local out = {}
  for _, r in ipairs(list) do
    out[#out + 1] = ('<div class="mono">#%s %s</div>'):format(esc(r._index), esc(pset_text(s, r)))
  end
  return table.concat(out)
end

-- The 30 largest groups of the rows of T where `where` holds, by kind
-- (SQL) and message (SQL: its first 300 bytes): { kind, msg, n, first
-- (the least _index), groups (how many there are in all), ... (more, SQL
-- aggregates) }; and the first three rows of each (the columns cols, in
-- the order `order`) by kind .. '\0' .. msg. The examples are read from
-- the rows of those groups alone: however many failures differ, one sort
-- of a few rows.
local function grouped(s, T, kind, message, where, more, cols, order)
  local msg = ("substr(coalesce(%s, ''), 1, 300)"):format(message)
  local groups = rows(s.store, ('SELECT %s AS kind, %s AS msg, count(*) AS n, min(_index) AS first%s,'
    .. ' count(*) OVER () AS groups FROM %s WHERE %s GROUP BY 1, 2 ORDER BY 3 DESC, 4 LIMIT 30'):format(kind, msg,
    more, T, where))
  local by = {}
  if #groups == 0 then return groups, by end
  local marks, params = {}, {}
  for i, g in ipairs(groups) do
    marks[i], params[i] = '?' .. i, g.msg
  end
  -- Aliases start with '_', as no pset key does.
  local ex = rows(s.store, ('SELECT * FROM (SELECT %s AS _kind, %s AS _msg, %s, row_number() OVER (PARTITION BY'
    .. ' %s, %s ORDER BY %s) AS _rn FROM %s WHERE %s AND %s IN (%s)) WHERE _rn <= 3'):format(kind, msg, cols, kind,
    msg, order, T, where, msg, table.concat(marks, ', ')), table.unpack(params))
  for _, e in ipairs(ex) do
    local k = tostring(e._kind) .. '\0' .. tostring(e._msg)
    by[k] = by[k] or {}
    table.insert(by[k], e)
  end
  return groups, by
end

-- Failed psets grouped by status and message, with a few examples each;
-- then the failed attempts of the stage's attempts table, grouped alike.
local function failures(s)
  local id = s.id .. '-failures'
  local cols = { '_index' }
  for _, k in ipairs(s.pset_keys) do cols[#cols + 1] = quote(k) end
  local groups, by = grouped(s, s.T, '_status', '_exception', "_status <> 'ok'", '', table.concat(cols, ', '),
    '_index')
  local out = {}
  if #groups == 0 then
    out[#out + 1] = note('No pset failed.')
  else
    for _, g in ipairs(groups) do
      g.examples = { html = examples_html(s, by[tostring(g.kind) .. '\0' .. tostring(g.msg)] or {}) }
      g.msg = { html = '<pre>' .. esc(html.value(g.msg, 300)) .. '</pre>' }
    end
    out[#out + 1] = html.table({ 'n', 'kind', 'msg', 'examples' }, groups,
      { n = 'psets', kind = 'status', msg = 'message', examples = 'first psets' })
    local total = groups[1].groups
    if total > #groups then out[#out + 1] = note(('%d more groups not shown.'):format(total - #groups)) end
  end
  if s.attempts then
    local att, aby = grouped(s, quote(s.attempts), 'kind', 'message', '1', ', count(DISTINCT _index) AS psets',
      '_index, attempt', '_index, attempt')
    out[#out + 1] = '<h4>Failed attempts</h4>'
    if #att == 0 then
      out[#out + 1] = note('No attempt failed.')
    else
      for _, g in ipairs(att) do
        local list = {}
        for _, e in ipairs(aby[tostring(g.kind) .. '\0' .. tostring(g.msg)] or {}) do
          list[#list + 1] = ('#%s (attempt %s)'):format(html.value(e._index), html.value(e.attempt))
        end
        g.examples = table.concat(list, ', ')
        g.msg = { html = '<pre>' .. esc(html.value(g.msg, 300)) .. '</pre>' }
      end
      out[#out + 1] = html.table({ 'n', 'psets', 'kind', 'msg', 'examples' }, att,
        { n = 'attempts', kind = 'kind', msg = 'message', examples = 'first attempts' })
      if att[1].groups > #att then out[#out + 1] = note(('%d more groups not shown.'):format(att[1].groups - #att)) end
      out[#out + 1] = note(('From the table %s: every attempt that failed, retried or not.'):format(s.attempts))
    end
  end
  return section(id, 'Failures', table.concat(out))
end

-- The ten psets that ran longest.
local function slowest(s)
  local id = s.id .. '-slowest'
  local data = rows(s.store, ('SELECT * FROM %s WHERE _duration IS NOT NULL ORDER BY _duration DESC, _index'
    .. ' LIMIT 10'):format(s.T))
  if #data == 0 then return section(id, 'Slowest psets', note('No pset has a run time in this stage.')) end
  local cols = { '_index' }
  for _, k in ipairs(s.pset_keys) do cols[#cols + 1] = k end
  for _, k in ipairs({ '_status', '_duration', '_cpu', '_host', '_worker', '_attempt' }) do cols[#cols + 1] = k end
  for _, d in ipairs(data) do
    d._duration = html.duration(d._duration)
    d._cpu = d._cpu and html.duration(d._cpu)
  end
  local heads = { _index = 'pset', _status = 'status', _duration = 'run time', _cpu = 'CPU', _host = 'host',
    _worker = 'worker', _attempt = 'attempts' }
  return section(id, 'Slowest psets', html.table(cols, data, heads))
end

--- How one stage ran, as HTML: s holds store, info (its _psurvey_tables
--- row), id (the section's id), T (its quoted table), pset_keys and
--- attempts (the attempts table's name or nil). Sets s.overview.
function M.html(s)
  s.overview = one(s.store, ('SELECT count(*) AS n, coalesce(sum(_status = \'ok\'), 0) AS ok, min(_start) AS t0,'
    .. ' max(_end) AS t1, count(_end) AS ended, sum(_duration) AS busy FROM %s WHERE _status IS NOT NULL')
    :format(s.T))
  local parts = { summary(s), throughput(s), busy(s), runtime(s), failures(s), slowest(s) }
  return table.concat(parts)
end

return M
