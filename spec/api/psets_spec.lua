-- psurvey.product and psurvey.range: order, laziness, bad input.
local H = require('support.helpers')
local psurvey = require('psurvey')

local function all(p)
  local out = {}
  for _, pset in p:psets() do out[#out + 1] = pset end
  return out
end

describe('psurvey.product', function()
  it('enumerates keys sorted by name, the last varying fastest', function()
    local p = psurvey.product({ b = { 'x', 'y' }, a = { 1, 2 } })
    assert.equal(4, #p)
    assert.same({ { a = 1, b = 'x' }, { a = 1, b = 'y' }, { a = 2, b = 'x' }, { a = 2, b = 'y' } }, all(p))
    assert.same({ 'a', 'b' }, p:keys())
  end)

  it('takes an explicit order as a list of pairs', function()
    local p = psurvey.product({ { 'b', { 'x', 'y' } }, { 'a', { 1, 2 } } })
    assert.same({ { a = 1, b = 'x' }, { a = 2, b = 'x' }, { a = 1, b = 'y' }, { a = 2, b = 'y' } }, all(p))
  end)

  it('is lazy: ten million psets cost no ten million tables', function()
    collectgarbage()
    local before = collectgarbage('count')
    local p = psurvey.product({ a = psurvey.range(1, 10000), b = psurvey.range(0.0, 0.999, 0.001) })
    assert.equal(10000000, #p)
    assert.same({ a = 10000, b = 0.999 }, p[10000000])
    assert.same({ a = 1, b = 0.0 }, p[1])
    assert.is_true(collectgarbage('count') - before < 100) -- KiB
  end)

  it('keeps value types and nested tables', function()
    local p = psurvey.product({ x = { 1, 1.0, 'one', true, { k = { 1, 2 } } } })
    local got = all(p)
    assert.equal('integer', math.type(got[1].x))
    assert.equal('float', math.type(got[2].x))
    assert.same({ k = { 1, 2 } }, got[5].x)
  end)

  it('has no psets when empty', function()
    assert.equal(0, #psurvey.product({}))
    assert.equal(0, #psurvey.product({ a = { 1, 2 }, b = {} }))
  end)

  it('rejects bad input with clear errors', function()
    assert.has_error(function() psurvey.product('x') end,
      "bad argument #1 to 'product' (table expected, got string)")
    assert.has_error(function() psurvey.product({ a = 1 }) end,
      "bad argument #1 to 'product' (key 'a' must list its values, got number)")
    assert.has_error(function() psurvey.product({ _a = { 1 } }) end,
      "bad argument #1 to 'product' (key '_a' is reserved: keys starting with '_' are psurvey's columns)")
    assert.has_error(function() psurvey.product({ a = { 1, print } }) end,
      "bad argument #1 to 'product' (product key 'a' value #2 is a C function, which cannot be sent to workers)")
  end)
end)

describe('psurvey.product composes as paramsurvey.params.product', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('takes any number of arguments, the first varying slowest', function()
    local p = psurvey.product({ a = { 1, 2 } }, { b = { 'x', 'y' } }, { c = { true } })
    assert.equal(4, #p)
    assert.same({ { a = 1, b = 'x', c = true }, { a = 1, b = 'y', c = true }, { a = 2, b = 'x', c = true },
      { a = 2, b = 'y', c = true } }, all(p))
    assert.same({ 'a', 'b', 'c' }, p:keys())
  end)

  it('stays lazy when every argument is value lists or a product of them', function()
    collectgarbage()
    local before = collectgarbage('count')
    local p = psurvey.product(psurvey.product({ a = psurvey.range(1, 1000) }), { b = psurvey.range(1, 10000) })
    assert.equal(10000000, #p)
    assert.same({ a = 1000, b = 10000 }, p[10000000])
    assert.is_true(collectgarbage('count') - before < 100) -- KiB
  end)

  it('crosses every row of results, pset and result keys, with more keys: the multistage idiom', function()
    local stage1 = psurvey.map(function(pset) return { expensive = pset.a + pset.b } end,
      psurvey.product({ a = { 1, 2, 3 }, b = { 4, 5, 6 } }), H.options())
    local psets = psurvey.product(stage1, { c = { 7, 8, 9 } })
    assert.equal(27, #psets)
    assert.same({ a = 1, b = 4, expensive = 5, c = 7 }, psets[1])
    assert.same({ a = 3, b = 6, expensive = 9, c = 9 }, psets[27])
    local stage2 = psurvey.map(function(pset) return { final = pset.expensive + pset.c } end, psets, H.options())
    assert.equal(27, #stage2)
    assert.equal(18, stage2:column('final')[27])
  end)

  it('crosses an array of psets', function()
    local p = psurvey.product({ { a = 1, b = 2 }, { a = 3 } }, { c = { 'x', 'y' } })
    assert.same({ { a = 1, b = 2, c = 'x' }, { a = 1, b = 2, c = 'y' }, { a = 3, c = 'x' }, { a = 3, c = 'y' } },
      all(p))
  end)

  it('raises on an argument of another kind, naming it', function()
    assert.has_error(function() psurvey.product({ a = { 1 } }, 5) end,
      "bad argument #2 to 'product' (table expected, got number)")
    assert.has_error(function() psurvey.product({ a = { 1 } }, setmetatable({}, {})) end,
      "bad argument #2 to 'product' (a table of value lists, a product, an array of psets or results expected,"
        .. ' got a table with a metatable)')
    assert.has_error(function() psurvey.product({ a = { 1 } }, { a = { 2 } }) end,
      "bad argument #2 to 'product' (key 'a' is in more than one argument)")
    assert.has_error(function() psurvey.product({ { a = 1 } }, { a = { 2 } }) end,
      "bad argument #2 to 'product' (key 'a' is in more than one argument)")
    assert.has_error(function() psurvey.product({ { a = 1 }, 'b' }) end,
      "bad argument #1 to 'product' (pset #2 must be a table, got string)")
    assert.has_error(function() psurvey.product() end, "bad argument #1 to 'product' (table expected, got no value)")
  end)
end)

describe('psurvey.add_column', function()
  it('adds a key computed from each pset', function()
    local p = psurvey.product({ a = { 1, 2 } })
    local q = psurvey.add_column(p, 'double', function(pset) return pset.a * 2 end)
    assert.same({ { a = 1, double = 2 }, { a = 2, double = 4 } }, all(q))
    assert.same({ { a = 1, x = 'a1' }, { a = 2, x = 'a2' } },
      all(p:add_column('x', function(pset) return 'a' .. pset.a end)))
    assert.same({ { b = 1, c = 2 } }, all(psurvey.add_column({ { b = 1 } }, 'c', function(s) return s.b + 1 end)))
  end)

  it('rejects bad arguments and names the pset that fails', function()
    local p = psurvey.product({ a = { 1, 2 } })
    assert.has_error(function() psurvey.add_column(p, 'a', function() return 1 end) end,
      "bad argument #2 to 'add_column' (pset #1 already has key 'a')")
    assert.has_error(function() psurvey.add_column(p, '_x', function() return 1 end) end,
      "bad argument #2 to 'add_column' (a key: a non-empty string not starting with '_', got '_x')")
    assert.has_error(function() psurvey.add_column(p, 'x', 1) end,
      "bad argument #3 to 'add_column' (function expected, got number)")
    assert.has_error(function() psurvey.add_column(p, 'x', function(s) if s.a == 2 then error('no', 0) end end) end,
      'add_column: the function failed on pset #2: no')
  end)
end)

describe('psurvey.range', function()
  it('counts integers and includes the last value', function()
    local r = psurvey.range(1, 10, 3)
    assert.equal(4, #r)
    assert.same({ 1, 4, 7, 10 }, { r[1], r[2], r[3], r[4] })
    assert.equal('integer', math.type(r[2]))
  end)

  it('includes a float end within rounding error', function()
    local r = psurvey.range(0, 0.3, 0.1)
    assert.equal(4, #r)
    assert.equal(0.3, r[4]) -- the decimal written, not 0.1 * 3 (0.30000000000000004)
    assert.equal(11, #psurvey.range(0, 1, 0.1))
  end)

  it('counts down and can be empty', function()
    assert.equal(3, #psurvey.range(3, 1, -1))
    assert.equal(0, #psurvey.range(3, 1))
  end)

  it('rejects a zero step', function()
    assert.has_error(function() psurvey.range(1, 2, 0) end, "bad argument #3 to 'range' (step must not be 0)")
  end)

  it('gives psets { value = x } when mapped directly', function()
    local p = psurvey.product({ value = psurvey.range(1, 2) })
    assert.same({ { value = 1 }, { value = 2 } }, all(p))
  end)
end)
