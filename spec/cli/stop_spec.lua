-- Stopping a survey: Ctrl-C, SIGTERM and SIGHUP end the driver within a
-- bounded time whatever its workers do, keep what finished and mark the
-- stage interrupted; a survey that ends, or a worker that retires, leaves
-- no process behind.
local H = require('support.helpers')
local B = require('support.background')
local psurvey = require('psurvey')

describe('a survey that ends', function()
  teardown(function()
    psurvey.shutdown()
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
    -- Each pset counts what the workers before it left running (waiting
    -- up to a second for a killed one to go), then leaves one.
    local r = psurvey.map(function()
      local left
      for _ = 1, 50 do
        left = tonumber(io.popen('pgrep -fc "sleep 100[.]375"'):read('l'))
        if left == 0 then break end
        os.execute('sleep 0.02')
      end
      os.execute('sleep 100.375 &')
      return { left = left }
    end, psurvey.range(1, 3), H.options({ ncores = 1, max_tasks_per_child = 1, name = 'retire' }))
    assert.same({ 0, 0, 0, n = 3 }, r:column('left'))
    assert.same({ { n = 3 } }, H.sql(r.db, 'select count(distinct _worker) n from retire'))
    psurvey.shutdown()
    assert.same({}, B.leftovers('sleep 100.375'))
  end)
end)
