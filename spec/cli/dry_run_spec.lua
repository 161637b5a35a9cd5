-- --dry-run: see the plan before running it. Every map() prints what it
-- would do and runs nothing; nothing is written anywhere.
local H = require('support.helpers')

local SURVEY = [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p) error('never runs') end,
  psurvey.product({ a = psurvey.range(1, 10), b = { 'x', 'y' } }), { name = 'grid', ncores = 2 })
print(#r, r.progress.total, #r.missing)
r = psurvey.map(function(p) error('never runs') end, { { a = 1 }, { a = 2 } })
print(#r, r.progress.total)
]]

describe('--dry-run', function()
  teardown(H.cleanup)

  it('prints each map\'s plan, runs nothing and returns empty results with the total', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SURVEY, '--dry-run')
    assert.equal(0, r.code, r.err)
    assert.equal('0\t20\t0\n0\t2\n', r.out)
    assert.matches('psurvey: dry run of map grid: nothing runs, nothing is written\n'
      .. '  psets: 20\n'
      .. '    #1 a=1, b=x\n    #2 a=1, b=y\n    #3 a=2, b=x\n    ...\n'
      .. '    #18 a=9, b=y\n    #19 a=10, b=x\n    #20 a=10, b=y\n'
      .. '  workers: 2 on this machine %([^)]+%)\n'
      .. '  table: grid in %.psurvey/survey%.db\n'
      .. "  options: backend='process' %(default%), ncores=2 %(map%),", r.err)
    assert.matches('dry_run=true %(command line%)', r.err)
    assert.matches("name='grid' %(map%)", r.err)
    assert.matches('psurvey: dry run of map stage2: nothing runs, nothing is written\n  psets: 2\n'
      .. '    #1 a=1\n    #2 a=2\n  workers: ', r.err)
  end)

  it('writes nothing: no database, no log', function()
    local dir = H.tmpdir()
    H.survey(dir, SURVEY, '', { PSURVEY_DRY_RUN = '1' })
    local files = {}
    for name in io.popen('ls -A ' .. H.quote(dir)):lines() do files[#files + 1] = name end
    table.sort(files)
    assert.same({ '.err', '.out', '.rc', 'survey.lua' }, files)
  end)

  it('names the ssh hosts it would use, without connecting', function()
    local r = H.survey(H.tmpdir(), [[
local psurvey = require('psurvey')
psurvey.map(function() end, { {} }, { backend = 'process,ssh', ncores = 1,
  ssh = { hosts = { 'h1.example', 'me@h2.example:2222 slots=4' } } })
]], '--dry-run')
    assert.equal(0, r.code, r.err)
    assert.matches('  workers: 1 on this machine %([^)]+%), one per core on h1%.example, 4 on me@h2%.example:2222\n',
      r.err)
  end)

  it('counts the limit', function()
    local r = H.survey(H.tmpdir(), SURVEY, '--dry-run --limit 5')
    assert.matches('  psets: 5 %(limit: the first 5 of 20%)\n    #1 a=1, b=x\n    #2 a=1, b=y\n    #3 a=2, b=x\n'
      .. '    #4 a=2, b=y\n    #5 a=3, b=x\n  workers', r.err)
  end)
end)
