--- psurvey.psets: lists of parameter sets. A product is lazy: its psets are
--- computed from their index in C, so a product of ten million psets costs
--- a few bytes per value, not ten million tables.
local core = require('psurvey.core')

local M = {}

-- The metatable of psurvey.range, linspace and logspace (core/lua/lrange.c):
-- r[i] is computed in C from the range's _axis, by the same code as an axis
-- of a product, so the two cannot disagree. A range is plain data with a
-- metatable every worker knows by name: it travels to workers as an
-- upvalue and works there (in 'user', plain data, it arrives as its fields).
local Range = core.range_meta

--- Whether v is a psurvey.range (or linspace, logspace).
local function is_range(v)
  return getmetatable(v) == 'psurvey.range'
end

-- Checks argument i of fname: a finite number.
local function check_number(fname, i, v)
  if type(v) ~= 'number' then
    error(("bad argument #%d to '%s' (number expected, got %s)"):format(i, fname, type(v)), 3)
  end
  if v ~= v or v == math.huge or v == -math.huge then
    error(("bad argument #%d to '%s' (finite number expected, got %s)"):format(i, fname,
      v ~= v and 'nan' or tostring(v)), 3)
  end
end

local function new_range(name, args, axis, argn, why)
  if not axis then error(("bad argument #%d to '%s' (%s)"):format(argn, name, why), 3) end
  for i, v in ipairs(args) do args[i] = tostring(v) end
  return setmetatable({ _name = name, _args = table.concat(args, ', '), n = axis.n, _axis = axis }, Range)
end

--- The numbers first, first + step, ... up to last. Integers stay integers
--- (when first and step are integers). Floats are the decimals you wrote:
--- first + i*step rounded to as many decimal places as first and step have
--- (up to 15), so range(2.8, 4.0, 0.05) has 2.85, not 2.8499999999999996.
--- last is included when it is reached within rounding, and never passed.
---@param first number
---@param last number
---@param step number|nil default 1
function M.range(first, last, step)
  step = step == nil and 1 or step
  for i, v in ipairs({ first, last, step }) do check_number('range', i, v) end
  if step == 0 then error("bad argument #3 to 'range' (step must not be 0)", 2) end
  local r = new_range('range', { first, last, step }, core.range(first, last, step))
  r.first, r.last, r.step = first, last, step
  return r
end

local function space(name, a, b, n, log)
  check_number(name, 1, a)
  check_number(name, 2, b)
  if math.type(n) ~= 'integer' or n < 0 then
    error(("bad argument #3 to '%s' (count must be an integer >= 0, got %s)"):format(name,
      type(n) == 'number' and tostring(n) or type(n)), 3)
  end
  return new_range(name, { a, b, n }, core.linspace(a, b, n, log))
end

--- n evenly spaced floats from a to b, both included, as numpy.linspace(a,
--- b, n): a + i*(b - a)/(n - 1), the last exactly b.
---@param a number
---@param b number
---@param n integer
function M.linspace(a, b, n) return space('linspace', a, b, n, false) end

--- n floats evenly spaced on a log scale, as numpy.logspace(a, b, n):
--- 10^x for each x of linspace(a, b, n).
---@param a number
---@param b number
---@param n integer
function M.logspace(a, b, n) return space('logspace', a, b, n, true) end

local Product = {}
Product.__len = function(p) return #p._source end
Product.__index = function(p, i)
  if math.type(i) == 'integer' then
    if i < 1 or i > #p._source then return nil end
    return p._source:get(i)
  end
  return Product[i]
end
Product.__tostring = function(p)
  local parts = {}
  for _, k in ipairs(p._keys) do parts[#parts + 1] = ('%s (%d)'):format(k, p._sizes[k]) end
  return ('psurvey.product(%s): %d psets'):format(table.concat(parts, ' x '), #p._source)
end

--- Iterates over the psets: for i, pset in product:psets() do ... end
function Product:psets()
  local i, n = 0, #self._source
  return function()
    i = i + 1
    if i <= n then return i, self._source:get(i) end
  end
end

--- The keys, in enumeration order (the last varies fastest).
function Product:keys()
  return table.move(self._keys, 1, #self._keys, 1, {})
end

local function check_key(k, level)
  if type(k) ~= 'string' or k == '' then
    error(("bad argument #1 to 'product' (keys must be non-empty strings, got %s)"):format(
      type(k) == 'string' and "''" or type(k)), level + 1)
  end
  if k:sub(1, 1) == '_' then
    error(("bad argument #1 to 'product' (key '%s' is reserved: keys starting with '_' are psurvey's columns)")
      :format(k), level + 1)
  end
end

--- The cartesian product of value lists. Order: keys sorted by name, the
--- last varying fastest, as nested loops would: product{ a = {1, 2}, b = {'x', 'y'} }
--- gives {a=1,b='x'}, {a=1,b='y'}, {a=2,b='x'}, {a=2,b='y'}. For another order
--- give a list of pairs: product{ {'b', {'x', 'y'}}, {'a', {1, 2}} }.
--- A value list may be a psurvey.range, linspace or logspace. A product with no keys, or with a key
--- that has no values, has no psets.
---@param spec table
function M.product(spec)
  if type(spec) ~= 'table' then
    error(("bad argument #1 to 'product' (table expected, got %s)"):format(type(spec)), 2)
  end
  local keys, lists = {}, {}
  if #spec > 0 then
    for i, pair in ipairs(spec) do
      if type(pair) ~= 'table' or type(pair[2]) ~= 'table' then
        error(("bad argument #1 to 'product' (entry #%d must be { name, values })"):format(i), 2)
      end
      check_key(pair[1], 2)
      keys[#keys + 1], lists[pair[1]] = pair[1], pair[2]
    end
  else
    for k, v in pairs(spec) do
      check_key(k, 2)
      if type(v) ~= 'table' then
        error(("bad argument #1 to 'product' (key '%s' must list its values, got %s)"):format(k, type(v)), 2)
      end
      keys[#keys + 1], lists[k] = k, v
    end
    table.sort(keys)
  end
  local folded = {}
  for _, k in ipairs(keys) do
    local other = folded[k:lower()]
    if other then
      error(("bad argument #1 to 'product' (keys '%s' and '%s' differ only in letter case, which SQLite column"
        .. ' names cannot tell apart: rename one)'):format(other, k), 2)
    end
    folded[k:lower()] = k
  end
  local specs, sizes = {}, {}
  for i, k in ipairs(keys) do
    local v = lists[k]
    if is_range(v) then
      specs[i] = { name = k, axis = v._axis }
      sizes[k] = v.n
    else
      for j in pairs(v) do
        if math.type(j) ~= 'integer' or j < 1 or j > #v then
          error(("bad argument #1 to 'product' (key '%s' must be an array of values)"):format(k), 2)
        end
      end
      specs[i] = { name = k, values = v }
      sizes[k] = #v
    end
  end
  local ok, source = pcall(core.product, specs)
  if not ok then error(("bad argument #1 to 'product' (%s)"):format(source), 2) end
  return setmetatable({ _source = source, _keys = keys, _sizes = sizes }, Product)
end

--- The engine's source for what map() was given, or nil and why not.
function M.source_of(list)
  local mt = getmetatable(list)
  if mt == Product then return list._source end
  if is_range(list) then return M.product({ value = list })._source end
  if type(list) ~= 'table' then
    return nil, ('psets must be a psurvey.product, a psurvey.range or an array of pset tables, got %s')
      :format(type(list))
  end
  local ok, source = pcall(core.array, list)
  if not ok then return nil, (tostring(source):gsub('^[^:]*:%d+: ', '')) end
  return source
end

return M
