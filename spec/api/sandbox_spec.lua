-- Sandbox profiles: what a pset's environment holds, and the known ways
-- out of the strict one, each shown to fail.
local H = require('support.helpers')
local psurvey = require('psurvey')

-- Runs a chunk of code as the whole worker, in a profile; returns its row
-- (status, exception and the result `r`). The chunk is compiled here, so
-- its _ENV is the pset's environment in the worker, as for any worker.
local function probe(profile, body)
  local worker = assert(load(body, '=probe', 't'))
  local r = psurvey.map(worker, { { probe = 1 } }, H.options({ sandbox = profile, retries = 0 }))
  local failed = (r.missing:rows())()
  if failed then return failed end
  local row = (r:rows())()
  row._status = 'ok'
  return row
end

describe('the default sandbox', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('keeps the standard library and gives each pset fresh globals', function()
    local r = psurvey.map(function(p)
      local before = counter -- luacheck: ignore 113 (a global, on purpose)
      counter = p.value -- luacheck: ignore 111
      return { before = before, io = type(io), exec = type(os.execute) }
    end, psurvey.range(1, 4), H.options({ ncores = 1 }))
    for row in r:rows() do
      assert.is_nil(row.before)
      assert.same({ 'table', 'function' }, { row.io, row.exec })
    end
  end)

  it('gives os.execute the standard results, with or without a shell in between', function()
    local cmds = { 'true', 'false', 'exit 3', 'sh -c "kill -9 $$"', 'no-such-program-here', '/bin/true',
      'echo hi >/dev/null', 'test -d /tmp', "sh -c 'exit 7'" }
    local psets = {}
    for i, c in ipairs(cmds) do psets[i] = { cmd = c } end
    local r = psurvey.map(function(p)
      local a, b, c = os.execute(p.cmd)
      return { a = tostring(a), b = b, c = c }
    end, psets, H.options({ ncores = 1 }))
    local got = {}
    for row in r:rows() do got[row.cmd] = { row.a, row.b, row.c } end
    for _, c in ipairs(cmds) do
      local a, b, code = os.execute(c .. ' 2>/dev/null')
      assert.same({ tostring(a), b, code }, got[c], c)
    end
  end)

  it('refuses binary chunks and protects the string metatable', function()
    local row = probe('default', "return { r = tostring(select(2, load(string.dump(function() end)))) }")
    assert.matches('attempt to load a binary chunk', row.r)
    row = probe('default', "return { r = tostring(getmetatable('')) }")
    assert.equal('false', row.r)
  end)
end)

describe('the strict sandbox', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('offers plain computation', function()
    local row = probe('strict', [[
      local t = {}
      for w in ('b a c'):gmatch('%a') do t[#t + 1] = w:upper() end
      table.sort(t)
      return { r = table.concat(t) .. math.floor(2.5) .. utf8.char(65) .. type(os.time()) }
    ]])
    assert.equal('ok', row._status)
    assert.equal('ABC2Anumber', row.r)
  end)

  it('has no io, os.execute, os.exit, debug, load, collectgarbage or package: reading one names it', function()
    for _, name in ipairs({ 'io', 'debug', 'load', 'loadfile', 'dofile', 'collectgarbage', 'package', '_G' }) do
      local row = probe('strict', ('return { r = type(%s) }'):format(name))
      assert.equal('error', row._status, name)
      assert.matches(("undefined global '%s'"):format(name), row._exception)
    end
    for _, name in ipairs({ 'execute', 'exit', 'remove', 'rename', 'tmpname' }) do
      local row = probe('strict', ('return { r = type(os.%s) }'):format(name))
      assert.equal('nil', row.r, 'os.' .. name)
    end
  end)

  it('stops the known escapes', function()
    local escapes = {
      ["getmetatable('').__index"] = "return { r = getmetatable('').__index.rep('x', 2) }",
      ['setmetatable(_ENV, nil)'] = 'setmetatable(_ENV, nil); return { r = io }',
      ['string.dump and load'] = 'return { r = load(string.dump(print)) }',
      ["(''):dump()"] = "return { r = (''):dump() }",
      ['writing a library'] = 'string.rep = nil; return { r = 1 }',
      ['require of a C module'] = "return { r = require('cjson') }",
    }
    for what, body in pairs(escapes) do
      local row = probe('strict', body)
      assert.equal('error', row._status, what .. ' was not stopped')
    end
  end)

  it('times out a loop hidden in a coroutine', function()
    local r = psurvey.map(function()
      local co = coroutine.create(function() while true do end end)
      coroutine.resume(co)
      return { escaped = true }
    end, { { a = 1 } }, H.options({ sandbox = 'strict', timeout = 0.5, retries = 0 }))
    assert.equal(0, #r)
    assert.equal('timeout after 0.5 s', (r.missing:rows())()._exception)
  end)

  it('requires Lua modules, inside the worker and as upvalues, and names a C module it refuses', function()
    local dir = H.tmpdir()
    H.write(dir, 'shapes.lua', [[
local M = {}
function M.area(w, h) return w * h end
M.floor = math.floor(2.5)
return M
]])
    local out = H.survey(dir, [[
local psurvey = require('psurvey')
local shapes = require('shapes')
local r = psurvey.map(function(p)
  local inside = require('shapes')
  return { a = shapes.area(p.w, 3), b = inside.area(p.w, 4), floor = inside.floor, same = inside == shapes }
end, { { w = 2 } }, { sandbox = 'strict', db = false, retries = 0 })
for row in r:rows() do print(row.a, row.b, row.floor, row.same) end
for row in r.missing:rows() do print(row._exception) end
r = psurvey.map(function() return { r = require('cjson') } end, { { w = 1 } },
  { sandbox = 'strict', db = false, retries = 0 })
for row in r.missing:rows() do print(row._exception) end
]], '', { LUA_PATH_5_4 = './?.lua;;' })
    assert.equal(1, out.code, out.err)
    local first, second = out.out:match('^([^\n]*)\n(.*)$')
    assert.equal('6\t8\t2\ttrue', first)
    assert.matches("^survey.lua:%d+: module 'cjson' not found %(the strict sandbox loads Lua modules only%):\n"
      .. "\tno file '%./cjson%.lua'", second)
  end)

  it('refuses a worker whose upvalue is a library it does not allow', function()
    local io_lib = io
    local ok, err = pcall(psurvey.map, function() return { t = type(io_lib) } end, { { a = 1 } },
      H.options({ sandbox = 'strict' }))
    assert.is_false(ok)
    assert.matches("the worker uses 'io' %(an upvalue%), which the strict sandbox does not allow", err)
  end)
end)
