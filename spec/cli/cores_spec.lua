-- How many workers this machine starts (option ncores): one per CPU this
-- process may use by default, as taskset, a cpuset or a cgroup quota
-- allow, -N for all but N, and what the program says about it.
local H = require('support.helpers')

-- Each pset waits a little, so every worker gets one, and reports the
-- worker it ran on.
local SURVEY = [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p, system)
  system.sleep(0.2)
  return { worker = system.worker, pid = system.pid }
end, psurvey.range(1, 8), { db = false, vstats = 0 })
local pids, n = {}, 0
for row in r:rows() do
  if not pids[row.pid] then pids[row.pid], n = true, n + 1 end
end
print(n)
]]

local function cpus()
  return tonumber(H.shell('nproc'):match('^(%d+)'))
end

describe('option ncores', function()
  teardown(H.cleanup)

  it('starts one worker when taskset allows this process one CPU', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    local r = H.run(dir, 'survey.lua', { PSURVEY_VERBOSE = '1' }, nil, 'taskset -c 0')
    assert.equal(0, r.code, r.err)
    assert.equal('1\n', r.out)
    assert.matches('^psurvey: stage1: 1 worker %(ncores=0: one per CPU, 1 CPU usable[^\n]*%)\n', r.err)
  end)

  it('starts one worker per usable CPU by default', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SURVEY, '--verbose 1')
    local n = cpus()
    assert.equal(0, r.code, r.err)
    assert.equal(('%d\n'):format(n), r.out)
    assert.matches(('^psurvey: stage1: %d workers? %%(ncores=0: one per CPU, %d CPUs? usable%%)\n'):format(n, n),
      r.err)
  end)

  it('keeps N CPUs for the driver with -N, and starts 1 at least', function()
    local dir = H.tmpdir()
    local n = cpus()
    local r = H.survey(dir, SURVEY, '--verbose 1 --ncores -1')
    assert.equal(0, r.code, r.err)
    assert.equal(('%d\n'):format(math.max(1, n - 1)), r.out)
    assert.matches(('^psurvey: stage1: %d workers? %%(ncores=%%-1: %d CPUs? usable, 1 kept for the driver%%)\n')
      :format(math.max(1, n - 1), n), r.err)
    r = H.survey(dir, SURVEY, '--verbose 1 --ncores -64')
    assert.equal(0, r.code, r.err)
    assert.equal('1\n', r.out)
    assert.matches(('^psurvey: stage1: 1 worker %%(ncores=%%-64: %d CPUs? usable; keeping 64 for the driver leaves '
      .. 'none, so 1 at least%%)\n'):format(n), r.err)
  end)

  it('counts -N from the CPUs taskset allows', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    local r = H.run(dir, 'survey.lua --ncores -1', { PSURVEY_VERBOSE = '1' }, nil, 'taskset -c 0')
    assert.equal(0, r.code, r.err)
    assert.equal('1\n', r.out)
    assert.matches('^psurvey: stage1: 1 worker %(ncores=%-1: 1 CPU usable of %d+ online; keeping 1 for the driver '
      .. 'leaves none, so 1 at least%)\n', r.err)
  end)

  it('starts N workers for ncores=N, whatever the CPUs, and no more than psets', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SURVEY, '--verbose 1 --ncores 3')
    assert.equal(0, r.code, r.err)
    assert.equal('3\n', r.out)
    assert.matches('^psurvey: stage1: 3 workers %(ncores=3; %d+ CPUs? usable%)\n', r.err)
    r = H.survey(dir, SURVEY, '--verbose 1 --ncores 20 --limit 2')
    assert.equal(0, r.code, r.err)
    assert.equal('2\n', r.out)
    assert.matches('^psurvey: stage1: 2 workers, one per pset %(ncores=20; %d+ CPUs? usable%)\n', r.err)
  end)

  it('says nothing of workers at verbose 0', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SURVEY)
    assert.equal(0, r.code)
    assert.equal('', r.err)
  end)

  it('refuses a count out of range, naming the option', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SURVEY, '--ncores -10001')
    assert.equal(2, r.code)
    assert.matches("option '%-%-ncores': expected %-10000 to 10000, got %-10001", r.err)
    r = H.survey(dir, SURVEY, '', { PSURVEY_NCORES = 'all' })
    assert.equal(2, r.code)
    assert.matches("environment variable PSURVEY_NCORES: 'all' is not an integer", r.err)
  end)
end)
