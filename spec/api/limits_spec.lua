-- Per-pset limits: timeouts (the hook and the driver's kill), memory caps,
-- slots per pset, names, and what each pset cost.
local H = require('support.helpers')
local psurvey = require('psurvey')

local function rows_of(view)
  local out = {}
  for row in view:rows() do out[#out + 1] = row end
  return out
end

local function by(key, rows)
  local out = {}
  for _, row in ipairs(rows) do out[row[key]] = row end
  return out
end

describe('per-pset limits', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('stops a pure Lua loop at its timeout, even one that pcall tries to swallow', function()
    local t0 = os.time()
    local r = psurvey.map(function(p)
      if p.k == 'plain' then while true do end end
      if p.k == 'pcall' then
        while true do pcall(function() while true do end end) end
      end
      if p.k == 'coroutine' then
        local co = coroutine.wrap(function() while true do end end)
        co()
      end
      return { fine = true }
    end, { { k = 'plain' }, { k = 'pcall' }, { k = 'coroutine' }, { k = 'quick' } },
      H.options({ ncores = 2, timeout = 1, retries = 0 }))
    local m = by('k', rows_of(r.missing))
    for _, k in ipairs({ 'plain', 'pcall', 'coroutine' }) do
      assert.equal('timeout', m[k]._status)
      assert.equal('timeout after 1 s', m[k]._exception)
      assert.matches('stack traceback:', m[k]._traceback)
    end
    assert.equal(1, #r)
    assert.is_true(os.time() - t0 < 10)
    -- The hook stopped them: the same worker went on, nothing was killed.
    local attempts = r:attempts()
    assert.equal(3, #attempts)
    for _, a in ipairs(attempts) do
      assert.equal('timeout', a.kind)
      assert.is_true(a.duration >= 1 and a.duration < 2, 'ran ' .. a.duration .. ' s')
      assert.is_true(a.cpu > 0.5, 'cpu ' .. a.cpu)
    end
  end)

  it('kills a pset stuck in a child process at its timeout, with the child, and goes on', function()
    -- A sleep of a duration no other process has, to find it in `ps`.
    local marker = ('sleep 60.%d'):format(os.time() % 100000)
    local r = psurvey.map(function(p, system, user)
      if p.k == 'stuck' then os.execute(user) end
      return { pid = system.pid }
    end, { { k = 'stuck' }, { k = 'after' } }, H.options({ ncores = 1, timeout = 1, retries = 0, user = marker }))
    local m = rows_of(r.missing)
    assert.equal(1, #m)
    assert.equal('timeout', m[1]._status)
    assert.matches('^timeout after 1 s %(stuck outside Lua', m[1]._exception)
    assert.equal(1, #r)
    assert.same({}, H.processes(marker))
  end)

  it('has system.sleep wait without CPU, end at the timeout, and refuse a bad duration', function()
    local r = psurvey.map(function(p, system)
      if p.k == 'nap' then system.sleep(0.2) end
      if p.k == 'long' then system.sleep(30) end
      if p.k == 'bad' then system.sleep(-1) end
      return { pid = system.pid }
    end, { { k = 'nap' }, { k = 'long' }, { k = 'bad' }, { k = 'after' } },
      H.options({ ncores = 1, timeout = 1, retries = 0, name = 'naps' }))
    local ok = by('k', rows_of(r))
    local nap = H.sql(r.db, "select _duration, _cpu from naps where k = 'nap'")[1]
    assert.is_true(nap._duration >= 0.2 and nap._duration < 0.5, 'nap ' .. nap._duration)
    assert.is_true(nap._cpu < 0.05, 'cpu ' .. nap._cpu)
    local m = by('k', rows_of(r.missing))
    -- Ended by the worker at the deadline, not killed by the driver later.
    assert.equal('timeout', m.long._status)
    assert.equal('timeout after 1 s', m.long._exception)
    local a = by('kind', r:attempts())
    assert.is_true(a.timeout.duration >= 1 and a.timeout.duration < 1.2, 'ran ' .. a.timeout.duration .. ' s')
    assert.equal('error', m.bad._status)
    assert.matches('system.sleep: seconds must be a number from 0 to 1e9, got %-1', m.bad._exception)
    assert.equal(ok.nap.pid, ok.after.pid)
  end)

  it('fails a pset over its memory limit and keeps the worker for the next pset', function()
    local r = psurvey.map(function(p, system)
      if p.k == 'grow' then
        local t = {}
        for i = 1, 1e7 do t[i] = ('%d'):format(i):rep(10) end
        return { n = #t }
      end
      return { pid = system.pid }
    end, { { k = 'grow' }, { k = 'small' } }, H.options({ ncores = 1, memory = 10, name = 'grow' }))
    local m = rows_of(r.missing)
    assert.equal(1, #m)
    assert.equal('memory', m[1]._status)
    assert.equal('memory limit of 10 MiB exceeded', m[1]._exception)
    assert.equal(1, #r)
    local a = r:attempts()
    assert.equal(1, #a)           -- a memory failure is not retried by a count
    assert.equal('memory', a[1].kind)
    assert.equal(10, a[1].limit_memory)
    assert.is_true(a[1].memory >= 10 * 2 ^ 20 - 2 ^ 16, 'peak ' .. a[1].memory)
    -- The same worker process ran the next pset: it survived.
    local rows = H.sql(r.db, 'select _worker from grow order by _index')
    assert.equal(rows[1]._worker, rows[2]._worker)
  end)

  it('takes limits and a name from a pset\'s _psurvey table, which is not a column', function()
    local r = psurvey.map(function(p)
      if p.k == 'slow' then while true do end end
      return { k2 = p.k }
    end, {
      { k = 'slow', _psurvey = { timeout = 0.5, retries = 0, name = 'the slow one' } },
      { k = 'named', _psurvey = { name = 'a label' } },
      { k = 'plain' },
    }, H.options({ name = 'labels' }))
    local rows = H.sql(r.db, "select k, _status, coalesce(_name, '-') _name, coalesce(_exception, '') e"
      .. ' from labels order by _index')
    assert.same({ k = 'slow', _status = 'timeout', _name = 'the slow one', e = 'timeout after 0.5 s' }, rows[1])
    assert.same({ k = 'named', _status = 'ok', _name = 'a label', e = '' }, rows[2])
    assert.same({ k = 'plain', _status = 'ok', _name = '-', e = '' }, rows[3])
    local cols = {}
    for _, c in ipairs(H.sql(r.db, 'pragma table_info(labels)')) do cols[c.name] = true end
    assert.is_nil(cols._psurvey)
  end)

  it('records wall time, CPU time and peak memory of every successful pset', function()
    local r = psurvey.map(function(p)
      local t, x = {}, 0
      for i = 1, p.n do t[i] = i; x = x + math.sin(i) end
      os.execute('sleep 0.2')
      return { x = x, n2 = #t }
    end, psurvey.product({ n = { 10, 200000 } }), H.options({ name = 'costs' }))
    local rows = H.sql(r.db, 'select n, _duration, _cpu, _memory from costs order by _index')
    assert.is_true(rows[1]._duration >= 0.2)
    assert.is_true(rows[1]._cpu < rows[2]._cpu)
    assert.is_true(rows[1]._memory < 10000, 'small pset used ' .. rows[1]._memory)
    assert.is_true(rows[2]._memory > 200000 * 8, 'large pset used ' .. rows[2]._memory)
  end)

  -- Maps psets that each sleep `secs` with opts (opts.name names the
  -- stage); returns their rows, with when each ran.
  local function timed(psets, opts, secs)
    local r = psurvey.map(function()
      os.execute('sleep ' .. secs)
      return {}
    end, psets, H.options(opts))
    assert.equal(#psets, #r)
    return H.sql(r.db, ('select _index, _start, _end from %s order by _index'):format(opts.name))
  end

  local function together(x, y) return x._start < y._end and y._start < x._end end

  it('gives a pset with ncores = 2 two slots: nothing else runs beside it', function()
    local psets = {}
    for i = 1, 8 do psets[i] = { i = i } end
    psets[4]._psurvey = { ncores = 2 }
    local rows = timed(psets, { ncores = 2, name = 'slots' }, 0.1)
    for k, row in ipairs(rows) do
      if k ~= 4 then assert.is_false(together(row, rows[4]), ('pset %d ran beside the 2-slot pset'):format(k)) end
    end
  end)

  -- This machine's memory, MiB, as psurvey reads it.
  local function machine_mb()
    local kb = tonumber(H.slurp('/proc/meminfo'):match('MemTotal:%s*(%d+) kB'))
    return kb // 1024
  end

  it('runs a pset that sets its own memory where that much is free: two that want over half never run at once',
    function()
      local half = machine_mb() // 2 + 16
      local psets = {}
      for i = 1, 6 do psets[i] = { i = i, _psurvey = { memory = half } } end
      local rows = timed(psets, { ncores = 2, name = 'reserved' }, 0.15)
      for a = 1, 6 do
        for b = a + 1, 6 do
          assert.is_false(together(rows[a], rows[b]), ('psets %d and %d of %d MiB each ran at once'):format(a, b, half))
        end
      end
      -- The map's own memory reserves nothing: the same psets run two at a time.
      local two = timed({ { i = 1 }, { i = 2 } }, { ncores = 2, memory = half, name = 'limited' }, 0.15)
      assert.is_true(together(two[1], two[2]), 'the map\'s memory reserved')
    end)

  it('fails a pset that asks for more memory than this machine has, and runs the rest', function()
    local mb = machine_mb()
    local r = psurvey.map(function() return {} end, { { i = 1, _psurvey = { memory = 2 * mb } }, { i = 2 } },
      H.options({ ncores = 2 }))
    assert.equal(1, #r)
    local m = rows_of(r.missing)
    assert.matches(('^the pset asks for %d MiB %%(memory%%) but this machine has %%d+ MiB$'):format(2 * mb),
      m[1]._exception)
  end)

  it('fails a pset that needs more slots than the map has, and runs the rest', function()
    local r = psurvey.map(function() return {} end, { { i = 1, _psurvey = { ncores = 3 } }, { i = 2 } },
      H.options({ ncores = 2 }))
    assert.equal(1, #r)
    local m = rows_of(r.missing)
    assert.equal("the pset needs 3 slots (ncores) but this map has 2 (option 'ncores')", m[1]._exception)
  end)

  it('names the pset and the key of a bad _psurvey table', function()
    local ok, err = pcall(psurvey.map, function() return {} end, { { a = 1 }, { a = 2, _psurvey = { timeout = -1 } } },
      H.options())
    assert.is_false(ok)
    assert.matches("pset #2 key '_psurvey': per%-pset option 'timeout' must be a number of seconds from 0 to 1e%+09",
      err)
    ok, err = pcall(psurvey.map, function() return {} end, { { a = 1, _psurvey = { cores = 2 } } }, H.options())
    assert.is_false(ok)
    assert.matches("pset #1 key '_psurvey': unknown per%-pset option 'cores'", err)
    ok, err = pcall(psurvey.map, function() return {} end, { { a = 1 } }, H.options({ timeout = 'long' }))
    assert.is_false(ok)
    assert.matches("option 'timeout' to map%(%): expected a number of seconds from 0 to 1e%+09", err)
  end)
end)
