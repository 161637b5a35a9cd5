-- README "Slurm": a survey inside a Slurm allocation, or asking for
-- allocations itself, on a real single-node cluster (slurmctld, slurmd,
-- munged) started by the spec: agents connect back to the driver and
-- prove the run's token; every pset is stored once; a wrong token is
-- refused and logged; jobs cancelled, preempted or out of time have their
-- psets requeued, and say so in the attempts.
local H = require('support.helpers')
local S = require('support.slurm')

describe('#slurm the Slurm backend', function()
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

  describe('inside an allocation', function()
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

    local ONE_NODE = '--nodes=1 --cpus-per-task=2'

    it('runs 2,000 psets on the allocation\'s agents, each stored exactly once', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local id, state, out, err = S.survey_job(cluster, dir, ONE_NODE, nil, 60)
      assert.equal('COMPLETED', state, out .. err)
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
      local _, state, out, err = S.survey_job(cluster, dir, ONE_NODE, '-- 50', 60)
      assert.equal('COMPLETED', state, out .. err)
      local here = H.tmpdir()
      H.write(here, 'survey.lua', SURVEY)
      local r = H.run(here, 'survey.lua -- 50')
      assert.equal(0, r.code, r.err)
      local cols = 'x, y, _index, _status, _hash'
      assert.same(H.sql(here .. '/.psurvey/survey.db', 'select ' .. cols .. ' from squares order by _index'),
        H.sql(dir .. '/.psurvey/survey.db', 'select ' .. cols .. ' from squares order by _index'))
    end)

    it('makes the GPUs Slurm gave the step the node\'s GPU slots, one per pset that wants one', function()
      -- The spec's cluster has two GPUs for Slurm (gres/gpu on two device
      -- files): the job asks for both, and Slurm sets CUDA_VISIBLE_DEVICES.
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', [[
  local psurvey = require('psurvey')
  local psets = {}
  for i = 1, 12 do psets[i] = { i = i, _psurvey = { gpus = 1 } } end
  local results = psurvey.map(function(p, system)
    system.sleep(0.2)
    return { ids = os.getenv('CUDA_VISIBLE_DEVICES') }
  end, psets, { name = 'gpus' })
  print(#results, #results.missing)
  ]])
      local _, state, out, err = S.survey_job(cluster, dir, '--nodes=1 --cpus-per-task=2 --gres=gpu:2', nil, 60)
      assert.equal('COMPLETED', state, out .. err)
      assert.equal('12\t0\n', out)
      local db = dir .. '/.psurvey/survey.db'
      -- Both GPUs were used (before a fix, all ran on GPU 0, one at a time).
      assert.same({ { ids = '0' }, { ids = '1' } }, H.sql(db, 'select distinct ids from gpus order by ids'))
      -- Never two psets on one GPU at once.
      local rows = H.sql(db, 'select ids, _start, _end from gpus')
      for a = 1, #rows do
        for b = a + 1, #rows do
          local x, y = rows[a], rows[b]
          assert.is_false(x.ids == y.ids and x._start < y._end and y._start < x._end, 'GPU ' .. x.ids .. ' shared')
        end
      end
    end)

    it('refuses an agent with a wrong token, and says so in the log', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      -- 40 psets of 0.25 s on 2 workers: 5 s to connect a stranger.
      H.write(dir, 'job.sh', S.survey_script(ONE_NODE, '-- 40 0.25'))
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

    it('runs the README\'s sbatch script as written', function()
      local readme = H.slurp(H.root .. '/README.md')
      local script = assert(readme:match('\n## Slurm\n.-\n```\n(#!/bin/bash\n.-)```\n'))
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local id, state = S.batch(cluster, dir, script:gsub('\npsurvey ', '\n' .. H.bin .. ' '), 60)
      assert.equal('COMPLETED', state, (H.slurp(dir .. '/job.out') or '') .. (H.slurp(dir .. '/job.err') or ''))
      assert.equal('2000\t0\n', H.slurp(dir .. '/job.out'))
      assert.same({ { job = id, n = 2000 } },
        H.sql(dir .. '/.psurvey/survey.db', 'select job, count(*) n from squares'))
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

  describe('asking for allocations itself', function()

    local SURVEY = [[
  local psurvey = require('psurvey')
  local n, sleep, slurm = tonumber(arg[1]), tonumber(arg[2]), load('return ' .. arg[3])()
  local results = psurvey.map(function(p)
    os.execute('sleep ' .. sleep)
    return { y = p.x * p.x, job = os.getenv('SLURM_JOB_ID') }
  end, psurvey.product({ x = psurvey.range(1, n) }), { name = 'squares', backend = 'slurm', slurm = slurm,
    retries = 0 })
  print(#results, #results.missing)
  ]]

    local function run(dir, args)
      return H.run(dir, 'survey.lua -- ' .. args, { SLURM_CONF = cluster.conf, SLURM_JOB_ID = false }, nil, S.LIMIT)
    end

    local function log_of(dir) return H.slurp(dir .. '/' .. H.logs(dir)[1]) end

    local function jobs_left()
      return S.run(cluster, "squeue -h -t PENDING,RUNNING -o '%i %j %T' | grep psurvey- || true")
    end

    -- Starts the survey in the background; returns it, with the job of
    -- the first agent, once that agent has connected (within 20 s).
    local B = require('support.background')
    local function start_until_connected(dir, args)
      local proc = B.start(dir, 'survey.lua -- ' .. args, { SLURM_CONF = cluster.conf })
      for _ = 1, 200 do
        local logs = H.logs(dir)
        local log = logs[1] and H.slurp(dir .. '/' .. logs[1]) or ''
        local first = log:match('slurm job (%d+) started')
        if first and log:find(': connected', 1, true) then return proc, first end
        os.execute('sleep 0.1')
      end
      B.kill(proc)
      error('no agent connected')
    end

    it('submits agent jobs, uses their agents, and cancels what is left at the end', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local r = run(dir, "200 0 '{ nodes = 1, cpus_per_task = 2, time = \"5:00\", mem = \"500M\", poll = 0.5 }'")
      assert.equal(0, r.code, r.err)
      assert.equal('200\t0\n', r.out)
      local db = dir .. '/.psurvey/survey.db'
      local rows = H.sql(db, 'select job, count(*) n, count(distinct _index) d from squares group by job')
      assert.equal(1, #rows)
      assert.same({ 200, 200 }, { rows[1].n, rows[1].d })
      local log = log_of(dir)
      local id = rows[1].job
      assert.matches('submitted slurm job ' .. id .. ' %(1 queued or running%)', log)
      assert.matches('cancelled slurm jobs ' .. id, log)
      -- The agent's node has the job's memory (--mem), not the machine's.
      assert.matches('host 127%.0%.0%.1:%d+: connected %(vm, %d+ cores, 500 MiB%)', log)
      assert.equal('', jobs_left())
      -- The agent's output went to a log beside the run's.
      assert.is_not_nil(io.open(dir .. '/.psurvey/logs/agent-' .. id .. '.log'))
    end)

    it('keeps at most max_jobs queued or running', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local r = run(dir, "20 0.1 '{ nodes = 4, max_jobs = 2, cpus_per_task = 1, poll = 0.5 }'")
      assert.equal(0, r.code, r.err)
      local log = log_of(dir)
      local submitted = 0
      for n in log:gmatch('submitted slurm job %d+ %((%d+) queued or running%)') do
        submitted = submitted + 1
        assert.is_true(tonumber(n) <= 2, log)
      end
      assert.equal(2, submitted, log)
      assert.equal('', jobs_left())
    end)

    -- Runs n psets of 0.2 s on one job of 2 CPUs; once its agent is at
    -- work, disturb(job) does something to the job. The survey must end
    -- well all the same, each pset stored once, none at the cost of a
    -- retry. Returns the job, the database and the log.
    local function disturbed(n, disturb)
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local proc, first = start_until_connected(dir, n .. " 0.2 '{ nodes = 1, cpus_per_task = 2, poll = 0.3 }'")
      finally(function() B.kill(proc) end)
      os.execute('sleep 1')
      disturb(first)
      local done = B.finish(proc, 60)
      assert.equal(0, done.code, done.err)
      assert.equal(n .. '\t0\n', done.out)
      local db = dir .. '/.psurvey/survey.db'
      assert.same({ { n = n, d = n } }, H.sql(db, 'select count(*) n, count(distinct _index) d from squares'))
      assert.same({}, H.sql(db, 'select _index from squares where _attempt > 1 and _status <> \'ok\''))
      return first, db, log_of(dir)
    end

    it('requeues the psets of a job cancelled mid-run, at no cost to their retries, and asks for another', function()
      local first, db, log = disturbed(40, function(job) S.run(cluster, 'scancel ' .. job) end)
      assert.matches('slurm job ' .. first .. ' ended', log)
      local second = log:match('submitted slurm job (%d+) %(1 queued or running%)', log:find('ended', 1, true))
      assert(second and second ~= first, log)
      local lost = H.sql(db, "select count(*) n from squares_attempts where kind = 'host_lost'")[1].n
      assert.is_true(lost >= 1, 'no pset was lost with the cancelled job')
    end)

    it('goes on when squeue does not answer: a lost agent is judged on what is known, a stuck squeue is killed',
      function()
        -- squeue as a controller too busy to answer while `hang` exists.
        local dir = H.tmpdir()
        os.execute('mkdir -p ' .. H.quote(dir .. '/bin'))
        H.write(dir, 'bin/squeue', ('#!/bin/sh\nwhile [ -e %s/hang ]; do sleep 0.1; done\nexec %s "$@"\n')
          :format(H.quote(dir), (H.shell('command -v squeue'):gsub('%s', ''))))
        os.execute('chmod +x ' .. H.quote(dir .. '/bin/squeue'))
        H.write(dir, 'survey.lua', SURVEY)
        local proc = B.start(dir, "survey.lua -- 60 0.2 '{ nodes = 1, cpus_per_task = 2, poll = 0.3 }'",
          { SLURM_CONF = cluster.conf, PATH = dir .. '/bin:' .. os.getenv('PATH') })
        finally(function() B.kill(proc) end)
        local log = ''
        local function log_says(pattern, secs)
          for _ = 1, secs * 10 do
            local logs = H.logs(dir)
            log = logs[1] and H.slurp(dir .. '/' .. logs[1]) or ''
            local found = log:match(pattern)
            if found then return found end
            os.execute('sleep 0.1')
          end
          error('the log never said ' .. pattern .. ':\n' .. log)
        end
        local first = log_says('slurm job (%d+) started', 20)
        log_says(': connected', 20)
        H.write(dir, 'hang', '')
        os.execute('sleep 0.5')
        S.run(cluster, 'scancel ' .. first)
        -- Ten seconds on, the agent is judged without squeue, and the stuck
        -- squeue is killed; then the controller answers again.
        log_says('lost: its agent\'s connection ended[^\n]* %(slurm job ' .. first .. '%)', 20)
        log_says('squeue has not answered in 10 s: killed, asking again', 20)
        os.remove(dir .. '/hang')
        local done = B.finish(proc, 60)
        assert.equal(0, done.code, done.err)
        assert.equal('60\t0\n', done.out)
        log = log_of(dir)
        assert.matches('squeue answers again', log)
        assert.matches('slurm job ' .. first .. ' ended: CANCELLED', log)
        local db = dir .. '/.psurvey/survey.db'
        assert.same({ { n = 60, d = 60 } }, H.sql(db, 'select count(*) n, count(distinct _index) d from squares'))
        assert.same({ { kind = 'host_lost' } }, H.sql(db, 'select distinct kind from squares_attempts'))
      end)

    it('requeues the psets of a preempted job, and its attempts say it was preempted', function()
      -- The spec's cluster preempts jobs of partition debug for those of
      -- partition urgent (PreemptType=preempt/partition_prio).
      local first, db, log = disturbed(60, function()
        assert(S.run(cluster, "sbatch --parsable -o /dev/null -p urgent --exclusive --wrap 'sleep 2'"):match('%d+'),
          'the urgent job was not taken')
      end)
      assert.matches('slurm job ' .. first .. ' ended: PREEMPTED', log)
      assert.matches('lost: its agent\'s connection ended[^\n]* %(slurm job ' .. first .. ' was preempted%)', log)
      local kinds = H.sql(db, 'select kind, count(*) n from squares_attempts group by kind')
      assert.equal(1, #kinds, log)
      assert.equal('preempted', kinds[1].kind)
      -- Its psets finished on the next job's agent.
      assert.same({}, H.sql(db, ("select _index from squares where job = '%s' and _index in "
        .. '(select _index from squares_attempts)'):format(first)))
    end)

    it('uses an allocation that starts late, while the survey runs', function()
      -- Another user's job holds all but one of the node's CPUs: of the
      -- survey's two 1-CPU jobs, one waits until that job is cancelled.
      local cpus = tonumber((H.shell('nproc'):gsub('%s', '')))
      local blocker = S.run(cluster, ("sbatch --parsable -o /dev/null -n %d --wrap 'sleep 60'"):format(cpus - 1))
        :match('%d+')
      finally(function() S.run(cluster, 'scancel ' .. blocker) end)
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local proc, first = start_until_connected(dir, "80 0.25 '{ nodes = 2, cpus_per_task = 1, poll = 0.3 }'")
      finally(function() B.kill(proc) end)
      os.execute('sleep 2')
      S.run(cluster, 'scancel ' .. blocker)
      local done = B.finish(proc, 60)
      assert.equal(0, done.code, done.err)
      local db = dir .. '/.psurvey/survey.db'
      local jobs = H.sql(db, 'select job, count(*) n, min(_start) t from squares group by job order by t')
      local log = log_of(dir)
      assert.equal(2, #jobs, log)
      assert.equal(first, jobs[1].job)
      -- The second job's agent came two seconds and more into the survey, and took psets.
      assert.is_true(jobs[2].t - jobs[1].t >= 2, log)
      assert.is_true(jobs[2].n >= 5, log)
      assert.same({ { n = 80, d = 80 } }, H.sql(db, 'select count(*) n, count(distinct _index) d from squares'))
      assert.equal('', jobs_left())
    end)

    it('drains an agent before its job\'s time runs out, asks for the next job in time, and says which pset '
      .. 'the walltime caught', function()
      local dir = H.tmpdir()
      -- Jobs of one minute. Pset 1, the first time it runs, outlasts its
      -- job: Slurm ends the first job (within 30 s of its minute) while it
      -- runs, and it finishes on the next. The other psets, 100 s of work
      -- for one agent's 2 workers, drain off the first job before its end.
      H.write(dir, 'survey.lua', ([[
  local psurvey = require('psurvey')
  local results = psurvey.map(function(p)
    if p.x == 1 and not io.open('%s/caught') then
      io.open('%s/caught', 'w'):close()
      os.execute('sleep 300')
    end
    os.execute('sleep 0.5')
    return { y = p.x * p.x, job = os.getenv('SLURM_JOB_ID') }
  end, psurvey.product({ x = psurvey.range(1, 200) }), { name = 'squares', backend = 'slurm', retries = 0,
    slurm = { nodes = 1, cpus_per_task = 1, time = '1:00', poll = 1 } })
  print(#results, #results.missing)
  ]]):format(dir, dir))
      local r = H.run(dir, 'survey.lua', { SLURM_CONF = cluster.conf, SLURM_JOB_ID = false }, nil, S.LIMIT)
      assert.equal(0, r.code, r.err)
      assert.equal('200\t0\n', r.out)
      local db = dir .. '/.psurvey/survey.db'
      local jobs = H.sql(db, 'select job, count(*) n from squares group by job order by min(_start)')
      assert.is_true(#jobs >= 2, 'one job did it all')
      local log = log_of(dir)
      local first, second = jobs[1].job, jobs[2].job
      -- The next job was asked for while the first still ran.
      local asked = log:find('submitted slurm job ' .. second, 1, true)
      local ended = log:find('slurm job ' .. first .. ' ended', 1, true)
      assert.is_true(asked ~= nil and ended ~= nil and asked < ended, log)
      assert.matches('slurm job ' .. first .. ' ended: TIMEOUT', log)
      assert.matches('lost: its agent\'s connection ended[^\n]* %(slurm job ' .. first .. ' reached its time limit%)',
        log)
      -- Only pset 1's worker had psets in flight when the first job's time
      -- ran out (pset 1, and any queued behind it): the other worker had
      -- been drained. Their attempts say walltime, and cost no retry.
      assert.same({ { workers = 1, kinds = 'walltime', attempts = 1, has_1 = 1 } },
        H.sql(db, "select count(distinct worker) workers, group_concat(distinct kind) kinds, max(attempt) attempts,"
          .. ' max(_index = 1) has_1 from squares_attempts'), log)
      local one = H.sql(db, 'select job, _attempt, _status from squares where x = 1')[1]
      assert.is_true(one.job ~= first and one._status == 'ok' and one._attempt == 1, log)
      assert.same({ { n = 200, d = 200 } }, H.sql(db, 'select count(*) n, count(distinct _index) d from squares'))
    end)

    it('cancels its jobs when interrupted', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local proc, first = start_until_connected(dir, "60 0.5 '{ nodes = 2, cpus_per_task = 1, poll = 0.3 }'")
      finally(function() B.kill(proc) end)
      local took, done = B.stop(proc, 'INT', 30)
      assert(took, 'the survey did not stop')
      assert.equal(130, done.code, done.err)
      assert.matches('cancelled slurm jobs ' .. first, log_of(dir))
      assert.equal('', jobs_left())
    end)

    it('says why when sbatch refuses the jobs', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local r = run(dir, "5 0 '{ nodes = 1, partition = \"nope\", poll = 0.2 }'")
      assert.equal(2, r.code, r.err)
      assert.matches('sbatch failed 3 times in a row: sbatch: error: invalid partition specified: nope', r.err)
    end)

    it('is an error at init() without an allocation, nodes or sbatch, naming what is missing', function()
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', SURVEY)
      local r = run(dir, "5 0 '{}'")
      assert.equal(2, r.code)
      assert.matches("or give slurm = { nodes = N, time = ... } for psurvey to ask for allocations itself", r.err)
      r = H.run(dir, "survey.lua -- 5 0 '{ nodes = 1 }'", { SLURM_JOB_ID = false, PATH = '/nonexistent' })
      assert.equal(2, r.code)
      assert.matches('slurm = { nodes = 1 } asks for allocations with sbatch, which is not on the PATH here', r.err)
    end)
  end)
end)
