-- README "Slurm": a survey inside a Slurm allocation, on a real
-- single-node cluster (slurmctld, slurmd, munged) started by the spec:
-- agents started by srun connect back to the driver and prove the run's
-- token; every pset is stored once; a wrong token is refused and logged.
local H = require('support.helpers')
local S = require('support.slurm')

describe('#slurm the Slurm backend inside an allocation', function()
  local cluster
  setup(function()
    local why
    cluster, why = S.start()
    assert(cluster, why)
  end)
  teardown(function()
    S.stop(cluster)
    H.cleanup()
  end)

  local SURVEY = [[
local psurvey = require('psurvey')
local results = psurvey.map(function(p)
  if p.sleep then os.execute('sleep ' .. p.sleep) end
  return { y = p.x * p.x, token = os.getenv('PSURVEY_AGENT_TOKEN') or 'unseen',
    job = os.getenv('SLURM_JOB_ID') }
end, psurvey.product({ x = psurvey.range(1, tonumber(arg[1] or '2000')),
  sleep = arg[2] and { tonumber(arg[2]) } or nil }), { name = 'squares' })
print(#results, #results.missing)
]]

  local function job(dir, args)
    return ('#!/bin/bash\n#SBATCH --nodes=1 --cpus-per-task=2 --output=job.out --error=job.err\n'
      .. '%s survey.lua --backend slurm %s\n'):format(H.bin, args or '')
  end

  it('runs 2,000 psets on the allocation\'s agents, each stored exactly once', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    local id, state = S.batch(cluster, dir, job(dir), 60)
    local out = H.slurp(dir .. '/job.out') or ''
    assert.equal('COMPLETED', state, out)
    assert.matches('^2000\t0\n', out)
    local db = dir .. '/.psurvey/survey.db'
    assert.same({ { n = 2000, d = 2000, lo = 1, hi = 2000 } },
      H.sql(db, 'select count(*) n, count(distinct _index) d, min(x) lo, max(x) hi from squares'))
    -- The workers ran under the agents, in the job, without the token.
    assert.same({ { token = 'unseen', job = id, n = 2000 } },
      H.sql(db, 'select token, job, count(*) n from squares group by token, job'))
    local log = H.slurp(dir .. '/' .. H.logs(dir)[1])
    assert.matches('slurm job ' .. id .. ': agents connect to 127%.0%.0%.1 port %d+', log)
    assert.matches('host 127%.0%.0%.1:%d+: connected %(vm, %d+ cores', log)
  end)

  it('gives the same rows as the process backend', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    local _, state = S.batch(cluster, dir, job(dir, '-- 50'), 60)
    assert.equal('COMPLETED', state, H.slurp(dir .. '/job.out'))
    local here = H.tmpdir()
    H.write(here, 'survey.lua', SURVEY)
    local r = H.run(here, 'survey.lua -- 50')
    assert.equal(0, r.code, r.err)
    local cols = 'x, y, _index, _status, _hash'
    assert.same(H.sql(here .. '/.psurvey/survey.db', 'select ' .. cols .. ' from squares order by _index'),
      H.sql(dir .. '/.psurvey/survey.db', 'select ' .. cols .. ' from squares order by _index'))
  end)

  it('refuses an agent with a wrong token, and says so in the log', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    -- 40 psets of 0.25 s on 2 workers: 5 s to connect a stranger.
    H.write(dir, 'job.sh', job(dir, '-- 40 0.25'))
    local id = S.run(cluster, ('cd %s && sbatch --parsable job.sh'):format(H.quote(dir))):match('%d+')
    local port
    for _ = 1, 100 do
      local logs = H.logs(dir)
      local log = logs[1] and H.slurp(dir .. '/' .. logs[1]) or ''
      port = log:match('agents connect to 127%.0%.0%.1 port (%d+)')
      if port then break end
      os.execute('sleep 0.1')
    end
    assert(port, 'the driver never listened')
    local out = H.shell(('PSURVEY_AGENT_TOKEN=%s %s agent --connect 127.0.0.1:%s 2>&1; echo "exit $?"')
      :format(('ab'):rep(32), H.bin, port))
    assert.matches("psurvey agent: the driver at 127%.0%.0%.1:%d+ does not hold this agent's token: refusing it\n"
      .. 'exit 1\n$', out)
    out = H.shell(('PSURVEY_AGENT_TOKEN=short %s agent --connect 127.0.0.1:%s 2>&1; echo "exit $?"')
      :format(H.bin, port))
    assert.matches('needs the run\'s token %(at least 32 characters%)', out)
    local state
    for _ = 1, 300 do
      state = S.run(cluster, 'scontrol show job ' .. id .. ' -o'):match('JobState=(%S+)')
      if state == 'COMPLETED' or state == 'FAILED' then break end
      os.execute('sleep 0.1')
    end
    assert.equal('COMPLETED', state, H.slurp(dir .. '/job.out'))
    assert.matches('^40\t0\n', H.slurp(dir .. '/job.out'))
    local log = H.slurp(dir .. '/' .. H.logs(dir)[1])
    assert.matches('refused an agent from 127%.0%.0%.1:%d+: a wrong token', log)
  end)

  it('is an error at init() outside an allocation, naming what is missing', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    local r = H.run(dir, 'survey.lua --backend slurm', { SLURM_JOB_ID = false })
    assert.equal(2, r.code)
    assert.matches("'slurm' runs inside a Slurm allocation %(an sbatch script or salloc%), and SLURM_JOB_ID is not"
      .. ' set here', r.err)
  end)
end)
