-- The wire codec (core.encode / core.decode) and frames from broken workers.
local H = require('support.helpers')
local core = require('psurvey.core')

describe('psurvey.core codec', function()
  it('round-trips every kind of plain value', function()
    local values = { 0, -1, 127, 128, math.maxinteger, math.mininteger, 0.1, -0.0, 1 / 0, -1 / 0, 1e300,
      '', ('x'):rep(70), '\0\255', true, false, { 1, 2, { a = 'b' } }, { [1.5] = 'f', [true] = 1, x = {} } }
    for _, v in ipairs(values) do
      local back = core.decode(core.encode(v))
      assert.same(v, back)
      assert.equal(math.type(v), math.type(back))
    end
    local nan = core.decode(core.encode(0 / 0))
    assert.is_true(nan ~= nan)
  end)

  it('sorts keys in canonical mode, so equal tables give equal bytes', function()
    local a, b = { x = 1, y = 2, z = { q = 1, p = 2 } }, { z = { p = 2, q = 1 }, y = 2, x = 1 }
    assert.equal(core.encode(a, true), core.encode(b, true))
  end)

  it('refuses what cannot travel, naming where', function()
    assert.has_error(function() core.encode({ a = { b = print } }) end,
      'value.a.b is a C function, which cannot be encoded')
    local t = {}
    t[1] = t
    assert.has_error(function() core.encode(t) end,
      'value[1] is a cyclic table (it contains itself), which cannot be encoded')
    local deep = {}
    local cur = deep
    for _ = 1, 150 do
      cur.next = {}
      cur = cur.next
    end
    assert.has_error(function() core.encode(deep) end)
  end)

  it('rejects malformed bytes without crashing', function()
    local good = core.encode({ a = { 1, 2, 'three' } })
    for cut = 1, #good - 1 do
      assert.has_error(function() core.decode(good:sub(1, cut)) end)
    end
    assert.has_error(function() core.decode('\x0c') end, 'malformed value (bad tag or length)')
    assert.has_error(function() core.decode('\x05\xff\xff\xff\xff\x0f') end, 'malformed value (bad tag or length)')
    assert.has_error(function() core.decode('\x06\x00\x01\x00\x01') end, 'malformed value (a table key is nil)')
    assert.has_error(function() core.decode(('\x06\x01\x00'):rep(200) .. '\x00') end)
    assert.has_error(function() core.decode(good .. 'x') end, 'malformed value (1 bytes left over)')
  end)

  it('survives random garbage', function()
    math.randomseed(42)
    for _ = 1, 2000 do
      local n = math.random(0, 40)
      local bytes = {}
      for i = 1, n do bytes[i] = string.char(math.random(0, 255)) end
      pcall(core.decode, table.concat(bytes))
    end
  end)
end)

describe('the driver facing a broken worker', function()
  teardown(H.cleanup)

  local function fake_worker(script)
    local dir = H.tmpdir()
    local path = H.write(dir, 'fake-worker', '#!/bin/bash\n' .. script)
    os.execute('chmod +x ' .. path)
    return path
  end

  local function run(exe)
    local engine = core.engine(exe)
    engine:backend('process', {})
    local res, err = engine:run(core.array({ { a = 1 }, { a = 2 } }), nil,
      { name = 'broken', ncores = 1, code = core.ship(function() return {} end), user = core.encode(nil) })
    engine:close()
    return res, err
  end

  it('stops with a clear error when workers send garbage as they start', function()
    local res, err = run(fake_worker([[printf '\x05\x00\x00\x00\x63garbage'; sleep 5]]))
    assert.is_nil(res)
    assert.matches('^worker processes die as they start; the last: worker %d+ %(pid %d+%) sent a malformed '
      .. 'frame: frame of unknown kind 99$', err)
  end)

  it('rejects an oversized frame', function()
    local res, err = run(fake_worker([[printf '\xff\xff\xff\x7f\x05'; sleep 5]]))
    assert.is_nil(res)
    assert.matches('sent a malformed frame: frame of 2147483647 bytes is over the limit', err)
  end)

  it('records psets whose worker sends truncated results', function()
    -- a valid hello, then a results frame cut short
    local res = run(fake_worker([[
printf '\x08\x00\x00\x00\x01\x01\x01\x01h\x01\x010'
read -N 1
printf '\x03\x00\x00\x00\x05\x01\x00'
sleep 5]]))
    assert.equal(0, res.ok)
    assert.equal(2, res.failed)
  end)
end)
