-- Stopping early: the halt option, with GNU parallel's --halt syntax and
-- meaning, and what a halted map keeps.
local H = require('support.helpers')

-- Pset 1 runs for a second; pset 2 fails at once; the others would run a
-- second each.
local SURVEY = [[
local psurvey = require('psurvey')
local t0 = os.time()
local ok, e = pcall(psurvey.map, function(p)
  if p.value == 2 then error('two fails', 0) end
  os.execute('sleep 1')
  return { y = p.value }
end, psurvey.range(1, 20), { name = 'h', ncores = 2, group_size = 1 })
io.stderr:write('message: ', tostring(e), '\n')
error(e, 0)
]]

local function rows(dir)
  return H.sql(dir .. '/.psurvey/survey.db', 'select _index, _status from h order by _index')
end

describe('option halt', function()
  teardown(H.cleanup)

  it('now,fail=N stops at once: running psets are killed and not stored, exit status 4', function()
    local dir = H.tmpdir()
    local t0 = os.time()
    local r = H.survey(dir, SURVEY, '--halt now,fail=1')
    assert.equal(4, r.code, r.err)
    assert.is_true(os.time() - t0 <= 3) -- not the 10 s the survey would take
    assert.same({ { _index = 2, _status = 'error' } }, rows(dir))
    assert.matches("message: map: h halted by halt 'now,fail=1' after 1 failed psets: 1 psets are stored in "
      .. '%.psurvey/survey%.db %(0 ok, 1 failed%); fix what fails and run it again with %-%-resume to finish the '
      .. 'rest\n', r.err)
    assert.same({ { status = 'halted' } }, H.sql(dir .. '/.psurvey/survey.db',
      "select status from _psurvey_tables where name = 'h'"))
    assert.same({ { status = 'halted' } }, H.sql(dir .. '/.psurvey/survey.db', 'select status from _psurvey_runs'))
  end)

  it('soon,fail=N starts no new pset and lets the running ones finish', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SURVEY, '', { PSURVEY_HALT = 'soon,fail=1' })
    assert.equal(4, r.code, r.err)
    -- Pset 1 was running: it finished and is stored; nothing after 2 ran.
    assert.same({ { _index = 1, _status = 'ok' }, { _index = 2, _status = 'error' } }, rows(dir))
    assert.matches("halted by halt 'soon,fail=1' after 1 failed psets: 2 psets are stored", r.err)
  end)

  it('counts a percentage once 10 psets have finished', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p) if p.value % 4 == 0 then error('quarter') end return {} end, psurvey.range(1, 100),
  { name = 'h', ncores = 1, group_size = 1, halt = 'now,fail=20%' })
]], '', { PSURVEY_VERBOSE = '1' })
    assert.equal(4, r.code, r.err)
    -- 2 of the first 9 failed (22%) but 9 is too few; at 10, 2 of 10 is 20%.
    assert.matches("halt 'now,fail=20%%': 2 of 10 finished psets failed: stopping the running psets", r.err)
    -- What finished is kept: the 10, and at most the next pset the worker held.
    local n = H.sql(dir .. '/.psurvey/survey.db', 'select count(*) as n from h')[1].n
    assert.is_true(n >= 10 and n <= 11, tostring(n))
  end)

  it('finishes the rest with --resume once what failed is fixed', function()
    local dir = H.tmpdir()
    local script = [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  if p.value == 2 and io.open('broken') then error('two fails', 0) end
  return { y = p.value }
end, psurvey.range(1, 20), { name = 'h', ncores = 1, group_size = 1 })
]]
    H.write(dir, 'broken', '')
    assert.equal(4, H.survey(dir, script, '--halt now,fail=1').code)
    os.remove(dir .. '/broken')
    local r = H.survey(dir, script, '--resume=done --halt now,fail=1')
    assert.equal(0, r.code, r.err)
    assert.same({ { n = 20, failed = 0 } }, H.sql(dir .. '/.psurvey/survey.db',
      "select count(*) as n, sum(_status <> 'ok') as failed from h"))
  end)

  it('does not halt a map whose last pset trips it: everything ran', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p) if p.value == 5 then error('last') end return {} end, psurvey.range(1, 5),
  { name = 'h', ncores = 1 })
]], '--halt now,fail=1')
    assert.equal(1, r.code, r.err) -- a failed pset, not a halt
    assert.same({ { status = 'done' } }, H.sql(dir .. '/.psurvey/survey.db',
      "select status from _psurvey_tables where name = 'h'"))
  end)

  it('rejects what GNU parallel would not take, naming it', function()
    local cases = {
      { 'later,fail=1', "expected 'now,fail=N', 'soon,fail=N', 'now,fail=P%%', 'soon,fail=P%%' or 'never' %(GNU "
        .. "parallel's %-%-halt%), got 'later,fail=1'" },
      { 'now,fail=0', "the count in 'now,fail=0' must be an integer of at least 1" },
      { 'now,fail=1.5', "the count in 'now,fail=1.5' must be an integer of at least 1" },
      { 'soon,fail=150%', "the percentage in 'soon,fail=150%%' must be above 0 and at most 100" },
    }
    for _, case in ipairs(cases) do
      local r = H.run(H.tmpdir(), 'survey.lua --halt ' .. H.quote(case[1]))
      assert.equal(2, r.code)
      assert.matches("option '%-%-halt': " .. case[2], r.err)
    end
  end)
end)
