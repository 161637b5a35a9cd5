-- Resume: a driver killed with SIGKILL loses only what was in flight, and
-- `--resume` runs only what is not done, matching psets by their hash.
-- Also the runs table, system.seed and `psurvey replay`.
local H = require('support.helpers')

local function count(db, where)
  return H.sql(db, 'select count(*) n from stage1' .. (where and (' where ' .. where) or ''))[1].n
end

-- Starts `psurvey survey.lua` in dir in the background and kills it with
-- SIGKILL once `ready` (a shell test) holds; returns when it is dead.
local function run_and_kill(dir, ready)
  local cmd = ([[cd %s && { env -u PSURVEY_VERBOSE PSURVEY_VSTATS=0 PSURVEY_VERBOSE=0 %s survey.lua \
    >killed.out 2>killed.err </dev/null & echo $! >driver.pid; }
for i in $(seq 1 300); do if %s; then break; fi; sleep 0.05; done
kill -9 $(cat driver.pid); sleep 0.3]]):format(H.quote(dir), H.quote(H.bin), ready)
  os.execute(cmd)
end

-- Lines of the evaluation log the surveys below keep.
local function evaluations(dir)
  local seen, n = {}, 0
  local f = io.open(dir .. '/evals.txt')
  if not f then return seen, 0 end
  for line in f:lines() do
    seen[line] = (seen[line] or 0) + 1
    n = n + 1
  end
  f:close()
  return seen, n
end

