--- psurvey.svg: the few chart primitives of a report, as inline SVG text:
--- a plot with two axes (numbers, or bands of labels), its ticks, grid
--- and axis titles, and marks placed in data coordinates (rectangles,
--- points, lines), each with an optional <title> tooltip. No scripts, no
--- fonts, no external references. Not here: what is drawn (psurvey.report).
local M = {}

local ENTITIES = { ['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;', ["'"] = '&#39;' }

--- Text escaped for HTML and XML, attributes included. Control
--- characters, which neither may hold, are shown as \ddd.
---@param s any
---@return string
function M.esc(s)
  return (tostring(s):gsub('[&<>"\'%z\1-\8\11\12\14-\31\127]', function(c)
    return ENTITIES[c] or ('\\' .. c:byte())
  end))
end
local esc = M.esc

-- A coordinate in pixels, short: one decimal.
local function px(v)
  local s = ('%.1f'):format(v)
  return (s:gsub('%.0$', ''))
end

--- A number for a tick or a tooltip: up to 4 significant digits, without
--- a trailing ".0" or exponent for ordinary magnitudes.
---@param v number
---@return string
function M.num(v)
  if type(v) ~= 'number' then return tostring(v) end
  if math.abs(v) >= 1e4 and math.abs(v) < 1e15 then
    -- 48000 -> 48k, 1500000 -> 1.5M
    for _, u in ipairs({ { 1e12, 'T' }, { 1e9, 'G' }, { 1e6, 'M' }, { 1e3, 'k' } }) do
      if math.abs(v) >= u[1] then return ('%.4g'):format(v / u[1]) .. u[2] end
    end
  end
  if math.type(v) == 'integer' then return tostring(v) end
  if v ~= v then return 'NaN' end
  if v == math.huge or v == -math.huge then return v > 0 and 'inf' or '-inf' end
  local a = math.abs(v)
  if a ~= 0 and (a >= 1e15 or a < 1e-3) then return ('%.3g'):format(v) end
  local s = ('%.4g'):format(v)
  if s:find('e') then s = ('%.4f'):format(v):gsub('0+$', ''):gsub('%.$', '') end
  return s
end

--- About n round tick values from lo to hi (1, 2 or 5 times a power of ten apart).
---@return number[]
function M.ticks(lo, hi, n)
  if hi <= lo then return { lo } end
  local raw = (hi - lo) / (n or 5)
  local p = 10 ^ math.floor(math.log(raw, 10))
  local step = p
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * p >= raw then
      step = m * p
      break
    end
  end
  local out = {}
  local k = math.ceil(lo / step - 1e-9)
  while k * step <= hi + step * 1e-9 do
    local v = k * step
    if math.abs(v) < step * 1e-9 then v = 0 end
    out[#out + 1] = v
    k = k + 1
  end
  return out
end

-- The colours, chosen to stay apart in print and in grey: Okabe and Ito's.
M.colours = { '#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000' }
M.fail_colour = '#d55e00'
M.ok_colour = '#0072b2'

-- Viridis at 9 stops, for a value from 0 to 1: light to dark stays
-- readable in grey.
local VIRIDIS = { { 68, 1, 84 }, { 71, 44, 122 }, { 59, 81, 139 }, { 44, 113, 142 }, { 33, 144, 141 },
  { 39, 173, 129 }, { 92, 200, 99 }, { 170, 220, 50 }, { 253, 231, 37 } }

--- The colour of t in [0, 1] on the viridis scale, as #rrggbb.
function M.viridis(t)
  if t ~= t then t = 0 end
  t = math.max(0, math.min(1, t)) * (#VIRIDIS - 1)
  local i = math.min(#VIRIDIS - 2, math.floor(t))
  local f = t - i
  local a, b = VIRIDIS[i + 1], VIRIDIS[i + 2]
  return ('#%02x%02x%02x'):format(math.floor(a[1] + (b[1] - a[1]) * f + 0.5),
    math.floor(a[2] + (b[2] - a[2]) * f + 0.5), math.floor(a[3] + (b[3] - a[3]) * f + 0.5))
end

local Plot = {}
Plot.__index = Plot

-- An axis: { lo, hi, title } for numbers, or { bands = { label, ... },
-- title } for labelled bands, band i centred on the value i.
local function axis_of(a)
  if a.bands then
    return { lo = 0.5, hi = #a.bands + 0.5, bands = a.bands, title = a.title }
  end
  local lo, hi = a[1] or a.lo, a[2] or a.hi
  if hi <= lo then
    local d = lo == 0 and 1 or math.abs(lo) * 0.1
    lo, hi = lo - d, hi + d
  end
  return { lo = lo, hi = hi, title = a.title, ticks = a.ticks, format = a.format }
end

--- A new plot: opts.id, opts.label (what a screen reader says),
--- opts.w, opts.h (pixels), opts.x and opts.y (axes, as axis_of reads
--- them), opts.left (room for the y labels).
function M.plot(opts)
  local p = setmetatable({
    id = opts.id, label = opts.label, w = opts.w or 760, h = opts.h or 280,
    x = axis_of(opts.x), y = axis_of(opts.y), marks = {}, legend = opts.legend,
  }, Plot)
  p.l, p.r, p.t, p.b = opts.left or 64, opts.right or 16, 12, 46
  return p
end

--- Pixel x of the data value x.
function Plot:px(x)
  local a = self.x
  return self.l + (x - a.lo) / (a.hi - a.lo) * (self.w - self.l - self.r)
end

--- Pixel y of the data value y (up is larger).
function Plot:py(y)
  local a = self.y
  return self.h - self.b - (y - a.lo) / (a.hi - a.lo) * (self.h - self.t - self.b)
end

local function tip(text)
  return text and ('<title>' .. esc(text) .. '</title>') or ''
end

local function mark(self, s)
  self.marks[#self.marks + 1] = s
end

--- A rectangle from (x0, y0) to (x1, y1) in data coordinates.
function Plot:rect(x0, x1, y0, y1, fill, text, extra)
  local a, b = self:px(x0), self:px(x1)
  local c, d = self:py(y1), self:py(y0)
  if b - a < 0.5 then b = a + 0.5 end
  mark(self, ('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"%s>%s</rect>'):format(px(a), px(c),
    px(b - a), px(math.max(d - c, 0)), fill, extra or '', tip(text)))
end

--- A point at (x, y).
function Plot:point(x, y, r, fill, text)
  mark(self, ('<circle cx="%s" cy="%s" r="%s" fill="%s" fill-opacity="0.6">%s</circle>'):format(px(self:px(x)),
    px(self:py(y)), px(r), fill, tip(text)))
end

--- A line through the points { {x, y}, ... }.
function Plot:line(points, stroke, width, text)
  local parts = {}
  for _, q in ipairs(points) do parts[#parts + 1] = px(self:px(q[1])) .. ',' .. px(self:py(q[2])) end
  mark(self, ('<polyline points="%s" fill="none" stroke="%s" stroke-width="%s">%s</polyline>'):format(
    table.concat(parts, ' '), stroke, width or 2, tip(text)))
end

--- A vertical marker at x across the plot, labelled at its top.
function Plot:vline(x, stroke, label)
  local X = px(self:px(x))
  mark(self, ('<g class="marker"><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="4 3"/>'
    .. '<text x="%s" y="%s" text-anchor="middle" class="mlabel">%s</text></g>'):format(X, px(self.t + 10), X,
    px(self.h - self.b), stroke, X, px(self.t + 6), esc(label)))
end

-- The ticks of a numeric axis, with their labels.
local function numeric_ticks(a, n)
  local out = {}
  for _, v in ipairs(a.ticks or M.ticks(a.lo, a.hi, n)) do
    if v >= a.lo - 1e-9 * (a.hi - a.lo) and v <= a.hi + 1e-9 * (a.hi - a.lo) then
      out[#out + 1] = { v, (a.format or M.num)(v) }
    end
  end
  return out
end

-- The ticks of a band axis: every band, or every k-th when they are many.
local function band_ticks(a, room)
  local out, k = {}, math.max(1, math.ceil(#a.bands / room))
  for i = 1, #a.bands, k do out[#out + 1] = { i, a.bands[i] } end
  return out
end

local function cut(s, n)
  s = tostring(s)
  if utf8.len(s) and utf8.len(s) > n then return s:sub(1, utf8.offset(s, n)) .. '…' end
  return s
end

--- The plot as SVG text: axes, ticks, grid, titles, then the marks.
function Plot:svg()
  local out = { ('<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %d %d" width="%d"'
    .. ' height="%d" role="img" aria-label="%s"><title>%s</title>'):format(esc(self.id), self.w, self.h, self.w,
    self.h, esc(self.label), esc(self.label)) }
  local x0, x1, y0, y1 = self.l, self.w - self.r, self.t, self.h - self.b
  out[#out + 1] = '<g class="grid">'
  local xt = self.x.bands and band_ticks(self.x, math.floor((x1 - x0) / 60)) or numeric_ticks(self.x, 8)
  local yt = self.y.bands and band_ticks(self.y, math.floor((y1 - y0) / 16)) or numeric_ticks(self.y, 5)
  if not self.y.bands then
    for _, t in ipairs(yt) do
      local Y = px(self:py(t[1]))
      out[#out + 1] = ('<line x1="%s" y1="%s" x2="%s" y2="%s"/>'):format(px(x0), Y, px(x1), Y)
    end
  end
  out[#out + 1] = '</g><g class="marks">'
  for _, m in ipairs(self.marks) do out[#out + 1] = m end
  out[#out + 1] = '</g><g class="axis">'
  out[#out + 1] = ('<line x1="%s" y1="%s" x2="%s" y2="%s"/><line x1="%s" y1="%s" x2="%s" y2="%s"/>'):format(
    px(x0), px(y1), px(x1), px(y1), px(x0), px(y0), px(x0), px(y1))
  for _, t in ipairs(xt) do
    local X = px(self:px(t[1]))
    out[#out + 1] = ('<line x1="%s" y1="%s" x2="%s" y2="%s"/><text x="%s" y="%s" text-anchor="middle">%s</text>')
      :format(X, px(y1), X, px(y1 + 4), X, px(y1 + 16), esc(cut(t[2], 12)))
  end
  for _, t in ipairs(yt) do
    local Y = px(self:py(t[1]))
    out[#out + 1] = ('<line x1="%s" y1="%s" x2="%s" y2="%s"/><text x="%s" y="%s" text-anchor="end">%s</text>')
      :format(px(x0 - 4), Y, px(x0), Y, px(x0 - 6), px(self:py(t[1]) + 4), esc(cut(t[2], 16)))
  end
  out[#out + 1] = ('<text class="atitle" x="%s" y="%s" text-anchor="middle">%s</text>'):format(
    px((x0 + x1) / 2), px(self.h - 8), esc(self.x.title or ''))
  out[#out + 1] = ('<text class="atitle" x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>')
    :format(px(14), px((y0 + y1) / 2), px(14), px((y0 + y1) / 2), esc(self.y.title or ''))
  out[#out + 1] = '</g></svg>'
  return table.concat(out)
end

--- A horizontal colour scale from lo to hi for the viridis colours, with
--- its title: the legend of a heatmap.
function M.colour_scale(id, lo, hi, title)
  local w, h = 360, 44
  local out = { ('<svg xmlns="http://www.w3.org/2000/svg" class="scale" id="%s" viewBox="0 0 %d %d" width="%d"'
    .. ' height="%d" role="img" aria-label="%s"><title>%s</title>'):format(esc(id), w, h, w, h,
    esc('colour scale: ' .. title), esc('colour scale: ' .. title)) }
  local n = 40
  for i = 0, n - 1 do
    out[#out + 1] = ('<rect x="%s" y="4" width="%s" height="12" fill="%s"/>'):format(px(10 + i * (w - 20) / n),
      px((w - 20) / n + 0.3), M.viridis((i + 0.5) / n))
  end
  out[#out + 1] = ('<text x="10" y="30" text-anchor="start">%s</text><text x="%d" y="30" text-anchor="end">%s</text>'
    .. '<text class="atitle" x="%d" y="30" text-anchor="middle">%s</text></svg>'):format(esc(M.num(lo)), w - 10,
    esc(M.num(hi)), w // 2, esc(title))
  return table.concat(out)
end

return M
