-- Nothing hangs on ssh hosts, and every stop is clean: a survey whose
-- hosts are all gone stops with an error, a host whose ssh program exits
-- while a child of it keeps its output open is lost after the heartbeat,
-- Ctrl-C, SIGTERM and SIGHUP end the driver within a bounded time whatever
-- the hosts do, and a survey leaves nothing running on its hosts.
local H = require('support.helpers')
local S = require('support.sshd')
local B = require('support.background')
local psurvey = require('psurvey')

-- A survey script for the command line: psets of 50 ms on the given hosts.
local function script(s, o)
  return ([[
local psurvey = require('psurvey')
psurvey.map(function(p)
  os.execute('sleep 0.05')
  return { v = p.value }
end, psurvey.range(1, %d), { backend = 'ssh', ssh = { hosts = { %s }, options = { '-F', %q },
  heartbeat = %d, reconnect = %s, program = %s } })
]]):format(o.n or 400, table.concat(o.hosts, ', '), s.config, o.heartbeat or 60, tostring(o.reconnect ~= false),
    o.program and ('%q'):format(o.program) or 'nil')
end

local function quoted(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = ('%q'):format(v) end
  return out
end

local function rows(db)
  return tonumber(io.popen(('sqlite3 %s "select count(*) from stage1" 2>/dev/null'):format(H.quote(db))):read('l'))
end

-- PIDs of the agents (and the shells that start them) on host k.
local function agents(k)
  return ('$(for p in $(ip netns pids psv-h%d); do grep -q agent /proc/$p/cmdline 2>/dev/null && echo $p; done)')
    :format(k)
end

describe('ssh hosts that hang #ssh', function()
  local s, addrs

  setup(function()
    s = S.setup()
    addrs = S.hosts(s, 2)
  end)

  teardown(function()
    psurvey.shutdown()
    S.stop(s)
    H.cleanup()
  end)

  local function entry(k, extra)
    return ('%s slots=2 psurvey=%s%s'):format(addrs[k], H.bin, extra or '')
  end

  describe('with reconnect = false', function()
    it('stops with the documented error when every host is unreachable', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', script(s, { hosts = quoted({ ('127.0.0.1:1 psurvey=%s'):format(H.bin) }),
        reconnect = false, n = 10 }))
      local proc = B.start(dir, 'survey.lua')
      finally(function() B.kill(proc) end)
      local r = B.finish(proc, 20)
      assert.is_not_nil(r, 'still running after 20 s')
      assert.equal(3, r.code, r.err)
      assert.matches('every ssh host is lost or unreachable %(127%.0%.0%.1:%d+: ssh failed: .*[Cc]onnection refused%); '
        .. 'what finished is stored: run again with %-%-resume when they are back', r.err)
    end)

    it('stops with the documented error when every host is lost mid-run', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', script(s, { hosts = quoted({ entry(1) }), reconnect = false, heartbeat = 2 }))
      local db = dir .. '/.psurvey/survey.db'
      local proc = B.start(dir, 'survey.lua')
      finally(function() B.kill(proc) end)
      assert.is_true(B.wait_for(('[ "$(sqlite3 %s "select count(*) from stage1")" -ge 5 ]'):format(H.quote(db)), 20))
      os.execute('kill -9 ' .. agents(1))
      local r = B.finish(proc, 20)
      assert.is_not_nil(r, 'still running 20 s after its only host was lost')
      assert.equal(3, r.code, r.err)
      assert.matches('every ssh host is lost or unreachable %(10%.200%.0%.11: .*%); what finished is stored: run '
        .. 'again with %-%-resume when they are back', r.err)
      assert.is_true(rows(db) >= 5)
      assert.same({ { status = 'failed' } }, H.sql(db, 'select status from _psurvey_tables'))
    end)
  end)

  it('leaves nothing running on a host when the survey ends, or when a worker there retires', function()
    finally(function() B.kill_leftovers('sleep 100.5') end)
    local r = psurvey.map(function()
      local left
      for _ = 1, 50 do
        left = tonumber(io.popen('pgrep -fc "sleep 100[.]5"'):read('l'))
        if left == 0 then break end
        os.execute('sleep 0.02')
      end
      os.execute('sleep 100.5 &')
      return { left = left }
    end, psurvey.range(1, 3), H.options({ backend = 'ssh', max_tasks_per_child = 1,
      ssh = { hosts = { ('%s slots=1 psurvey=%s'):format(addrs[2], H.bin) }, options = { '-F', s.config } } }))
    assert.same({ 0, 0, 0, n = 3 }, r:column('left'))
    psurvey.shutdown()
    assert.same({}, B.leftovers('sleep 100.5'))
  end)
end)
