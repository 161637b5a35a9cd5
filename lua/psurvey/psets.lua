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
  if p._label then return ('%s: %d psets'):format(p._label, #p._source) end
  if p._rows then
    return ('psurvey.product(%s): %d psets'):format(table.concat(p._keys, ', '), #p._source)
  end
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

-- Checks a key of argument argn of fname (default 'product').
local function check_key(k, argn, level, fname)
  fname = fname or 'product'
  if type(k) ~= 'string' or k == '' then
    error(("bad argument #%d to '%s' (keys must be non-empty strings, got %s)"):format(argn, fname,
      type(k) == 'string' and "''" or type(k)), level + 1)
  end
  if k:sub(1, 1) == '_' then
    error(("bad argument #%d to '%s' (key '%s' is reserved: keys starting with '_' are psurvey's columns)")
      :format(argn, fname, k), level + 1)
  end
end

-- The axes of one table of value lists, as core.product takes them: keys
-- sorted by name, or in the order of a list of pairs.
local function axes_of_spec(spec, argn, level)
  local keys, lists = {}, {}
  if #spec > 0 then
    for i, pair in ipairs(spec) do
      if type(pair) ~= 'table' or type(pair[2]) ~= 'table' then
        error(("bad argument #%d to 'product' (entry #%d must be { name, values })"):format(argn, i), level + 1)
      end
      check_key(pair[1], argn, level + 1)
      keys[#keys + 1], lists[pair[1]] = pair[1], pair[2]
    end
  else
    for k, v in pairs(spec) do
      check_key(k, argn, level + 1)
      if type(v) ~= 'table' then
        error(("bad argument #%d to 'product' (key '%s' must list its values, got %s)"):format(argn, k, type(v)),
          level + 1)
      end
      keys[#keys + 1], lists[k] = k, v
    end
    table.sort(keys)
  end
  local specs = {}
  for i, k in ipairs(keys) do
    local v = lists[k]
    if is_range(v) then
      specs[i] = { name = k, axis = v._axis, n = v.n }
    else
      for j in pairs(v) do
        if math.type(j) ~= 'integer' or j < 1 or j > #v then
          error(("bad argument #%d to 'product' (key '%s' must be an array of values)"):format(argn, k), level + 1)
        end
      end
      specs[i] = { name = k, values = v, n = #v }
    end
  end
  return specs
end

-- Whether v is what map() returns (psurvey.results): a view with rows.
local function is_results(v)
  local mt = getmetatable(v)
  return type(mt) == 'table' and mt.__name == 'psurvey.results'
end

-- The psets of an argument that is a list of whole psets (an array of
-- tables, or results: each row's pset and result keys), as plain tables.
local function rows_of(v, argn, level)
  local rows = {}
  if is_results(v) then
    for row in v:rows() do rows[#rows + 1] = row end
    return rows
  end
  for j in pairs(v) do
    if math.type(j) ~= 'integer' or j < 1 or j > #v then
      error(("bad argument #%d to 'product' (a list of psets must be an array)"):format(argn), level + 1)
    end
  end
  for j, pset in ipairs(v) do
    if type(pset) ~= 'table' then
      error(("bad argument #%d to 'product' (pset #%d must be a table, got %s)"):format(argn, j, type(pset)),
        level + 1)
    end
    for k in pairs(pset) do
      if type(k) ~= 'string' then
        error(("bad argument #%d to 'product' (pset #%d has a key of type %s; keys are strings)"):format(argn, j,
          type(k)), level + 1)
      end
      check_key(k, argn, level + 1)
    end
    rows[j] = pset
  end
  return rows
end

-- What kind of axis argument v is: 'product', 'rows' or 'spec'; nil for
-- anything else.
local function kind_of(v)
  local mt = getmetatable(v)
  if mt == Product then return 'product' end
  if is_results(v) then return 'rows' end
  if type(v) ~= 'table' or mt ~= nil then return nil end
  -- An array of tables that are not { name, values } pairs is a list of psets.
  local first = v[1]
  if type(first) == 'table' and getmetatable(first) == nil and not (type(first[1]) == 'string'
    and type(first[2]) == 'table') then
    return 'rows'
  end
  return 'spec'
end

local function bad_axis(argn, v, level)
  if type(v) ~= 'table' then
    error(("bad argument #%d to 'product' (table expected, got %s)"):format(argn, type(v)), level)
  end
  error(("bad argument #%d to 'product' (a table of value lists, a product, an array of psets or results expected,"
    .. ' got a table with a metatable)'):format(argn), level)
end

local function new_product(source, keys, sizes, rows)
  return setmetatable({ _source = source, _keys = keys, _sizes = sizes, _rows = rows }, Product)
end

-- Crosses psets (plain tables) with the psets of p, the first varying
-- slowest: every pair merged into one table.
local function cross(rows, p, argn, level)
  local out = {}
  for _, a in ipairs(rows) do
    for _, b in p:psets() do
      local merged = {}
      for k, v in pairs(a) do merged[k] = v end
      for k, v in pairs(b) do
        if merged[k] ~= nil then
          error(("bad argument #%d to 'product' (key '%s' is in more than one argument)"):format(argn, k), level + 1)
        end
        merged[k] = v
      end
      out[#out + 1] = merged
    end
  end
  return out
end

--- The cartesian product of value lists. Order: keys sorted by name, the
--- last varying fastest, as nested loops would: product{ a = {1, 2}, b = {'x', 'y'} }
--- gives {a=1,b='x'}, {a=1,b='y'}, {a=2,b='x'}, {a=2,b='y'}. For another order
--- give a list of pairs: product{ {'b', {'x', 'y'}}, {'a', {1, 2}} }.
--- A value list may be a psurvey.range, linspace or logspace. A product with no keys, or with a key
--- that has no values, has no psets.
---
--- Any number of arguments compose, as paramsurvey's params.product: each
--- is a table of value lists, a product, an array of psets or the results
--- of a map() (each row's pset and result keys); the first varies slowest.
--- product(stage1, { c = {1, 2, 3} }) runs every row of stage1 with each c.
--- Products of value lists stay lazy, and so do samples, filters and
--- shuffles among them; a list of psets or results is read into memory once.
---@param ... table
function M.product(...)
  local nargs = select('#', ...)
  if nargs == 0 then error("bad argument #1 to 'product' (table expected, got no value)", 2) end
  -- With a sample or a view (filter, shuffle) among value lists and
  -- products of them: the product of their sources (core.cross), lazy too.
  local views, listed = false, false
  for argn = 1, nargs do
    local v = select(argn, ...)
    local kind = kind_of(v)
    if kind == 'rows' or kind == 'product' and v._rows then listed = true end
    if kind == 'product' and not v._rows and not v._specs then views = true end
  end
  if views and not listed then
    local sources, keys, folded, parts = {}, {}, {}, {}
    for argn = 1, nargs do
      local v = select(argn, ...)
      local kind = kind_of(v)
      if kind == nil then bad_axis(argn, v, 3) end
      local these = {}
      if kind == 'product' and not v._specs then
        these = v:keys()
        sources[#sources + 1] = v._source
      else
        local specs = kind == 'product' and v._specs or axes_of_spec(v, argn, 2)
        for i, spec in ipairs(specs) do these[i] = spec.name end
        if #specs > 0 then
          local ok, source = pcall(core.product, specs)
          if not ok then error(("bad argument #%d to 'product' (%s)"):format(argn, source), 2) end
          sources[#sources + 1] = source
        end
      end
      for _, k in ipairs(these) do
        local other = folded[k:lower()]
        if other == k then
          error(("bad argument #%d to 'product' (key '%s' is in more than one argument)"):format(argn, k), 2)
        elseif other then
          error(("bad argument #%d to 'product' (keys '%s' and '%s' differ only in letter case, which SQLite column"
            .. ' names cannot tell apart: rename one)'):format(argn, other, k), 2)
        end
        folded[k:lower()], keys[#keys + 1] = k, k
      end
      parts[#parts + 1] = v
    end
    local p = new_product(core.cross(sources), keys)
    p._label, p._parts = ('psurvey.product(%s)'):format(table.concat(keys, ', ')), parts
    return p
  end
  -- Lazy axes, in order, until the first list of whole psets.
  local specs, arg_of, lazy_upto = {}, {}, nargs
  for argn = 1, nargs do
    local v = select(argn, ...)
    local kind = kind_of(v)
    if kind == nil then
      bad_axis(argn, v, 3)
    end
    if kind == 'rows' then
      lazy_upto = argn - 1
      break
    end
    -- A product of whole psets, a sample or a view: crossed from here on
    -- as a list of psets.
    if kind == 'product' and (v._rows or not v._specs) then
      lazy_upto = argn - 1
      break
    end
    local these = kind == 'product' and v._specs or axes_of_spec(v, argn, 2)
    for _, s in ipairs(these) do
      specs[#specs + 1] = s
      arg_of[s] = argn
    end
  end
  local folded, keys, sizes = {}, {}, {}
  for _, s in ipairs(specs) do
    local other = folded[s.name:lower()]
    if other == s.name then
      error(("bad argument #%d to 'product' (key '%s' is in more than one argument)"):format(arg_of[s], s.name), 2)
    elseif other then
      error(("bad argument #%d to 'product' (keys '%s' and '%s' differ only in letter case, which SQLite column"
        .. ' names cannot tell apart: rename one)'):format(arg_of[s], other, s.name), 2)
    end
    folded[s.name:lower()] = s.name
    keys[#keys + 1], sizes[s.name] = s.name, s.n
  end
  local ok, source = pcall(core.product, specs)
  if not ok then error(("bad argument #1 to 'product' (%s)"):format(source), 2) end
  local p = new_product(source, keys, sizes)
  p._specs = specs
  if lazy_upto == nargs then return p end

  -- From the first list of whole psets on: materialised, crossed in order.
  local rows = { {} }
  if #keys > 0 then
    rows = {}
    for _, pset in p:psets() do rows[#rows + 1] = pset end
  end
  for argn = lazy_upto + 1, nargs do
    local v = select(argn, ...)
    local kind = kind_of(v)
    if kind == nil then
      bad_axis(argn, v, 3)
    end
    local axis
    if kind == 'rows' then
      axis = M.list(rows_of(v, argn, 2))
    elseif kind == 'product' then
      axis = v
    else
      axis = M.product(v)
    end
    rows = cross(rows, axis, argn, 2)
  end
  return M.list(rows)
end

--- A product made of whole psets (plain tables, used as they are): what
--- product() gives once a list of psets or results is one of its axes,
--- and what add_column() gives.
function M.list(rows)
  local ok, source = pcall(core.array, rows)
  if not ok then error(("bad argument #1 to 'product' (%s)"):format((tostring(source):gsub('^[^:]*:%d+: ', ''))), 3) end
  local keys, seen = {}, {}
  for _, row in ipairs(rows) do
    for k in pairs(row) do
      if not seen[k] then seen[k], keys[#keys + 1] = true, k end
    end
  end
  table.sort(keys)
  return new_product(source, keys, nil, rows)
end

--- The psets of `psets` (a product, an array of psets or results) with one
--- more key: fn(pset) gives its value (nil leaves it out of that pset).
--- As paramsurvey's params.add_column. Returns a product of whole psets.
---@param psets table
---@param key string
---@param fn function
function M.add_column(psets, key, fn)
  local kind = kind_of(psets)
  if kind == nil or kind == 'spec' and next(psets) ~= nil then
    error(("bad argument #1 to 'add_column' (a product, an array of psets or results expected, got %s)"):format(
      kind == 'spec' and 'a table of value lists (make it a psurvey.product first)' or type(psets)), 2)
  end
  if type(key) ~= 'string' or key == '' or key:sub(1, 1) == '_' then
    error(("bad argument #2 to 'add_column' (a key: a non-empty string not starting with '_', got %s)"):format(
      type(key) == 'string' and ("'" .. key .. "'") or type(key)), 2)
  end
  if type(fn) ~= 'function' then
    error(("bad argument #3 to 'add_column' (function expected, got %s)"):format(type(fn)), 2)
  end
  local rows = {}
  local list = kind == 'product' and psets or M.list(rows_of(psets, 1, 2))
  for i, pset in list:psets() do
    if pset[key] ~= nil then
      error(("bad argument #2 to 'add_column' (pset #%d already has key '%s')"):format(i, key), 2)
    end
    local ok, v = pcall(fn, pset)
    if not ok then error(("add_column: the function failed on pset #%d: %s"):format(i, tostring(v)), 2) end
    pset[key] = v
    rows[i] = pset
  end
  return M.list(rows)
end

--- The same psets with key added: p:add_column(key, fn).
function Product:add_column(key, fn)
  return M.add_column(self, key, fn)
end

-- Spaces, not only grids: sample, filter, shuffle. A sample is computed in
-- C from its index (core/space.h has the math); filter and shuffle are
-- views of another source in C (core/view.h): a filter keeps 8 bytes per
-- kept pset, a shuffle nothing per pset.

local METHODS = { random = true, lhs = true, sobol = true }
local SOBOL_DIMS = 32

-- Raises "bad argument #argn to 'fname' (why)" at the caller's caller.
local function bad(fname, argn, why, ...)
  error(("bad argument #%d to '%s' (%s)"):format(argn, fname, why:format(...)), 3)
end

-- A number as the user wrote it, or the type of what is not one.
local function shown(v)
  if type(v) == 'number' then return tostring(v) end
  if type(v) == 'string' then return ("'%s'"):format(v) end
  return type(v)
end

local function finite(v)
  return type(v) == 'number' and v == v and v ~= math.huge and v ~= -math.huge
end

-- The core.sample key of one key of a space: {lo, hi}, {lo, hi, log =
-- true}, {lo, hi, int = true}, a list of choices or { choices = {...} }.
local function dim_of(k, v)
  local function fail(why, ...)
    error(("bad argument #1 to 'sample' (key '%s': " .. why .. ')'):format(k, ...), 4)
  end
  if type(v) ~= 'table' or getmetatable(v) ~= nil then
    fail('expected {lo, hi}, {lo, hi, log = true}, {lo, hi, int = true} or a list of choices, got %s',
      type(v) == 'table' and 'a table with a metatable' or type(v))
  end
  local choices = v.choices
  if choices == nil and not (#v == 2 and type(v[1]) == 'number' and type(v[2]) == 'number') then
    if v.log or v.int then fail('log and int need {lo, hi}: two numbers') end
    choices = v
  elseif choices ~= nil then
    for f in pairs(v) do
      if f ~= 'choices' then fail('unknown field %s beside choices', shown(f)) end
    end
  end
  if choices ~= nil then
    if type(choices) ~= 'table' then fail('choices must be a list, got %s', type(choices)) end
    for j in pairs(choices) do
      if math.type(j) ~= 'integer' or j < 1 or j > #choices then
        fail('choices must be an array, but it has key %s', shown(j))
      end
    end
    if #choices == 0 then fail('no choices') end
    return { name = k, kind = 'choices', values = choices }
  end
  for f in pairs(v) do
    if f ~= 1 and f ~= 2 and f ~= 'log' and f ~= 'int' then
      fail("unknown field %s (a range is {lo, hi} with log = true or int = true)", shown(f))
    end
  end
  local lo, hi = v[1], v[2]
  if not finite(lo) or not finite(hi) then fail('lo and hi must be finite numbers, got %s and %s', lo, hi) end
  if v.log and v.int then fail('log and int cannot be combined') end
  if v.int then
    local ilo, ihi = math.tointeger(lo), math.tointeger(hi)
    if not ilo or not ihi then fail('int bounds must be integers, got %s and %s', lo, hi) end
    if ilo > ihi then fail('lo must not be above hi, got %s and %s', lo, hi) end
    return { name = k, kind = 'int', lo = ilo, hi = ihi }
  end
  if lo >= hi then fail('lo must be below hi, got %s and %s', lo, hi) end
  if v.log then
    if lo <= 0 then fail('log needs lo > 0, got %s', lo) end
    return { name = k, kind = 'log', lo = lo + 0.0, hi = hi + 0.0 }
  end
  if not finite(hi - lo) then fail('hi - lo must be a finite number, got %s and %s', lo, hi) end
  return { name = k, kind = 'uniform', lo = lo + 0.0, hi = hi + 0.0 }
end

--- n psets drawn from a space. Each key of `ranges` is a range of floats
--- {lo, hi} (uniform in [lo, hi)), {lo, hi, log = true} (log-uniform, lo > 0),
--- {lo, hi, int = true} (integers lo..hi, each as likely) or a list of choices
--- ({ 'a', 'b' }; { choices = { 1, 2 } } for two numbers, which would be a range).
--- opts.method: 'random' (default), 'lhs' (Latin hypercube: each of the n
--- equal strata of each key holds one pset) or 'sobol' (the Sobol sequence,
--- Joe and Kuo's direction numbers, up to 32 keys, in key name order;
--- seed 0 gives the plain sequence, another seed a random digital shift).
--- opts.seed (integer, default 0): the same seed gives the same psets on any
--- machine. Lazy like a product: pset i is computed from its index.
---@param ranges table the space: key = range or choices
---@param n integer
---@param opts table|nil { method = 'random'|'lhs'|'sobol', seed = integer }
function M.sample(ranges, n, opts)
  if type(ranges) ~= 'table' or getmetatable(ranges) ~= nil then
    bad('sample', 1, 'a table of key = range or choices expected, got %s',
      type(ranges) == 'table' and 'a table with a metatable' or type(ranges))
  end
  local count = math.tointeger(n)
  if count == nil or count < 0 then bad('sample', 2, 'n must be a non-negative integer, got %s', shown(n)) end
  if opts ~= nil and type(opts) ~= 'table' then bad('sample', 3, 'table expected, got %s', type(opts)) end
  opts = opts or {}
  for f in pairs(opts) do
    if f ~= 'method' and f ~= 'seed' then bad('sample', 3, 'unknown option %s (known: method, seed)', shown(f)) end
  end
  local method = opts.method == nil and 'random' or opts.method
  if not METHODS[method] then
    bad('sample', 3, "unknown method %s (known: 'random', 'lhs', 'sobol')", shown(method))
  end
  local seed = opts.seed == nil and 0 or math.tointeger(opts.seed)
  if seed == nil then bad('sample', 3, 'seed must be an integer, got %s', shown(opts.seed)) end
  local keys, folded = {}, {}
  for k in pairs(ranges) do
    check_key(k, 1, 2, 'sample')
    if folded[k:lower()] then
      bad('sample', 1, "keys '%s' and '%s' differ only in letter case, which SQLite column names cannot tell"
        .. ' apart: rename one', folded[k:lower()], k)
    end
    folded[k:lower()] = k
    keys[#keys + 1] = k
  end
  table.sort(keys)
  if #keys == 0 then bad('sample', 1, 'the space has no keys') end
  if method == 'sobol' and #keys > SOBOL_DIMS then
    bad('sample', 1, 'sobol has %d dimensions, the space has %d keys', SOBOL_DIMS, #keys)
  end
  if method == 'lhs' and count > 2 ^ 53 then bad('sample', 2, 'lhs takes at most 2^53 psets, got %s', shown(n)) end
  local dims = {}
  for i, k in ipairs(keys) do dims[i] = dim_of(k, ranges[k]) end
  local ok, source = pcall(core.sample, dims, count, method, seed)
  if not ok then bad('sample', 1, '%s', (tostring(source):gsub('^[^:]*:%d+: ', ''))) end
  local p = new_product(source, keys)
  p._label = ('psurvey.sample(%s, %d key%s)'):format(method, #keys, #keys == 1 and '' or 's')
  return p
end

-- Any psets as a product: a product, sample or view as it is, a range as
-- psets { value = x }, an array of psets or results as a list.
local function as_product(v, fname)
  local mt = getmetatable(v)
  if mt == Product then return v end
  if is_range(v) then return M.product({ value = v }) end
  local kind = kind_of(v)
  if is_results(v) then return M.list(rows_of(v, 1, 3)) end
  if kind == 'rows' or kind == 'spec' and next(v) == nil then
    -- An array of psets as map() takes it: per-pset options (_psurvey) and all.
    local ok, source = pcall(core.array, v)
    if not ok then
      error(("bad argument #1 to '%s' (%s)"):format(fname, (tostring(source):gsub('^[^:]*:%d+: ', ''))), 3)
    end
    local keys, seen = {}, {}
    for _, row in ipairs(v) do
      for k in pairs(row) do
        if not seen[k] and k ~= '_psurvey' then seen[k], keys[#keys + 1] = true, k end
      end
    end
    table.sort(keys)
    return new_product(source, keys, nil, v)
  end
  error(("bad argument #1 to '%s' (a product, sample, range, array of psets or results expected, got %s)"):format(
    fname, kind == 'spec' and 'a table of value lists (make it a psurvey.product first)'
      or type(v) == 'table' and 'a table with a metatable' or type(v)), 3)
end

--- The psets of `psets` for which fn(pset) is truthy, in their order: a view
--- of `psets` that keeps the index of each pset kept (8 bytes), not the pset.
--- Per-pset options (_psurvey) go with their psets.
---@param psets table a product, sample, range, array of psets or results
---@param fn function
function M.filter(psets, fn)
  local p = as_product(psets, 'filter')
  if type(fn) ~= 'function' then bad('filter', 2, 'function expected, got %s', type(fn)) end
  local ok, source = pcall(core.filter, p._source, fn)
  if not ok then error(('filter: %s'):format((tostring(source):gsub('^[^:]*:%d+: ', ''))), 2) end
  local v = new_product(source, p:keys())
  v._label, v._base = ('psurvey.filter(of %d)'):format(#p), p
  return v
end

--- The psets of `psets` in an order drawn from seed (an integer, default 0):
--- the same seed gives the same order. A view: pset i is the pset at a keyed
--- bijection of i, so nothing is stored per pset. With map's limit, the
--- first psets of a shuffle are a representative slice.
---@param psets table a product, sample, range, array of psets or results
---@param seed integer|nil
function M.shuffle(psets, seed)
  local p = as_product(psets, 'shuffle')
  local s = seed == nil and 0 or math.tointeger(seed)
  if s == nil then bad('shuffle', 2, 'seed must be an integer, got %s', shown(seed)) end
  local v = new_product(core.shuffle(p._source, s), p:keys())
  v._label, v._base = ('psurvey.shuffle(seed %d)'):format(s), p
  return v
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
