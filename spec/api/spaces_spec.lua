-- Spaces, not only grids: psurvey.sample draws psets from ranges and
-- choices (random, Latin hypercube, Sobol), psurvey.filter keeps some psets
-- and psurvey.shuffle orders them by a seed. All three are lazy, like a
-- product, and go wherever a product goes.
local H = require('support.helpers')
local psurvey = require('psurvey')

local function all(p)
  local out = {}
  for _, pset in p:psets() do out[#out + 1] = pset end
  return out
end

local function column(p, key)
  local out = {}
  for i, pset in p:psets() do out[i] = pset[key] end
  return out
end

local function sorted(list)
  local copy = table.move(list, 1, #list, 1, {})
  table.sort(copy)
  return copy
end

describe('psurvey.sample', function()
  it('draws floats in [lo, hi), log-uniform floats, integers lo..hi and choices', function()
    local s = psurvey.sample({
      x = { -1, 1 },                         -- uniform in [-1, 1)
      rate = { 1e-3, 1e3, log = true },      -- each decade as likely
      k = { 1, 6, int = true },              -- 1, 2, ..., 6
      algo = { 'bfgs', 'lbfgs', 'cg' },      -- one of these
      pair = { choices = { 10, 20 } },       -- 10 or 20: two numbers that are not a range
    }, 3000, { seed = 1 })
    assert.equal(3000, #s)
    assert.same({ 'algo', 'k', 'pair', 'rate', 'x' }, s:keys())
    local below1, seen = 0, { k = {}, algo = {}, pair = {} }
    for _, p in s:psets() do
      assert.equal('float', math.type(p.x))
      assert.is_true(p.x >= -1 and p.x < 1)
      assert.is_true(p.rate >= 1e-3 and p.rate < 1e3)
      if p.rate < 1 then below1 = below1 + 1 end
      assert.equal('integer', math.type(p.k))
      for key in pairs(seen) do seen[key][p[key]] = (seen[key][p[key]] or 0) + 1 end
    end
    assert.is_true(below1 > 1350 and below1 < 1650, below1 .. ' of 3000 below 1') -- half the decades
    for k = 1, 6 do assert.is_true(seen.k[k] > 400 and seen.k[k] < 600) end
    assert.same({ 1, 2, 3, 4, 5, 6 }, sorted((function()
      local ks = {}
      for k in pairs(seen.k) do ks[#ks + 1] = k end
      return ks
    end)()))
    for _, a in ipairs({ 'bfgs', 'lbfgs', 'cg' }) do assert.is_true(seen.algo[a] > 900 and seen.algo[a] < 1100) end
    assert.is_true(seen.pair[10] + seen.pair[20] == 3000)
  end)

  it('gives the same psets for the same seed, on any machine, and others for another seed', function()
    local space = { x = { 0, 1 }, k = { 1, 6, int = true }, c = { 'a', 'b', 'c' } }
    local a, b = psurvey.sample(space, 100, { seed = 7 }), psurvey.sample(space, 100, { seed = 7 })
    assert.same(all(a), all(b))
    local c = psurvey.sample(space, 100, { seed = 8 })
    local same = 0
    for i = 1, 100 do if a[i].x == c[i].x then same = same + 1 end end
    assert.equal(0, same)
    -- Integer arithmetic only: these values are the same everywhere.
    assert.same({ { x = 0.15840318104318374, k = 1, c = 'a' }, { x = 0.21637983938852956, k = 6, c = 'b' },
      { x = 0.59218959483274392, k = 6, c = 'a' } }, all(psurvey.sample(space, 3, { seed = 1 })))
    -- The default seed is 0: a sample is reproducible unless told otherwise.
    assert.same(all(psurvey.sample(space, 5)), all(psurvey.sample(space, 5, { seed = 0 })))
  end)

  it('keeps a key\'s values when another key is added (random)', function()
    local a = psurvey.sample({ x = { 0, 1 } }, 50, { seed = 3 })
    local b = psurvey.sample({ x = { 0, 1 }, y = { 5, 6 } }, 50, { seed = 3 })
    assert.same(column(a, 'x'), column(b, 'x'))
  end)

  describe('with method lhs', function()
    it('puts exactly one pset in each of the n strata of every key', function()
      for _, n in ipairs({ 1, 2, 10, 97, 1000 }) do
        local s = psurvey.sample({ x = { 0, 1 }, y = { 0, 1 }, z = { 0, 1 } }, n, { method = 'lhs', seed = n })
        for _, key in ipairs({ 'x', 'y', 'z' }) do
          local strata = {}
          for _, v in ipairs(column(s, key)) do strata[#strata + 1] = math.floor(v * n) end
          local want = {}
          for k = 0, n - 1 do want[#want + 1] = k end
          assert.same(want, sorted(strata))
        end
      end
    end)

    it('maps each stratum through the same transform: n integers or choices each come equally often', function()
      local s = psurvey.sample({ k = { 1, 100, int = true }, c = { 'a', 'b', 'c' } }, 300, { method = 'lhs' })
      local counts = { k = {}, c = {} }
      for _, p in s:psets() do
        counts.k[p.k] = (counts.k[p.k] or 0) + 1
        counts.c[p.c] = (counts.c[p.c] or 0) + 1
      end
      for k = 1, 100 do assert.equal(3, counts.k[k]) end
      assert.same({ a = 100, b = 100, c = 100 }, counts.c)
    end)
  end)

  describe('with method sobol', function()
    it('starts with the plain Sobol sequence for seed 0', function()
      local s = psurvey.sample({ a = { 0, 1 }, b = { 0, 1 }, c = { 0, 1 } }, 8, { method = 'sobol' })
      -- scipy.stats.qmc.Sobol(3, scramble=False).random(8): Joe and Kuo's.
      assert.same({ 0.0, 0.5, 0.75, 0.25, 0.375, 0.875, 0.625, 0.125 }, column(s, 'a'))
      assert.same({ 0.0, 0.5, 0.25, 0.75, 0.375, 0.875, 0.125, 0.625 }, column(s, 'b'))
      assert.same({ 0.0, 0.5, 0.25, 0.75, 0.625, 0.125, 0.875, 0.375 }, column(s, 'c'))
    end)

    for _, seed in ipairs({ 0, 1, 12345 }) do
      it(('has nets: the first 2^m points, seed %d'):format(seed), function()
        local keys = { a = { 0, 1 }, b = { 0, 1 } }
        for d = 3, 32 do keys[('k%02d'):format(d)] = { 0, 1 } end
        local s = psurvey.sample(keys, 2 ^ 9, { method = 'sobol', seed = seed })
        local pts = all(s)
        for m = 0, 9 do
          local n = 2 ^ m
          -- (0, m, 2)-net in dimensions 1 and 2 (keys a and b): every box
          -- 2^-j by 2^-(m-j) holds exactly one of the first 2^m points.
          for j = 0, m do
            local boxes = {}
            for i = 1, n do
              local box = math.floor(pts[i].a * 2 ^ j) * 2 ^ (m - j) + math.floor(pts[i].b * 2 ^ (m - j))
              assert.is_nil(boxes[box], ('m=%d j=%d: two points in one box'):format(m, j))
              boxes[box] = true
            end
          end
          -- Each of the 2^m strata of every dimension holds one of them.
          for key in pairs(keys) do
            local strata = {}
            for i = 1, n do
              local k = math.floor(pts[i][key] * n)
              assert.is_nil(strata[k], ('m=%d key %s: two points in stratum %d'):format(m, key, k))
              strata[k] = true
            end
          end
        end
      end)
    end

    it('shifts every dimension by the seed', function()
      local plain = psurvey.sample({ x = { 0, 1 } }, 3, { method = 'sobol' })
      local shifted = psurvey.sample({ x = { 0, 1 } }, 3, { method = 'sobol', seed = 1 })
      assert.same({ 0.0, 0.5, 0.75 }, column(plain, 'x'))
      assert.same({ 0.95228960187562894, 0.45228960187562894, 0.20228960187562894 }, column(shifted, 'x'))
    end)
  end)

  it('is lazy: ten million psets cost no ten million tables', function()
    for _, method in ipairs({ 'random', 'lhs', 'sobol' }) do
      collectgarbage()
      local before = collectgarbage('count')
      local s = psurvey.sample({ x = { 0, 1 }, k = { 1, 10, int = true } }, 1e7, { method = method })
      assert.equal(10000000, #s)
      local last = s[10000000]
      assert.is_true(last.x >= 0 and last.x < 1 and last.k >= 1 and last.k <= 10)
      assert.is_true(collectgarbage('count') - before < 100) -- KiB
    end
  end)

  it('says what it is', function()
    assert.equal('psurvey.sample(lhs, 3 keys): 100 psets',
      tostring(psurvey.sample({ a = { 0, 1 }, b = { 0, 1 }, c = { 'x' } }, 100, { method = 'lhs' })))
    assert.equal('psurvey.sample(random, 1 key): 0 psets', tostring(psurvey.sample({ a = { 0, 1 } }, 0)))
  end)

  it('raises on bad arguments, naming the argument and the key', function()
    local function fails(msg, ...)
      local args = table.pack(...)
      assert.has_error(function() psurvey.sample(table.unpack(args, 1, args.n)) end, msg)
    end
    fails("bad argument #1 to 'sample' (key 'x': lo must be below hi, got 3 and 1)", { x = { 3, 1 } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': lo must be below hi, got 1 and 1)", { x = { 1, 1 } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': log needs lo > 0, got 0)", { x = { 0, 1, log = true } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': int bounds must be integers, got 1.5 and 3)",
      { x = { 1.5, 3, int = true } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': lo must not be above hi, got 3 and 1)",
      { x = { 3, 1, int = true } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': log and int cannot be combined)",
      { x = { 1, 3, int = true, log = true } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': lo and hi must be finite numbers, got 0 and inf)",
      { x = { 0, math.huge } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': no choices)", { x = {} }, 5)
    fails("bad argument #1 to 'sample' (key 'x': no choices)", { x = { choices = {} } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': log and int need {lo, hi}: two numbers)", { x = { 1, log = true } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': unknown field 'lgo' (a range is {lo, hi} with log = true or "
      .. 'int = true))', { x = { 1, 2, lgo = true } }, 5)
    fails("bad argument #1 to 'sample' (key 'x': expected {lo, hi}, {lo, hi, log = true}, {lo, hi, int = true} or a "
      .. 'list of choices, got number)', { x = 1 }, 5)
    fails("bad argument #1 to 'sample' (key '_x' is reserved: keys starting with '_' are psurvey's columns)",
      { _x = { 0, 1 } }, 5)
    fails("bad argument #1 to 'sample' (keys must be non-empty strings, got number)", { { 0, 1 } }, 5)
    fails("bad argument #1 to 'sample' (the space has no keys)", {}, 5)
    fails("bad argument #1 to 'sample' (a table of key = range or choices expected, got nil)", nil, 5)
    fails("bad argument #2 to 'sample' (n must be a non-negative integer, got 1.5)", { x = { 0, 1 } }, 1.5)
    fails("bad argument #2 to 'sample' (n must be a non-negative integer, got -1)", { x = { 0, 1 } }, -1)
    fails("bad argument #2 to 'sample' (n must be a non-negative integer, got nil)", { x = { 0, 1 } })
    fails("bad argument #3 to 'sample' (unknown method 'grid' (known: 'random', 'lhs', 'sobol'))", { x = { 0, 1 } }, 5,
      { method = 'grid' })
    fails("bad argument #3 to 'sample' (seed must be an integer, got 0.5)", { x = { 0, 1 } }, 5, { seed = 0.5 })
    fails("bad argument #3 to 'sample' (unknown option 'seeds' (known: method, seed))", { x = { 0, 1 } }, 5,
      { seeds = 1 })
    local many = {}
    for d = 1, 33 do many[('k%02d'):format(d)] = { 0, 1 } end
    fails("bad argument #1 to 'sample' (sobol has 32 dimensions, the space has 33 keys)", many, 5,
      { method = 'sobol' })
  end)
end)

describe('psurvey.filter', function()
  it('keeps the psets for which the function is truthy, in their order', function()
    local p = psurvey.product({ a = { 1, 2, 3 }, b = { 'x', 'y' } })
    local f = psurvey.filter(p, function(pset) return pset.a ~= 2 and pset.b == 'y' end)
    assert.same({ { a = 1, b = 'y' }, { a = 3, b = 'y' } }, all(f))
    assert.same({ 'a', 'b' }, f:keys())
    assert.equal('psurvey.filter(of 6): 2 psets', tostring(f))
    assert.same({ { a = 2 } }, all(psurvey.filter({ { a = 1 }, { a = 2 } }, function(s) return s.a > 1 end)))
    assert.same({ 2, 4 }, column(psurvey.filter(psurvey.range(1, 4), function(s) return s.value % 2 == 0 end), 'value'))
    local s = psurvey.filter(psurvey.sample({ x = { 0, 1 } }, 100), function(pset) return pset.x < 0.5 end)
    for _, pset in s:psets() do assert.is_true(pset.x < 0.5) end
  end)

  it('keeps the index of each pset kept, not the pset', function()
    collectgarbage()
    local before = collectgarbage('count')
    local f = psurvey.filter(psurvey.product({ a = psurvey.range(1, 200000) }), function(p) return p.a % 2 == 0 end)
    collectgarbage()
    assert.equal(100000, #f)
    assert.same({ a = 200000 }, f[100000])
    assert.is_true(collectgarbage('count') - before < 100) -- KiB
  end)

  it('raises on bad arguments and names the pset the function failed on', function()
    local p = psurvey.product({ a = { 1, 2 } })
    assert.has_error(function() psurvey.filter(p, 1) end, "bad argument #2 to 'filter' (function expected, got number)")
    assert.has_error(function() psurvey.filter(5, print) end,
      "bad argument #1 to 'filter' (a product, sample, range, array of psets or results expected, got number)")
    assert.has_error(function() psurvey.filter(p, function(s) if s.a == 2 then error('no', 0) end end) end,
      'filter: the function failed on pset #2: no')
  end)
end)

describe('psurvey.shuffle', function()
  it('gives the same psets in a seeded order', function()
    local p = psurvey.product({ a = psurvey.range(1, 100) })
    local s = psurvey.shuffle(p, 42)
    assert.equal(100, #s)
    assert.same(column(p, 'a'), sorted(column(s, 'a')))
    assert.same(column(s, 'a'), column(psurvey.shuffle(p, 42), 'a'))
    assert.are_not.same(column(s, 'a'), column(psurvey.shuffle(p, 43), 'a'))
    assert.are_not.same(column(p, 'a'), column(s, 'a'))
    assert.equal('psurvey.shuffle(seed 42): 100 psets', tostring(s))
    assert.same(column(psurvey.shuffle(p), 'a'), column(psurvey.shuffle(p, 0), 'a'))
  end)

  it('makes the first psets a representative slice', function()
    local s = psurvey.shuffle(psurvey.range(1, 10000), 1)
    local sum = 0
    for i = 1, 500 do sum = sum + s[i].value end
    assert.is_true(math.abs(sum / 500 - 5000) < 500, 'mean of the first 500: ' .. sum / 500)
  end)

  it('is lazy: ten million psets shuffled cost nothing per pset', function()
    collectgarbage()
    local before = collectgarbage('count')
    local s = psurvey.shuffle(psurvey.product({ a = psurvey.range(1, 10000), b = psurvey.range(1, 1000) }), 9)
    assert.equal(10000000, #s)
    local p = s[10000000]
    assert.is_true(p.a >= 1 and p.a <= 10000 and p.b >= 1 and p.b <= 1000)
    assert.is_true(collectgarbage('count') - before < 100) -- KiB
  end)

  it('raises on a seed that is not an integer', function()
    assert.has_error(function() psurvey.shuffle({ { a = 1 } }, 'x') end,
      "bad argument #2 to 'shuffle' (seed must be an integer, got 'x')")
  end)
end)

describe('samples and views compose with product and map', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('crosses a sample, a filter or a shuffle with more keys in a product, the first varying slowest', function()
    local s = psurvey.sample({ x = { 0, 1 } }, 2, { seed = 5 })
    local p = psurvey.product(s, { b = { 1, 2 } })
    assert.equal(4, #p)
    assert.same({ { x = s[1].x, b = 1 }, { x = s[1].x, b = 2 }, { x = s[2].x, b = 1 }, { x = s[2].x, b = 2 } }, all(p))
    assert.same({ 'x', 'b' }, p:keys())
    assert.equal('psurvey.product(x, b): 4 psets', tostring(p))
    local f = psurvey.filter(psurvey.product({ a = { 1, 2, 3 } }), function(q) return q.a > 1 end)
    assert.same({ { c = 'u', a = 2 }, { c = 'u', a = 3 } }, all(psurvey.product({ c = { 'u' } }, f)))
    local sh = psurvey.shuffle(psurvey.product({ a = { 1, 2 } }), 1)
    assert.same({ { a = sh[1].a, d = true }, { a = sh[2].a, d = true } }, all(psurvey.product(sh, { d = { true } })))
    -- A list of psets among the arguments makes the product in memory, as before.
    assert.same({ { x = s[1].x, e = 1 }, { x = s[2].x, e = 1 } }, all(psurvey.product(s, { { e = 1 } })))
  end)

  it('stays lazy: a sample of a million crossed with ten seeds costs no ten million tables', function()
    collectgarbage()
    local before = collectgarbage('count')
    local s = psurvey.sample({ x = { 0, 1 }, y = { 1, 10, log = true } }, 1e6, { method = 'lhs' })
    local p = psurvey.product(s, { seed = psurvey.range(1, 10) })
    assert.equal(10000000, #p)
    local last = p[10000000]
    assert.same({ x = s[1000000].x, y = s[1000000].y, seed = 10 }, last)
    assert.is_true(collectgarbage('count') - before < 100) -- KiB
  end)

  it('refuses a key in two arguments, naming the argument', function()
    local s = psurvey.sample({ x = { 0, 1 } }, 2)
    assert.has_error(function() psurvey.product(s, { x = { 1 } }) end,
      "bad argument #2 to 'product' (key 'x' is in more than one argument)")
    assert.has_error(function() psurvey.product({ X = { 1 } }, s) end,
      "bad argument #2 to 'product' (keys 'X' and 'x' differ only in letter case, which SQLite column names cannot"
        .. ' tell apart: rename one)')
    assert.has_error(function() psurvey.product(s, 5) end, "bad argument #2 to 'product' (table expected, got number)")
  end)

  it('maps over a shuffled, filtered product', function()
    local p = psurvey.product({ a = psurvey.range(1, 20), b = { 'x', 'y' } })
    local psets = psurvey.shuffle(psurvey.filter(p, function(q) return q.a % 4 == 0 end), 3)
    local r = psurvey.map(function(q) return { s = q.a .. q.b } end, psets, H.options())
    assert.equal(10, #r)
    local got = {}
    for row in r:rows() do
      assert.equal(row.a .. row.b, row.s)
      got[#got + 1] = row.s
    end
    local want = {}
    for _, q in psets:psets() do want[#want + 1] = q.a .. q.b end
    assert.same(sorted(want), sorted(got))
  end)

  it('maps over a sample, and takes a representative slice of a shuffle with limit', function()
    local r = psurvey.map(function(q) return { y = q.k * 2 } end,
      psurvey.sample({ k = { 1, 10, int = true } }, 10, { method = 'lhs' }), H.options())
    local ks = {}
    for row in r:rows() do
      assert.equal(row.k * 2, row.y)
      ks[#ks + 1] = row.k
    end
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sorted(ks))
    -- Results are psets too: each row's pset and result keys.
    local big = psurvey.filter(r, function(row) return row.y > 10 end)
    assert.same({ 12, 14, 16, 18, 20 }, sorted(column(big, 'y')))
    assert.same({ 6, 7, 8, 9, 10 }, sorted(column(big, 'k')))
    local slice = psurvey.map(function(q) return { v = q.value } end, psurvey.shuffle(psurvey.range(1, 1000), 2),
      H.options({ limit = 5 }))
    assert.equal(5, #slice)
  end)

  it('keeps each pset\'s _psurvey options through filter and shuffle', function()
    local psets = {}
    for i = 1, 6 do psets[i] = { k = i, _psurvey = { name = 'pset ' .. i } } end
    local view = psurvey.shuffle(psurvey.filter(psets, function(q) return q.k > 2 end), 1)
    local r = psurvey.map(function(q) return { k2 = q.k } end, view, H.options({ name = 'views' }))
    local rows = H.sql(r.db, 'select k, _name from views order by k')
    assert.same({ { k = 3, _name = 'pset 3' }, { k = 4, _name = 'pset 4' }, { k = 5, _name = 'pset 5' },
      { k = 6, _name = 'pset 6' } }, rows)
    -- And through a product that crosses a view with more keys.
    r = psurvey.map(function(q) return { k2 = q.k } end, psurvey.product(view, { b = { 1, 2 } }),
      H.options({ name = 'crossed' }))
    rows = H.sql(r.db, 'select k, b, _name from crossed order by k, b')
    assert.equal(8, #rows)
    assert.same({ k = 3, b = 1, _name = 'pset 3' }, rows[1])
    assert.same({ k = 6, b = 2, _name = 'pset 6' }, rows[8])
  end)
end)
