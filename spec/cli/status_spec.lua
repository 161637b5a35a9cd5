-- psurvey status: a survey seen from its database while it runs (the
-- driver's heartbeat) and after, with real surveys in the background; and
-- the ETA's band on the live bar.
local H = require('support.helpers')
local B = require('support.background')

-- psets of 0.2 s on 2 workers, every fifth failing: n / 10 seconds.
local function survey(n)
  return ([[
local psurvey = require('psurvey')
psurvey.map(function(p)
  os.execute('sleep 0.2')
  if p.value %% 5 == 0 then error('five divides ' .. p.value) end
  return { twice = 2 * p.value }
end, psurvey.range(1, %d), { name = 'slow' })
]]):format(n)
end

-- Starts the survey in the background in a new directory, and waits until
-- its heartbeat has a rate and run times.
local function start(n)
  local dir = H.tmpdir()
  H.write(dir, 'survey.lua', survey(n))
  local proc = B.start(dir, 'survey.lua --ncores 2')
  local beating = B.wait_for(('[ "$(sqlite3 %s "SELECT count(*) FROM _psurvey_heartbeat WHERE rate > 0'
    .. ' AND p50 > 0 AND ok + failed >= 6" 2>/dev/null)" = 1 ]'):format(H.quote(dir .. '/.psurvey/survey.db')), 20)
  assert.is_true(beating, 'no heartbeat')
  return dir, proc
end

local function status(dir, args, env)
  local e = { LANG = 'C.UTF-8', COLUMNS = '200' }
  for k, v in pairs(env or {}) do e[k] = v end
  local r = H.run(dir, 'status ' .. (args or ''), e)
  return r
end

local function done_count(out)
  return tonumber(out:match('\n  (%d+)/100 done'))
end

describe('psurvey status', function()
  local proc
  after_each(function()
    B.kill(proc)
    H.cleanup()
  end)

  it('shows the running stage: counts that grow, a rate, an ETA with its band, busy workers', function()
    local dir
    dir, proc = start(100)
    local first = status(dir, 'survey.lua')
    assert.equal(0, first.code, first.err)
    assert.matches('^psurvey status: %.psurvey/survey%.db\nrun 1 of survey%.lua, started [%d: -]+ %(%d+s ago%), '
      .. 'driver pid ' .. proc.pid .. ' on ', first.out)
    assert.matches('\nstage slow: running for %d+s\n', first.out)
    assert.matches('\n  %d+/100 done %(%d+ ok, %d+ failed%), %d+ active, [%d.]+ psets/s, ETA %d+s %(%d+s–%d+s%)\n',
      first.out)
    local rate = tonumber(first.out:match(', ([%d.]+) psets/s'))
    assert.is_true(rate > 3 and rate < 20, first.out)
    assert.matches('\n  run time p50 2%d%d ms, p90 2%d%d ms\n', first.out)
    assert.matches('\n  busy workers: [^\n]+ [12]/2\n', first.out)
    os.execute('sleep 1.2')
    -- The database's own path, and no path (the newest of .psurvey/) read the same.
    local second = status(dir, '.psurvey/survey.db')
    assert.equal(0, second.code, second.err)
    assert.is_true(done_count(second.out) > done_count(first.out), first.out .. second.out)
    local third = status(dir)
    assert.equal(0, third.code, third.err)
    assert.matches('\nstage slow: running for %d+s\n', third.out)
  end)

  it('lists the last failures, newest first, one line each, cut to the width', function()
    local dir
    dir, proc = start(100)
    local r = status(dir, 'survey.lua')
    local listed = {}
    for index, value in r.out:gmatch('\n    #(%d+) error: survey%.lua:4: five divides (%d+)') do
      assert.equal(index, value)
      listed[#listed + 1] = tonumber(index)
    end
    assert.is_true(#listed >= 1 and #listed <= 5, r.out)
    for k = 2, #listed do assert.is_true(listed[k] < listed[k - 1], r.out) end
    local narrow = status(dir, 'survey.lua', { COLUMNS = '30' })
    for line in narrow.out:gmatch('[^\n]+') do assert.is_true(utf8.len(line) <= 29, line) end
    assert.matches('\n    #%d+ error: survey%.lua[^\n]*…\n', narrow.out)
  end)

  it('watches, piped, a block a second, until the survey ends, then shows how it ended', function()
    local dir
    dir, proc = start(60)
    local r = status(dir, 'survey.lua --watch')
    assert.equal(0, r.code, r.err)
    assert.is_true(B.done(proc) or B.wait_for('[ -s ' .. H.quote(dir .. '/.rc') .. ' ]', 5))
    local blocks = {}
    for block in (r.out .. '\n'):gmatch('psurvey status: (.-)\n\n') do blocks[#blocks + 1] = block end
    assert.is_nil(r.out:find('\27', 1, true))
    assert.is_true(#blocks >= 2, r.out)
    assert.matches('stage slow: running for', blocks[1])
    assert.matches('\nrun 1 of survey%.lua: failed, started [%d: -]+, took [%d.]+ s\n'
      .. 'stage slow: done: 48 ok, 12 failed of 60 in [%d.]+ s\n  last failures:\n    #60 error: ', blocks[#blocks])
  end)

  it('watches on a terminal, clearing the screen for each draw', function()
    local dir
    dir, proc = start(40)
    local out, rc = H.shell(('cd %s && LANG=C.UTF-8 script -qec "%s status survey.lua --watch" /dev/null')
      :format(H.quote(dir), H.bin))
    assert.equal(0, rc, out)
    local clears = select(2, out:gsub('\27%[H\27%[2J', ''))
    assert.is_true(clears >= 2, out)
    assert.matches('stage slow: done: 32 ok, 8 failed of 40', out)
  end)

  it('says the driver stopped beating when it was killed (SIGKILL)', function()
    local dir
    dir, proc = start(100)
    os.execute(('kill -9 %d'):format(proc.pid))
    B.wait_for('[ -s ' .. H.quote(dir .. '/.rc') .. ' ]', 5)
    local r = status(dir, 'survey.lua')
    assert.equal(1, r.code, r.err)
    assert.matches('\ndriver pid ' .. proc.pid .. ' on [^\n]+ stopped beating %d+s ago %(killed%?%)\n'
      .. 'stage slow: was running when its driver stopped\n  %d+/100 done %(%d+ ok, %d+ failed%); '
      .. '%-%-resume runs the rest\n', r.out)
    -- Watching a dead driver draws once and ends.
    local w = status(dir, 'survey.lua --watch')
    assert.equal(1, w.code)
    local function steady(out) return (out:gsub('%d+s ago', '')) end
    assert.equal(steady(r.out), steady(w.out))
  end)

  it('skips beats while another program holds the write lock, and the survey goes on', function()
    local dir
    dir, proc = start(60)
    local db = H.quote(dir .. '/.psurvey/survey.db')
    local function last_beat()
      return (H.shell(('sqlite3 %s "SELECT beat FROM _psurvey_heartbeat"'):format(db)))
    end
    -- Another program holds the write lock for 2.5 s; readers still read.
    os.execute(('(echo ".timeout 5000"; echo "BEGIN IMMEDIATE;"; sleep 2.5; echo "COMMIT;") | sqlite3 %s &')
      :format(db))
    os.execute('sleep 0.8')
    local during = last_beat()
    os.execute('sleep 1.2')
    assert.equal(during, last_beat())
    local r = B.finish(proc, 20)
    assert.equal(1, r.code, r.err)
    assert.same({ { ok = 48, failed = 12 } }, H.sql(dir .. '/.psurvey/survey.db',
      'SELECT ok, failed FROM _psurvey_tables'))
    assert.is_true(tonumber(last_beat()) > tonumber(during))
  end)

  it('says a driver that still runs has not beaten for 5 s (stopped with SIGSTOP)', function()
    local dir
    dir, proc = start(100)
    os.execute(('kill -STOP %d'):format(proc.pid))
    os.execute('sleep 5.5')
    local r = status(dir, 'survey.lua')
    os.execute(('kill -CONT %d'):format(proc.pid))
    assert.equal(0, r.code, r.err)
    assert.matches('\ndriver pid ' .. proc.pid .. ' on [^\n]+ has not beaten for %d+s but still runs %(the '
      .. 'database locked by another program%? the process stopped%?%)\nstage slow: running for ', r.out)
    -- Going again, it beats again.
    assert.is_true(B.wait_for(('%s status %s | grep -q "has not beaten" && exit 1 || exit 0')
      :format(H.quote(H.bin), H.quote(dir .. '/.psurvey/survey.db')), 5))
  end)

  it('shows how each stage of the last run ended, with its last failures', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.value } end, psurvey.range(1, 4), { name = 'first' })
psurvey.map(function(p) if p.value > 1 then error('no ' .. p.value) end end, psurvey.range(1, 3),
  { name = 'second' })
psurvey.map(function(p) error('stop ' .. p.value) end, psurvey.range(1, 50),
  { name = 'third', halt = 'now,fail=1', ncores = 1 })
]], '--ncores 2')
    assert.equal(4, r.code, r.err)
    local s = status(dir, 'survey.lua')
    assert.equal(0, s.code, s.err)
    assert.matches('^psurvey status: %.psurvey/survey%.db\nrun 1 of survey%.lua: halted, started [%d: -]+, took '
      .. '[%d.]+ %a+\n'
      .. 'stage first: done: 4 ok, 0 failed of 4 in [%d.]+ %a+\n'
      .. 'stage second: done: 1 ok, 2 failed of 3 in [%d.]+ %a+\n  last failures:\n'
      .. '    #%d error: survey%.lua:3: no %d\n    #%d error: survey%.lua:3: no %d\n'
      .. 'stage third: halted: 0 ok, %d+ failed of 50 in [%d.]+ %a+\n  last failures:\n'
      .. '    #%d+ error: survey%.lua:5: stop %d+\n', s.out)
  end)

  it('says what is wrong with its command line, and when there is no database', function()
    local dir = H.tmpdir()
    local r = status(dir, '--bogus')
    assert.equal(2, r.code)
    assert.matches("unknown option '%-%-bogus' to 'status'", r.err)
    r = status(dir)
    assert.equal(3, r.code)
    assert.matches('status: no database in %.psurvey/ here', r.err)
    r = status(dir, 'nothing.lua')
    assert.equal(3, r.code)
    assert.matches("status: no database for 'nothing.lua' here", r.err)
  end)
end)

describe('the live bar', function()
  after_each(H.cleanup)

  -- The bar lines a run drew on a terminal of `cols` columns, escape
  -- codes taken out.
  local function bar_lines(cols)
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function() os.execute('sleep 0.1') return {} end, psurvey.range(1, 60), { name = 'bar' })
]])
    local out = H.shell(('cd %s && LANG=C.UTF-8 script -qec "stty cols %d; %s survey.lua --verbose 1 --vstats 0 '
      .. '--ncores 2" /dev/null'):format(H.quote(dir), cols, H.bin))
    local lines = {}
    for line in out:gsub('\27%[K', ''):gmatch('[^\r\n]+') do
      if line:find('%d+%% %d+/60 done') then lines[#lines + 1] = line end
    end
    return lines
  end

  it('shows the ETA\'s band at 200 columns, and drops it first at 40', function()
    local lines, banded = bar_lines(200), 0
    for _, line in ipairs(lines) do
      assert.is_true(utf8.len(line) <= 199, line)
      if line:find(', ETA %d+s %(%d+s–%d+s%)$') then banded = banded + 1 end
    end
    assert.is_true(banded >= 1, table.concat(lines, '\n'))
    lines = bar_lines(40)
    assert.is_true(#lines > 0)
    for _, line in ipairs(lines) do
      assert.is_true(utf8.len(line) <= 39, line)
      assert.is_nil(line:find('(', 1, true), line)
    end
  end)
end)
