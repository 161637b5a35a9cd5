-- README "Looking at results": the first look at what a survey stored,
-- without writing code, on a real survey's database.
local H = require('support.helpers')
local cjson = require('cjson')

local SURVEY = [[
local psurvey = require('psurvey')
local shift = tonumber(os.getenv('SHIFT') or '0')
psurvey.map(function(p)
  print('working on ' .. p.x .. ' ' .. p.kind)
  if p.x == 3 and p.kind == 'b' then error('x=3 is out of range\nsecond line of the message') end
  return { y = p.x * p.x + shift * (p.x == 4 and 1 or 0), ok = p.x % 2 == 0, label = 'L' .. p.x % 2 }
end, psurvey.product({ x = { 1, 2, 3, 4 }, kind = { 'a', 'b' } }), { name = 'sweep', ncores = 1 })
]]

describe('psurvey results', function()
  local dir
  setup(function()
    dir = H.tmpdir()
    local r = H.survey(dir, SURVEY)
    assert.equal(1, r.code, r.err)
  end)
  teardown(H.cleanup)

  local function run(args) return H.run(dir, args) end

  it('opens a script\'s own database when given the script', function()
    local by_script, by_file = run('results survey.lua'), run('results .psurvey/survey.db')
    assert.equal(0, by_script.code, by_script.err)
    assert.equal(by_file.out, by_script.out)
    assert.matches('sweep%s+done%s+8%s+7%s+1', by_script.out)
    local r = run('results other.lua')
    assert.same({ 3, "psurvey: results: no database for 'other.lua' here: .psurvey/other.db does not exist"
      .. ' (has it run in this directory?)\n' }, { r.code, r.err })
  end)

  it('suggests the table meant when a name has a typo', function()
    local r = run('results survey.lua --table swep')
    assert.equal(3, r.code)
    assert.equal("psurvey: results: no table 'swep' in survey.lua (did you mean 'sweep'?); its stages: sweep\n",
      r.err)
  end)

  it('exports the one stage without --table', function()
    local r = run('results survey.lua --jsonl')
    assert.equal(0, r.code, r.err)
    local n = 0
    for line in r.out:gmatch('[^\n]+') do
      n = n + 1
      assert.equal(n, cjson.decode(line)._index)
    end
    assert.equal(8, n)
    assert.matches('^kind,x,[a-z,]+,_index,_status,', run('results survey.lua --csv').out)
  end)

  it('summarises a stage: statuses, each column\'s type and range, run times with a histogram', function()
    local r = run('results survey.lua --summary')
    assert.equal(0, r.code, r.err)
    assert.matches('^sweep %(done%): 8 of 8 psets stored: ok 7, error 1\n', r.out)
    assert.matches('\n  x%s+pset%s+integer%s+1%s+4%s+4\n', r.out)
    assert.matches('\n  kind%s+pset%s+string%s+2%s+a %(4%), b %(4%)\n', r.out)
    assert.matches('\n  y%s+result%s+integer%s+1%s+16%s+4\n', r.out)
    assert.matches('\n  ok%s+result%s+boolean%s+false%s+true%s+2\n', r.out)
    assert.matches('\n  label%s+result%s+string%s+2%s+L0 %(4%), L1 %(3%)\n', r.out)
    assert.matches('\n  run time of 8 psets: mean [%d.]+ [mun]?s, p25 .-, p50 .-, p75 .-, p90 .-, p99 .-, max .-\n',
      r.out)
    -- The histogram: one line of Unicode blocks between the shortest and
    -- the longest run time.
    local bars = r.out:match('\n  [%d.]+ [mun]?s ([^\n]+) [%d.]+ [mun]?s\n$')
    assert.truthy(bars, r.out)
    assert.truthy(bars:find('█', 1, true))
  end)

  it('lists the failed psets with their values and whole messages; --full adds tracebacks and output', function()
    local r = run('results survey.lua --failed')
    assert.equal(0, r.code, r.err)
    assert.equal('sweep: 1 of 8 psets failed\n#7  kind=b, x=3\n    error: survey.lua:5: x=3 is out of range\n'
      .. '    second line of the message\n', r.out)
    r = run('results survey.lua --failed --full')
    assert.matches('\n    stack traceback:\n', r.out)
    assert.matches('\n    stdout:\n      working on 3 b\n', r.out)
    r = run('results survey.lua --full')
    assert.same({ 2, 'psurvey: results: --full goes with --failed\n(see psurvey --help)\n' }, { r.code, r.err })
    -- Filtered, the count says so.
    r = run([[results survey.lua --failed --where "kind = 'a'"]])
    assert.equal("sweep: 0 failed psets where kind = 'a' (of 1 failed, 8 psets)\n", r.out)
  end)

  it('filters, sorts, chooses columns and cuts listings', function()
    local r = run([[results survey.lua --where "kind = 'a' AND x > 1" --sort -y --columns x,y,_duration --limit 2]])
    assert.equal(0, r.code, r.err)
    local lines = {}
    for line in r.out:gmatch('[^\n]+') do lines[#lines + 1] = line end
    assert.matches('^x%s+y%s+_duration$', lines[1])
    assert.matches('^4%s+16%s+[%d.e-]+$', lines[3])
    assert.matches('^3%s+9%s+[%d.e-]+$', lines[4])
    assert.equal(4, #lines)
  end)

  it('filters, sorts and chooses the columns of an export', function()
    local r = run('results survey.lua --csv --where ok --sort -x,kind --columns kind,x,y')
    assert.equal(0, r.code, r.err)
    assert.equal('kind,x,y\r\na,4,16\r\nb,4,16\r\na,2,4\r\nb,2,4\r\n', r.out)
    r = run([[results survey.lua --jsonl --where "_status <> 'ok'" --columns x,_exception]])
    assert.equal('{"x":3,"_exception":"survey.lua:5: x=3 is out of range\\nsecond line of the message"}\n', r.out)
  end)

  it('runs --where read-only: one expression that reads this table and nothing else', function()
    local db = dir .. '/.psurvey/survey.db'
    for _, bad in ipairs({
      "1; DROP TABLE sweep",
      "1) OR (1",
      "x > 1 --",
      "x > 1 /* comment",
      "x IN (SELECT id FROM _psurvey_runs)",
      "(SELECT count(*) FROM sqlite_master) > 0",
      "x > (",
      "'unterminated",
      "nope > 1",
    }) do
      local r = run('results survey.lua --table sweep --where ' .. H.quote(bad))
      assert.equal(2, r.code, bad)
      assert.matches('^psurvey: results: %-%-where: ', r.err)
    end
    assert.equal(8, H.sql(db, 'select count(*) n from sweep')[1].n)
    local r = run([[results survey.lua --where "x IN (SELECT x FROM sweep WHERE y > 8)" --columns x --csv]])
    assert.same({ 0, 'x\r\n3\r\n4\r\n3\r\n4\r\n' }, { r.code, r.out })
    r = run('results survey.lua --sort nope')
    assert.same({ 2, 'psurvey: results: --sort: no such column: nope\n(see psurvey --help)\n' }, { r.code, r.err })
    r = run('results survey.lua --columns x,nope')
    assert.equal(2, r.code)
    assert.matches("no column 'nope' in table 'sweep' %(it has kind, x, [a-z, ]+, _index, _status", r.err)
    r = run('results survey.lua --limit 0')
    assert.equal(2, r.code)
    -- The error names the option at fault, whatever else is given.
    r = run('results survey.lua --where "x > 1" --csv --columns x,nope')
    assert.equal(2, r.code)
    assert.matches("^psurvey: results: %-%-columns: no column 'nope'", r.err)
    r = run('results survey.lua --summary --where "x > 1"')
    assert.same({ 2, 'psurvey: results: --summary describes whole stages: it takes no --where, --sort, --columns or'
      .. ' --limit\n(see psurvey --help)\n' }, { r.code, r.err })
    -- Functions that reach outside the database are refused before a row is read.
    for _, bad in ipairs({ "load_extension('/tmp/nothing') IS NULL", 'EXISTS (SELECT 1 FROM pragma_table_list)' }) do
      r = run('results survey.lua --where ' .. H.quote(bad))
      assert.equal(2, r.code, bad)
      assert.matches("^psurvey: results: %-%-where: the expression may read the columns of 'sweep' and call", r.err)
    end
    r = run([[results survey.lua --where '']])
    assert.same({ 2, "psurvey: results: option '--where' needs a value\n(see psurvey --help)\n" }, { r.code, r.err })
  end)

  it('compares two runs of a stage pset by pset with diff', function()
    local r = H.survey(dir, SURVEY, nil, { SHIFT = '1' })
    assert.equal(1, r.code, r.err)
    local stages = H.sql(dir .. '/.psurvey/survey.db', "select name from _psurvey_tables order by created, name")
    local old = stages[1].name
    assert.matches('^sweep_%d+', old)
    r = run('diff survey.lua ' .. old .. ' sweep')
    assert.equal(1, r.code, r.err)
    assert.equal(old .. ' (8 psets) and sweep (8 psets), matched by pset: 6 the same\n'
      .. 'only in ' .. old .. ': 0\nonly in sweep: 0\nchanged: 2\n'
      .. '  #4  kind=a, x=4\n      y: 16 -> 17\n  #8  kind=b, x=4\n      y: 16 -> 17\n', r.out)
    r = run('diff survey.lua sweep sweep')
    assert.equal(0, r.code, r.err)
    r = run('diff survey.lua sweep swep')
    assert.same({ 3, "psurvey: diff: no stage 'swep' in survey.lua (did you mean 'sweep'?); its stages: "
      .. old .. ', sweep\n' }, { r.code, r.err })
  end)

  it('shows psets that only one run has', function()
    local other = H.tmpdir()
    local r = H.survey(other, [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.x } end, psurvey.product({ x = { 1, 2, 3 } }), { name = 'a' })
psurvey.map(function(p) return { y = p.x } end, psurvey.product({ x = { 2, 3, 4 } }), { name = 'b' })
]])
    assert.equal(0, r.code, r.err)
    r = H.run(other, 'diff survey.lua a b')
    assert.same({ 1, 'a (3 psets) and b (3 psets), matched by pset: 2 the same\nonly in a: 1\n  #1  x=1\n'
      .. 'only in b: 1\n  #3  x=4\nchanged: 0\n' }, { r.code, r.out })
  end)
