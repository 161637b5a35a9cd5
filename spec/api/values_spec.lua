-- Values read back exactly as they were stored, whatever the other rows of
-- their column hold: in a real SQLite file and in memory (db = false), for
-- rows(), column(), missing:psets(), `psurvey replay` and plain SQL.
local H = require('support.helpers')
local psurvey = require('psurvey')

-- Equal values, with NaN equal to NaN and integers apart from floats.
local function same_value(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == 'number' then
    if a ~= a then return b ~= b end
    return math.type(a) == math.type(b) and a == b
  end
  if type(a) ~= 'table' then return a == b end
  for k, v in pairs(a) do
    if not same_value(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function show(v)
  if type(v) == 'table' then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. '=' .. show(x) end
    table.sort(parts)
    return '{' .. table.concat(parts, ',') .. '}'
  end
  if type(v) == 'string' then return ('%q'):format(v) end
  return math.type(v) and (math.type(v) .. ' ' .. tostring(v)) or tostring(v)
end

local function assert_same_values(want, got)
  for i = 1, math.max(#want, #got) do
    if not same_value(want[i], got[i]) then
      error(('value #%d: expected %s, got %s'):format(i, show(want[i]), show(got[i])), 2)
    end
  end
end

-- One value of every kind a column can hold, side by side in one column.
local mixed = { true, 1, 's', { 1, 2 }, 0 / 0, '\xff', false, 0, 1.5, math.huge, -math.huge, 2.0,
  { a = 0 / 0 }, { b = '\xfe' }, {}, '', '{"json":1}', 'true', 7 }

local function psets_of(values)
  local out = {}
  for i, v in ipairs(values) do out[i] = { x = v } end
  return out
end

for _, db in ipairs({ 'a SQLite file', 'memory (db = false)' }) do
  local function opts(extra)
    local o = H.options(extra)
    if db ~= 'a SQLite file' then o.db = false end
    return o
  end

  describe('psurvey results in ' .. db, function()
    teardown(function()
      H.shutdown()
      H.cleanup()
    end)

    it('reads every value of a mixed column back with its own type', function()
      local r = psurvey.map(function(p) return { y = p.x } end, psets_of(mixed), opts())
      assert.equal(#mixed, #r)
      local xs, ys = {}, {}
      for row in r:rows() do
        xs[#xs + 1], ys[#ys + 1] = row.x, row.y
      end
      assert_same_values(mixed, xs)
      assert_same_values(mixed, ys)
      local col = r:column('y')
      assert.equal(#mixed, col.n)
      assert_same_values(mixed, col)
    end)

    it('gives failed psets back from missing:psets() exactly as they were given', function()
      local given = { { x = true }, { x = 1 }, { x = 's' }, { x = { 1, 2 } }, { x = 0 / 0 }, { x = '\xff' } }
      local r = psurvey.map(function() error('always') end, given, opts())
      assert.equal(0, #r)
      assert_same_values(given, r.missing:psets())
    end)

    it('rebuilds each pset with its own keys when a key is a pset key in one row and a result key in another',
      function()
        local function worker(p)
          if p.fail then error('fails') end
          return { b = p.a * 100 }
        end
        -- 'b' is first a result (row 1), then a pset key (row 2); 'fail'
        -- is a pset key of row 2 only.
        local r = psurvey.map(worker, { { a = 1 }, { a = 2, b = 10, fail = true }, { a = 3 } }, opts())
        assert.same({ { a = 2, b = 10, fail = true } }, r.missing:psets())
        local rows = {}
        for row in r:rows() do rows[#rows + 1] = { a = row.a, b = row.b } end
        assert.same({ { a = 1, b = 100 }, { a = 3, b = 300 } }, rows)
      end)

    it('lists every failed attempt, in the order they happened, with what each ran with', function()
      local r = psurvey.map(function(p)
        if p.value == 2 then os.exit(3) end
        return {}
      end, psurvey.range(1, 3), opts({ ncores = 1, retries = 1, timeout = 60 }))
      local got = {}
      for _, a in ipairs(r:attempts()) do
        got[#got + 1] = { a._index, a.attempt, a.kind, a.limit_timeout, a.limit_memory, math.type(a.hash),
          math.type(a.worker), type(a.message), type(a.start), type(a.duration) }
      end
      assert.same({ { 2, 1, 'exit', 60.0, 0.0, 'integer', 'integer', 'string', 'number', 'number' },
        { 2, 2, 'exit', 60.0, 0.0, 'integer', 'integer', 'string', 'number', 'number' } }, got)
    end)
  end)
end

describe('psurvey results in SQLite, read by other programs', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('stores NaN as NULL, so that SQL aggregates skip it, and reads it back as NaN', function()
    local o = H.options({ name = 'nan' })
    local r = psurvey.map(function(p) return { y = p.x } end, psets_of({ 1.0, 0 / 0, 3.0 }), o)
    assert.same({ { tx = 'null', ty = 'null' } }, H.sql(o.db, 'SELECT typeof(x) AS tx, typeof(y) AS ty FROM nan'
      .. ' WHERE _index = 2'))
    assert.same({ { mean = 2.0, n = 2 } }, H.sql(o.db, 'SELECT avg(y) AS mean, count(y) AS n FROM nan'))
    local ys = r:column('y')
    assert_same_values({ 1.0, 0 / 0, 3.0 }, ys)
  end)

  it('stores booleans as 0/1 and tables as JSON text for SQL, whatever else the column holds', function()
    local o = H.options({ name = 'plain' })
    psurvey.map(function(p) return { y = p.x } end, psets_of({ true, 5, { 1, 2 }, 'text', false }), o)
    assert.same({ { y = 1 }, { y = 5 }, { y = '[1,2]' }, { y = 'text' }, { y = 0 } },
      H.sql(o.db, 'SELECT y FROM plain ORDER BY _index'))
  end)
end)

describe('psurvey replay', function()
  after_each(H.cleanup)

  it('runs the pset that ran when a key is a result in one row and a pset key in another', function()
    local dir = H.tmpdir()
    local res = H.survey(dir, [[
      local psurvey = require('psurvey')
      psurvey.map(function(p)
        if p.b then error('has b: ' .. p.b) end
        return { b = p.a * 100 }
      end, { { a = 1, b = 5 }, { a = 2 } })
    ]])
    assert.equal(1, res.code)
    local out = H.run(dir, 'replay .psurvey/survey.db stage1 2')
    assert.equal(0, out.code, out.err)
    assert.matches('^pset #2 of stage1: a=2\nok in ', out.out)
    out = H.run(dir, 'replay .psurvey/survey.db stage1 1')
    assert.equal(1, out.code, out.err)
    assert.matches('^pset #1 of stage1: a=1, b=5\nerror: [^\n]*has b: 5', out.out)
  end)
end)
