-- Coming from paramsurvey: what a paramsurvey user sees on stderr and in the
-- hidden log means the same here (README, "Coming from paramsurvey").
local H = require('support.helpers')

-- Six psets, the third and fifth fail with a traceback through `deep`.
local FAILING = [[
local psurvey = require('psurvey')
local function deep(v) error('bad value ' .. v) end
psurvey.map(function(p)
  if p.value == 3 or p.value == 5 then deep(p.value) end
  return { y = p.value }
end, psurvey.range(1, 6), { name = 'six', ncores = 1 })
]]

local logs = H.logs

describe('coming from paramsurvey, failures', function()
  teardown(H.cleanup)

  it('says at verbose 1 where the first failure\'s traceback is, and repeats it at the end', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, FAILING, '', { PSURVEY_VERBOSE = '1' })
    assert.equal(1, r.code, r.err)
    local log = logs(dir)[1]
    assert.is_not_nil(log)
    local quoted = log:gsub('%p', '%%%0')
    assert.matches(('psurvey: six: pset #3 %%(value=3%%) failed: [^\n]*bad value 3 %%(its traceback is in %s%%)\n')
      :format(quoted), r.err)
    assert.matches('psurvey: six: pset #5 %(value=5%) failed: [^\n]*bad value 5\n', r.err)
    assert.not_matches('pset #5 [^\n]*its traceback', r.err)
    assert.matches(('psurvey: six: done: 4 ok, 2 failed in [^\n]*\npsurvey: six: 2 failed: 1 x "bad value 3", 1 x '
      .. '"bad value 5" %%(tracebacks: %s, results%%.missing%%)\n'):format(quoted), r.err)
    -- The log has both tracebacks.
    local text = H.slurp(dir .. '/' .. log)
    assert.matches("in upvalue 'deep'", text)
    assert.matches('bad value 3', text)
    assert.matches('bad value 5', text)
  end)

  it('prints each failure\'s traceback at verbose 2', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, FAILING, '', { PSURVEY_VERBOSE = '2' })
    assert.equal(1, r.code, r.err)
    local _, tracebacks = r.err:gsub("\n    [^\n]*in upvalue 'deep'", '')
    assert.equal(2, tracebacks)
    assert.matches('psurvey: six: pset #3 %(value=3%) failed: [^\n]*bad value 3\n    stack traceback:\n', r.err)
  end)

  it('gives each run its own log file, even when runs start in the same second', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', FAILING)
    -- Four runs at once: they start within one second.
    H.shell(('cd %s && for i in 1 2 3 4; do env PSURVEY_VERBOSE=0 PSURVEY_VSTATS=0 PSURVEY_DB=s$i.db %s survey.lua'
      .. ' 2>/dev/null & done; wait'):format(H.quote(dir), H.quote(H.bin)))
    local names = logs(dir)
    assert.equal(4, #names)
    for _, name in ipairs(names) do
      local _, n = H.slurp(dir .. '/' .. name):gsub('bad value 3', '')
      assert.equal(1, n, name) -- one run's failures only
    end
  end)
end)

describe('coming from paramsurvey, progress and statistics lines', function()
  teardown(H.cleanup)

  local SLOW = [[
local psurvey = require('psurvey')
psurvey.map(function() os.execute('sleep 0.25') return {} end, psurvey.range(1, 16), { name = 'slow', ncores = 1 })
]]

  it('prints the verbose 2 progress line every second, never skipping one', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SLOW, '', { PSURVEY_VERBOSE = '2' })
    assert.equal(0, r.code, r.err)
    local secs = tonumber(r.err:match('psurvey: slow: done: 16 ok, 0 failed in ([%d.]+) s\n'))
    assert.is_not_nil(secs, r.err)
    local _, lines = r.err:gsub('psurvey: slow: %d+/16 done, ', '')
    -- One line per whole second run (the last second may end first).
    assert.is_true(lines >= math.floor(secs) - 1 and lines <= math.ceil(secs), ('%d lines in %g s'):format(lines,
      secs))
  end)

  it('prints statistics at verbose\'s cadence: vstats 2 every second', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SLOW, '', { PSURVEY_VSTATS = '2' })
    assert.equal(0, r.code, r.err)
    local _, lines = r.err:gsub('psurvey: slow: run time of %d+ psets: mean ', '')
    assert.is_true(lines >= 3, r.err) -- about 4 s: 3 or 4 lines, and one at the end
    r = H.survey(dir, SLOW, '', { PSURVEY_VSTATS = '1' })
    _, lines = r.err:gsub('psurvey: slow: run time of %d+ psets: mean ', '')
    assert.equal(1, lines, r.err) -- the end only, in a run under 30 s
  end)

  it('prints each pset\'s run time at vstats 3', function()
    local r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
psurvey.map(function() return {} end, psurvey.range(1, 3), { name = 'each' })
]], '', { PSURVEY_VSTATS = '3' })
    local _, lines = r.err:gsub('psurvey: each: pset #%d %(value=%d%) finished in [^\n]* on worker %d+\n', '')
    assert.equal(3, lines, r.err)
  end)