describe('psurvey --resume', function()
  after_each(H.cleanup)

  it('finishes a 5,000-pset survey killed with SIGKILL, every pset exactly once', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p)
  local t = os.clock() + 0.001
  while os.clock() < t do end
  return { sq = p.value * p.value }
end, psurvey.range(1, 5000), { ncores = 2 })
print(#r, r.progress.resumed)
]])
    local db = dir .. '/.psurvey/survey.db'
    run_and_kill(dir, ('[ "$(sqlite3 %s \'select count(*) from stage1\' 2>/dev/null)" -gt 1000 ] 2>/dev/null'):format(
      H.quote(db)))
    local before = count(db)
    assert.is_true(before > 1000 and before < 5000, ('%d rows when killed'):format(before))
    assert.same({}, H.processes(dir))
    local r = H.run(dir, 'survey.lua --resume')
    assert.equal(0, r.code, r.err)
    local n, resumed = r.out:match('^(%d+)\t(%d+)\n$')
    assert.equal('5000', n)
    assert.equal(before, tonumber(resumed))
    assert.same({ { n = 5000, i = 5000, v = 5000, lo = 1, hi = 5000, ok = 5000 } }, H.sql(db,
      "select count(*) n, count(distinct _index) i, count(distinct value) v, min(_index) lo, max(_index) hi,"
      .. " sum(_status = 'ok' and sq = value * value and _index = value) ok from stage1"))
    local runs = H.sql(db, 'select status from _psurvey_runs order by id')
    assert.same({ { status = 'running' }, { status = 'done' } }, runs)
  end)

  it('matches psets by hash: a reordered, extended product runs only the new psets', function()
    local dir = H.tmpdir()
    local template = [[
local psurvey = require('psurvey')
local function worker(p, system, user)
  local f = io.open(user, 'a')
  f:write(p.a, p.b, '\n')
  f:close()
  return { ab = p.a .. p.b }
end
local r = psurvey.map(worker, psurvey.product(%s), { user = 'evals.txt' })
print(#r, r.progress.resumed)
]]
    H.write(dir, 'survey.lua', template:format("{ a = { 1, 2, 3 }, b = { 'x', 'y' } }"))
    assert.equal(0, H.run(dir, 'survey.lua').code)
    H.write(dir, 'survey.lua', template:format("{ a = { 3, 2, 1 }, b = { 'y', 'x', 'z' } }"))
    local r = H.run(dir, 'survey.lua --resume')
    assert.equal(0, r.code, r.err)
    assert.equal('9\t6\n', r.out)
    local seen, n = evaluations(dir)
    assert.equal(9, n)
    for _, k in ipairs({ '1x', '1y', '1z', '2x', '2y', '2z', '3x', '3y', '3z' }) do assert.equal(1, seen[k], k) end
    local rows = H.sql(dir .. '/.psurvey/survey.db', 'select _index, ab from stage1 order by _index')
    local got = {}
    for _, row in ipairs(rows) do got[#got + 1] = ('%d%s'):format(row._index, row.ab) end
    assert.same({ '13y', '23x', '33z', '42y', '52x', '62z', '71y', '81x', '91z' }, got)
  end)

  it('sets aside the rows of psets no longer listed, as a table psurvey can read', function()
    local dir = H.tmpdir()
    local template = [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { twice = 2 * p.value } end, psurvey.range(1, %d))
]]
    H.write(dir, 'survey.lua', template:format(5))
    assert.equal(0, H.run(dir, 'survey.lua').code)
    H.write(dir, 'survey.lua', template:format(3))
    assert.equal(0, H.run(dir, 'survey.lua --resume').code)
    local db = dir .. '/.psurvey/survey.db'
    assert.equal(3, count(db))
    local aside = H.sql(db, 'select name, status, total, ok, failed from _psurvey_tables'
      .. " where name like 'stage1_unmatched_%'")
    assert.equal(1, #aside)
    assert.same({ status = 'unmatched', total = 2, ok = 2, failed = 0 },
      { status = aside[1].status, total = aside[1].total, ok = aside[1].ok, failed = aside[1].failed })
    local list = H.run(dir, 'results .psurvey/survey.db')
    assert.equal(0, list.code, list.err)
    assert.matches(aside[1].name .. '%s+unmatched%s+2%s+2%s+0', list.out)
    local shown = H.run(dir, 'results .psurvey/survey.db --table ' .. aside[1].name)
    assert.equal(0, shown.code, shown.err)
    assert.matches('value%s+twice', shown.out)
    assert.matches('\n%s*4%s+8%s', shown.out)
    assert.matches('\n%s*5%s+10%s', shown.out)
  end)

  it('runs failed psets again, unless --resume=done-and-failed keeps them', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  local f = io.open('evals.txt', 'a')
  f:write(p.value, '\n')
  f:close()
  if p.value == 2 and io.open('fail') then error('not today') end
  return { v = p.value }
end, psurvey.range(1, 3))
]])
    H.write(dir, 'fail', '')
    assert.equal(1, H.run(dir, 'survey.lua').code)
    os.remove(dir .. '/fail')
    assert.equal(1, H.run(dir, 'survey.lua --resume=done-and-failed').code)
    local _, n = evaluations(dir)
    assert.equal(3, n)
    assert.equal(0, H.run(dir, 'survey.lua --resume').code)
    local seen
    seen, n = evaluations(dir)
    assert.equal(4, n)
    assert.equal(2, seen['2'])
    assert.equal(3, count(dir .. '/.psurvey/survey.db', "_status = 'ok'"))
  end)

  it('refuses to mix rows of a changed worker, unless --resume=force', function()
    local dir = H.tmpdir()
    local template = [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { v = %d } end, psurvey.range(1, %d))
]]
    H.write(dir, 'survey.lua', template:format(1, 2))
    assert.equal(0, H.run(dir, 'survey.lua').code)
    H.write(dir, 'survey.lua', template:format(2, 3))
    local r = H.run(dir, 'survey.lua --resume')
    assert.equal(2, r.code)
    assert.matches("resume: table 'stage1' in %.psurvey/survey%.db holds 2 rows made with another version of the "
      .. 'worker function %(its code or its upvalues%): run with %-%-resume=force to keep them', r.err)
    r = H.run(dir, 'survey.lua --resume=force')
    assert.equal(0, r.code, r.err)
    assert.same({ { value = 1, v = 1 }, { value = 2, v = 1 }, { value = 3, v = 2 } },
      H.sql(dir .. '/.psurvey/survey.db', 'select value, v from stage1 order by _index'))
  end)

  it('replays the finished maps of a greedy search killed in its fourth map, to the same answer', function()
    local source = H.slurp(H.root .. '/examples/greedy.lua')
    -- Each evaluation is logged; round 4 is slow until the file 'slow' goes.
    source = source:gsub('local function cost_worker%(pset, system, user%)\n', [[
local function cost_worker(pset, system, user)
  if system.stage == 'round4' and io.open('slow') then
    io.open('in-round4', 'w'):close()
    os.execute('sleep 30.75')
  end
  local f = io.open('evals.txt', 'a')
  f:write(system.stage, ' ', pset.x, ' ', pset.y, '\n')
  f:close()
]])
    local clean, dir = H.tmpdir(), H.tmpdir()
    H.write(clean, 'survey.lua', source)
    local want = H.run(clean, 'survey.lua')
    assert.equal(0, want.code, want.err)
    H.write(dir, 'survey.lua', source)
    H.write(dir, 'slow', '')
    run_and_kill(dir, '[ -e in-round4 ]')
    assert.same({}, H.processes(dir))
    -- The workers took the programs they ran down with them.
    assert.same({}, H.processes('sleep 30.75'))
    local _, before = evaluations(dir)
    assert.equal(75, before) -- rounds 1 to 3, 25 psets each; round 4 never finished one
    os.remove(dir .. '/slow')
    local r = H.run(dir, 'survey.lua --resume')
    assert.equal(0, r.code, r.err)
    assert.equal(want.out, r.out)
    local seen, n = evaluations(dir)
    local _, clean_n = evaluations(clean)
    assert.equal(clean_n, n)
    for line, k in pairs(seen) do assert.equal(1, k, line .. ' was evaluated twice') end
  end)
