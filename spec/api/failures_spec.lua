-- What happens when workers fail: errors, bad results, dying processes,
-- and worker functions that cannot be shipped.
local H = require('support.helpers')
local psurvey = require('psurvey')

local function missing_rows(r)
  local out = {}
  for row in r.missing:rows() do out[#out + 1] = row end
  return out
end

describe('psurvey.map with failing workers', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('records an error raised by the worker, with its traceback, and goes on', function()
    local function worker(p)
      if p.value == 2 then error('bad pset ' .. p.value) end
      return { ok = true }
    end
    local r = psurvey.map(worker, psurvey.range(1, 3), H.options())
    assert.equal(2, #r)
    local m = missing_rows(r)
    assert.equal(1, #m)
    assert.equal(2, m[1].value)
    assert.equal('error', m[1]._status)
    assert.matches('failures_spec%.lua:%d+: bad pset 2$', m[1]._exception)
    assert.matches('^stack traceback:\n.*failures_spec%.lua:%d+: in function', m[1]._traceback)
    assert.equal(1, r.progress.exceptions)
  end)

  it('fails a pset whose worker returns something other than a table', function()
    local r = psurvey.map(function(p)
      if p.value == 1 then return 42 end
      if p.value == 2 then return 'text' end
      return nil
    end, psurvey.range(1, 3), H.options())
    local m = missing_rows(r)
    assert.equal(2, #m)
    assert.equal('the worker returned a number, expected a table of results (or nil)', m[1]._exception)
    assert.equal('the worker returned a string, expected a table of results (or nil)', m[2]._exception)
    assert.equal(1, #r) -- nil is an empty result
  end)

  -- Results travel in frames of at most 256 MiB: one pset may return 240
  -- MiB, and results sent together never add up to more than a frame.
  it('fails a result over 240 MiB, cuts a message over 1 MiB, and keeps the worker', function()
    local cache = {}
    local r = psurvey.map(function(p, system)
      if p.value == 1 then return { s = string.rep('x', 250 * 2 ^ 20), pid = system.pid } end
      if p.value == 2 then error(string.rep('m', 3 * 2 ^ 20), 0) end
      cache.blob = cache.blob or string.rep('y', 50 * 2 ^ 20)
      return { n = #cache.blob, pid = system.pid } -- fast psets, 50 MiB results each
    end, psurvey.range(1, 8), H.options({ ncores = 1, group_size = 8, name = 'big' }))
    local m = missing_rows(r)
    assert.equal(2, #m)
    assert.equal('the result is 250.0 MiB encoded, over the 240 MiB one pset may return', m[1]._exception)
    assert.equal(2 ^ 20 + #'... (2097152 more bytes cut)', #m[2]._exception)
    assert.matches('%.%.%. %(2097152 more bytes cut%)$', m[2]._exception)
    assert.equal(6, #r)
    -- One worker ran all eight: none was killed for an oversized frame.
    assert.equal(1, H.sql(r.db, 'select count(distinct _worker) n from big')[1].n)
    for row in r:rows() do assert.equal(50 * 2 ^ 20, row.n) end
  end)

  it('fails a pset over 240 MiB before sending it, and runs the others', function()
    local psets = { { s = 'small' }, { s = string.rep('x', 241 * 2 ^ 20) }, { s = 'last' } }
    local r = psurvey.map(function(p) return { n = #p.s } end, psets, H.options({ ncores = 1, name = 'bigpset' }))
    psets = nil -- luacheck: ignore
    local m = missing_rows(r)
    assert.equal(1, #m)
    assert.equal(2, m[1]._index)
    assert.equal('the pset is 241.0 MiB encoded, over the 240 MiB one pset may take', m[1]._exception)
    assert.same({ 5, 4, n = 2 }, r:column('n'))
    assert.same({}, r:attempts()) -- it never ran
  end)

  it('fails a pset whose result holds a function, naming the key', function()
    local r = psurvey.map(function() return { fine = 1, deep = { list = { 1, print } } } end,
      { { a = 1 } }, H.options())
    local m = missing_rows(r)
    assert.equal("result key 'deep.list[2]' holds a C function, which cannot be stored: return plain data "
      .. '(nil, booleans, numbers, strings and tables of them)', m[1]._exception)
  end)

  it('fails a pset whose result is cyclic or uses a reserved or repeated key', function()
    local r = psurvey.map(function(p)
      if p.value == 1 then
        local t = {}
        t.self = t
        return { t = t }
      elseif p.value == 2 then
        return { _status = 'mine' }
      elseif p.value == 3 then
        return { value = 99 }
      end
      return { value = p.value }
    end, psurvey.range(1, 4), H.options())
    local m = missing_rows(r)
    assert.equal(3, #m)
    assert.equal("result key 't.self' holds a cyclic table (it contains itself), which cannot be stored: "
      .. 'return plain data (nil, booleans, numbers, strings and tables of them)', m[1]._exception)
    assert.equal("result key '_status' is reserved: keys starting with '_' are psurvey's columns", m[2]._exception)
    assert.equal("result key 'value' repeats pset key 'value' with a different value: rename the result",
      m[3]._exception)
    assert.equal(1, #r) -- the same value as the pset's is fine
  end)

  it('stores a key that is an integer in one pset and a string in another as given', function()
    local r = psurvey.map(function(p) return { got = p.x } end, { { x = 1 }, { x = 'one' }, { x = 2.5 } },
      H.options({ name = 'mixed' }))
    local got = {}
    for row in r:rows() do got[#got + 1] = { row.x, row.got, math.type(row.x) or type(row.x) } end
    assert.same({ { 1, 1, 'integer' }, { 'one', 'one', 'string' }, { 2.5, 2.5, 'float' } }, got)
    assert.same({ { t = 'integer' }, { t = 'text' }, { t = 'real' } },
      H.sql(r.db, 'select typeof(x) t from mixed order by _index'))
  end)

  it('names a pset that is not a table, before anything runs', function()
    local ok, err = pcall(psurvey.map, function() return {} end, { { x = 1 }, 'two' }, H.options())
    assert.is_false(ok)
    assert.matches('pset #2 is a string, expected a table', err)
  end)

  it('records a worker process that exits, and replaces it', function()
    local r = psurvey.map(function(p)
      if p.value == 3 then os.exit(3) end
      return { v = p.value }
    end, psurvey.range(1, 6), H.options({ ncores = 2, retries = 0 }))
    assert.equal(5, #r)
    local m = missing_rows(r)
    assert.equal(1, #m)
    assert.equal(3, m[1].value)
    assert.equal('exit', m[1]._status)
    assert.matches('^worker %d+ %(pid %d+%) exited with status 3$', m[1]._exception)
  end)

  it('records a worker process killed by a signal', function()
    local r = psurvey.map(function(p, system)
      if p.value == 2 then os.execute('kill -9 ' .. system.pid) end
      return { v = p.value }
    end, psurvey.range(1, 4), H.options({ ncores = 2, group_size = 2, retries = 0 }))
    assert.equal(3, #r)
    local m = missing_rows(r)
    assert.equal(1, #m)
    assert.equal(2, m[1].value)
    assert.equal('signal', m[1]._status)
    assert.matches('was killed by signal 9 %(SIGKILL%)$', m[1]._exception)
  end)

  it('keeps every other result of a batch whose worker dies', function()
    local r = psurvey.map(function(p)
      if p.value == 7 then os.exit(1) end
      return { v = p.value }
    end, psurvey.range(1, 40), H.options({ ncores = 2, group_size = 10 }))
    assert.equal(39, #r)
    assert.same({ 7 }, { missing_rows(r)[1].value })
  end)
end)

describe('shipping the worker', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('carries plain upvalues, Lua functions and standard functions', function()
    local floor, fmt = math.floor, string.format
    local config = { scale = 2.5, names = { 'a', 'b' } }
    local function helper(x) return floor(x * config.scale) end
    local function fib(n) return n < 2 and n or fib(n - 1) + fib(n - 2) end
    local r = psurvey.map(function(p)
      return { h = helper(p.value), f = fib(p.value + 5), s = fmt('%03d', p.value), n = config.names[2] }
    end, psurvey.range(1, 2), H.options())
    local row = r:rows()()
    assert.same({ value = 1, h = 2, f = 8, s = '001', n = 'b' }, row)
  end)

  it('refuses an upvalue that is an open file, naming it', function()
    local log = io.stdout
    local ok, err = pcall(psurvey.map, function() log:write('x') return {} end, { { a = 1 } }, H.options())
    assert.is_false(ok)
    assert.matches("the worker cannot be sent to worker processes: its upvalue 'log' is a userdata %(FILE%*%), "
      .. "which cannot be sent to worker processes: create it inside the worker, pass plain data in map's "
      .. "'user' option, or require its module inside the worker", err)
  end)

  it('refuses a coroutine and a C function from outside the standard library', function()
    local co = coroutine.create(function() end)
    local ok, err = pcall(psurvey.map, function() return { co = co } end, { { a = 1 } }, H.options())
    assert.is_false(ok)
    assert.matches("its upvalue 'co' is a coroutine", err)
    local iter = string.gmatch('a b', '%a')
    ok, err = pcall(psurvey.map, function() return { w = iter() } end, { { a = 1 } }, H.options())
    assert.is_false(ok)
    assert.matches("its upvalue 'iter' is a C function that is not part of Lua's standard library", err)
  end)

  it('names the path to a nested upvalue that cannot travel', function()
    local handles = { out = { io.stderr } }
    local function helper() return handles end
    local ok, err = pcall(psurvey.map, function() return helper() and {} end, { { a = 1 } }, H.options())
    assert.is_false(ok)
    assert.matches("its upvalue 'helper' %-> upvalue 'handles'%.out%[1%] is a userdata", err)
  end)

  it('ships a loaded module by name and requires it on the worker side', function()
    local cjson = require('cjson')
    local r = psurvey.map(function(p) return { j = cjson.encode({ p.value }) } end, { { value = 5 } },
      H.options())
    assert.equal('[5]', r:rows()().j)
  end)
end)
