-- psurvey as a module in a plain Lua program (lua5.4, not the psurvey
-- program): its run is ended when the program ends, its exit status is one
-- call away, and requiring it alone does nothing.
local H = require('support.helpers')

-- Runs `lua5.4 prog.lua` in dir with the build's modules; returns stdout
-- and stderr together, and the exit status.
local function lua(dir, source)
  H.write(dir, 'prog.lua', source)
  local build = H.bin:match('^(.*)/bin/psurvey$')
  return H.shell(('cd %s && env -u PSURVEY_VERBOSE -u PSURVEY_VSTATS LUA_PATH_5_4=%s LUA_CPATH_5_4=%s '
    .. 'lua5.4 prog.lua 2>&1'):format(H.quote(dir), H.quote(H.root .. '/lua/?.lua;' .. H.root .. '/lua/?/init.lua;;'),
    H.quote(build .. '/lib/?.so;;')))
end

local MAP = [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p) if p.value == FAIL then error('no') end return {} end, psurvey.range(1, 3),
  { verbose = 0, vstats = 0, name = 't' })
]]

describe('psurvey in a plain lua5.4 program', function()
  teardown(H.cleanup)

  it('ends its run when the program ends, without shutdown()', function()
    for fail, status in pairs({ [0] = 'done', [2] = 'failed' }) do
      local dir = H.tmpdir()
      local _, code = lua(dir, MAP:gsub('FAIL', fail) .. 'print(#r)\n')
      assert.equal(0, code)
      assert.same({ { status = status, ended = 1 } }, H.sql(dir .. '/.psurvey/prog.db',
        'select status, finished is not null as ended from _psurvey_runs'))
    end
  end)

  it('gives the exit status the psurvey program would: os.exit(psurvey.exit_status())', function()
    for fail, want in pairs({ [0] = 0, [2] = 1 }) do
      local dir = H.tmpdir()
      local _, code = lua(dir, MAP:gsub('FAIL', fail) .. 'os.exit(psurvey.exit_status())\n')
      assert.equal(want, code)
      assert.same({ { status = want == 0 and 'done' or 'failed' } }, H.sql(dir .. '/.psurvey/prog.db',
        'select status from _psurvey_runs'))
    end
    local dir = H.tmpdir()
    local _, code = lua(dir, [[
local psurvey = require('psurvey')
pcall(psurvey.map, function() error('no') end, psurvey.range(1, 20),
  { verbose = 0, vstats = 0, halt = 'now,fail=1', ncores = 1 })
os.exit(psurvey.exit_status())
]])
    assert.equal(4, code)
    assert.same({ { status = 'halted' } }, H.sql(dir .. '/.psurvey/prog.db', 'select status from _psurvey_runs'))
  end)

  it('starts nothing and writes nothing when a program only requires it', function()
    local dir = H.tmpdir()
    local out, code = lua(dir, "local psurvey = require('psurvey'); print(type(psurvey.map))\n")
    assert.equal(0, code)
    assert.equal('function\n', out)
    local files = {}
    for name in io.popen('ls -A ' .. H.quote(dir)):lines() do files[#files + 1] = name end
    assert.same({ 'prog.lua' }, files)
  end)
end)
