-- psurvey gc: the tables of rows a resume set aside and the logs of older
-- runs, listed with the space each takes, and removed with --yes (but the
-- N newest of each kind), never while a survey writes the database.
local H = require('support.helpers')

-- A survey of psets n-4 .. n (n: its first argument): run again with a
-- larger n and --resume, the psets it no longer has are set aside.
local survey = [[
local psurvey = require('psurvey')
local n = tonumber(arg[1])
psurvey.map(function(p)
  print('pset', p.value)
  return { y = p.value * 2, pad = ('x'):rep(3000) }
end, psurvey.range(n - 4, n), { ncores = 1 })
]]

local function db(dir) return dir .. '/.psurvey/survey.db' end

-- The logs, oldest first: runs started in one second write
-- YYYYMMDD-HHMMSS.log, then YYYYMMDD-HHMMSS-2.log...
local function logs_of(dir)
  local list = H.logs(dir)
  local function key(path)
    local stamp, k = path:match('(%d+%-%d+)%-?(%d*)%.log$')
    return stamp, tonumber(k) or 1
  end
  table.sort(list, function(a, b)
    local sa, ka = key(a)
    local sb, kb = key(b)
    if sa ~= sb then return sa < sb end
    return ka < kb
  end)
  return list
end

local function aside(dir)
  return H.sql(db(dir), "SELECT name, total FROM _psurvey_tables WHERE status = 'unmatched' ORDER BY finished, name")
end

