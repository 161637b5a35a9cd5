-- Nothing hangs on ssh hosts, and every stop is clean: a survey whose
-- hosts are all gone stops with an error, a host whose ssh program exits
-- while a child of it keeps its output open is lost after the heartbeat,
-- Ctrl-C, SIGTERM and SIGHUP end the driver within a bounded time whatever
-- the hosts do, and a survey leaves nothing running on its hosts.
local H = require('support.helpers')
local S = require('support.sshd')
local B = require('support.background')
local psurvey = require('psurvey')

-- Seconds from a signal to the driver's exit that the specs accept.
local BOUND = 8

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

-- A stand-in for ssh: a shell script run in its place.
local function program(dir, name, body)
  local path = H.write(dir, name, '#!/bin/sh\n' .. body)
  os.execute('chmod 755 ' .. H.quote(path))
  return path
end

local function rows(db)
  return tonumber(io.popen(('sqlite3 %s "select count(*) from stage1" 2>/dev/null'):format(H.quote(db))):read('l'))
end

-- PIDs of the agents (and the shells that start them) on host k.
local function agents(k)
  return ('$(for p in $(ip netns pids psv-h%d); do grep -q agent /proc/$p/cmdline 2>/dev/null && echo $p; done)')
    :format(k)
end

-- Registers the spec's one `finally` (busted keeps only the last one
-- given); returns a function that adds a cleanup to it.
local function cleanups()
  local fns = {}
  finally(function()
    for i = #fns, 1, -1 do fns[i]() end
  end)
  return function(fn) fns[#fns + 1] = fn end
end

describe('ssh hosts that hang #ssh', function()
  local s, addrs

  setup(function()
    s = S.setup()
    addrs = S.hosts(s, 2)
  end)

  teardown(function()
    H.shutdown()
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
      assert.equal(2, r.code, r.err) -- the user's hosts: a message alone, exit 2
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
      assert.equal(2, r.code, r.err) -- the user's hosts: a message alone, exit 2
      assert.matches('every ssh host is lost or unreachable %(10%.200%.0%.11: .*%); what finished is stored: run '
        .. 'again with %-%-resume when they are back', r.err)
      assert.is_true(rows(db) >= 5)
      assert.same({ { status = 'failed' } }, H.sql(db, 'select status from _psurvey_tables'))
    end)
  end)

  it('loses a host after ssh.heartbeat when its ssh program exits while a child keeps its output open', function()
    local dir = H.tmpdir()
    -- For host 1 only, a child in a session of its own keeps the output.
    local wrapper = program(dir, 'ssh-wrapper', ([[
case "$*" in *%s*) setsid sleep 100.75 & ;; esac
exec ssh "$@"
]]):format(addrs[1]))
    local later = cleanups()
    later(function() B.kill_leftovers('sleep 100.75') end)
    H.write(dir, 'survey.lua', script(s, { hosts = quoted({ entry(1), entry(2) }), heartbeat = 2, program = wrapper,
      n = 300 }))
    local db = dir .. '/.psurvey/survey.db'
    local proc = B.start(dir, 'survey.lua')
    later(function() B.kill(proc) end)
    assert.is_true(B.wait_for(('[ "$(sqlite3 %s "select count(*) from stage1 where _host = \'h1\'")" -ge 5 ]'):format(
      H.quote(db)), 20))
    os.execute('kill -9 ' .. agents(1))
    local r = B.finish(proc, 40)
    assert.is_not_nil(r, 'still running 40 s after host 1 was lost')
    assert.equal(0, r.code, r.err)
    assert.same({ { n = 300 } }, H.sql(db, "select count(*) n from stage1 where _status = 'ok'"))
    local log = H.slurp(dir .. '/' .. H.logs(dir)[1])
    assert.matches('host 10%.200%.0%.11: lost: ssh failed', log)
  end)

  describe('a driver stopped by a signal', function()
    -- Runs a survey on host 1, does `hostile` once psets are stored,
    -- then sends each signal in turn; returns the seconds each took.
    local function stop_each(hostile, o)
      local later = cleanups()
      if o.cleanup then later(o.cleanup) end
      local took = {}
      for _, sig in ipairs({ 'INT', 'TERM', 'HUP' }) do
        local dir = H.tmpdir()
        H.write(dir, 'survey.lua', script(s, { hosts = quoted({ entry(1) }), program = o.program and o.program(dir) }))
        local db = dir .. '/.psurvey/survey.db'
        local proc = B.start(dir, 'survey.lua')
        later(function() B.kill(proc) end)
        assert.is_true(B.wait_for(('[ "$(sqlite3 %s "select count(*) from stage1")" -ge 5 ]'):format(H.quote(db)), 20))
        os.execute(hostile)
        local t, r = B.stop(proc, sig, 30)
        assert.is_not_nil(t, ('still running 30 s after SIG%s: %s'):format(sig, r.err))
        assert.is_true(t < BOUND, ('SIG%s took %.2f s'):format(sig, t))
        assert.equal(({ INT = 130, TERM = 143, HUP = 129 })[sig], r.code, r.err) -- 128 + the signal
        local n = rows(db)
        assert.matches(('psurvey: interrupted: %d psets of stage1 are stored in %%.psurvey/survey%%.db: run it again'
          .. ' with %%-%%-resume to finish the rest\n'):format(n), r.err)
        assert.same({ { status = 'interrupted', ok = n } },
          H.sql(db, "select status, (select count(*) from stage1 where _status = 'ok') ok from _psurvey_tables"))
        took[sig] = t
        if o.cleanup then o.cleanup() end
      end
      print(('\n%s: SIGINT %.2f s, SIGTERM %.2f s, SIGHUP %.2f s'):format(hostile:sub(1, 60), took.INT, took.TERM,
        took.HUP))
    end

    it('ends within ' .. BOUND .. ' s when its host never answers the kill (link cut)', function()
      stop_each('ip link set psv-veth1 down', { cleanup = function() S.link(1, true) end })
    end)

    it('ends within ' .. BOUND .. ' s when the agent is stopped with SIGSTOP', function()
      stop_each('kill -STOP ' .. agents(1), { cleanup = function()
        os.execute('kill -CONT ' .. agents(1) .. ' 2>/dev/null')
      end })
    end)

    it('ends within ' .. BOUND .. ' s when an ssh wrapper ignores signals and a child keeps its output open', function()
      stop_each('true', { program = function(dir)
        return program(dir, 'ssh-wrapper', [[
trap '' INT TERM HUP
setsid sleep 100.875 &
ssh "$@"
sleep 100.625
]])
      end, cleanup = function()
        B.kill_leftovers('sleep 100.875')
        B.kill_leftovers('sleep 100.625')
      end })
    end)
  end)

  it('leaves nothing running on a host when the survey ends, or when a worker there retires', function()
    finally(function() B.kill_leftovers('sleep 100.5') end)
    local r = psurvey.map(B.leaving_worker(100.5), psurvey.range(1, 3), H.options({ backend = 'ssh',
      max_tasks_per_child = 1,
      ssh = { hosts = { ('%s slots=1 psurvey=%s'):format(addrs[2], H.bin) }, options = { '-F', s.config } } }))
    assert.same({ 0, 0, 0, n = 3 }, r:column('left'))
    psurvey.shutdown()
    assert.same({}, B.leftovers('sleep 100.5'))
  end)
end)
