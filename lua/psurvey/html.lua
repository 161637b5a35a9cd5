--- psurvey.html: the page of a report around its sections: the document,
--- its style sheet (system fonts, print-friendly), tables of rows, and
--- values, times and durations as people read them, every string escaped.
--- Not here: what the sections hold (psurvey.report) or the charts
--- (psurvey.svg).
local svg = require('psurvey.svg')
local format = require('psurvey.format')

local esc = svg.esc
local M = { esc = esc }

local CSS = [[
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans",
  sans-serif; color: #1a1a1a; background: #fff; margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 62rem;
  line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 2px solid #0072b2; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
p.sub, p.note, figcaption { color: #555; font-size: .9rem; }
nav ul { padding-left: 1.2rem; margin: .4rem 0; columns: 2; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: .85rem; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f6f6; padding: .4rem .6rem; margin: .2rem 0; }
table { border-collapse: collapse; margin: .3rem 0 1rem; font-size: .85rem; }
th, td { text-align: left; padding: .2rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 11rem; background: none; }
td.wrap { max-width: 34rem; overflow-wrap: anywhere; }
.null { color: #999; }
figure { margin: .4rem 0 1rem; }
svg.chart, svg.scale { max-width: 100%; height: auto; display: block; }
svg text { font-family: inherit; font-size: 11px; fill: #333; }
svg text.atitle { font-size: 12px; font-weight: 600; fill: #1a1a1a; }
svg text.mlabel { font-size: 10px; fill: #1a1a1a; }
svg .grid line { stroke: #e4e4e4; stroke-width: 1; }
svg .axis line { stroke: #444; stroke-width: 1; }
.legend span { display: inline-block; margin-right: 1.2rem; font-size: .85rem; }
.legend b { margin-right: .3rem; font-size: 1rem; }
.stat { display: inline-block; margin: 0 1.4rem .4rem 0; }
.stat b { display: block; font-size: 1.25rem; font-variant-numeric: tabular-nums; }
.stat span { color: #555; font-size: .8rem; }
.bad { color: #b03a00; }
footer { margin-top: 3rem; color: #777; font-size: .8rem; }
@media print { body { max-width: none; padding: 0; font-size: 11pt; } h2 { break-before: page; }
  figure, table { break-inside: avoid; } }
]]

--- The whole document around body, a string.
function M.page(title, body)
  return table.concat({
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
    '<meta name="generator" content="psurvey report">\n',
    '<title>', esc(title), '</title>\n<style>', CSS, '</style>\n</head>\n<body>\n', body, '</body>\n</html>\n',
  })
end

--- A time since the epoch as a UTC date and time.
function M.time(t)
  if type(t) ~= 'number' then return '' end
  return os.date('!%Y-%m-%d %H:%M:%S', math.floor(t)) .. ' UTC'
end

--- A duration in seconds as people read it: 412 ms, 3.2 s, 5 min 12 s, 2 h 5 min.
function M.duration(s)
  if type(s) ~= 'number' or s ~= s then return '' end
  if s < 0 then return '-' .. M.duration(-s) end
  if s == 0 then return '0 s' end
  if s < 1e-3 then return ('%.3g µs'):format(s * 1e6) end
  if s < 1 then return ('%.3g ms'):format(s * 1e3) end
  if s < 60 then return ('%.3g s'):format(s) end
  if s < 3600 then return ('%d min %d s'):format(s // 60, math.floor(s % 60)) end
  if s < 86400 then return ('%d h %d min'):format(s // 3600, math.floor(s % 3600 / 60)) end
  return ('%d d %d h'):format(s // 86400, math.floor(s % 86400 / 3600))
end

--- A stored value as text: numbers as psurvey prints them (floats to 6
--- significant digits), text cut to `width` characters, bytes that are not
--- UTF-8 as their count.
function M.value(v, width)
  local t = type(v)
  if v == nil then return '' end
  if t == 'number' then return format.value(v) end
  if t == 'boolean' then return tostring(v) end
  v = tostring(v)
  local n = utf8.len(v)
  if not n then return ('(%d bytes)'):format(#v) end
  width = width or 200
  if n > width then return v:sub(1, utf8.offset(v, width) - 1) .. '…' end
  return v
end

--- One cell: its value escaped, numbers right-aligned, nil shown faint.
function M.cell(v, width)
  if v == nil then return '<td class="null">–</td>' end
  if type(v) == 'number' then return '<td class="n">' .. esc(M.value(v)) .. '</td>' end
  return '<td class="wrap">' .. esc(M.value(v, width)) .. '</td>'
end

--- A table of rows under columns ({ name, ... }; headers are the names, or
--- heads[name]). rows is an array of row tables.
function M.table(columns, rows, heads, class)
  if #rows == 0 then return '' end
  local out = { class and ('<table class="%s"><thead><tr>'):format(class) or '<table><thead><tr>' }
  for _, c in ipairs(columns) do out[#out + 1] = '<th>' .. esc(heads and heads[c] or c) .. '</th>' end
  out[#out + 1] = '</tr></thead><tbody>'
  for _, r in ipairs(rows) do
    out[#out + 1] = '<tr>'
    for _, c in ipairs(columns) do
      local v = r[c]
      out[#out + 1] = type(v) == 'table' and ('<td>' .. v.html .. '</td>') or M.cell(v)
    end
    out[#out + 1] = '</tr>'
  end
  out[#out + 1] = '</tbody></table>'
  return table.concat(out)
end

--- A two-column table of { label, value } pairs; a value may be { html = ... }.
function M.kv(pairs_)
  if #pairs_ == 0 then return '' end
  local out = { '<table class="kv"><tbody>' }
  for _, p in ipairs(pairs_) do
    local v = p[2]
    out[#out + 1] = '<tr><th>' .. esc(p[1]) .. '</th>'
      .. (type(v) == 'table' and ('<td class="wrap">' .. v.html .. '</td>')
        or type(v) == 'number' and ('<td>' .. esc(M.value(v)) .. '</td>') or M.cell(v, 400)) .. '</tr>'
  end
  out[#out + 1] = '</tbody></table>'
  return table.concat(out)
end

--- Big numbers in a row: { { value text, label }, ... }.
function M.stats(items)
  local out = { '<div class="stats">' }
  for _, it in ipairs(items) do
    out[#out + 1] = ('<div class="stat"><b%s>%s</b><span>%s</span></div>'):format(it.bad and ' class="bad"' or '',
      esc(it[1]), esc(it[2]))
  end
  out[#out + 1] = '</div>'
  return table.concat(out)
end

--- A legend of colours: { { colour, label }, ... }.
function M.legend(items)
  local out = { '<p class="legend">' }
  for _, it in ipairs(items) do
    out[#out + 1] = ('<span><b style="color:%s">&#9632;</b>%s</span>'):format(it[1], esc(it[2]))
  end
  out[#out + 1] = '</p>'
  return table.concat(out)
end

return M
