--- psurvey diff FILE|SCRIPT.lua TABLE_A TABLE_B: two runs of a stage
--- compared, their psets matched by pset (the _hash of its keys and
--- values): psets only in one, and psets whose outcome changed, column by
--- column. Exit status as diff(1): 0 the same, 1 different, 2 or 3 trouble.
local format = require('psurvey.format')
local options = require('psurvey.options')
local common = require('psurvey.commands.common')

local say, usage_error = common.say, common.usage_error

local M = {
  usage = { 'diff FILE TABLE_A TABLE_B [--all]' },
  help = { { 'diff FILE TABLE_A TABLE_B', 'compare two runs of a stage, pset by pset: psets only in one, and'
    .. ' results that changed, column by column (exit 1 when they differ); --all lists every difference,'
    .. ' not the first 20 of each kind' } },
}

local SHOWN = 20

local function same(a, b)
  if a == b then return true end
  if type(a) == 'number' and type(b) == 'number' then return a ~= a and b ~= b end -- NaN is NaN
  if type(a) ~= 'table' or type(b) ~= 'table' then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- The stage's rows, each with its pset keys (psets), its outcome (status,
-- exception) and its result keys, by _hash; a pset listed twice is
-- matched in order (its second row with the other's second).
local function read(store, name)
  local rows, order, seen = {}, {}, {}
  local cursor = store:cursor(name, 'all')
  local psets = store:cursor(name, 'all', 0, 'psets')
  for row in function() return cursor:next() end do
    local pset = psets:next()
    local results = {}
    for k, v in pairs(row) do
      if k:sub(1, 1) ~= '_' and pset[k] == nil then results[k] = v end
    end
    seen[row._hash] = (seen[row._hash] or 0) + 1
    local r = { index = row._index, hash = row._hash .. '#' .. seen[row._hash], pset = pset, results = results,
      status = row._status, exception = row._exception }
    rows[r.hash] = r
    order[#order + 1] = r
  end
  return rows, order
end

local function pset_text(pset)
  local parts = {}
  for k, v in pairs(pset) do parts[#parts + 1] = ('%s=%s'):format(k, format.value(v)) end
  table.sort(parts)
  return table.concat(parts, ', ')
end

local function outcome(r)
  return r.status == 'ok' and 'ok' or ('%s (%s)'):format(r.status, (r.exception or ''):match('[^\n]*'))
end

-- What changed between two rows of the same pset: lines 'col: a -> b'.
local function changes(a, b)
  local out = {}
  if a.status ~= b.status or (a.status ~= 'ok' and a.exception ~= b.exception) then
    out[#out + 1] = ('outcome: %s -> %s'):format(outcome(a), outcome(b))
  end
  local keys, seen = {}, {}
  for k in pairs(a.results) do keys[#keys + 1], seen[k] = k, true end
  for k in pairs(b.results) do
    if not seen[k] then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local x, y = a.results[k], b.results[k]
    if not same(x, y) then
      out[#out + 1] = ('%s: %s -> %s'):format(k, x == nil and '(none)' or format.value(x),
        y == nil and '(none)' or format.value(y))
    end
  end
  return out
end

local function find(store, file, name)
  local stage = store:stage_info(name)
  if stage then return stage.name end
  local names = {}
  for _, s in ipairs(store:stages()) do names[#names + 1] = s.name end
  error(("no stage '%s' in %s%s; its stages: %s"):format(name, file, options.suggest(name, names),
    #names > 0 and table.concat(names, ', ') or 'none'), 0)
end

local function list(title, items, all, line)
  io.stdout:write(('%s: %d\n'):format(title, #items))
  for k, item in ipairs(items) do
    if k > SHOWN and not all then
      io.stdout:write(('  ... %d more (--all lists them)\n'):format(#items - SHOWN))
      break
    end
    line(item)
  end
end

local function compare(store, file, a_name, b_name, all)
  a_name, b_name = find(store, file, a_name), find(store, file, b_name)
  local a, a_order = read(store, a_name)
  local b, b_order = read(store, b_name)
  local only_a, only_b, changed, same_count = {}, {}, {}, 0
  for _, r in ipairs(a_order) do
    local other = b[r.hash]
    if not other then
      only_a[#only_a + 1] = r
    else
      local c = changes(r, other)
      if #c > 0 then changed[#changed + 1] = { a = r, b = other, lines = c } else same_count = same_count + 1 end
    end
  end
  for _, r in ipairs(b_order) do
    if not a[r.hash] then only_b[#only_b + 1] = r end
  end
  io.stdout:write(('%s (%d psets) and %s (%d psets), matched by pset: %d the same\n'):format(a_name, #a_order,
    b_name, #b_order, same_count))
  local function pset_line(r) io.stdout:write(('  #%d  %s\n'):format(r.index, pset_text(r.pset))) end
  list('only in ' .. a_name, only_a, all, pset_line)
  list('only in ' .. b_name, only_b, all, pset_line)
  list('changed', changed, all, function(c)
    io.stdout:write(('  #%d  %s\n'):format(c.a.index, pset_text(c.a.pset)))
    for _, l in ipairs(c.lines) do io.stdout:write('      ', l, '\n') end
  end)
  return (#only_a + #only_b + #changed) > 0 and 1 or 0
end

function M.run(argv)
  local args, all = {}, false
  for i = 2, #argv do
    if argv[i] == '--all' then
      all = true
    elseif argv[i]:sub(1, 1) == '-' then
      return usage_error("diff: unknown option '%s'", argv[i])
    else
      args[#args + 1] = argv[i]
    end
  end
  if #args ~= 3 then return usage_error('usage: psurvey diff FILE TABLE_A TABLE_B') end
  local store, code = common.open(args[1], 'diff')
  if not store then return code end
  local ok, e = pcall(compare, store, args[1], args[2], args[3], all)
  if not ok then
    say('diff: %s', common.message(e))
    return 3
  end
  return e
end

return M
