-- The ssh backend against real OpenSSH servers: one on loopback, and three
-- in network namespaces acting as separate hosts. Hosts are lost by
-- cutting their link and by killing their agent; a host with a wrong port
-- and one without psurvey are reported and the others go on.
local H = require('support.helpers')
local S = require('support.sshd')
local psurvey = require('psurvey')

-- A worker of about 4 ms of CPU per pset.
local function busy(p)
  local t = os.clock() + 0.004
  while os.clock() < t do end
  return { sq = p.value * p.value }
end

local function entries(addrs, extra)
  local out = {}
  for i, a in ipairs(addrs) do out[i] = ('%s psurvey=%s%s'):format(a, H.bin, extra or '') end
  return out
end

-- How the stored rows look: count, distinct psets, rows per host.
local function summary(db, name)
  local all = H.sql(db, ("select count(*) n, count(distinct value) v, sum(_status = 'ok' and sq = value * value) ok"
    .. ' from %s'):format(name))[1]
  local per = {}
  for _, row in ipairs(H.sql(db, ('select _host h, count(*) n from %s group by _host'):format(name))) do
    per[row.h] = row.n
  end
  return all, per
end

-- Runs a shell command in the background once host has stored 20 rows of
-- the stage: the host is surely up and busy when its fault comes.
local function when_running(db, stage, host, cmd)
  os.execute(([[(for i in $(seq 1 300); do
    n=$(sqlite3 %s "select count(*) from %s where _host = '%s'" 2>/dev/null)
    [ "${n:-0}" -gt 20 ] 2>/dev/null && break; sleep 0.05; done; %s) >/dev/null 2>&1 &]]):format(
    H.quote(db), stage, host, cmd))
end

