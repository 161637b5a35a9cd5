-- psurvey.range, psurvey.linspace and psurvey.logspace: the values they give,
-- how many, and the same values whether indexed directly or as an axis of a
-- product (computed in C) or mapped as psets { value = x }.
local H = require('support.helpers')
local psurvey = require('psurvey')
local psets = require('psurvey.psets')

-- The values of r indexed directly, r[1] .. r[#r].
local function direct(r)
  local out = {}
  for i = 1, #r do out[i] = r[i] end
  return out
end

-- The values of r as the axis of a product, computed in C.
local function as_axis(r)
  local p = psurvey.product({ { 'x', r } })
  local out = {}
  for i, pset in p:psets() do out[i] = pset.x end
  return out
end

-- Every value of r, as text that tells floats and integers apart exactly.
local function exact(values)
  local out = {}
  for i, v in ipairs(values) do
    out[i] = math.type(v) == 'integer' and ('%d'):format(v) or ('%.17g'):format(v)
  end
  return out
end

-- Both ways of reading r, checked to agree exactly; returns the values.
local function values(r)
  local d, a = direct(r), as_axis(r)
  assert.same(exact(d), exact(a))
  return d
end

teardown(function()
  H.shutdown()
  H.cleanup()
end)

describe('psurvey.range', function()
  it('gives the decimal you wrote: range(2.8, 4.0, 0.05) has 2.85 as its 2nd value', function()
    local r = psurvey.range(2.8, 4.0, 0.05)
    assert.equal(25, #r)
    local want = {}
    for i = 0, 24 do want[i + 1] = (280 + 5 * i) / 100 end -- the doubles nearest to 2.80, 2.85 ... 4.00
    assert.same(exact(want), exact(values(r)))
    assert.equal(2.85, r[2])
  end)

  it('gives the decimal you wrote counting down, and zero without a sign', function()
    local r = psurvey.range(0.3, 0, -0.1)
    assert.same(exact({ 0.3, 0.2, 0.1, 0.0 }), exact(values(r)))
    assert.equal('0.0', tostring(r[4]))
    r = psurvey.range(-1.5, 1.5, 0.3)
    local want = {}
    for i = 0, 10 do want[i + 1] = (-15 + 3 * i) / 10 end
    assert.same(exact(want), exact(values(r)))
  end)

  it('gives the same values as a product axis, indexed directly and mapped as psets', function()
    for _, args in ipairs({ { 0, 1, 0.1 }, { 2.8, 4.0, 0.05 }, { 1e-3, 2e-3, 1e-4 }, { 0, 1, 1 / 3 },
      { 1, 2, 0.5 }, { 10, 1, -0.75 }, { 123456.789, 123457.789, 0.125 } }) do
      values(psurvey.range(table.unpack(args)))
    end
    local r = psurvey.range(0, 1, 0.1)
    local res = psurvey.map(function(p) return { y = p.value } end, r, H.options({ ncores = 1 }))
    assert.same(exact(direct(r)), exact(res:column('y')))
  end)

  it('rounds every value as printing first + i*step with %.{d}f and reading it back does', function()
    -- Random decimals written with d1 and d2 places (no trailing zero, so that is
    -- their shortest form) and at most 15 digits in all, small and large enough
    -- to take both of C's paths.
    local rng = math.random
    math.randomseed(42)
    local function decimal(places, digits)
      local m = ('%0' .. (places + 1) .. 'd'):format(rng(0, 10 ^ digits - 1) * 10 + rng(1, 9))
      return tonumber(m:sub(1, #m - places) .. '.' .. m:sub(#m - places + 1)), places
    end
    for _ = 1, 300 do
      local p1, p2 = rng(0, 6), rng(0, 6)
      local first, d1 = decimal(p1, rng(0, 13 - math.max(p1, p2)))
      local step, d2 = decimal(p2, rng(0, 3))
      if rng(2) == 1 then step = -step end
      local d = math.max(d1, d2)
      local r = psurvey.range(first, first + 200.5 * step, step)
      assert.equal(201, #r)
      local want = {}
      for i = 1, #r do want[i] = tonumber(('%.' .. d .. 'f'):format(first + (i - 1) * step)) + 0.0 end
      assert.same(exact(want), exact(values(r)))
    end
  end)

  it('travels to workers as an upvalue and works there, in both sandbox profiles', function()
    local temps, ls = psurvey.range(2.8, 4.0, 0.05), psurvey.linspace(0, 1, 5)
    for _, sandbox in ipairs({ 'default', 'strict' }) do
      local res = psurvey.map(function(p)
        return { t = temps[p.value], n = #temps, l = ls[p.value], s = tostring(ls), out = temps[99] == nil }
      end, psurvey.range(1, 3), H.options({ ncores = 1, sandbox = sandbox }))
      assert.same({ 2.8, 2.85, 2.9, n = 3 }, res:column('t'))
      assert.same({ 25, 25, 25, n = 3 }, res:column('n'))
      assert.same({ 0.0, 0.25, 0.5, n = 3 }, res:column('l'))
      assert.equal('psurvey.linspace(0, 1, 5): 5 values', res:column('s')[1])
      assert.same({ true, true, true, n = 3 }, res:column('out'))
    end
  end)

  it('cannot be changed through getmetatable by a pset, for later psets', function()
    local r = psurvey.range(1, 3)
    local res = psurvey.map(function(p)
      local mt = getmetatable(r)
      local ok = pcall(function() mt.__index = function() return 'evil' end end)
      return { mt = mt, changed = ok, v = r[p.value] }
    end, psurvey.range(1, 3), H.options({ ncores = 1 }))
    assert.same({ 'psurvey.range', 'psurvey.range', 'psurvey.range', n = 3 }, res:column('mt'))
    assert.same({ 1, 2, 3, n = 3 }, res:column('v'))
  end)

  it('stays plain data that travels to workers as an upvalue and in user', function()
    local r = psurvey.range(1, 3)
    local res = psurvey.map(function(p, _, user) return { n = r.n, last = r.last, un = user.r.n } end, r,
      H.options({ ncores = 1, user = { r = r } }))
    assert.same({ 3, 3, 3, n = 3 }, res:column('n'))
    assert.same({ 3, 3, 3, n = 3 }, res:column('un'))
    assert.same({ 3, 3, 3, n = 3 }, res:column('last'))
  end)

  it('keeps first + i*step when the step has no short decimal form', function()
    local third = 1 / 3
    assert.same(exact({ 0.0, third, 2 * third, 3 * third }), exact(values(psurvey.range(0.0, 1, third))))
    local tiny = 1e-16 -- 16 decimal places: more than 15, so no rounding
    assert.same(exact({ 0.1, 0.1 + tiny }), exact(values(psurvey.range(0.1, 0.1 + tiny, tiny))))
  end)

  it('includes last when it is reached within rounding, and never overshoots it', function()
    -- 0.9 / 7 has no short decimal form: 7 steps of it make 0.9000000000000001
    local step = 0.9 / 7
    assert.is_true(7 * step > 0.9)
    local v = values(psurvey.range(0, 0.9, step))
    assert.equal(8, #v)
    assert.equal(0.9, v[8])
    -- a last just short of a step is not reached: no value past it
    v = values(psurvey.range(0, 1 - 1e-12, 0.1))
    assert.equal(10, #v)
    assert.equal(0.9, v[10])
    v = values(psurvey.range(1, 1e-12, -0.1))
    assert.equal(10, #v)
    assert.equal(0.1, v[10])
  end)

  it('counts a long float range exactly, without overshooting last', function()
    local r = psurvey.range(0.5, 1e10, 1.5)
    assert.equal(6666666667, #r)
    assert.equal(0.5 + 6666666666 * 1.5, r[#r])
    assert.is_true(r[#r] <= 1e10)
    assert.is_nil(r[#r + 1])
    assert.equal(r[#r], psurvey.product({ x = r })[#r].x)
  end)

  it('counts integer ranges up to the largest integers without overflowing', function()
    local r = psurvey.range(math.mininteger, math.maxinteger, 4)
    assert.equal(1 << 62, #r)
    assert.equal(math.mininteger, r[1])
    assert.equal(math.maxinteger - 3, r[#r])
    assert.equal(math.maxinteger - 3, psurvey.product({ x = r })[#r].x)
    r = psurvey.range(math.maxinteger, math.mininteger, math.mininteger)
    assert.same({ math.maxinteger, -1 }, values(r))
    assert.same({ 0 }, values(psurvey.range(0, 10, math.maxinteger)))
    assert.same({ math.maxinteger - 1, math.maxinteger }, values(psurvey.range(math.maxinteger - 1,
      math.maxinteger)))
    assert.equal(0, #psurvey.range(math.maxinteger, math.mininteger))
  end)

  it('keeps integers integers when only last is a float', function()
    local v = values(psurvey.range(1, 2.5))
    assert.same({ 1, 2 }, v)
    assert.equal('integer', math.type(v[2]))
    assert.same({ 3, 2 }, values(psurvey.range(3, 1.5, -1)))
    assert.same({ 0, math.maxinteger }, values(psurvey.range(0, 1e300, math.maxinteger)))
    assert.equal(0, #psurvey.range(0, -1e300))
  end)

  it('rejects an integer range whose count overflows, naming the argument', function()
    assert.has_error(function() psurvey.range(0, math.maxinteger) end,
      "bad argument #2 to 'range' (0 to 9223372036854775807 by 1: more than 2^63 - 1 values)")
    assert.has_error(function() psurvey.range(math.mininteger, math.maxinteger) end,
      "bad argument #2 to 'range' (-9223372036854775808 to 9223372036854775807 by 1: "
      .. 'more than 2^63 - 1 values)')
    assert.has_error(function() psurvey.range(math.maxinteger, math.mininteger, -1) end,
      "bad argument #2 to 'range' (9223372036854775807 to -9223372036854775808 by -1: "
      .. 'more than 2^63 - 1 values)')
    assert.has_error(function() psurvey.range(-1, 1e300) end,
      "bad argument #2 to 'range' (-1 to 1e+300 by 1: more than 2^63 - 1 values)")
  end)

  it('rejects a float range of more than 2^53 values, naming the argument', function()
    assert.has_error(function() psurvey.range(0, 1e300, 1e-300) end,
      "bad argument #2 to 'range' (0 to 1e+300 by 1e-300: more than 2^53 values, "
      .. 'which floats cannot count)')
    assert.has_error(function() psurvey.range(-1e308, 1e308, 1.0) end,
      "bad argument #2 to 'range' (-1e+308 to 1e+308 by 1.0: more than 2^53 values, "
      .. 'which floats cannot count)')
  end)

  it('rejects arguments that are not finite, naming them', function()
    assert.has_error(function() psurvey.range(0 / 0, 1) end,
      "bad argument #1 to 'range' (finite number expected, got nan)")
    assert.has_error(function() psurvey.range(0, math.huge) end,
      "bad argument #2 to 'range' (finite number expected, got inf)")
    assert.has_error(function() psurvey.range(0, 1, -math.huge) end,
      "bad argument #3 to 'range' (finite number expected, got -inf)")
    assert.has_error(function() psurvey.product({ x = psurvey.range(1, 0 / 0) }) end,
      "bad argument #2 to 'range' (finite number expected, got nan)")
  end)
end)

describe('psurvey.linspace', function()
  it('gives n evenly spaced floats from a to b inclusive, as numpy.linspace does', function()
    -- numpy.linspace(0, 1, 11)
    assert.same(exact({ 0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001, 0.7000000000000001,
      0.8, 0.9, 1.0 }), exact(values(psets.linspace(0, 1, 11))))
    assert.same(exact({ 2.0, 2.25, 2.5, 2.75, 3.0 }), exact(values(psets.linspace(2, 3, 5))))
    assert.same(exact({ 1.0, 0.5, 0.0 }), exact(values(psets.linspace(1, 0, 3))))
    assert.same(exact({ 5.0, 5.0, 5.0 }), exact(values(psets.linspace(5, 5, 3))))
    assert.same(exact({ 0.25 }), exact(values(psets.linspace(0.25, 1, 1))))
    assert.same({}, values(psets.linspace(0, 1, 0)))
  end)

  it('ends exactly at b where i * step would miss it', function()
    -- 3 * 0.3 is 0.8999999999999999 and 7 * (0.9 / 7) is 0.9000000000000001
    assert.same(exact({ 0.0, 0.3, 0.6, 0.9 }), exact(values(psets.linspace(0, 0.9, 4))))
    local v = values(psets.linspace(0, 0.9, 8))
    assert.equal(0.9, v[8])
    assert.equal(6 * (0.9 / 7), v[7])
  end)

  it('gives psets { value = x } when mapped directly', function()
    local res = psurvey.map(function(p) return { y = p.value * 2 } end, psets.linspace(0, 1, 3),
      H.options({ ncores = 1 }))
    local got = {}
    for row in res:rows() do got[#got + 1] = { row.value, row.y } end
    assert.same({ { 0.0, 0.0 }, { 0.5, 1.0 }, { 1.0, 2.0 } }, got)
    assert.equal('float', math.type(got[1][1]))
  end)

  it('describes itself', function()
    assert.equal('psurvey.linspace(0, 1, 11): 11 values', tostring(psets.linspace(0, 1, 11)))
    assert.equal('psurvey.logspace(0, 3, 4): 4 values', tostring(psets.logspace(0, 3, 4)))
  end)

  it('rejects bad arguments, naming them', function()
    assert.has_error(function() psets.linspace('0', 1, 3) end,
      "bad argument #1 to 'linspace' (number expected, got string)")
    assert.has_error(function() psets.linspace(0, 0 / 0, 3) end,
      "bad argument #2 to 'linspace' (finite number expected, got nan)")
    assert.has_error(function() psets.linspace(0, 1, -1) end,
      "bad argument #3 to 'linspace' (count must be an integer >= 0, got -1)")
    assert.has_error(function() psets.linspace(0, 1, 2.5) end,
      "bad argument #3 to 'linspace' (count must be an integer >= 0, got 2.5)")
    assert.has_error(function() psets.linspace(-1e308, 1e308, 3) end,
      "bad argument #2 to 'linspace' (-1e+308 to 1e+308: the span is not a finite number)")
    assert.has_error(function() psets.logspace(0, math.huge, 3) end,
      "bad argument #2 to 'logspace' (finite number expected, got inf)")
  end)
end)

describe('psurvey.logspace', function()
  it('gives 10^x for x in linspace(a, b, n), as numpy.logspace does', function()
    assert.same(exact({ 1.0, 10.0, 100.0, 1000.0 }), exact(values(psets.logspace(0, 3, 4))))
    -- numpy.logspace(0, 1, 3)
    assert.same(exact({ 1.0, 3.1622776601683795, 10.0 }), exact(values(psets.logspace(0, 1, 3))))
    assert.same(exact({ 0.01, 0.1, 1.0 }), exact(values(psets.logspace(-2, 0, 3))))
    local x = values(psets.linspace(-3, 2, 7))
    local want = {}
    for i, v in ipairs(x) do want[i] = 10.0 ^ v end
    assert.same(exact(want), exact(values(psets.logspace(-3, 2, 7))))
  end)

  it('is usable as a product axis beside others', function()
    local p = psurvey.product({ a = psets.logspace(0, 1, 2), b = { 'x' }, c = psets.linspace(0, 1, 2) })
    local got = {}
    for _, pset in p:psets() do got[#got + 1] = pset end
    assert.same({ { a = 1.0, b = 'x', c = 0.0 }, { a = 1.0, b = 'x', c = 1.0 }, { a = 10.0, b = 'x', c = 0.0 },
      { a = 10.0, b = 'x', c = 1.0 } }, got)
  end)
end)
