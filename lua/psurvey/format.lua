--- psurvey.format: values and tables as people read them.
local M = {}

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

--- A short, readable text for any value: 3, 0.25, 'text', {1, 2}, {a = 1}.
function M.value(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == 'nil' then return '' end
  if t == 'number' then
    if math.type(v) == 'integer' then return tostring(v) end
    if v ~= v then return 'nan' end
    local s = ('%.6g'):format(v)
    if not s:find('[%.eEn]') then s = s .. '.0' end
    return s
  end
  if t == 'string' then return v end
  if t ~= 'table' then return tostring(v) end
  if depth > 2 then return '{...}' end
  local parts = {}
  if is_array(v) then
    for _, x in ipairs(v) do parts[#parts + 1] = M.value(x, depth + 1) end
  else
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. M.value(v[k], depth + 1) end
  end
  return '{' .. table.concat(parts, ', ') .. '}'
end

local function clip(s, width)
  s = s:gsub('[\n\t]', ' ')
  if #s > width then return s:sub(1, width - 3) .. '...' end
  return s
end

--- Rows (an iterator of tables) under the given columns, aligned; at most
--- `limit` rows, then a line saying how many more there were.
function M.table(columns, next_row, limit, total)
  local cells, widths = {}, {}
  for j, c in ipairs(columns) do widths[j] = #c end
  local shown = 0
  for row in next_row do
    if limit and shown >= limit then break end
    shown = shown + 1
    local line = {}
    for j, c in ipairs(columns) do
      local text = clip(M.value(row[c]), 40)
      line[j] = { text = text, right = type(row[c]) == 'number' }
      if #text > widths[j] then widths[j] = #text end
    end
    cells[#cells + 1] = line
  end
  local out = {}
  local header = {}
  for j, c in ipairs(columns) do header[j] = c .. (' '):rep(widths[j] - #c) end
  out[1] = table.concat(header, '  '):gsub('%s+$', '')
  local rule = {}
  for j in ipairs(columns) do rule[j] = ('-'):rep(widths[j]) end
  out[2] = table.concat(rule, '  ')
  for _, line in ipairs(cells) do
    local parts = {}
    for j, cell in ipairs(line) do
      local pad = (' '):rep(widths[j] - #cell.text)
      parts[j] = cell.right and pad .. cell.text or cell.text .. pad
    end
    out[#out + 1] = table.concat(parts, '  '):gsub('%s+$', '')
  end
  if total and total > shown then out[#out + 1] = ('... %d more rows'):format(total - shown) end
  return table.concat(out, '\n')
end

--- 0.000301 -> "301 us", 0.25 -> "250 ms", 12.5 -> "12.5 s", 2.5e-7 -> "250 ns"
function M.seconds(s)
  if s > 0 and s < 1e-6 then return ('%.0f ns'):format(s * 1e9) end
  if s < 1e-3 then return ('%.0f us'):format(s * 1e6) end
  if s < 1 then return ('%.3g ms'):format(s * 1e3) end
  return ('%.3g s'):format(s)
end

return M
