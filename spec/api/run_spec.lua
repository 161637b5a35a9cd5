-- system.run: a worker runs a program from an argv array, with no shell and
-- no quoting, and gets its exit status and output back.
local H = require('support.helpers')
local psurvey = require('psurvey')

local SIM = H.root .. '/spec/fixtures/sim.sh'

-- Runs fn(system, user) as the worker of one pset and returns its row.
local function run_one(fn, opts)
  local r = psurvey.map(function(_, system, user) return { out = fn(system, user) } end, { {} },
    H.options(opts or {}))
  if #r == 1 then return r:column('out')[1] end
  local missing = r.missing:rows()()
  return nil, missing._exception, missing
end

describe('system.run', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('runs argv without a shell: nothing needs quoting', function()
    local out = run_one(function(system)
      return system.run({ 'printf', '%s|', 'a b', "it's", '$HOME', '*', 42, 2.5 })
    end)
    assert.same({ code = 0, stdout = "a b|it's|$HOME|*|42|2.5|", stderr = '' }, out)
  end)

  it('returns the exit code and both outputs', function()
    local out = run_one(function(system, sim) return system.run({ sim, 'fail', 7 }) end, { user = SIM })
    assert.equal(3, out.code)
    assert.is_nil(out.signal)
    assert.equal('', out.stdout)
    assert.matches('line 1\n.*line 15\nbad parameter 7\n$', out.stderr)
  end)

  it('names the signal that ended a program', function()
    local out = run_one(function(system, sim) return system.run({ sim, 'kill' }) end, { user = SIM })
    assert.same({ signal = 'SIGKILL', stdout = '', stderr = '' }, out)
  end)

  it('takes stdin, variables added to the environment, and a working directory', function()
    local dir = H.tmpdir()
    os.execute('mkdir ' .. H.quote(dir .. '/sub'))
    local out = run_one(function(system, u)
      local a = system.run({ u.sim, 'cat' }, { stdin = 'line one\nline two\n' })
      local b = system.run({ u.sim, 'env' }, { env = { SIM_X = 'from env', OTHER = 3 } })
      local c = system.run({ u.sim, 'pwd' }, { cwd = u.dir .. '/sub' })
      local d = system.run({ u.sim, 'file', 'kept' }, { cwd = u.dir .. '/sub' })
      return { a.stdout, b.stdout, c.stdout, d.stdout }
    end, { user = { sim = SIM, dir = dir } })
    assert.same({ 'line one\nline two\n', 'from env\n', dir .. '/sub\n', 'wrote\n' }, out)
    assert.equal('kept\n', H.slurp(dir .. '/sub/result.txt'))
  end)

  it('with check, fails the pset with the exit status and the end of stderr in _exception', function()
    local out, exception = run_one(function(system, sim)
      return system.run({ sim, 'fail', 3.5 }, { check = true })
    end, { user = SIM })
    assert.is_nil(out)
    assert.matches("system%.run: '[^']*sim%.sh' exited with status 3; its standard error ends:\nline 7\n", exception)
    assert.matches('line 15\nbad parameter 3%.5$', exception)
    assert.not_matches('line 6\n', exception) -- the last 10 lines only
    exception = select(2, run_one(function(system, sim) return system.run({ sim, 'kill' }, { check = true }) end,
      { user = SIM }))
    assert.matches("system%.run: '[^']*sim%.sh' was killed by signal 9 %(SIGKILL%)$", exception)
  end)

  it('reads 100 MiB on stdout while stderr is written too, without deadlock', function()
    local out = run_one(function(system, sim)
      local r = system.run({ sim, 'big' })
      return { #r.stdout, #r.stderr, r.stdout:sub(1, 3), r.stderr:sub(-3), r.code }
    end, { user = SIM })
    assert.same({ 104857600, 1048576, 'xxx', 'eee', 0 }, out)
  end)

  it('obeys the pset timeout: the program is killed with the worker\'s process group', function()
    local t0 = os.time()
    local _, exception, row = run_one(function(system)
      return system.run({ 'sleep', '37.25' })
    end, { timeout = 1, retries = 0 })
    assert.equal('timeout', row._status)
    assert.matches('timeout after 1 s', exception)
    assert.is_true(os.time() - t0 < 10)
    assert.same({}, H.processes('sleep 37.25'))
  end)

  it('counts the program\'s CPU time in the pset\'s _cpu', function()
    local db = H.tmpdir() .. '/cpu.db'
    psurvey.map(function(_, system, sim) system.run({ sim, 'burn' }, { check = true }) end, { {} },
      H.options({ db = db, user = SIM, name = 'burn' }))
    local row = H.sql(db, 'select _cpu, _duration from burn')[1]
    assert.is_true(row._cpu > 0.05 and row._cpu <= row._duration * 1.5 + 0.05, row._cpu .. ' s')
  end)

  it('rejects bad arguments, naming them', function()
    local cases = {
      { function(s) return s.run('ls') end, "bad argument #1 to 'run' %(table expected, got string%)" },
      { function(s) return s.run({}) end, 'argv must hold the program and its arguments, got none' },
      { function(s) return s.run({ 'ls', {} }) end, 'argv%[2%] must be a string or a number, got table' },
      { function(s) return s.run({ 'ls' }, { stdn = 'x' }) end,
        "unknown option 'stdn' %(known: stdin, env, cwd, check%)" },
      { function(s) return s.run({ 'ls' }, { env = { ['A=B'] = 1 } }) end,
        "opts%.env's names must be non%-empty strings without '=' or NUL" },
      { function(s) return s.run({ 'ls' }, { env = { X = 'a\0b' } }) end, 'opts%.env%.X holds a NUL byte' },
      { function(s) return s.run({ 'no-such-program-here' }) end,
        "system%.run: cannot run 'no%-such%-program%-here': No such file or directory" },
      { function(s) return s.run({ 'ls' }, { cwd = '/no/such/dir' }) end,
        "system%.run: cannot run 'ls' in '/no/such/dir': No such file or directory" },
    }
    for i, case in ipairs(cases) do
      local _, exception = run_one(case[1])
      assert.matches(case[2], exception, 'case ' .. i)
    end
  end)

  it('is not available in the strict sandbox', function()
    local _, exception = run_one(function(system) return system.run({ 'ls' }) end, { sandbox = 'strict' })
    assert.matches('system%.run is not available in the strict sandbox %(it starts programs%)', exception)
  end)
end)
