-- Retries: dying workers (SIGKILL, SIGSEGV in a C module, os.exit), a
-- retry function that changes a pset's limits, and failures that are not
-- the pset's fault and cost it no attempt.
local H = require('support.helpers')
local psurvey = require('psurvey')

local build = os.getenv('BUILD_DIR') or 'build'
if build:sub(1, 1) ~= '/' then build = H.root .. '/' .. build end
local fixtures = build .. '/spec/fixtures/?.so'

local function rows_of(view)
  local out = {}
  for row in view:rows() do out[#out + 1] = row end
  return out
end

describe('retries', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('tries a pset killed by SIGKILL once more by default, then records every attempt', function()
    local r = psurvey.map(function(p, system)
      if p.value == 2 then os.execute('kill -9 ' .. system.pid) end
      return { v = p.value }
    end, psurvey.range(1, 3), H.options({ ncores = 1 }))
    assert.equal(2, #r)
    local m = rows_of(r.missing)
    assert.equal('signal', m[1]._status)
    assert.matches('^worker %d+ %(pid %d+%) was killed by signal 9 %(SIGKILL%) %(attempt 2; earlier: #1 signal: '
      .. 'worker %d+ %(pid %d+%) was killed by signal 9 %(SIGKILL%)%)$', m[1]._exception)
    local a = r:attempts()
    assert.equal(2, #a)
    assert.same({ 2, 1, 'signal' }, { a[1]._index, a[1].attempt, a[1].kind })
    assert.same({ 2, 2, 'signal' }, { a[2]._index, a[2].attempt, a[2].kind })
    assert.are_not.equal(a[1].worker, a[2].worker)
    assert.equal(1, r.progress.retried)
  end)

  it('records a SIGSEGV in a C module and an os.exit, as often as retries says', function()
    local r = psurvey.map(function(p, system, user)
      package.cpath = user .. ';' .. package.cpath
      if p.k == 'segv' then require('crash').segv() end
      if p.k == 'exit' then os.exit(3) end
      return { done = true }
    end, { { k = 'segv' }, { k = 'exit' }, { k = 'fine' } }, H.options({ ncores = 2, retries = 2, user = fixtures }))
    assert.equal(1, #r)
    local m = {}
    for _, row in ipairs(rows_of(r.missing)) do m[row.k] = row end
    assert.equal('signal', m.segv._status)
    assert.matches('was killed by signal 11 %(SIGSEGV%) %(attempt 3; earlier: #1 signal: .*; #2 signal: ',
      m.segv._exception)
    assert.equal('exit', m.exit._status)
    assert.matches('exited with status 3 %(attempt 3; ', m.exit._exception)
    local kinds = {}
    for _, a in ipairs(r:attempts()) do kinds[#kinds + 1] = a.kind end
    table.sort(kinds)
    assert.same({ 'exit', 'exit', 'exit', 'signal', 'signal', 'signal' }, kinds)
  end)

  it('succeeds on the second attempt when a retry function doubles the memory after a memory failure', function()
    local seen = {}
    local r = psurvey.map(function()
      local t = {}
      for i = 1, 60000 do t[i] = ('x'):rep(50) .. i end -- about 6 MiB of strings and slots
      return { n = #t }
    end, { { size = 'big' } }, H.options({
      memory = 4,
      retries = function(pset, failure, attempt)
        seen[#seen + 1] = { pset.size, failure.kind, failure.memory, attempt }
        if failure.kind == 'memory' then return { memory = failure.memory * 2 } end
      end,
    }))
    assert.same({ { 'big', 'memory', 4, 1 } }, seen)
    assert.equal(1, #r)
    local row = H.sql(r.db, ('select n, _attempt, _status from %s'):format(r.name))[1]
    assert.same({ n = 60000, _attempt = 2, _status = 'ok' }, row)
    local a = r:attempts()
    assert.equal(1, #a)
    assert.same({ 'memory', 4 }, { a[1].kind, a[1].limit_memory })
  end)

  it('gives up when the retry function returns nil, and stops the map when it raises', function()
    local r = psurvey.map(function() error('always') end, { { a = 1 } },
      H.options({ retries = function() return nil end }))
    assert.equal(0, #r)
    assert.equal(1, #r:attempts())
    local ok, err = pcall(psurvey.map, function() error('always') end, { { a = 1 } },
      H.options({ retries = function() error('my retry is broken') end }))
    assert.is_false(ok)
    assert.matches('the retry function failed on pset #1: .*my retry is broken', err)
    ok, err = pcall(psurvey.map, function() error('always') end, { { a = 1 } },
      H.options({ retries = function() return 'yes' end }))
    assert.is_false(ok)
    assert.matches('the retry function failed on pset #1: it returned a string; return nil to give up', err)
  end)

  it('does not count a lost worker against psets that were innocent bystanders', function()
    local r = psurvey.map(function(p)
      if p.value == 5 then os.exit(1) end
      return { v = p.value }
    end, psurvey.range(1, 20), H.options({ ncores = 1, group_size = 10, retries = 0 }))
    assert.equal(19, #r)
    local attempts = H.sql(r.db, ('select value, _attempt from %s where _status = \'ok\''):format(r.name))
    for _, row in ipairs(attempts) do assert.equal(1, row._attempt) end
    local a = r:attempts()
    assert.equal(1, #a)
    assert.same({ 5, 'exit' }, { a[1]._index, a[1].kind })
  end)

  it('loses no result across max_tasks_per_child restarts', function()
    local r = psurvey.map(function(p, system) return { pid = system.pid, v = p.value } end, psurvey.range(1, 50),
      H.options({ ncores = 2, max_tasks_per_child = 7 }))
    assert.equal(50, #r)
    local pids = {}
    for row in r:rows() do pids[row.pid] = (pids[row.pid] or 0) + 1 end
    for _, n in pairs(pids) do assert.is_true(n <= 7) end
    assert.same({ { n = 50, d = 50 } }, H.sql(r.db, ('select count(*) n, count(distinct value) d from %s'):format(
      r.name)))
  end)
end)
