-- README "Slurm", on several nodes: slurmctld here and one slurmd in each
-- of two network-namespace hosts (h1, h2), psurvey asking for one agent
-- job per node from "the login node" (this namespace, 10.200.0.1, where
-- the agents connect back). The psets spread over both nodes, each is
-- stored once, and a node that dies mid-run costs nothing but time.
local H = require('support.helpers')
local N = require('support.netns')
local S = require('support.slurm')
local B = require('support.background')

describe('#slurm the Slurm backend on two nodes', function()
  local cluster
  setup(function()
    N.up(2)
    local why
    cluster, why = S.start(2)
    assert(cluster, why)
  end)
  teardown(function()
    S.stop(cluster)
    N.down(2)
    H.cleanup()
  end)

  local SURVEY = [[
  local psurvey = require('psurvey')
  local n, sleep = tonumber(arg[1]), tonumber(arg[2])
  local results = psurvey.map(function(p)
    if sleep > 0 then os.execute('sleep ' .. sleep) end
    return { y = p.x * p.x, job = os.getenv('SLURM_JOB_ID'), node = os.getenv('SLURMD_NODENAME') }
  end, psurvey.product({ x = psurvey.range(1, n) }), { name = 'squares', backend = 'slurm', retries = 0,
    slurm = { nodes = 2, cpus_per_task = tonumber(arg[3]), poll = 0.3, listen = '10.200.0.1', heartbeat = 5 } })
  print(#results, #results.missing)
  ]]

  local function log_of(dir) return H.slurp(dir .. '/' .. H.logs(dir)[1]) end

  it('spreads 2,000 psets over the nodes, each stored exactly once', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    local cpus = H.shell('nproc'):gsub('%s', '')
    local r = H.run(dir, 'survey.lua -- 2000 0 ' .. cpus, { SLURM_CONF = cluster.conf, SLURM_JOB_ID = false }, nil,
      S.LIMIT)
    assert.equal(0, r.code, r.err)
    assert.equal('2000\t0\n', r.out)
    local db = dir .. '/.psurvey/survey.db'
    assert.same({ { n = 2000, d = 2000, lo = 1, hi = 2000 } },
      H.sql(db, 'select count(*) n, count(distinct _index) d, min(x) lo, max(x) hi from squares'))
    -- One job per node (a job takes a whole node's CPUs), both used.
    local nodes = H.sql(db, 'select node, count(distinct job) jobs from squares group by node order by node')
    local log = log_of(dir)
    assert.same({ { node = 'h1', jobs = 1 }, { node = 'h2', jobs = 1 } }, nodes, log)
    assert.matches('host 10%.200%.0%.11:%d+: connected', log)
    assert.matches('host 10%.200%.0%.12:%d+: connected', log)
  end)

  it('runs a survey inside a two-node allocation, one agent per node, listening on its node\'s NodeAddr', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
  local psurvey = require('psurvey')
  local results = psurvey.map(function(p, system)
    system.sleep(0.004) -- 2 s of work in all: both agents get some
    return { y = p.x * p.x, node = os.getenv('SLURMD_NODENAME') }
  end, psurvey.product({ x = psurvey.range(1, 2000) }), { name = 'squares' })
  print(#results, #results.missing)
  ]])
    -- The batch script runs on h1, whose host name resolves to nothing here:
    -- the driver listens on h1's NodeAddr, which h2's agent reaches.
    local id, state, out, err = S.survey_job(cluster, dir, '--nodes=2', nil, 60)
    assert.equal('COMPLETED', state, out .. err)
    assert.equal('2000\t0\n', out)
    local db = dir .. '/.psurvey/survey.db'
    assert.same({ { n = 2000, d = 2000 } }, H.sql(db, 'select count(*) n, count(distinct _index) d from squares'))
    local log = log_of(dir)
    assert.matches('slurm job ' .. id .. ': agents connect to 10%.200%.0%.11 port %d+', log)
    local nodes = H.sql(db, 'select node, count(*) > 0 used from squares group by node order by node')
    assert.same({ { node = 'h1', used = 1 }, { node = 'h2', used = 1 } }, nodes, log)
  end)

  it('finishes on the other node the psets of a node that dies', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    local cpus = H.shell('nproc'):gsub('%s', '')
    -- 12 s of work over both nodes' workers: h2 dies in the middle.
    local n = 60 * tonumber(cpus)
    local proc = B.start(dir, ('survey.lua -- %d 0.2 %s'):format(n, cpus), { SLURM_CONF = cluster.conf })
    finally(function() B.kill(proc) end)
    -- Both agents at work, then h2 "dies": its slurmd, its agent and its
    -- workers are killed.
    local up = 0
    for _ = 1, 300 do
      local logs = H.logs(dir)
      local log = logs[1] and H.slurp(dir .. '/' .. logs[1]) or ''
      up = select(2, log:gsub(': connected', ''))
      if up == 2 then break end
      os.execute('sleep 0.1')
    end
    assert.equal(2, up, 'the two agents did not connect')
    os.execute('sleep 1.5')
    N.kill_all(2)
    local done = B.finish(proc, 90)
    assert(done, 'the survey did not finish')
    assert.equal(0, done.code, done.err)
    assert.equal(n .. '\t0\n', done.out)
    local db = dir .. '/.psurvey/survey.db'
    local log = log_of(dir)
    assert.same({ { n = n, d = n } }, H.sql(db, 'select count(*) n, count(distinct _index) d from squares'))
    assert.matches('host 10%.200%.0%.12:%d+: lost: its agent\'s connection ended', log)
    -- Its psets in flight were requeued at no cost to their retries, and
    -- finished on h1.
    local lost = H.sql(db, "select count(*) n from squares_attempts where kind = 'host_lost'")[1].n
    assert.is_true(lost >= 1, log)
    assert.same({}, H.sql(db, "select _index from squares where _index in (select _index from squares_attempts)"
      .. " and node <> 'h1'"))
    assert.same({}, H.sql(db, "select _index from squares where _status <> 'ok'"))
  end)
end)