end)

describe('the runs table and system.seed', function()
  after_each(H.cleanup)

  it('records each run: hashes, versions, host and where each option came from', function()
    local dir = H.tmpdir()
    H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.init({ group_size = 3 })
psurvey.map(function() return {} end, psurvey.range(1, 2))
]], '--ncores 2', { PSURVEY_LIMIT = '1' })
    local run = H.sql(dir .. '/.psurvey/survey.db', 'select * from _psurvey_runs')[1]
    assert.equal('done', run.status)
    assert.equal('survey.lua', run.script)
    assert.matches('^%x+$', run.script_hash)
    assert.equal(io.popen('hostname'):read('l'), run.host)
    assert.matches('^0%.1%.0$', run.psurvey)
    assert.equal('Lua 5.4', run.lua)
    assert.matches('^1%.%d+%.%d+$', run.libuv)
    assert.matches('^3%.%d+%.%d+$', run.sqlite)
    assert.matches('ncores=2 %(command line%)', run.options)
    assert.matches('limit=1 %(environment%)', run.options)
    assert.matches('group_size=3 %(init%)', run.options)
    assert.matches('timeout=0 %(default%)', run.options)
    assert.is_true(run.finished >= run.started)
    local stage = H.sql(dir .. '/.psurvey/survey.db',
      'select run, code_hash, user_hash, sandbox from _psurvey_tables')[1]
    assert.same({ run = run.id, sandbox = 'default' }, { run = stage.run, sandbox = stage.sandbox })
    assert.matches('^%x+$', stage.code_hash)
  end)

  it('gives each pset the same seed with 1 worker and with 2, and other seeds for another survey seed', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p, system)
  math.randomseed(system.seed)
  return { r = math.random(1, 1000000000), seed = system.seed }
end, psurvey.range(1, 200), { group_size = 7 })
]])
    assert.equal(0, H.run(dir, 'survey.lua --ncores 1 --db one.db').code)
    assert.equal(0, H.run(dir, 'survey.lua --ncores 2 --db two.db').code)
    assert.equal(0, H.run(dir, 'survey.lua --ncores 2 --db other.db --seed 7').code)
    local q = 'select value, r, seed from stage1 order by _index'
    local one, two, other = H.sql(dir .. '/one.db', q), H.sql(dir .. '/two.db', q), H.sql(dir .. '/other.db', q)
    assert.equal(200, #one)
    assert.same(one, two)
    local distinct = H.sql(dir .. '/one.db', 'select count(distinct seed) n from stage1')[1].n
    assert.equal(200, distinct)
    local same = 0
    for i = 1, 200 do if one[i].r == other[i].r then same = same + 1 end end
    assert.is_true(same < 5)
    local workers = H.sql(dir .. '/two.db', 'select count(distinct _worker) n from stage1')[1].n
    assert.equal(2, workers)
  end)
end)

describe('psurvey replay', function()
  after_each(H.cleanup)

  it('runs one failed pset again in the foreground, with its output and full traceback', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
local function check(v)
  if v == 2 then error('boom ' .. v) end
end
psurvey.map(function(p)
  print('working on ' .. p.value)
  check(p.value)
  return { sq = p.value * p.value }
end, psurvey.range(1, 3), { memory = 50 })
]])
    assert.equal(1, r.code)
    r = H.run(dir, 'replay .psurvey/survey.db stage1 2')
    assert.equal(1, r.code, r.err)
    assert.matches('^pset #2 of stage1: value=2\nerror: survey%.lua:3: boom 2\nstack traceback:\n', r.out)
    assert.matches("survey%.lua:3: in upvalue 'check'", r.out)
    assert.matches('working on 2\n', r.err)
    r = H.run(dir, 'replay .psurvey/survey.db stage1 3')
    assert.equal(0, r.code, r.err)
    assert.matches('^pset #3 of stage1: value=3\nok in [%d.]+ %a+\n  sq = 9\n$', r.out)
  end)

  it('replays with the limits of the last attempt and the sandbox profile of the map', function()
    local dir = H.tmpdir()
    H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  local t = {}
  for i = 1, p.n do t[i] = ('x'):rep(40) .. i end
  return { n2 = #t, io = type(io) }
end, { { n = 10 }, { n = 200000 } }, { memory = 4, sandbox = 'strict' })
]])
    local r = H.run(dir, 'replay .psurvey/survey.db stage1 2')
    assert.equal(1, r.code)
    assert.matches('\nmemory: memory limit of 4 MiB exceeded\n', r.out)
    r = H.run(dir, 'replay .psurvey/survey.db stage1 1')
    assert.equal(1, r.code)
    assert.matches("undefined global 'io'", r.out)
    r = H.run(dir, 'replay .psurvey/survey.db stage1 9')
    assert.equal(3, r.code)
    assert.matches("replay: table 'stage1' has no pset #9", r.err)
  end)
end)
