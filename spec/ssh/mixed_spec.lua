-- One pool of this machine and ssh hosts: backend = { 'process', 'ssh' }
-- (or --backend process,ssh). The scheduler does not ask where a worker
-- runs: psets go to whichever node has a free slot, each row says where
-- it ran, and the survey goes on on this machine when the hosts are lost.
local H = require('support.helpers')
local S = require('support.sshd')
local psurvey = require('psurvey')

-- A worker of about 4 ms of CPU per pset that says where it ran.
local function busy(p, system)
  local t = os.clock() + 0.004
  while os.clock() < t do end
  return { sq = p.value * p.value, ran_on = system.host }
end

describe('a pool of this machine and ssh hosts #ssh', function()
  local s, addrs, here

  setup(function()
    s = S.setup()
    addrs = S.hosts(s, 2)
    here = io.popen('hostname'):read('l')
  end)

  teardown(function()
    H.shutdown()
    S.stop(s)
    H.cleanup()
  end)

  after_each(function() psurvey.shutdown() end)

  local function entries(list)
    local out = {}
    for i, a in ipairs(list) do out[i] = ('%s slots=1 psurvey=%s'):format(a, H.bin) end
    return out
  end

  local function per_host(db, name)
    local per = {}
    for _, row in ipairs(H.sql(db, ('select _host h, count(*) n from %s group by _host'):format(name))) do
      per[row.h] = row.n
    end
    return per
  end

  it('runs one survey on this machine and on two hosts, each row tagged with where it ran', function()
    local r = psurvey.map(busy, psurvey.range(1, 1500), H.options({ backend = { 'process', 'ssh' }, ncores = 1,
      name = 'mixed', ssh = { options = { '-F', s.config }, heartbeat = 2, hosts = entries(addrs) } }))
    assert.equal(1500, #r)
    assert.same({ { n = 1500, v = 1500, ok = 1500, tagged = 1500 } }, H.sql(r.db, 'select count(*) n,'
      .. " count(distinct value) v, sum(_status = 'ok' and sq = value * value) ok, sum(ran_on = _host) tagged"
      .. ' from mixed'))
    local per = per_host(r.db, 'mixed')
    for _, host in ipairs({ here, 'h1', 'h2' }) do
      assert.is_true((per[host] or 0) > 100, host .. ' ran ' .. tostring(per[host]))
    end
  end)

  it('takes --backend process,ssh from the command line and lists this machine among the hosts', function()
    local dir = H.tmpdir()
    H.write(dir, 'hosts.txt', table.concat(entries({ addrs[1] }), '\n') .. '\n')
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p, system)
  os.execute('sleep 0.02')
  return { ran_on = system.host }
end, psurvey.range(1, 150))
local seen = {}
for row in r:rows() do seen[row.ran_on] = true end
print(#r, seen.h1 and 'h1' or '-')
]])
    local r = H.run(dir, ('survey.lua --backend process,ssh --ncores 2 --hosts hosts.txt --ssh %s --verbose 2')
      :format(H.quote(("{ options = { '-F', '%s' } }"):format(s.config))))
    assert.equal(0, r.code, r.err)
    assert.equal('150\th1\n', r.out, r.err)
    assert.matches(('psurvey: stage1: hosts: %s %%d+ done %%(2 slots%%), 10%%.200%%.0%%.11 %%d+ done %%(1 slots%%)')
      :format(here:gsub('%p', '%%%0')), r.err)
  end)

  it('finishes on this machine when every host is unreachable, and says so in the log', function()
    S.link(1, false)
    S.link(2, false)
    finally(function()
      S.link(1, true)
      S.link(2, true)
    end)
    -- 600 psets of 4 ms on one worker outlast ssh's 1 s to give up.
    local r = psurvey.map(busy, psurvey.range(1, 600), H.options({ backend = 'process,ssh', ncores = 1,
      name = 'alone', ssh = { options = { '-F', s.config, '-o', 'ConnectTimeout=1' }, heartbeat = 1,
        reconnect = false, hosts = entries(addrs) } }))
    assert.equal(600, #r)
    assert.same({ { n = 600, h = here } }, H.sql(r.db, 'select count(*) n, max(_host) h from alone'))
    local log = H.slurp(r.log)
    assert.matches('host 10%.200%.0%.11: cannot connect', log)
    assert.matches('host 10%.200%.0%.12: cannot connect', log)
  end)

  it('asks for hosts when ssh is in the list without any', function()
    local ok, err = pcall(psurvey.map, busy, { { value = 1 } }, H.options({ backend = { 'process', 'ssh' } }))
    assert.is_false(ok)
    assert.matches("option 'backend' %(from map%): 'ssh' needs hosts", tostring(err))
  end)
end)
