-- The database a survey leaves behind, read with the sqlite3 shell and
-- with `psurvey results`.
local H = require('support.helpers')
local cjson = require('cjson')

local SURVEY = [[
local psurvey = require('psurvey')
local function worker(p)
  if p.n == 3 then error('three is bad') end
  return { half = p.n / 2, big = (1 << 62) + p.n, name = 'n' .. p.n, third = 1 / 3, list = { p.n, 0.1 } }
end
psurvey.map(worker, psurvey.range(1, 4, 1) and psurvey.product({ n = psurvey.range(1, 4) }), { name = 'grid' })
psurvey.map(function(p) return { sq = p.x * p.x } end, { { x = 2 }, { x = 3 } }, { name = 'second' })
]]

describe('the results database', function()
  local dir
  setup(function()
    dir = H.tmpdir()
    local r = H.survey(dir, SURVEY)
    assert.equal(1, r.code) -- one pset failed
  end)
  teardown(H.cleanup)

  local function db() return dir .. '/.psurvey/survey.db' end

  it('has one table per map(), one column per key, with SQLite types matching Lua types', function()
    local rows = H.sql(db(), 'select n, typeof(n) tn, typeof(half) th, typeof(big) tb, typeof(name) ts, '
      .. 'typeof(list) tl, _status from grid order by _index')
    assert.equal(4, #rows)
    assert.same({ n = 1, tn = 'integer', th = 'real', tb = 'integer', ts = 'text', tl = 'text', _status = 'ok' },
      rows[1])
    assert.equal('error', rows[3]._status)
    local cols = {}
    for _, c in ipairs(H.sql(db(), 'pragma table_info(grid)')) do cols[#cols + 1] = c.name end
    table.sort(cols)
    local want = { '_index', 'n', 'half', 'big', 'name', 'third', 'list', '_status', '_exception', '_traceback',
      '_attempt', '_worker', '_host', '_start', '_end', '_duration', '_cpu', '_memory', '_name', '_hash', '_run',
      '_types' }
    table.sort(want)
    assert.same(want, cols)
    assert.same({ { x = 2, sq = 4 }, { x = 3, sq = 9 } }, H.sql(db(), 'select x, sq from second order by _index'))
  end)

  it('shows a user what they expect in the sqlite3 shell', function()
    local out = H.shell(('sqlite3 %s "select n, name, _status, _exception from grid"'):format(db()))
    assert.equal('1|n1|ok|\n2|n2|ok|\n3||error|survey.lua:3: three is bad\n4|n4|ok|\n', out)
  end)

  it('lists the tables', function()
    local r = H.run(dir, 'results .psurvey/survey.db')
    assert.equal(0, r.code)
    assert.matches('^name%s+status%s+total%s+ok%s+failed%s+created\n', r.out)
    assert.matches('\ngrid%s+done%s+4%s+3%s+1%s+%d%d%d%d%-', r.out)
    assert.matches('\nsecond%s+done%s+2%s+2%s+0%s+', r.out)
  end)

  it('prints one table', function()
    local r = H.run(dir, 'results .psurvey/survey.db --table second')
    assert.equal(0, r.code)
    assert.matches('^x%s+sq%s+_status%s+_exception\n', r.out)
    assert.matches('\n2%s+4%s+ok\n3%s+9%s+ok\n$', r.out)
  end)

  it('exports JSON Lines with every integer and float exact', function()
    local r = H.run(dir, 'results .psurvey/survey.db --table grid --jsonl')
    assert.equal(0, r.code)
    local lines = {}
    for line in r.out:gmatch('[^\n]+') do lines[#lines + 1] = line end
    assert.equal(4, #lines)
    assert.matches('"big":4611686018427387905', lines[1])
    assert.matches('"third":0%.3333333333333333', lines[1])
    assert.matches('"half":0%.5', lines[1])
    assert.matches('"list":%[1,0%.1%]', lines[1])
    assert.matches('"_exception":"survey.lua:3: three is bad"', lines[3])
    assert.equal(4, #lines)
    local row = cjson.decode(lines[2])
    assert.equal(2, row.n)
    assert.equal(1.0, row.half)
  end)

  it('exports CSV with a header and exact numbers', function()
    local r = H.run(dir, 'results .psurvey/survey.db --table grid --csv')
    assert.equal(0, r.code)
    local lines = {}
    for line in r.out:gmatch('([^\r\n]*)\r\n') do lines[#lines + 1] = line end
    assert.equal(5, #lines)
    -- columns in the order they appeared, user keys first, then psurvey's
    local header = {}
    for name in lines[1]:gmatch('[^,]+') do header[#header + 1] = name end
    assert.equal('n', header[1])
    assert.equal('_index', header[7])
    local first = {}
    local k = 0
    for cell in (lines[2] .. ','):gmatch('("[^"]*"),') do first[#first + 1] = cell end
    for cell in lines[2]:gsub('"[^"]*"', 'LIST'):gmatch('[^,]*') do
      k = k + 1
      first[header[k] or k] = cell
    end
    assert.equal('1', first.n)
    assert.equal('0.5', first.half)
    assert.equal('4611686018427387905', first.big)
    assert.equal('0.3333333333333333', first.third)
    assert.equal('"[1,0.1]"', first[1])
  end)

  it('reads the stored results back with psurvey.open', function()
    local psurvey = require('psurvey')
    local res = psurvey.open(db(), 'grid')
    assert.equal(3, #res)
    assert.equal(1, #res.missing)
    local row = res:rows()()
    assert.same({ n = 1, half = 0.5, big = (1 << 62) + 1, name = 'n1', third = 1 / 3, list = { 1, 0.1 } }, row)
  end)

  it('says what is wrong with a missing file or table', function()
    local r = H.run(dir, 'results nope.db')
    assert.equal(3, r.code)
    assert.equal("psurvey: results: cannot open 'nope.db'\n", r.err)
    r = H.run(dir, 'results .psurvey/survey.db --table nope --csv')
    assert.equal(3, r.code)
    assert.equal("psurvey: results: no table 'nope' in .psurvey/survey.db; its stages: grid, second\n", r.err)
  end)

  it('prints the real columns of an attempts table and of the runs table', function()
    local r = H.run(dir, 'results .psurvey/survey.db --table grid_attempts')
    assert.equal(0, r.code, r.err)
    assert.matches('^_index%s+attempt%s+kind%s+message%s+traceback%s+worker%s+host%s+start%s+duration%s+cpu%s+memory'
      .. '%s+limit_timeout%s+limit_memory%s+hash\n', r.out)
    assert.matches('\n%s*3%s+1%s+error%s+survey%.lua:3: three is bad%s', r.out)
    r = H.run(dir, 'results .psurvey/survey.db --table _psurvey_runs --csv')
    assert.equal(0, r.code, r.err)
    assert.matches('^id,started,finished,status,script,script_hash,host,pid,psurvey,lua,libuv,sqlite,options,'
      .. 'argv,cwd,git_commit,git_dirty,note,tags,log\r\n1,', r.out)
  end)

  it('says a column is missing instead of reading its name as text', function()
    local copy = H.tmpdir() .. '/copy.db'
    os.execute(('sqlite3 %s ".backup %s" && sqlite3 %s "ALTER TABLE second DROP COLUMN sq"'):format(H.quote(db()),
      H.quote(copy), H.quote(copy)))
    local r = H.run(dir, 'results ' .. H.quote(copy) .. ' --table second --csv')
    assert.equal(3, r.code)
    assert.matches('no such column: sq', r.err)
  end)

  it('keeps the table of an earlier run when the script runs again', function()
    H.survey(dir, SURVEY)
    local names = H.sql(db(), "select name from _psurvey_tables where name like 'grid%' order by created")
    assert.equal(2, #names)
    assert.matches('^grid_%d%d%d%d%d%d%d%d_%d%d%d%d%d%d$', names[1].name)
    assert.equal('grid', names[2].name)
  end)
end)

describe('psurvey results --output INDEX', function()
  local dir
  setup(function()
    dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  print('out of #' .. p.n)
  io.stderr:write('err of #' .. p.n .. '\n')
  if p.n == 2 then error('two') end
end, psurvey.product({ n = psurvey.range(1, 3) }), { name = 'talk' })
]])
    assert.equal(1, r.code, r.err)
  end)
  teardown(H.cleanup)

  it('prints what a pset wrote: its stdout to stdout, its stderr to stderr', function()
    local r = H.run(dir, 'results .psurvey/survey.db --table talk --output 3')
    assert.equal(0, r.code, r.err)
    assert.equal('out of #3\n', r.out)
    assert.equal('err of #3\n', r.err)
    r = H.run(dir, 'results .psurvey/survey.db --table TALK --output=2') -- a failed one too
    assert.same({ 0, 'out of #2\n', 'err of #2\n' }, { r.code, r.out, r.err })
  end)

  it('keeps it in a table the sqlite3 shell reads, one row per attempt that wrote anything', function()
    assert.same({ { _index = 1, _attempt = 1, stdout = 'out of #1\n', stderr = 'err of #1\n' } },
      H.sql(dir .. '/.psurvey/survey.db', 'select * from talk_output where _index = 1'))
  end)

  it('reads it back with psurvey.open', function()
    local r = H.survey(dir, [[
local out, err = require('psurvey').open('.psurvey/survey.db', 'talk'):output(1)
io.write(out, err)
]])
    assert.equal('out of #1\nerr of #1\n', r.out)
  end)

  it('says what is wrong with a missing pset, table or index', function()
    local r = H.run(dir, 'results .psurvey/survey.db --table talk --output 9')
    assert.same({ 3, '', "psurvey: results: table 'talk' has no pset #9\n" }, { r.code, r.out, r.err })
    r = H.run(dir, 'results .psurvey/survey.db --table nope --output 1')
    assert.same({ 3, "psurvey: results: no table 'nope' in .psurvey/survey.db; its stages: talk\n" },
      { r.code, r.err })
    r = H.run(dir, 'results .psurvey/survey.db --table talk --output x')
    assert.equal(2, r.code)
    assert.matches("^psurvey: results: option '%-%-output' needs a pset index %(1, 2, ...%), got 'x'\n", r.err)
    r = H.run(dir, 'results .psurvey/survey.db --output 1')
    assert.same({ 2, 'psurvey: results: --output needs --table NAME\n(see psurvey --help)\n' }, { r.code, r.err })
  end)
end)
