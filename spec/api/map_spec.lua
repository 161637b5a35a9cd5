-- psurvey.map against real worker processes and a real SQLite file.
local H = require('support.helpers')
local psurvey = require('psurvey')

describe('psurvey.map', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('runs the worker once per pset and returns rows in pset order', function()
    local function worker(p)
      -- later psets finish first: the order must come from the index
      os.execute(('sleep %g'):format((6 - p.value) * 0.02))
      return { square = p.value * p.value }
    end
    local r = psurvey.map(worker, psurvey.range(1, 5), H.options({ ncores = 2 }))
    assert.equal(5, #r)
    local got = {}
    for row in r:rows() do got[#got + 1] = { row.value, row.square } end
    assert.same({ { 1, 1 }, { 2, 4 }, { 3, 9 }, { 4, 16 }, { 5, 25 } }, got)
    assert.same({ 'value', 'square' }, r:columns())
    assert.same({ 1, 4, 9, 16, 25, n = 5 }, r:column('square'))
    assert.equal(0, #r.missing)
  end)

  it('passes system and user to the worker', function()
    local function worker(p, system, user)
      return { index = system.index, attempt = system.attempt, worker = system.worker,
        host = system.host, stage = system.stage, scale = user.scale * p.value, word = user.words[2] }
    end
    local r = psurvey.map(worker, { { value = 10 }, { value = 20 } },
      H.options({ user = { scale = 3, words = { 'a', 'b' } }, name = 'sys' }))
    local rows = {}
    for row in r:rows() do rows[#rows + 1] = row end
    assert.equal(1, rows[1].index)
    assert.equal(2, rows[2].index)
    assert.equal(1, rows[1].attempt)
    assert.equal('number', math.type(rows[1].worker) and 'number')
    assert.equal('sys', rows[1].stage)
    assert.is_string(rows[1].host)
    assert.same({ 30, 60 }, { rows[1].scale, rows[2].scale })
    assert.equal('b', rows[2].word)
  end)

  it('gives every pset a fresh global environment', function()
    local function worker()
      counter = (counter or 0) + 1 -- luacheck: ignore
      return { seen = counter }    -- luacheck: ignore
    end
    local r = psurvey.map(worker, psurvey.range(1, 20), H.options({ ncores = 1, group_size = 20 }))
    assert.same(20, #r)
    for row in r:rows() do assert.equal(1, row.seen) end
  end)


  -- The worker reuses an environment left empty and the system table; these
  -- are the cases where it must not.
  it('keeps what one pset does to its environment and system table from the next', function()
    local function worker(p, system)
      local seen = { note = system.note, index = system.index, worker_ok = system.worker ~= 'x',
        stage = system.stage, floor = math.floor(2.5), via_g = leak_via_g, g_is_env = _G == _ENV } -- luacheck: ignore
      if p.value % 4 == 1 then
        system.note = p.value -- a new key
        system.index = -1     -- an existing key
        system.worker = 'x'
        system.stage = nil
      elseif p.value % 4 == 2 then
        _G.leak_via_g = p.value -- a global set through _G
      elseif p.value % 4 == 3 then
        _G = nil -- luacheck: ignore
      else
        local set = setmetatable
        set(_ENV, nil) -- no globals after this line, in this pset
      end
      return seen
    end
    local r = psurvey.map(worker, psurvey.range(1, 30), H.options({ ncores = 1, group_size = 30, name = 'reuse' }))
    assert.equal(30, #r)
    for row in r:rows() do
      assert.is_nil(row.note)
      assert.equal(row.value, row.index)
      assert.is_true(row.worker_ok)
      assert.equal('reuse', row.stage)
      assert.equal(2, row.floor)
      assert.is_nil(row.via_g)
      assert.is_true(row.g_is_env)
    end
  end)

  it('stores equal nested tables as the same text, whatever order they were built in', function()
    local function worker(p)
      local t = {}
      local first, last, step = 1, 26, 1
      if p.value % 2 == 0 then first, last, step = 26, 1, -1 end
      for i = first, last, step do t[string.char(96 + i) .. 'key'] = i end
      return { t = t }
    end
    local r = psurvey.map(worker, psurvey.range(1, 6), H.options({ ncores = 2, name = 'canonical' }))
    assert.equal(6, #r)
    local texts = H.sql(r.db, 'select distinct t from canonical')
    assert.equal(1, #texts)
    assert.matches('^{"akey":1,"bkey":2,', texts[1].t)
  end)

  it('keeps integers, floats, binary strings, booleans and nested tables apart', function()
    local function worker(p)
      return { i = 3, f = 3.0, big = math.maxinteger, tiny = 0.1, bin = '\0\255\1', flag = p.value == 1,
        nested = { list = { 1, 2.5, 'x' }, map = { k = true } } }
    end
    local opts = H.options()
    local r = psurvey.map(worker, psurvey.range(1, 2), opts)
    local row = r:rows()()
    assert.equal('integer', math.type(row.i))
    assert.equal('float', math.type(row.f))
    assert.equal(math.maxinteger, row.big)
    assert.equal(0.1, row.tiny)
    assert.equal('\0\255\1', row.bin)
    assert.equal(true, row.flag)
    assert.same({ list = { 1, 2.5, 'x' }, map = { k = true } }, row.nested)
    assert.equal('float', math.type(row.nested.list[2]))
    local types = H.sql(opts.db, 'select typeof(i) i, typeof(f) f, typeof(bin) bin, typeof(nested) n from '
      .. r.name .. ' limit 1')
    assert.same({ { i = 'integer', f = 'real', bin = 'blob', n = 'text' } }, types)
  end)

  it('keeps results in memory with db = false: the same rows, views and types as a database', function()
    local function worker(p)
      if p.value == 3 then error('three') end
      return { i = p.value, f = p.value / 2, nan = p.value == 2 and 0 / 0 or nil, bin = '\0\255', flag = true,
        nested = { list = { 1, 2.5, 'x' } }, ['only' .. p.value] = p.value }
    end
    local psets = { { value = 1 }, { value = 2, extra = 'x' }, { value = 3 }, { value = 4 } }
    local stored = psurvey.map(worker, psets, H.options({ ncores = 2, name = 'kept' }))
    local mem = psurvey.map(worker, psets, H.options({ ncores = 2, name = 'inmemory', db = false }))
    assert.equal(':memory:', mem.db)
    local function rows(view)
      local out = {}
      for row in view:rows() do
        if row.nan then row.nan = tostring(row.nan):gsub('^%-', '') end -- nan ~= nan
        row._traceback = row._traceback and 'tb'
        out[#out + 1] = row
      end
      return out
    end
    assert.equal(3, #mem)
    assert.equal(1, #mem.missing)
    assert.same(rows(stored), rows(mem))
    assert.same(rows(stored.missing), rows(mem.missing))
    local mrow = mem:rows()()
    assert.equal('integer', math.type(mrow.i))
    assert.equal('float', math.type(mrow.f))
    assert.equal('nan', tostring((function()
      for row in mem:rows() do if row.value == 2 then return row.nan end end
    end)()):gsub('^%-', ''))
    local cols = mem:columns()
    table.sort(cols)
    local scols = stored:columns()
    table.sort(scols)
    assert.same(scols, cols)
    assert.same({ nil, 'x', nil, n = 3 }, mem:column('extra'))
    assert.same(stored:column('f'), mem:column('f'))
  end)

  it('leaves a key nil where a row does not have it', function()
    local function worker(p)
      if p.value % 2 == 0 then return { even = true } end
      return { odd = p.value }
    end
    local r = psurvey.map(worker, { { value = 1 }, { value = 2, extra = 'x' }, { value = 3 } }, H.options())
    local c = r:column('even')
    assert.equal(3, c.n)
    assert.same({ nil, true, nil }, { c[1], c[2], c[3] })
    assert.same({ 1, nil, 3, n = 3 }, r:column('odd'))
    assert.same({ nil, 'x', nil, n = 3 }, r:column('extra'))
  end)

  it('returns an empty results object for an empty pset list', function()
    local r = psurvey.map(function() return {} end, {}, H.options())
    assert.equal(0, #r)
    assert.equal(0, #r.missing)
    assert.equal(0, r.progress.total)
    assert.is_nil(r:rows()())
  end)

  it('returns an empty results object for an empty product', function()
    local r = psurvey.map(function() return {} end, psurvey.product({ a = {} }), H.options())
    assert.equal(0, #r)
    assert.equal(0, r.progress.total)
  end)

  it('runs only the first limit psets, and all of them for limit 0', function()
    local function worker(p) return { y = p.value } end
    assert.equal(3, #psurvey.map(worker, psurvey.range(1, 10), H.options({ limit = 3 })))
    assert.equal(10, #psurvey.map(worker, psurvey.range(1, 10), H.options({ limit = 0 })))
  end)

  it('uses ncores worker processes', function()
    local function pid_worker(p, system)
      os.execute('sleep 0.1')
      return { pid = system.pid }
    end
    local pids = {}
    local r = psurvey.map(pid_worker, psurvey.range(1, 6), H.options({ ncores = 3, group_size = 1 }))
    for row in r:rows() do pids[row.pid] = true end
    local n = 0
    for _ in pairs(pids) do n = n + 1 end
    assert.equal(3, n)
  end)

  it('restarts workers after max_tasks_per_child psets without losing results', function()
    local function worker(p, system) return { pid = system.pid, v = p.value } end
    local r = psurvey.map(worker, psurvey.range(1, 12), H.options({ ncores = 2, max_tasks_per_child = 3 }))
    assert.equal(12, #r)
    local per = {}
    for row in r:rows() do per[row.pid] = (per[row.pid] or 0) + 1 end
    local n = 0
    for _, count in pairs(per) do
      n = n + 1
      assert.is_true(count <= 3)
    end
    assert.is_true(n >= 4)
  end)

  it('sends group_size psets per batch', function()
    local function worker(p, system)
      os.execute('sleep 0.02')
      return { w = system.worker }
    end
    local r = psurvey.map(worker, psurvey.range(1, 8), H.options({ ncores = 2, group_size = 4 }))
    local w = r:column('w')
    -- psets 1-4 went to one worker as one batch, 5-8 to the other
    assert.equal(w[1], w[4])
    assert.equal(w[5], w[8])
    assert.are_not.equal(w[1], w[5])
  end)

  -- What the batching relies on: batches of adaptive size, results of
  -- several batches in flight, and the encoding kept from dispatch to
  -- storage still give every pset its own row, once, in pset order.
  for _, db in ipairs({ 'memory', 'sqlite' }) do
    it('stores each of 100,000 batched psets once, in order, with its own result (' .. db .. ')', function()
      local function worker(p, system)
        if system.index % 20000 == 0 then system.sleep(0.05) end -- batches shrink, then grow
        return { y = p.a * 1000 + p.b, i = system.index }
      end
      local psets = psurvey.product({ a = psurvey.range(1, 100), b = psurvey.range(1, 1000) })
      local opts = H.options({ ncores = 2, name = 'batched_' .. db })
      if db == 'memory' then opts.db = false end
      local r = psurvey.map(worker, psets, opts)
      assert.equal(100000, #r)
      local k = 0
      for row in r:rows() do
        k = k + 1
        local a, b = (k - 1) // 1000 + 1, (k - 1) % 1000 + 1
        if row.i ~= k or row.a ~= a or row.b ~= b or row.y ~= a * 1000 + b then
          error(('row %d: %s'):format(k, require('cjson').encode(row)))
        end
      end
      assert.equal(100000, k)
      if db == 'sqlite' then
        local c = H.sql(r.db, 'select count(*) n, count(distinct _index) d, min(_index) lo, max(_index) hi'
          .. ' from batched_sqlite')[1]
        assert.same({ n = 100000, d = 100000, lo = 1, hi = 100000 }, c)
      end
    end)
  end

  -- Rows wait to be inserted several at a time: a new column, or a row that
  -- cannot be stored, in the middle of them changes nothing.
  it('stores rows around a new column and a row that cannot be stored, all in one batch', function()
    local function worker(p)
      if p.value == 50 then return { y = p.value, extra = 'late' } end
      if p.value == 70 then return { y = p.value, Y = 1 } end
      return { y = p.value }
    end
    local r = psurvey.map(worker, psurvey.range(1, 100), H.options({ ncores = 1, group_size = 100, name = 'mid' }))
    assert.equal(99, #r)
    local m = r.missing:rows()()
    assert.equal(70, m.value)
    assert.matches('differ only in letter case', m._exception)
    local rows = H.sql(r.db, 'select value, y, extra, _status from mid order by _index')
    local null = require('cjson').null
    assert.equal(100, #rows)
    for k, row in ipairs(rows) do
      assert.equal(k, row.value)
      if k ~= 70 then assert.equal(k, row.y) end
      assert.equal(k == 50 and 'late' or null, row.extra)
      assert.equal(k == 70 and 'error' or 'ok', row._status)
    end
  end)

  it('can be called many times, each stage in its own table', function()
    local opts = H.options()
    local a = psurvey.map(function(p) return { y = p.value * 2 } end, psurvey.range(1, 3),
      { db = opts.db, verbose = 0, vstats = 0, name = 'first' })
    local next_psets = {}
    for row in a:rows() do next_psets[#next_psets + 1] = { x = row.y } end
    local b = psurvey.map(function(p) return { z = p.x + 1 } end, next_psets,
      { db = opts.db, verbose = 0, vstats = 0, name = 'second' })
    assert.same({ 3, 5, 7, n = 3 }, b:column('z'))
    local names = H.sql(opts.db, "select name from _psurvey_tables order by name")
    assert.same({ { name = 'first' }, { name = 'second' } }, names)
  end)

  it('exposes progress and stats', function()
    local r = psurvey.map(function(p)
      if p.value == 2 then error('no') end
      return {}
    end, psurvey.range(1, 4), H.options())
    assert.same({ total = 4, active = 0, finished = 3, failures = 1, exceptions = 1 },
      { total = r.progress.total, active = r.progress.active, finished = r.progress.finished,
        failures = r.progress.failures, exceptions = r.progress.exceptions })
    assert.equal(4, r.stats.count)
    assert.is_true(r.stats.min <= r.stats.p50 and r.stats.p50 <= r.stats.max)
    assert.matches('^run time of 4 psets: mean ', tostring(r.stats))
    assert.matches('total: 4, active: 0, finished: 3, failures: 1, exceptions: 1', tostring(r.progress))
  end)

  it('reports the driver memory use in GiB, never a peak below the current value', function()
    local now, peak = psurvey.vmem()
    assert.is_true(now > 0 and now < 4)
    assert.is_true(peak >= now)
    -- 200 MiB touched now: resident grows at once, the kernel's peak lags.
    local big = { ('x'):rep(200 * 2^20) }
    local now2, peak2 = psurvey.vmem()
    assert.is_true(now2 > now + 0.15, ('%g GiB, then %g GiB'):format(now, now2))
    assert.is_true(peak2 >= now2)
    assert.is_true(#big[1] > 0)
  end)
end)