local function tables(dir)
  local out = {}
  for _, r in ipairs(H.sql(db(dir), "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")) do
    out[#out + 1] = r.name
  end
  return out
end

-- Three runs: two resumes that set rows aside (the first 3 psets, then
-- the next 5), three logs.
local function three_runs(dir)
  H.write(dir, 'survey.lua', survey)
  for _, args in ipairs({ '-- 5', '--resume -- 8', '--resume -- 20' }) do
    local r = H.run(dir, 'survey.lua ' .. args)
    assert.equal(0, r.code, r.err)
  end
  local list = aside(dir)
  assert.equal(2, #list)
  assert.same({ 3, 5 }, { list[1].total, list[2].total })
  assert.equal(3, #logs_of(dir))
  return list[1].name, list[2].name
end

-- What gc prints for a size in bytes.
local function size(n)
  if n < 1024 then return ('%d B'):format(n) end
  return ('%.1f KiB'):format(n / 1024)
end

-- The bytes of the pages the database file holds free.
local function free_bytes(dir)
  return H.sql(db(dir), 'SELECT (SELECT freelist_count FROM pragma_freelist_count()) *'
    .. ' (SELECT page_size FROM pragma_page_size()) AS n')[1].n
end

-- s as a pattern that matches s alone.
local function esc(s) return (s:gsub('%p', '%%%0')) end

local function bytes_of(dir, name)
  return H.sql(db(dir), ('SELECT sum(pgsize) n FROM dbstat WHERE name = %s'):format(H.quote(name)))[1].n
end

describe('psurvey gc', function()
  after_each(H.cleanup)

  it('lists the tables set aside and the old logs with their sizes, and removes nothing without --yes', function()
    local dir = H.tmpdir()
    local older, newer = three_runs(dir)
    local before_tables, before_logs = tables(dir), logs_of(dir)
    local r = H.run(dir, 'gc')
    assert.equal(0, r.code, r.err)
    assert.equal('', r.err)
    local logs = logs_of(dir)
    local function log_line(mark, path)
      return ('  %s %-40s %10s\n'):format(mark, path, size(#H.slurp(dir .. '/' .. path)))
    end
    local pattern = table.concat({
      '^%.psurvey/survey%.db: 2 tables set aside by resumes, the 1 newest kept\n',
      '  keep ', esc(newer), ' +5 rows  set aside [-%d: ]+ +', esc(size(bytes_of(dir, newer))), '\n',
      '  gc   ', esc(older), ' +3 rows  set aside [-%d: ]+ +', esc(size(bytes_of(dir, older))), '\n',
      free_bytes(dir) > 0 and ('  and ' .. esc(size(free_bytes(dir))) .. ' of free pages in the file, given back'
        .. ' when it is compacted\n') or '',
      '%.psurvey/logs: 3 logs, the 1 newest kept\n',
      esc(log_line('keep', logs[3])),
      esc(log_line('gc  ', logs[2])),
      esc(log_line('gc  ', logs[1])),
      'to remove: 1 table and 2 logs, [%d.]+ KiB\n',
      'nothing removed: psurvey gc %-%-yes removes them %(%-%-keep N keeps the N newest of each kind%)\n$',
    })
    assert.matches(pattern, r.out)
    assert.same(before_tables, tables(dir))
    assert.same(before_logs, logs_of(dir))
    -- The database or the script, named: the same.
    assert.equal(r.out:gsub('gc %-%-yes', 'gc survey.lua --yes'), H.run(dir, 'gc survey.lua').out)
  end)

  it('keeps the N newest of each kind with --keep N', function()
    local dir = H.tmpdir()
    three_runs(dir)
    local r = H.run(dir, 'gc --keep 0')
    assert.equal(0, r.code, r.err)
    assert.matches('^%.psurvey/survey%.db: 2 tables set aside by resumes\n  gc   ', r.out)
    assert.matches('\nto remove: 2 tables and 3 logs, ', r.out)
    r = H.run(dir, 'gc --keep=2')
    assert.equal(0, r.code, r.err)
    assert.matches('\nto remove: 0 tables and 1 log, ', r.out)
    r = H.run(dir, 'gc --keep two')
    assert.equal(2, r.code)
    assert.equal("psurvey: gc: option '--keep' needs a count (0, 1, ...), got 'two'\n(see psurvey --help)\n", r.err)
  end)

  it('removes exactly those with --yes, and the database still reads and resumes', function()
    local dir = H.tmpdir()
    local older, newer = three_runs(dir)
    local logs = logs_of(dir)
    local size_before = #H.slurp(db(dir))
    local r = H.run(dir, 'gc --yes')
    assert.equal(0, r.code, r.err)
    assert.matches('\n%.psurvey/survey%.db: removed 1 table and compacted it: [%d.]+ KiB, was [%d.]+ KiB\n', r.out)
    assert.matches('\n%.psurvey/logs: removed 2 logs, ', r.out)
    assert.same({ { name = newer, total = 5 } }, aside(dir))
    assert.same({}, H.sql(db(dir), ('SELECT * FROM _psurvey_columns WHERE tbl = %s'):format(H.quote(older))))
    assert.same({ '_psurvey_columns', '_psurvey_heartbeat', '_psurvey_runs', '_psurvey_tables', 'stage1',
      'stage1_attempts', 'stage1_output', newer }, tables(dir))
    assert.same({ logs[3] }, logs_of(dir))
    assert.is_true(#H.slurp(db(dir)) < size_before)
    -- Still read and resumed.
    r = H.run(dir, 'results .psurvey/survey.db --table ' .. newer .. ' --csv')
    assert.equal(0, r.code, r.err)
    assert.matches('^value,', r.out)
    r = H.run(dir, 'survey.lua --resume -- 20')
    assert.equal(0, r.code, r.err)
    assert.same({ { n = 5 } }, H.sql(db(dir), "SELECT count(*) n FROM stage1 WHERE _status = 'ok'"))
    -- Nothing left to remove (the newest of each is kept).
    r = H.run(dir, 'gc --yes')
    assert.equal(0, r.code, r.err)
    assert.matches('\nto remove: 0 tables and 1 log, ', r.out)
  end)

  it('refuses while a survey runs on the database, and keeps its log', function()
    local dir = H.tmpdir()
    local older, newer = three_runs(dir)
    -- Another script writes the same database, slowly.
    H.write(dir, 'slow.lua', [=[
local psurvey = require('psurvey')
psurvey.map(function() os.execute('sleep 0.2') return {} end, psurvey.range(1, 100), { ncores = 1, name = 'slow' })
]=])
    local out, rc = H.shell(([[cd %s && { env PSURVEY_VERBOSE=0 %s slow.lua --db .psurvey/survey.db \
      >bg.out 2>bg.err </dev/null & echo $! >bg.pid; }
      for i in $(seq 1 100); do
        n=$(sqlite3 .psurvey/survey.db "select count(*) from _psurvey_runs where status = 'running'" 2>/dev/null)
        [ "$n" = 1 ] && break
        sleep 0.05
      done]]):format(H.quote(dir), H.quote(H.bin)))
    assert.equal(0, rc, out)
    local ok, err = pcall(function()
      local logs = logs_of(dir)
      assert.equal(4, #logs)
      local r = H.run(dir, 'gc --keep 0')
      assert.equal(3, r.code)
      assert.matches("psurvey: gc: a survey is running on '%.psurvey/survey%.db' %(pid %d+ on [^)]+%): run gc once it"
        .. ' has finished\n$', r.err)
      assert.matches('\n  keep ' .. esc(logs[4]) .. ' +%d+ B  %(a survey that runs now writes it%)\n', r.out)
      r = H.run(dir, 'gc --keep 0 --yes')
      assert.equal(3, r.code)
      -- Nothing of the database removed; the old logs, but not the one being written.
      assert.same({ { name = older, total = 3 }, { name = newer, total = 5 } }, aside(dir))
      local left = logs_of(dir)
      assert.same({ logs[4] }, left)
    end)
    H.shell(('cd %s && kill -TERM $(cat bg.pid); while kill -0 $(cat bg.pid) 2>/dev/null; do sleep 0.05; done')
      :format(H.quote(dir)))
    assert(ok, err)
  end)

  it('keeps the log of a survey that runs without a database here (db = false)', function()
    local dir = H.tmpdir()
    three_runs(dir)
    H.write(dir, 'mem.lua', [=[
local psurvey = require('psurvey')
psurvey.map(function() os.execute('sleep 0.2') return {} end, psurvey.range(1, 100), { ncores = 1, db = false })
]=])
    local B = require('support.background')
    local before = #logs_of(dir)
    local proc = B.start(dir, 'mem.lua')
    finally(function() B.kill(proc) end)
    assert.is_true(B.wait_for(('test $(ls %s/.psurvey/logs | wc -l) -gt %d'):format(H.quote(dir), before), 10))
    local logs = logs_of(dir)
    local r = H.run(dir, 'gc --keep 0 --yes')
    assert.equal(0, r.code, r.err)
    assert.matches('\n  keep ' .. esc(logs[#logs]) .. ' +%d+ B  %(a survey that runs now writes it%)\n', r.out)
    assert.same({ logs[#logs] }, logs_of(dir))
  end)

  it('says what to give when there is nothing to look at', function()
    local dir = H.tmpdir()
    local r = H.run(dir, 'gc')
    assert.equal(2, r.code)
    assert.equal('psurvey: gc: no database in .psurvey/ here and no logs: give one, psurvey gc FILE\n'
      .. '(see psurvey --help)\n', r.err)
  end)
end)
