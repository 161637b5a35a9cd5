-- README "Looking at results", in Lua: results sorted, filtered, grouped
-- and their best row, run in SQLite over a real database; psurvey's own
-- columns readable; a stored stage's statistics; a running stage's count
-- seen from another process.
local H = require('support.helpers')
local B = require('support.background')

describe('results in Lua', function()
  local psurvey = require('psurvey')
  local dir, res
  setup(function()
    dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  if p.x == 5 then error('five') end
  return { y = (p.x - 3) ^ 2 + p.k, even = p.x % 2 == 0 }
end, psurvey.product({ k = { 0, 10 }, x = { 1, 2, 3, 4, 5 } }), { name = 'grid' })
]])
    assert.equal(1, r.code, r.err)
    res = psurvey.open(dir .. '/.psurvey/survey.db', 'grid')
  end)
  teardown(function()
    res = nil -- its store closes when collected: H.shutdown's census counts it
    H.cleanup()
  end)

  local function list(view, key)
    local out = {}
    for row in view:rows() do out[#out + 1] = row[key] end
    return out
  end

  it('filters with where(expr), lazily, and counts what it keeps', function()
    local big = res:where('y > 5')
    assert.equal(4, #big)
    assert.same({ 14, 11, 10, 11 }, list(big, 'y'))
    assert.same({ 10, 11 }, list(big:where('x >= 3'), 'y'))
    assert.equal(8, #res) -- the view it came from is unchanged
    assert.equal(0, #res:where('y > 1000'))
    assert.equal(2, #res.missing:where('k = 10') + #res.missing:where('k = 0'))
  end)

  it('refuses an expression that would do more than read this table', function()
    for _, bad in ipairs({ 'y > 1; DELETE FROM grid', 'y) OR (1', 'y > (SELECT count(*) FROM _psurvey_tables)' }) do
      local ok, err = pcall(res.where, res, bad)
      assert.is_false(ok)
      assert.matches('^where: ', err)
    end
    local ok, err = pcall(res.where, res, 'nope = 1')
    assert.is_false(ok)
    assert.matches('where: no such column: nope', err)
  end)

  it('sorts with sorted(col [, descending]), ties in pset order', function()
    assert.same({ 14, 11, 11, 10, 4, 1, 1, 0 }, list(res:sorted('y', true), 'y'))
    local rows = {}
    for row in res:sorted('even'):sorted('k', true):rows() do rows[#rows + 1] = row.k .. ':' .. row.x end
    assert.same({ '10:1', '10:3', '10:2', '10:4', '0:1', '0:3', '0:2', '0:4' }, rows)
    assert.has_error(function() res:sorted('nope') end,
      "sorted: no column 'nope' in grid (columns: k, x, even, y)")
  end)

  it('finds the best row with best(col [, min|max]), psurvey\'s columns included', function()
    local low = res:best('y')
    assert.same({ 0, 3, 0 }, { low.k, low.x, low.y })
    assert.is_number(low._duration)
    assert.equal(3, low._index)
    assert.equal(14, res:best('y', 'max').y)
    assert.equal(10, res:where('k = 10'):best('y').y)
    assert.is_nil(res:where('y > 100'):best('y'))
    assert.has_error(function() res:best('y', 'most') end,
      "bad argument #2 to 'best' ('min' or 'max' expected, got most)")
  end)

  it('groups with group(key): counts and means of the numeric results', function()
    local g = res:group('k')
    assert.same({ { k = 0, count = 4, mean = { y = 6 / 4 } }, { k = 10, count = 4, mean = { y = 46 / 4 } } }, g)
    local by_even = res:where('x < 4'):group('even')
    assert.equal(2, #by_even)
    assert.same({ false, 4, true, 2 }, { by_even[1].even, by_even[1].count, by_even[2].even, by_even[2].count })
  end)

  it('reads psurvey\'s columns as columns', function()
    for _, c in ipairs({ '_duration', '_cpu', '_worker', '_host', '_start', '_end', '_index', '_attempt', '_run' }) do
      local col = res:column(c)
      assert.equal(8, col.n, c)
      assert.is_not_nil(col[1], c)
    end
    assert.same({ 1, 2, 3, 4, 6, 7, 8, 9 }, { table.unpack(res:column('_index'), 1, 8) })
    assert.equal(8, #res:where('_duration >= 0 AND _worker > 0'))
    assert.equal(H.shell('hostname'):gsub('%s+$', ''), res:column('_host')[1])
  end)

  it('runs psurvey\'s own reading statements, and nothing else, through store:query', function()
    local store = require('psurvey.core').store(dir .. '/.psurvey/survey.db')
    finally(function() store:close() end)
    assert.same({ n = 10 }, store:query('SELECT count(*) AS n FROM grid WHERE k >= ?1', 0):next())
    for _, sql in ipairs({ "ATTACH 'x.db' AS x", 'BEGIN EXCLUSIVE', 'EXPLAIN SELECT 1', 'SELECT 1; SELECT 2',
      'DELETE FROM grid', 'PRAGMA user_version = 9' }) do
      local ok, err = pcall(store.query, store, sql)
      assert.is_false(ok, sql)
      assert.matches('a query must be one statement that only reads', err)
    end
  end)

  it('gives a stored stage\'s run-time statistics', function()
    local s = res.stats
    assert.equal(10, s.count)
    assert.is_true(s.min <= s.p50 and s.p50 <= s.p90 and s.p90 <= s.max)
    assert.matches('^run time of 10 psets: mean ', tostring(s))
    assert.equal('done', res.status)
  end)

  it('says that where and sorted need a database file when results are in memory', function()
    local r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
local res = psurvey.map(function(p) return { y = p.x } end, psurvey.product({ x = { 1, 2 } }),
  { db = false, name = 'm' })
print(res:column('_duration').n, res:column('y')[2], pcall(res.sorted, res, 'y'))
]])
    assert.equal(0, r.code, r.err)
    assert.matches('^2\t2\tfalse\t.-sorted: results kept in memory cannot be queried with SQL: give map%(%) a database'
      .. ' file %(option db%)\n$', r.out)
  end)

  it('shows a running stage\'s count from another process', function()
    local live = H.tmpdir()
    H.write(live, 'slow.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p) os.execute('sleep 0.05') return { y = p.x } end, psurvey.range(1, 60),
  { name = 'slow', ncores = 2 })
]])
    local proc = B.start(live, 'slow.lua')
    finally(function() B.kill(proc) end)
    local db = live .. '/.psurvey/slow.db'
    assert.is_true(B.wait_for('test -f ' .. H.quote(db), 10))
    local seen = {}
    for _ = 1, 300 do
      local ok, r = pcall(psurvey.open, db, 'slow')
      if ok and r.status == 'running' and #r > 0 and #r < 60 then seen[#seen + 1] = #r end
      if #seen >= 2 and seen[#seen] > seen[1] then break end
      os.execute('sleep 0.02')
    end
    assert.is_true(#seen >= 2 and seen[#seen] > seen[1], 'counts seen while running: ' .. table.concat(seen, ' '))
    local done = B.finish(proc, 30)
    assert.equal(0, done.code, done.err)
    local r = psurvey.open(db, 'slow')
    assert.same({ 60, 'done' }, { #r, r.status })
  end)
end)