end)

describe('failures named by their parameters, and summarised', function()
  teardown(H.cleanup)

  it('names a failed pset by its values, cut to a readable width', function()
    local script = [[
local psurvey = require('psurvey')
psurvey.map(function(p) if p.r > 3.55 then error('bad parameter r', 0) end return {} end,
  psurvey.product({ r = psurvey.range(3.5, 3.6, 0.1), x0 = { 0.5 }, noise = { 0.01 }, label = { LABEL } }),
  { name = 'named' })
]]
    local r = H.survey(H.tmpdir(), script:gsub('LABEL', "'with spaces'"), '', { PSURVEY_VERBOSE = '1' })
    assert.matches("psurvey: named: pset #2 %(label='with spaces', noise=0%.01, r=3%.6, x0=0%.5%) failed: bad "
      .. 'parameter r', r.err)
    r = H.survey(H.tmpdir(), script:gsub('LABEL', "('long '):rep(20)"), '', { PSURVEY_VERBOSE = '1' })
    -- The values take at most 60 bytes of the line, a string at most 40.
    local values = r.err:match('pset #2 %((.-)%) failed')
    assert.equal("label='long long long long long long long long ...', nois...", values)
  end)

  it('ends a map with failures with one line grouping them by kind and message, at every verbosity', function()
    local r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  if p.value <= 3 then error('bad parameter r') end
  if p.value <= 5 then os.exit(3) end
  if p.value == 6 then os.execute('sleep 5') end
  return {}
end, psurvey.range(1, 8), { name = 'mixed', timeout = 0.5, retries = 0 })
]], '', { PSURVEY_VERBOSE = '0' })
    assert.equal(1, r.code)
    assert.matches('^psurvey: mixed: 6 failed: 3 x "bad parameter r", 2 x exit 3, 1 x timeout %(tracebacks: '
      .. '%.psurvey/logs/[%d-]+%.log, results%.missing%)\n$', r.err)
  end)

  it('keeps that line with -q, which silences progress and statistics', function()
    local r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
psurvey.map(function(p) if p.value == 2 then error('two', 0) end return {} end, psurvey.range(1, 3),
  { name = 'quiet' })
]], '-q', { PSURVEY_VERBOSE = '2', PSURVEY_VSTATS = '2' })
    assert.matches('^psurvey: quiet: 1 failed: 1 x "two" %(tracebacks: [^\n]*%)\n$', r.err)
    r = H.survey(H.tmpdir(), "require('psurvey').map(function() end, { {} })", '--quiet',
      { PSURVEY_VERBOSE = '2', PSURVEY_VSTATS = '2' })
    assert.equal('', r.err)
    assert.equal(0, r.code)
  end)

  it('says loudly, once, when the first 10 psets all failed alike', function()
    local r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.valu.x } end, psurvey.range(1, 40), { name = 'broken' })
]], '', { PSURVEY_VERBOSE = '0' })
    local _, n = r.err:gsub('psurvey: broken: the first 10 psets all failed with "attempt to index a nil value '
      .. "%(field 'valu'%)\": is the worker broken%?\n", '')
    assert.equal(1, n, r.err)
    r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
psurvey.map(function(p) if p.value ~= 5 then error('no') end end, psurvey.range(1, 40), { name = 'mostly', ncores = 1 })
]], '', { PSURVEY_VERBOSE = '0' })
    assert.not_matches('is the worker broken', r.err) -- pset 5 succeeded among the first ten
  end)
end)
