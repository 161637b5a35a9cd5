-- Resume never recomputes or corrupts: a limited slice keeps the rest, a
-- resume that fails half way changes nothing, set-aside tables get names
-- of their own, and starting over is never silent.
local H = require('support.helpers')

-- A survey of N psets that notes each evaluation in evals.txt.
local SURVEY = [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p, system, user)
  local f = io.open(user, 'a')
  f:write(p.value, '\n')
  f:close()
  return { sq = p.value * p.value }
end, psurvey.range(1, %d), { user = 'evals.txt', ncores = 2 })
print(#r, r.progress.resumed)
]]

local function evaluations(dir)
  local n = 0
  local f = io.open(dir .. '/evals.txt')
  if not f then return 0 end
  for _ in f:lines() do n = n + 1 end
  f:close()
  return n
end

describe('psurvey --resume', function()
  after_each(H.cleanup)

  it('keeps the stored rows past a limit, so that the next full resume reuses all of them', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY:format(20))
    assert.equal(0, H.run(dir, 'survey.lua').code)
    assert.equal(20, evaluations(dir))
    -- Debugging a slice with --resume: nothing to run, nothing set aside.
    local r = H.run(dir, 'survey.lua --resume', { PSURVEY_LIMIT = '5' })
    assert.equal(0, r.code, r.err)
    assert.equal('5\t5\n', r.out)
    r = H.run(dir, 'survey.lua --resume')
    assert.equal(0, r.code, r.err)
    assert.equal('20\t20\n', r.out)
    assert.equal(20, evaluations(dir))
    assert.same({ { name = 'stage1' } }, H.sql(dir .. '/.psurvey/survey.db', 'select name from _psurvey_tables'))
  end)

  it('sets aside unmatched rows under a name of their own, even twice in one second', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY:format(6))
    assert.equal(0, H.run(dir, 'survey.lua').code)
    H.write(dir, 'survey.lua', SURVEY:format(4))
    assert.equal(0, H.run(dir, 'survey.lua --resume').code)
    H.write(dir, 'survey.lua', SURVEY:format(2))
    assert.equal(0, H.run(dir, 'survey.lua --resume').code)
    local db = dir .. '/.psurvey/survey.db'
    local aside = H.sql(db, "select name, total from _psurvey_tables where status = 'unmatched' order by name")
    assert.equal(2, #aside)
    assert.are_not.equal(aside[1].name, aside[2].name)
    assert.same({ 2, 2 }, { aside[1].total, aside[2].total })
    assert.same({ { n = 2 } }, H.sql(db, 'select count(*) n from stage1'))
  end)

  it('rolls back a resume that fails half way, leaving the table as it was', function()
    local dir = H.tmpdir()
    local template = [[
local psurvey = require('psurvey')
local values = {}
for i = 1, 30 do values[i] = %s end
psurvey.map(function(p) return { half = p.value / 2 } end, psurvey.product({ value = values }), { ncores = 2 })
]]
    H.write(dir, 'survey.lua', template:format('i'))
    assert.equal(0, H.run(dir, 'survey.lua').code)
    local db = dir .. '/.psurvey/survey.db'
    local before = H.sql(db, 'select _index, value from stage1 order by _index')
    -- A user's trigger stops the renumbering half way (the reversed order
    -- moves every row).
    H.sql(db, "create trigger stop before update on stage1 when new._index = 15 begin select raise(abort, 'no"
      .. " renumbering today'); end")
    H.write(dir, 'survey.lua', template:format('31 - i'))
    local r = H.run(dir, 'survey.lua --resume')
    assert.equal(3, r.code)
    assert.matches('no renumbering today', r.err)
    assert.same(before, H.sql(db, 'select _index, value from stage1 order by _index'))
    assert.same({ { n = 0 } }, H.sql(db, 'select count(*) n from stage1 where _index < 0'))
  end)

  it('says how many psets are stored before it starts over without --resume', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY:format(10))
    assert.equal(0, H.run(dir, 'survey.lua', { PSURVEY_LIMIT = '4' }).code)
    local r = H.run(dir, 'survey.lua', { PSURVEY_VERBOSE = '1' })
    assert.equal(0, r.code, r.err)
    assert.matches("stage1: 4 psets of an earlier run are stored %(of 4 it ran%), with the same worker; this run "
      .. "starts over and keeps them in another table: run with %-%-resume to reuse them", r.err)
    local tables = H.sql(dir .. '/.psurvey/survey.db', 'select name, ok from _psurvey_tables order by created')
    assert.equal(2, #tables)
    assert.matches('^stage1_%d+_%d+', tables[1].name)
    assert.same({ name = 'stage1', ok = 10 }, tables[2])
  end)

  it('takes a resume mode given after a space', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p) if p.value == 2 then error('two') end end, psurvey.range(1, 3))
print(#r, #r.missing, r.progress.resumed, select('#', ...))
]])
    assert.equal(1, H.run(dir, 'survey.lua').code)
    local r = H.run(dir, 'survey.lua --resume done-and-failed')
    assert.equal(1, r.code, r.err)
    assert.equal('2\t1\t3\t0\n', r.out)
  end)

  it('names --resume when it is interrupted', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p, system) system.sleep(p.value == 1 and 0 or 30) end, psurvey.range(1, 3), { ncores = 1 })
]])
    local out = H.shell(([[cd %s && { %s survey.lua >run.out 2>run.err </dev/null & echo $! >pid; }
      for i in $(seq 1 100); do
        [ "$(sqlite3 .psurvey/survey.db 'select count(*) from stage1' 2>/dev/null)" = 1 ] && break; sleep 0.05
      done
      kill -INT $(cat pid); wait; cat run.err]]):format(H.quote(dir), H.quote(H.bin)))
    assert.matches('interrupted: 1 psets of stage1 are stored in %.psurvey/survey%.db: run it again with %-%-resume '
      .. 'to finish the rest', out)
  end)
end)
