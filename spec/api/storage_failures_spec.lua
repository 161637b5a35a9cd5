-- One pset never stops a survey: a result SQLite cannot store fails that
-- pset alone, a pset list SQLite cannot store is refused before anything
-- runs, and another program holding the database's write lock is waited
-- for, with every finished row kept.
local H = require('support.helpers')
local psurvey = require('psurvey')

local function statuses(r)
  local out = {}
  for row in r.missing:rows() do out[row._index] = row._exception end
  return out
end

describe('psurvey.map with results SQLite cannot store', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('fails only the pset whose result has more keys than a table may have columns', function()
    local r = psurvey.map(function(p)
      local out = { v = p.value }
      if p.value == 2 then
        for k = 1, 2100 do out['k' .. k] = k end
      end
      return out
    end, psurvey.range(1, 3), H.options({ ncores = 1, group_size = 1 })) -- pset 1's column comes first
    assert.equal(2, #r)
    assert.same({ 1, 3, n = 2 }, r:column('v'))
    assert.matches('^this row needs 2100 new columns, and the table has 2 of the 1984 a table may have',
      statuses(r)[2])
  end)

  it('fails only the psets whose result keys add up past the column limit over the survey', function()
    local r = psurvey.map(function(p)
      local out = {}
      for k = 1, 300 do out[('p%d_%d'):format(p.value, k)] = k end
      return out
    end, psurvey.range(1, 10), H.options({ ncores = 1, group_size = 1 }))
    -- 1 pset key and 300 result keys a pset: six psets fill 1801 columns,
    -- the seventh would need 2101.
    assert.equal(6, #r)
    assert.equal(4, #r.missing)
    for i = 7, 10 do
      assert.matches('^this row needs 300 new columns, and the table has 1801 of the 1984', statuses(r)[i])
    end
    assert.equal(300, r:column('p6_300')[6])
  end)

  it('fails only the pset whose result keys differ only in letter case', function()
    local r = psurvey.map(function(p)
      if p.value == 1 then return { Total = 1, total = 2 } end
      if p.value == 2 then return { VALUE = 3 } end
      return { total = p.value }
    end, psurvey.range(1, 3), H.options())
    assert.equal(1, #r)
    local why = statuses(r)
    assert.matches("^result key '[Tt]otal' and result key '[Tt]otal' differ only in letter case, which SQLite column "
      .. 'names cannot tell apart: rename one$', why[1])
    assert.equal("result key 'VALUE' and key 'value' differ only in letter case, which SQLite column names cannot "
      .. 'tell apart: rename one', why[2])
  end)

  it('fails the result, not the survey, when a pset key comes after a result key that differs only in case',
    function()
      local r = psurvey.map(function(p) if p.a then return { Temp = 1 } end end, { { a = 1 }, { temp = 2 }, { a = 3 } },
        H.options({ ncores = 1 }))
      assert.equal(1, #r)
      assert.same({ 2, n = 1 }, r:column('temp'))
      local why = statuses(r)
      for _, i in ipairs({ 1, 3 }) do
        assert.equal("result key 'Temp' and key 'temp' differ only in letter case, which SQLite column names cannot"
          .. ' tell apart: rename one', why[i])
      end
    end)

  it('refuses psets whose keys differ only in letter case before anything runs', function()
    local ran = H.tmpdir() .. '/ran'
    local ok, err = pcall(psurvey.map, function(_, _, file) io.open(file, 'w'):close() end,
      { { a = 1 }, { b = 2 }, { A = 3 } }, H.options({ user = ran }))
    assert.is_false(ok)
    assert.matches("pset #3 key 'A' and pset #1 key 'a' differ only in letter case, which SQLite column names cannot"
      .. ' tell apart: rename one', err)
    assert.is_nil(io.open(ran))
    assert.has_error(function() psurvey.product({ Temp = { 1 }, temp = { 2 } }) end,
      "bad argument #1 to 'product' (keys 'Temp' and 'temp' differ only in letter case, which SQLite column names"
      .. ' cannot tell apart: rename one)')
  end)
end)

describe('psurvey.map on a database another program locks', function()
  after_each(H.cleanup)

  -- A survey of 40 psets of 50 ms on 2 workers (about a second).
  local SURVEY = [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p, system) system.sleep(0.05) return { v = p.value } end,
  psurvey.range(1, 40), { db = 'locked.db', ncores = 2, verbose = 1 })
print(#r, #r.missing)
]]

  -- Holds the write lock of db for `seconds`, as a DB browser or a CREATE
  -- INDEX would: the sqlite3 shell runs BEGIN IMMEDIATE, then waits for
  -- its next line.
  local function hold(db, seconds)
    return ([[{ echo 'BEGIN IMMEDIATE;'; echo 'CREATE TABLE IF NOT EXISTS other(x);'; sleep %g;
      echo 'COMMIT;'; } | sqlite3 %s]]):format(seconds, db)
  end

  it('waits for the write lock and keeps every finished row', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    local out, rc = H.shell(([[cd %s && { %s survey.lua >run.out 2>run.err </dev/null & }
      for i in $(seq 1 200); do
        n=$(sqlite3 locked.db 'select count(*) from stage1' 2>/dev/null) && [ "$n" -gt 0 ] && break
        sleep 0.02
      done
      %s; wait; cat run.out run.err]]):format(H.quote(dir), H.quote(H.bin), hold('locked.db', 2)))
    assert.equal(0, rc)
    assert.matches('^40\t0\n', out)
    assert.matches("database 'locked%.db' is locked by another program: waiting for it %(finished rows are kept "
      .. 'until then%)', out)
    assert.matches('the database is free again after', out)
    assert.same({ { n = 40, ok = 40, failed = 0, status = 'done' } }, H.sql(dir .. '/locked.db',
      'SELECT (SELECT count(*) FROM stage1) AS n, ok, failed, status FROM _psurvey_tables'))
  end)

  it('counts, after Ctrl-C while it waits, only the rows it could store', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    -- The lock is taken once rows are stored and held for 8 s; SIGINT
    -- comes a second later. The driver waits 5 s more, then gives up.
    local out = H.shell(([[cd %s && { %s survey.lua >run.out 2>run.err </dev/null & echo $! >pid; }
      for i in $(seq 1 200); do
        n=$(sqlite3 locked.db 'select count(*) from stage1' 2>/dev/null) && [ "$n" -gt 0 ] && break
        sleep 0.02
      done
      { %s; } & sleep 1; kill -INT $(cat pid); start=$(date +%%s.%%N)
      while kill -0 $(cat pid) 2>/dev/null; do sleep 0.05; done
      echo "took $(echo "$(date +%%s.%%N) - $start" | bc)"; wait; cat run.err]]):format(H.quote(dir),
      H.quote(H.bin), hold('locked.db', 8)))
    local took = tonumber(out:match('took ([%d.]+)'))
    assert.is_true(took > 4 and took < 9, out)
    local stored, lost = out:match('interrupted: (%d+) psets of stage1 are stored in locked%.db: run it again with '
      .. '%-%-resume to finish the rest %((%d+) finished rows were not stored: the database stayed locked by '
      .. 'another program%)')
    assert.is_not_nil(stored, out)
    local got = H.sql(dir .. '/locked.db', 'SELECT (SELECT count(*) FROM stage1) AS n, ok + failed AS counted'
      .. ' FROM _psurvey_tables')
    assert.equal(got[1].n, got[1].counted)
    assert.equal(tonumber(stored), got[1].n)
    assert.is_true(tonumber(lost) > 0)
  end)

  it('ends within seconds on Ctrl-C while it waits to begin a stage, exit 130', function()
    local dir = H.tmpdir()
    -- The lock comes between two maps: the second waits for it to begin.
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function() end, psurvey.range(1, 2), { db = 'locked.db' })
io.stderr:write('first\n')
os.execute('sleep 1')
psurvey.map(function() end, psurvey.range(1, 2), { db = 'locked.db', verbose = 1 })
]])
    local out = H.shell(([[cd %s && { %s survey.lua >run.out 2>run.err </dev/null & echo $! >pid; }
      for i in $(seq 1 200); do grep -q first run.err && break; sleep 0.02; done
      { %s; } & sleep 1.5; kill -INT $(cat pid); start=$(date +%%s.%%N)
      wait $(cat pid); echo "status=$? took $(echo "$(date +%%s.%%N) - $start" | bc)"; wait; cat run.err]]):format(
      H.quote(dir), H.quote(H.bin), hold('locked.db', 6)))
    local status, took = out:match('status=(%d+) took ([%d.]+)')
    assert.equal('130', status, out)
    assert.is_true(tonumber(took) < 3, out)
    assert.matches("stage2: database 'locked%.db' is locked by another program: waiting for it", out)
    assert.matches('interrupted: 0 psets of stage2 are stored in locked%.db: run it again with %-%-resume', out)
  end)

  it('waits for the write lock to begin a stage', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    H.shell(('cd %s && sqlite3 locked.db "PRAGMA journal_mode=WAL; CREATE TABLE other(x)"'):format(H.quote(dir)))
    local out, rc = H.shell(([[cd %s && { %s & } && sleep 0.3 &&
      %s survey.lua 2>&1 </dev/null; wait]]):format(H.quote(dir), hold('locked.db', 1.5), H.quote(H.bin)))
    assert.equal(0, rc, out)
    assert.matches('locked by another program: waiting for it', out)
    assert.matches('\n40\t0\n', out)
  end)
end)

describe('timeouts', function()
  after_each(H.cleanup)

  it('start when the worker has loaded the code, not while it loads a slow module', function()
    local dir = H.tmpdir()
    H.write(dir, 'slowmod.lua', [[
os.execute('sleep 1.5')
return { twice = function(x) return 2 * x end }
]])
    local r = H.survey(dir, [[
package.path = './?.lua;' .. package.path
local psurvey = require('psurvey')
local slowmod = require('slowmod')
local r = psurvey.map(function(p) return { y = slowmod.twice(p.value) } end, psurvey.range(1, 4),
  { timeout = 1, ncores = 2 })
print(#r, #r.missing)
]], '', { LUA_PATH = './?.lua;;' })
    assert.equal(0, r.code, r.err)
    assert.equal('4\t0\n', r.out)
  end)
end)
