-- The psurvey program: options, errors, exit status, the default database.
local H = require('support.helpers')

local NOOP = [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p) return { y = p.value * 2 } end, psurvey.range(1, 5))
print(#r, r.progress.total)
]]

describe('psurvey (the program)', function()
  teardown(H.cleanup)

  it('prints its version with -V and --version', function()
    for _, flag in ipairs({ '-V', '--version' }) do
      local r = H.run(H.tmpdir(), flag)
      assert.equal(0, r.code)
      assert.matches('^psurvey 0%.1%.0 %(Lua 5%.4, libuv 1%.%d+%.%d+, SQLite 3%.%d+%.%d+%)\n$', r.out)
    end
  end)

  it('lists every option, examples and exit statuses in --help, within 80 columns', function()
    for _, flag in ipairs({ '-h', '--help' }) do
      local r = H.run(H.tmpdir(), flag)
      assert.equal(0, r.code)
      for line in r.out:gmatch('[^\n]*') do assert.is_true(#line <= 80, ('%d columns: %s'):format(#line, line)) end
      for _, spec in ipairs(require('psurvey.options').specs) do
        if spec.flag and spec.name ~= 'name' and spec.name ~= 'user' then
          assert.matches('\n  ' .. spec.flag:gsub('%-', '%%-') .. '[ \n]', r.out)
        end
      end
      assert.matches('Each option is also an%s+environment variable, PSURVEY_<NAME>', r.out)
      assert.matches('\nExamples:\n  psurvey sweep%.lua\n', r.out)
      assert.matches('\nExit status:\n', r.out)
      assert.matches('129, 130, 143', r.out, 1, true)
    end
  end)

  it('takes an unknown flag before the script as a usage error, not as a script name', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', NOOP)
    local r = H.run(dir, '-x survey.lua')
    assert.equal(2, r.code)
    assert.equal("psurvey: unknown option '-x'\n(see psurvey --help)\n", r.err)
  end)

  it('runs a survey script and stores it in .psurvey/<script>.db', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, NOOP)
    assert.equal('', r.err)
    assert.equal(0, r.code)
    assert.equal('5\t5\n', r.out)
    assert.same({ { n = 5 } }, H.sql(dir .. '/.psurvey/survey.db', 'select count(*) n from stage1'))
    -- Its hidden log, in .psurvey/logs whatever --db names.
    local logs = H.logs(dir)
    assert.equal(1, #logs)
    assert.matches('^%.psurvey/logs/%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d%.log$', logs[1])
    -- Nothing else is left behind: no lock file, no SQLite journal.
    local left = {}
    for name in io.popen('cd ' .. H.quote(dir) .. ' && find . -mindepth 1 | sort'):lines() do left[#left + 1] = name end
    assert.same({ './.err', './.out', './.psurvey', './.psurvey/logs', './' .. logs[1], './.psurvey/survey.db',
      './.rc', './survey.lua' }, left)
  end)

  it('passes arguments after -- to the script', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, "print(arg[0], arg[1], arg[2], select('#', ...), ...)", '-- one two')
    assert.equal(0, r.code)
    assert.equal('survey.lua\tone\ttwo\t2\tone\ttwo\n', r.out)
  end)

  it('takes options on the command line, before or after the script', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', NOOP)
    local r = H.run(dir, '--limit 2 survey.lua --db=other.db')
    assert.equal(0, r.code)
    assert.equal('2\t2\n', r.out)
    assert.same({ { n = 2 } }, H.sql(dir .. '/other.db', 'select count(*) n from stage1'))
  end)

  it('lets the environment win over map() and init(), and the command line over both', function()
    local dir = H.tmpdir()
    local script = [[
local psurvey = require('psurvey')
psurvey.init({ limit = 4 })
print(#psurvey.map(function() return {} end, psurvey.range(1, 9), { limit = 3 }))
]]
    assert.equal('3\n', H.survey(dir, script).out)
    assert.equal('2\n', H.survey(dir, script, '', { PSURVEY_LIMIT = '2' }).out)
    assert.equal('1\n', H.survey(dir, script, '--limit 1', { PSURVEY_LIMIT = '2' }).out)
  end)

  it('ignores an empty PSURVEY_X=, as paramsurvey ignores an empty PARAMSURVEY_X=', function()
    local dir = H.tmpdir()
    local script = [[
local psurvey = require('psurvey')
print(#psurvey.map(function() return {} end, psurvey.range(1, 9), { limit = 3 }))
]]
    local r = H.survey(dir, script, '', { PSURVEY_LIMIT = '', PSURVEY_NCORES = '', PSURVEY_BACKEND = '' })
    assert.equal(0, r.code, r.err)
    assert.equal('3\n', r.out)
  end)

  it('rejects a bad environment variable, naming it', function()
    local r = H.survey(H.tmpdir(), NOOP, '', { PSURVEY_NCORES = 'abc' })
    assert.equal(2, r.code)
    assert.matches("psurvey: survey.lua:2: environment variable PSURVEY_NCORES: 'abc' is not an integer", r.err)
    r = H.survey(H.tmpdir(), NOOP, '', { PSURVEY_NCORE = '2' })
    assert.matches("unknown environment variable PSURVEY_NCORE %(did you mean 'PSURVEY_NCORES'%?%)", r.err)
  end)

  it('rejects an unknown or bad option with a usage error', function()
    local r = H.run(H.tmpdir(), 'survey.lua --ncore 2')
    assert.equal(2, r.code)
    assert.equal("psurvey: unknown option '--ncore' (did you mean '--ncores'?)\n(see psurvey --help)\n", r.err)
    r = H.run(H.tmpdir(), 'survey.lua --verbose 9')
    assert.equal(2, r.code)
    assert.matches("option '%-%-verbose': expected 0 to 3, got 9", r.err)
  end)

  it('says what slurm lacks outside an allocation, and names the line of a bad hosts file', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, NOOP, '--backend slurm', { SLURM_JOB_ID = false })
    assert.equal(2, r.code)
    assert.matches("'slurm' runs inside a Slurm allocation %(an sbatch script or salloc%), and SLURM_JOB_ID is not set"
      .. ' here', r.err)
    H.write(dir, 'hosts.txt', '# lab machines\nalice@h1 slots=2\nh2:22 cores=4\n')
    r = H.run(dir, 'survey.lua --backend ssh --hosts hosts.txt')
    assert.equal(2, r.code)
    assert.matches("hosts%.txt:3: unknown setting 'cores=4' %(known: slots=N, psurvey=/path, gpus=ID,ID%)", r.err)
  end)

  it('names the file and line of a syntax error', function()
    local r = H.survey(H.tmpdir(), 'local x = 1\nlocal y = = 2\n')
    assert.equal(3, r.code)
    assert.equal("psurvey: survey.lua:2: unexpected symbol near '='\n", r.err)
  end)

  it('exits 3 with a traceback when the script fails', function()
    local r = H.survey(H.tmpdir(), 'local t = nil\nprint(t.x)\n')
    assert.equal(3, r.code)
    assert.matches("^psurvey: survey.lua:2: attempt to index a nil value %(local 't'%)\nstack traceback:", r.err)
  end)

  it('exits 1 when some psets failed', function()
    local r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
psurvey.map(function(p) if p.value == 2 then error('x') end return {} end, psurvey.range(1, 3))
]])
    assert.equal(1, r.code)
  end)

  it('prints progress and failures to stderr when verbose', function()
    local r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
psurvey.map(function(p) if p.value == 2 then error('boom') end return {} end, psurvey.range(1, 3),
  { name = 'loud' })
]], '--verbose 3 --vstats 1')
    assert.matches('psurvey: loud: pset #2 %(value=2%) started on worker %d+\n', r.err)
    assert.matches('psurvey: loud: pset #1 %(value=1%) finished in [%d.]+ [um]?s on worker %d+\n', r.err)
    assert.matches('psurvey: loud: pset #2 %(value=2%) failed: survey.lua:2: boom\n', r.err)
    assert.matches('psurvey: loud: done: 2 ok, 1 failed in ', r.err)
    assert.matches('psurvey: loud: run time of 3 psets: mean ', r.err)
  end)

  it('records exceptions with tracebacks and the options in the hidden log', function()
    local dir = H.tmpdir()
    H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p) if p.value == 2 then error('logged') end return {} end, psurvey.range(1, 3))
