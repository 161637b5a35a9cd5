-- Stopping a survey: Ctrl-C, SIGTERM and SIGHUP end the driver within a
-- bounded time whatever its workers do, keep what finished and mark the
-- stage interrupted; a survey that ends, or a worker that retires, leaves
-- no process behind.
local H = require('support.helpers')
local B = require('support.background')
local psurvey = require('psurvey')

-- Four psets finish; the other four wait for a child process that would
-- run for 100 s.
local STUCK = [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  if p.value > 4 then os.execute('sleep 100.125') end
  return { v = p.value }
end, psurvey.range(1, 8), { ncores = 2, group_size = 1 })
]]

describe('psurvey survey.lua, stopped by a signal', function()
  teardown(H.cleanup)

  -- The exit status is 128 + the signal, as a shell reports a process it ended.
  local status = { INT = 130, TERM = 143, HUP = 129 }
  for _, sig in ipairs({ 'INT', 'TERM', 'HUP' }) do
    it(('ends within 3 s of SIG%s while psets wait for child processes, keeps the finished rows, marks the stage '
      .. 'interrupted and exits %d'):format(sig, status[sig]), function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', STUCK)
      local db = dir .. '/.psurvey/survey.db'
      local proc = B.start(dir, 'survey.lua')
      finally(function() B.kill(proc) end)
      assert.is_true(B.wait_for(('[ "$(sqlite3 %s "select count(*) from stage1")" = 4 ]'):format(H.quote(db)), 20))
      local took, r = B.stop(proc, sig, 10)
      assert.is_not_nil(took, ('still running 10 s after SIG%s: %s'):format(sig, r and r.err))
      assert.is_true(took < 3, ('SIG%s took %.2f s'):format(sig, took))
      assert.equal(status[sig], r.code, r.err)
      assert.matches('psurvey: interrupted: 4 psets of stage1 are stored in %.psurvey/survey%.db: run it again with '
        .. '%-%-resume to finish the rest\n', r.err)
      assert.same({ { status = 'interrupted', n = 4 } },
        H.sql(db, "select t.status, (select count(*) from stage1 where _status = 'ok') n from _psurvey_tables t"))
      assert.same({ { status = 'interrupted' } }, H.sql(db, 'select status from _psurvey_runs'))
      assert.same({}, B.leftovers('sleep 100.125'))
    end)
  end

  it('goes on after a SIGHUP that nohup ignores', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', STUCK)
    local db = dir .. '/.psurvey/survey.db'
    local proc = B.start(dir, 'survey.lua', nil, 'nohup')
    finally(function() B.kill(proc) end)
    assert.is_true(B.wait_for(('[ "$(sqlite3 %s "select count(*) from stage1")" = 4 ]'):format(H.quote(db)), 20))
    os.execute(('kill -HUP %d; sleep 0.5'):format(proc.pid))
    assert.is_false(B.done(proc))
    local took, r = B.stop(proc, 'INT', 10)
    assert.is_not_nil(took, 'still running 10 s after SIGINT')
    assert.equal(130, r.code, r.err)
    assert.same({ { status = 'interrupted' } }, H.sql(db, 'select status from _psurvey_tables'))
  end)

  it('ends the script on Ctrl-C after a map(), marks the run interrupted and exits 130', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { v = p.value } end, psurvey.range(1, 4), { ncores = 2 })
io.stderr:write('mapped\n')
local x = 0
while true do x = x + 1 end
]])
    local proc = B.start(dir, 'survey.lua')
    finally(function() B.kill(proc) end)
    assert.is_true(B.wait_for(('grep -q mapped %s/.err'):format(H.quote(dir)), 20))
    local took, r = B.stop(proc, 'INT', 10)
    assert.is_not_nil(took, 'still running 10 s after SIGINT')
    assert.equal(130, r.code, r.err)
    assert.equal('mapped\npsurvey: interrupted\n', r.err)
    assert.same({ { status = 'interrupted' } }, H.sql(dir .. '/.psurvey/survey.db', 'select status from _psurvey_runs'))
  end)
end)

describe('a survey that ends', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('leaves no process behind when its workers started some in the background', function()
    finally(function() B.kill_leftovers('sleep 100.25') end)
    local r = psurvey.map(function()
      os.execute('sleep 100.25 &')
      return {}
    end, psurvey.range(1, 4), H.options({ ncores = 2 }))
    assert.equal(4, #r)
    psurvey.shutdown()
    assert.same({}, B.leftovers('sleep 100.25'))
  end)

  it('leaves no process behind when a worker retires by max_tasks_per_child', function()
    finally(function() B.kill_leftovers('sleep 100.375') end)
    -- Each pset counts what the workers before it left running, then
    -- leaves one.
    local r = psurvey.map(B.leaving_worker(100.375), psurvey.range(1, 3),
      H.options({ ncores = 1, max_tasks_per_child = 1, name = 'retire' }))
    assert.same({ 0, 0, 0, n = 3 }, r:column('left'))
    assert.same({ { n = 3 } }, H.sql(r.db, 'select count(distinct _worker) n from retire'))
    psurvey.shutdown()
    assert.same({}, B.leftovers('sleep 100.375'))
  end)
end)
