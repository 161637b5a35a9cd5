-- psurvey.product and psurvey.range: order, laziness, bad input.
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