describe('the ssh backend #ssh', function()
  local s, addrs, port

  setup(function()
    s = S.setup()
    port = S.loopback(s, 20000 + os.time() % 10000)
    addrs = S.hosts(s, 3)
  end)

  teardown(function()
    H.shutdown()
    S.stop(s)
    H.cleanup()
  end)

  after_each(function() psurvey.shutdown() end)

  local function options(extra)
    local o = H.options({ backend = 'ssh', ssh = { options = { '-F', s.config }, heartbeat = 2 } })
    for k, v in pairs(extra or {}) do
      if k == 'hosts' then o.ssh.hosts = v else o[k] = v end
    end
    return o
  end

  it('runs a survey on a host over loopback ssh, with the same rows as the process backend', function()
    local psets = psurvey.product({ a = { 1, 2.5, 'x' }, b = psurvey.range(1, 20) })
    local worker = function(p) return { twice = type(p.a) == 'number' and p.a * 2 or p.a .. p.a, n = { p.b } } end
    local local_ = psurvey.map(worker, psets, H.options({ ncores = 2, name = 'same' }))
    psurvey.shutdown()
    local host = ('127.0.0.1:%d slots=2 psurvey=%s'):format(port, H.bin)
    local remote = psurvey.map(worker, psets, options({ hosts = { host }, name = 'same' }))
    assert.equal(60, #remote)
    local q = 'select a, b, twice, n, _status from same order by _index'
    assert.same(H.sql(local_.db, q), H.sql(remote.db, q))
    assert.same({ { h = io.popen('hostname'):read('l') } },
      H.sql(remote.db, 'select distinct _host h from same'))
  end)

  it("binds a host's workers to its GPUs, and reports the host in current_resources", function()
    local psets = {}
    for i = 1, 6 do psets[i] = { i = i, _psurvey = { gpus = i % 3 } } end
    psets[7] = { i = 7, _psurvey = { gpus = 3 } }
    local host = { host = '127.0.0.1', port = port, slots = 2, psurvey = H.bin, gpus = { 4, 6 } }
    local r = psurvey.map(function(p, system)
      system.sleep(0.1)
      return { seen = os.getenv('CUDA_VISIBLE_DEVICES') }
    end, psets, options({ hosts = { host }, name = 'gpus' }))
    assert.equal(6, #r)
    local got = H.sql(r.db, 'select i, seen, _exception ex from gpus order by i')
    for k = 1, 6 do
      local want = ({ [0] = '^$', '^[46]$', '^[46],[46]$' })[k % 3]
      assert.matches(want, got[k].seen)
    end
    assert.equal('4,6', got[2].seen)
    assert.equal(('the pset asks for 3 GPUs (gpus) but ssh host 127.0.0.1:%d has 2'):format(port), got[7].ex)
    local res = psurvey.current_resources()
    assert.equal(1, #res)
    assert.same({ ('127.0.0.1:%d'):format(port), 'ssh', true, { '4', '6' } },
      { res[1].host, res[1].backend, res[1].connected, res[1].gpus })
    assert.equal(require('psurvey.core').cpus(), res[1].num_cores)
    assert.is_true(res[1].memory > 0.1)
    assert.equal('ssh', psurvey.backend())
  end)

  it('gathers the named timers of workers on a host, through its agent', function()
    local host = ('127.0.0.1:%d slots=2 psurvey=%s'):format(port, H.bin)
    local r = psurvey.map(function(_, system)
      system.record('a', 0.25)
      system.time('b', function() end)
    end, psurvey.range(1, 100), options({ hosts = { host }, name = 'timers' }))
    assert.equal(100, #r)
    local a = r.stats.timers.a
    assert.same({ 100, 0.25, 0.25, 0.25 }, { a.count, a.mean, a.min, a.max })
    assert.equal(100, r.stats.timers.b.count)
  end)

  it('keeps what each pset on a host wrote with its row, the frames passing through its agent', function()
    local host = ('127.0.0.1:%d slots=2 psurvey=%s'):format(port, H.bin)
    local r = psurvey.map(function(p)
      print('out ' .. p.value)
      os.execute('echo err ' .. p.value .. ' >&2')
    end, psurvey.range(1, 50), options({ hosts = { host }, name = 'talk' }))
    assert.equal(50, #r)
    for i = 1, 50 do assert.same({ 'out ' .. i .. '\n', 'err ' .. i .. '\n' }, { r:output(i) }) end
  end)

  it('runs each pset in its own workdir on the host that ran it, and system.run there', function()
    local host = ('127.0.0.1:%d slots=2 psurvey=%s'):format(port, H.bin)
    local base = H.tmpdir() .. '/remote-runs'
    local r = psurvey.map(function(p, system)
      local out = system.run({ 'sh', '-c', 'echo $0 > made.txt; pwd', p.value }, { check = true })
      return { dir = system.workdir, pwd = out.stdout, host = system.host }
    end, psurvey.range(1, 6), options({ hosts = { host }, name = 'dirs', workdir = base }))
    assert.equal(6, #r)
    local dirs, pwds = r:column('dir'), r:column('pwd')
    for i = 1, 6 do
      assert.equal(base .. '/dirs/' .. i, dirs[i])
      assert.equal(dirs[i] .. '\n', pwds[i])
      assert.equal(i .. '\n', H.slurp(dirs[i] .. '/made.txt'))
    end
    assert.same({ { h = io.popen('hostname'):read('l') } }, H.sql(r.db, 'select distinct _host h from dirs'))
  end)

  it('runs from the command line with a hosts file, counting psets per host at verbose 2', function()
    local dir = H.tmpdir()
    H.write(dir, 'hosts.txt', ('# the lab\n127.0.0.1:%d slots=2 psurvey=%s\n'):format(port, H.bin))
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p, system)
  os.execute('sleep 0.05')
  return { host = system.host }
end, psurvey.range(1, 60))
print(#r)
]])
    local r = H.run(dir, ('survey.lua --backend ssh --hosts hosts.txt --ssh %s --verbose 2'):format(
      H.quote(("{ options = { '-F', '%s' } }"):format(s.config))))
    assert.equal(0, r.code, r.err)
    assert.equal('60\n', r.out)
    assert.matches(('psurvey: stage1: hosts: 127%%.0%%.0%%.1:%d %%d+ done %%(2 slots%%)'):format(port), r.err)
  end)

  it('spreads 2,000 psets over 3 hosts, every pset stored once', function()
    local r = psurvey.map(busy, psurvey.range(1, 2000), options({ hosts = entries(addrs), name = 'three' }))
    assert.equal(2000, #r)
    local all, per = summary(r.db, 'three')
    assert.same({ n = 2000, v = 2000, ok = 2000 }, all)
    for k = 1, 3 do assert.is_true((per['h' .. k] or 0) > 100, 'h' .. k .. ' ran ' .. tostring(per['h' .. k])) end
  end)

  it('finishes on the other hosts when one host\'s link is cut, without counting it against psets', function()
    finally(function() S.link(2, true) end)
    local o = options({ hosts = entries(addrs), name = 'cut' })
    when_running(o.db, 'cut', 'h2', 'ip link set psv-veth2 down')
    local r = psurvey.map(busy, psurvey.range(1, 2000), o)
    assert.equal(2000, #r)
    local all = summary(r.db, 'cut')
    assert.same({ n = 2000, v = 2000, ok = 2000 }, all)
    local lost = 0
    for _, a in ipairs(r:attempts()) do
      assert.equal('host_lost', a.kind)
      lost = lost + 1
    end
    assert.is_true(lost >= 1, 'no pset was in flight on the lost host')
    assert.same({}, H.sql(r.db, "select _index from cut where _attempt <> 1"))
    local log = H.slurp(r.log)
    assert.matches('host 10%.200%.0%.12: lost: no word from it for 2 s %(heartbeat%)', log)
    assert.matches('psets of worker %d+ requeued', log)
  end)

  it('uses a host that connects late', function()
    S.link(2, false)
    finally(function() S.link(2, true) end)
    os.execute('(sleep 1.5; ip link set psv-veth2 up) >/dev/null 2>&1 &')
    local r = psurvey.map(busy, psurvey.range(1, 3000), options({ hosts = entries({ addrs[1], addrs[2] }),
      name = 'late' }))
    assert.equal(3000, #r)
    local _, per = summary(r.db, 'late')
    assert.is_true((per.h2 or 0) > 0, 'the late host ran nothing')
    assert.matches('host 10%.200%.0%.12: connected %(h2', H.slurp(r.log))
  end)

  it('treats a crash or a timeout on a remote host as the local backend does', function()
    local r = psurvey.map(function(p)
      if p.value == 1 then os.exit(3) end
      if p.value == 2 then os.execute('sleep 30.25') end
      return { v = p.value }
    end, psurvey.range(1, 4), options({ hosts = entries({ addrs[1] }), name = 'faults', timeout = 1,
      retries = 0 }))
    assert.equal(2, #r)
    local rows = H.sql(r.db, 'select value, _status, _host from faults where _status <> \'ok\' order by _index')
    assert.same({ { value = 1, _status = 'exit', _host = 'h1' }, { value = 2, _status = 'timeout', _host = 'h1' } },
      rows)
    assert.same({}, S.pids('sleep 30.25'))
  end)

  it('says which host runs another version of psurvey, and goes on with the others', function()
    local old = H.write(s.dir, 'old-psurvey', [[#!/bin/sh
printf '\000psurvey-agent\n\016\000\000\000\011\001\003old\002\144\0050.0.1'
sleep 5
]])
    os.execute('chmod 755 ' .. old)
    -- Enough psets to outlast the refused connection, whose reason is logged as it ends.
    local r = psurvey.map(busy, psurvey.range(1, 500), options({ name = 'versions',
      hosts = { addrs[1] .. ' psurvey=' .. old, addrs[2] .. ' psurvey=' .. H.bin } }))
    assert.equal(500, #r)
    assert.matches('host 10%.200%.0%.11: cannot connect: psurvey there is version 0%.0%.1 %(protocol 1%), this one '
      .. 'is 0%.1%.0 %(protocol 6%): install the same version on both', H.slurp(r.log))
  end)

  it('finishes when an agent is killed with SIGKILL', function()
    local o = options({ hosts = entries(addrs), name = 'killed' })
    when_running(o.db, 'killed', 'h3',
      'for p in $(ip netns pids psv-h3); do grep -q agent /proc/$p/cmdline 2>/dev/null && kill -9 $p; done')
    local r = psurvey.map(busy, psurvey.range(1, 2000), o)
    assert.equal(2000, #r)
    local all = summary(r.db, 'killed')
    assert.same({ n = 2000, v = 2000, ok = 2000 }, all)
    assert.is_true(#r:attempts() >= 1)
  end)

  it('names a host with a wrong port and one without psurvey, and goes on with the others', function()
    local list = { addrs[1] .. ':2222 psurvey=' .. H.bin, addrs[2] .. ' psurvey=/nonexistent/bin/psurvey',
      addrs[3] .. ' psurvey=' .. H.bin }
    -- Enough psets to outlast the failed connections, whose reasons are logged as they end.
    local r = psurvey.map(busy, psurvey.range(1, 500), options({ hosts = list, name = 'partial', verbose = 1 }))
    assert.equal(500, #r)
    local _, per = summary(r.db, 'partial')
    assert.same({ h3 = 500 }, per)
    local text = H.slurp(r.log)
    assert.matches('host 10%.200%.0%.11:2222: cannot connect: ssh failed: .*[Cc]onnection refused', text)
    assert.matches('host 10%.200%.0%.12: cannot connect: psurvey is not installed there %(.*/nonexistent/bin/psurvey: '
      .. 'No such file or directory%): install it, or give psurvey=/path/to/psurvey in its hosts entry', text)
  end)

  it('stops with a clear error when every host is unreachable', function()
    local ok, err = pcall(psurvey.map, busy, psurvey.range(1, 10),
      options({ hosts = { ('127.0.0.1:%d psurvey=%s'):format(port + 1, H.bin) }, name = 'none' }))
    assert.is_false(ok)
    assert.matches('every ssh host is lost or unreachable %(127%.0%.0%.1:%d+: ssh failed: .*%); what finished is '
      .. 'stored: run again with %-%-resume', err)
  end)
end)