psurvey.map(function() error('after a long pset') end, { { text = ('a'):rep(1000) } }, { name = 'long' })
]])
    local log = H.slurp(dir .. '/' .. H.logs(dir)[1])
    assert.matches('stage stage1: 3 psets, options: backend=\'process\' %(default%), ncores=%-?%d+ %(default%)', log)
    assert.matches('pset #2 {"value":2} %(attempt 1, worker %d+%): error: survey.lua:2: logged\n', log)
    assert.matches('\n    stack traceback:\n', log)
    -- A long pset is cut, so that the message after it shows.
    assert.matches('stage long: pset #1 {"text":"' .. ('a'):rep(288) .. '%.%.%. %(attempt 1, worker %d+%): error: '
      .. 'survey.lua:3: after a long pset\n', log)
  end)

  it('stops cleanly on Ctrl-C, keeping what finished', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p) os.execute('sleep 0.1') return { v = p.value } end, psurvey.range(1, 1000),
  { ncores = 2 })
]])
    local cmd = ('cd %s && (env PSURVEY_VERBOSE=0 %s survey.lua & pid=$!; sleep 1.2; kill -INT $pid; '
      .. 'wait $pid; echo "rc=$?")'):format(H.quote(dir), H.quote(H.bin))
    local out = io.popen(cmd .. ' 2>&1'):read('a')
    assert.matches('psurvey: interrupted: %d+ psets of stage1 are stored in %.psurvey/survey%.db', out)
    assert.matches('rc=130', out)
    local n = H.sql(dir .. '/.psurvey/survey.db', 'select count(*) n from stage1')[1].n
    assert.is_true(n >= 6 and n < 1000)
    local status = H.sql(dir .. '/.psurvey/survey.db', "select status from _psurvey_tables")[1].status
    assert.equal('interrupted', status)
    os.execute('sleep 0.2')
    assert.same({}, H.processes(dir))
    assert.same({}, H.processes(H.bin .. ' worker'))
  end)
end)
