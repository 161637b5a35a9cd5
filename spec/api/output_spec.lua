-- Option output: what each pset writes to stdout and stderr (print,
-- io.write, io.stderr, and the programs it starts) is kept beside its
-- row, in the table "<name>_output", and read back with
-- results:output(index). 'tail' (the default) keeps the last 64 KiB of
-- each stream, 'full' all of it, 'none' nothing: its lines go to stderr,
-- tagged with the pset. Nothing a pset writes reaches the terminal
-- untagged.
local H = require('support.helpers')
local psurvey = require('psurvey')

local KiB = 1024

describe('option output', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  describe("'tail', the default", function()
    it('keeps what each pset wrote with its own index, each stream in order', function()
      local r = psurvey.map(function(p)
        print('print', p.x)
        io.write('write ', p.x, '\n')
        io.stderr:write('stderr ', p.x, '\n')
        os.execute('echo echo ' .. p.x .. '; echo echo-err ' .. p.x .. ' >&2')
        local f = io.popen('echo popen-err ' .. p.x .. ' >&2; echo piped')
        local piped = f:read('a')
        f:close()
        print('after', p.x)
        return { piped = piped }
      end, psurvey.product({ x = { 1, 2, 3 } }), H.options({ ncores = 2 }))
      assert.equal(3, #r)
      for i = 1, 3 do
        local out, err = r:output(i)
        assert.equal(('print\t%d\nwrite %d\necho %d\nafter\t%d\n'):format(i, i, i, i), out)
        assert.equal(('stderr %d\necho-err %d\npopen-err %d\n'):format(i, i, i), err)
      end
      assert.equal('piped\n', r:column('piped')[1]) -- io.popen's stdout is the pset's to read
    end)

    it("gives '' for a pset that wrote nothing, and stores no row for it", function()
      local o = H.options({ name = 'quiet' })
      local r = psurvey.map(function(p)
        if p.x == 2 then io.stderr:write('only me\n') end
        return {}
      end, psurvey.product({ x = { 1, 2, 3 } }), o)
      assert.same({ '', '' }, { r:output(1) })
      assert.same({ '', 'only me\n' }, { r:output(2) })
      assert.same({ { _index = 2, _attempt = 1, stdout = '', stderr = 'only me\n' } },
        H.sql(o.db, 'SELECT * FROM quiet_output'))
    end)

    it('keeps what system.run captured out of the pset\'s output', function()
      local r = psurvey.map(function(_, system)
        local run = system.run({ 'sh', '-c', 'echo captured; echo captured-err >&2' })
        print('mine')
        return { got = run.stdout .. run.stderr }
      end, { {} }, H.options())
      assert.equal('captured\ncaptured-err\n', r:column('got')[1])
      assert.same({ 'mine\n', '' }, { r:output(1) })
    end)

    it('keeps the last 64 KiB of each stream, after a line saying how much was cut', function()
      local r = psurvey.map(function()
        local line = ('x'):rep(1023) .. '\n'
        for _ = 1, 200 do io.write(line) end
        io.stderr:write(line:rep(3))
        print('the end')
      end, { {} }, H.options())
      local out, err = r:output(1)
      local kept = 64 * KiB
      local cut = 200 * KiB + 8 - kept
      assert.equal(('[... %d bytes cut ...]\n'):format(cut), out:match('^[^\n]*\n'))
      assert.equal(kept, #out - #out:match('^[^\n]*\n'))
      assert.matches('x\nthe end\n$', out)
      assert.equal(3 * KiB, #err) -- under the limit: whole, without a note
    end)

    it('keeps the output of a failed pset, and of each failed attempt that was retried', function()
      local o = H.options({ name = 'flaky', retries = function(_, _, attempt) return attempt < 3 and {} or nil end })
      local r = psurvey.map(function(_, system)
        print('attempt ' .. system.attempt)
        error('boom')
      end, { {} }, o)
      assert.equal(1, #r.missing)
      assert.same({ 'attempt 3\n', '' }, { r.missing:output(1) })
      assert.same({ 'attempt 1\n', '' }, { r:output(1, 1) })
      assert.same({ 'attempt 2\n', '' }, { r:output(1, 2) })
      assert.equal(3, #H.sql(o.db, 'SELECT * FROM flaky_output'))
    end)

    it('works without a database (db = false)', function()
      local r = psurvey.map(function(p) print('in memory ' .. p.x) end, psurvey.product({ x = { 1, 2 } }),
        { db = false, verbose = 0, vstats = 0 })
      assert.same({ 'in memory 2\n', '' }, { r:output(2) })
    end)

    it('follows its rows when a map resumes with its psets in another order', function()
      local o = H.options({ name = 'again' })
      local function run(list, fail)
        return psurvey.map(function(p)
          print('x=' .. p.x)
          if p.x == fail then error('no') end
        end, list, o)
      end
      run({ { x = 1 }, { x = 2 }, { x = 3 } }, 2)
      o.resume = true
      local r = run({ { x = 3 }, { x = 2 }, { x = 1 } }, nil)
      assert.equal(3, #r)
      for i, x in ipairs({ 3, 2, 1 }) do assert.same({ 'x=' .. x .. '\n', '' }, { r:output(i) }) end
    end)

    it('goes with its table when the script runs again and sets the table aside', function()
      local dir = H.tmpdir()
      local src = "require('psurvey').map(function() print(os.getenv('RUN')) end, { {} }, { name = 'kept' })"
      assert.equal(0, H.survey(dir, src, nil, { RUN = 'first' }).code)
      assert.equal(0, H.survey(dir, src, nil, { RUN = 'second' }).code)
      local db = dir .. '/.psurvey/survey.db'
      assert.same({ { stdout = 'second\n' } }, H.sql(db, 'SELECT stdout FROM kept_output'))
      local old = H.sql(db, "SELECT name FROM sqlite_master WHERE name GLOB 'kept_2*_output'")
      assert.equal(1, #old)
      assert.same({ { stdout = 'first\n' } }, H.sql(db, ('SELECT stdout FROM "%s"'):format(old[1].name)))
    end)

    it('raises on an index with no pset', function()
      local r = psurvey.map(function() end, { {} }, H.options())
      assert.has_error(function() r:output(7) end, 'no pset #7 in stage' .. r.name:match('%d+$'))
      assert.has_error(function() r:output('1') end, "bad argument #1 to 'output' (integer expected, got string)")
    end)
  end)

  it("'full' keeps all of it", function()
    local r = psurvey.map(function()
      io.write(('y'):rep(200 * KiB))
    end, { {} }, H.options({ output = 'full' }))
    local out = r:output(1)
    assert.equal(200 * KiB, #out)
    assert.equal(('y'):rep(200 * KiB), out)
  end)

  it("'none' stores nothing", function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local r = require('psurvey').map(function() print('gone') end, { {} }, { output = 'none', name = 'passed' })
io.write(select('#', r:output(1)), #r:output(1))
]])
    assert.same({ 0, '20', '[#1] gone\n' }, { r.code, r.out, r.err })
    assert.same({}, H.sql(dir .. '/.psurvey/survey.db', "SELECT name FROM sqlite_master WHERE name = 'passed_output'"))
  end)

  it('rejects a bad value, naming the option', function()
    local ok, err = pcall(psurvey.map, function() end, {}, { output = 'some' })
    assert.is_false(ok)
    assert.matches("option 'output' to map%(%): expected 'tail', 'full' or 'none', got 'some'", err)
  end)

  it("makes names ending in '_output' reserved", function()
    local ok, err = pcall(psurvey.map, function() end, {}, { name = 'grid_output', db = false })
    assert.is_false(ok)
    assert.matches("option 'name': 'grid_output' is reserved", err)
  end)

  describe('on the terminal', function()
    local function script(opts)
      return ([[
local psurvey = require('psurvey')
psurvey.map(function(p)
  for i = 1, p.n do print('line ' .. i .. ' of #' .. p.n) end
  io.stderr:write('to stderr\n')
  if p.n == 2 then error('failing') end
end, { { n = 1 }, { n = 2 }, { n = 1000 } }, %s)
]]):format(opts)
    end

    it('shows nothing a pset wrote at verbose 0, however much', function()
      local r = H.survey(H.tmpdir(), script('{ ncores = 2 }'))
      assert.equal(1, r.code)
      assert.equal('', r.out)
      assert.matches('^psurvey: stage1: 1 failed: 1 x "failing" %(tracebacks: %.psurvey/logs/[%d-]+%.log, '
        .. 'results%.missing%)\n$', r.err)
      assert.is_nil(r.err:find('line', 1, true))
      r = H.survey(H.tmpdir(), script('{ ncores = 2 }'):gsub("if p.n == 2 then error%('failing'%) end", ''))
      assert.same({ 0, '', '' }, { r.code, r.out, r.err })
    end)

    it('shows a failed pset\'s output with its failure at verbose 2', function()
      local r = H.survey(H.tmpdir(), script('{ ncores = 1 }'), '--verbose 2')
      assert.matches('pset #2 %(n=2%) failed: survey%.lua:5: failing\n    stack traceback:\n.-'
        .. '\n%[#2%] line 1 of #2\n%[#2%] line 2 of #2\n%[#2%] to stderr\n', r.err)
      assert.is_nil(r.err:find('[#1]', 1, true))
      assert.is_nil(r.err:find('[#3]', 1, true))
    end)

    it('shows every pset\'s output tagged with its index at verbose 3', function()
      local r = H.survey(H.tmpdir(), script('{ ncores = 1 }'), '--verbose 3')
      assert.matches('\n%[#1%] line 1 of #1\n%[#1%] to stderr\n', r.err)
      assert.matches('\n%[#3%] line 1000 of #1000\n%[#3%] to stderr\n', r.err)
      for line in r.err:gmatch('[^\n]+') do
        assert.is_true(line:match('^psurvey: ') ~= nil or line:match('^%[#%d%] ') ~= nil
          or line:match('^    ') ~= nil, line)
      end
    end)

    it("passes it through at the pset's end with 'none', each line tagged", function()
      local r = H.survey(H.tmpdir(), script("{ ncores = 1, output = 'none' }"))
      assert.equal(1, r.code)
      local tagged = {}
      for line in r.err:gmatch('[^\n]+') do
        if line:match('^%[#') then tagged[#tagged + 1] = line end
      end
      assert.equal(1 + 1 + 2 + 1 + 1000 + 1, #tagged)
      assert.same({ '[#1] line 1 of #1', '[#1] to stderr', '[#2] line 1 of #2' },
        { tagged[1], tagged[2], tagged[3] })
      assert.equal('[#3] to stderr', tagged[#tagged])
    end)

    it('takes the mode from PSURVEY_OUTPUT and --output', function()
      local src = [[
local psurvey = require('psurvey')
local r = psurvey.map(function() print('hi') end, { {} })
io.stdout:write(('%q'):format((r:output(1))))
]]
      local dir = H.tmpdir()
      assert.equal('"hi\\\n"', H.survey(dir, src).out)
      assert.equal('""', H.survey(dir, src, '--output none').out)
      local r = H.survey(dir, src, nil, { PSURVEY_OUTPUT = 'none' })
      assert.equal('""', r.out)
      assert.equal('[#1] hi\n', r.err)
    end)
  end)
end)