end)

-- Every command the README's "Looking at results" shows, run on a copy of
-- examples/spring.lua, prints what the README says it prints (but for run
-- times and the date in a kept table's name).
describe('the README\'s "Looking at results"', function()
  teardown(H.cleanup)

  local function normal(text)
    return (text:gsub('spring_%d+_%d+', 'spring_OLD'):gsub('%-?[%d.]+ [mun]?s', 'T')
      :gsub('\n  T [^\n]* T\n', '\n  T HISTOGRAM T\n'))
  end

  it('shows what the commands print', function()
    local readme = H.slurp(H.root .. '/README.md')
    local section = assert(readme:match('\n## Looking at results\n(.-)\n## '))
    local dir = H.tmpdir()
    os.execute(('mkdir -p %s/examples && cp %s/examples/spring.lua %s/examples/'):format(H.quote(dir),
      H.quote(H.root), H.quote(dir)))
    local shown = 0
    for block in section:gmatch('\n```\n(.-)\n```') do
      for command, expected in (block .. '\n'):gmatch('%$ ([^\n]+)\n(.-)%f[$\0]') do
        if command:find('spring_%d+_%d+') then
          local old = H.sql(dir .. '/.psurvey/spring.db', "select name from _psurvey_tables where name <> 'spring'")
          command = command:gsub('spring_%d+_%d+', old[1].name)
        end
        local args = assert(command:match('^psurvey (.*)$'), command)
        -- `| head -N` shows the first lines of what it prints.
        local head
        args = args:gsub(' | head %-(%d+)$', function(n) head = tonumber(n) return '' end)
        local out = H.run(dir, args).out
        if head then
          local lines = {}
          for line in out:gmatch('[^\n]*\n') do
            if #lines < head then lines[#lines + 1] = line end
          end
          out = table.concat(lines)
        end
        assert.equal(normal(expected), normal(out), command)
        shown = shown + 1
      end
    end
    assert.equal(6, shown)
  end)
end)
