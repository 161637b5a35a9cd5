-- Installed psurvey: the same survey runs under plain lua5.4.
local H = require('support.helpers')

describe('installed psurvey #install', function()
  teardown(H.cleanup)

  it('runs a survey under plain lua5.4 and finds the psurvey program itself', function()
    local build = H.bin:match('^(.*)/bin/psurvey$')
    local prefix = H.tmpdir()
    local _, rc = H.shell(('cmake --install %s --prefix %s >/dev/null'):format(H.quote(build), H.quote(prefix)))
    assert.equal(0, rc)
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p, system) return { y = p.value + 1, pid = system.pid } end,
  psurvey.range(1, 4), { verbose = 0, vstats = 0 })
print(#r, table.concat(r:column('y'), ','))
]])
    local out, code = H.shell(('cd %s && env -u PSURVEY_BIN PATH=/usr/bin:/bin LUA_PATH_5_4=%s LUA_CPATH_5_4=%s '
      .. 'lua5.4 survey.lua 2>&1'):format(H.quote(dir), H.quote(prefix .. '/share/lua/5.4/?.lua;'
      .. prefix .. '/share/lua/5.4/?/init.lua;;'), H.quote(prefix .. '/lib/lua/5.4/?.so;;')))
    assert.equal('4\t2,3,4,5\n', out)
    assert.equal(0, code)
    assert.is_not_nil(io.open(dir .. '/.psurvey/survey.db'))
    assert.is_not_nil(io.open(prefix .. '/share/psurvey/examples/readme.lua'))
  end)

  it('names the worker program it cannot start, and why', function()
    local build = H.bin:match('^(.*)/bin/psurvey$')
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
print(pcall(psurvey.map, function() end, psurvey.range(1, 2), { db = false, verbose = 0 }))
]])
    local out, code = H.shell(('cd %s && PSURVEY_BIN=/nonexistent/psurvey LUA_PATH_5_4=%s LUA_CPATH_5_4=%s '
      .. 'lua5.4 survey.lua 2>&1'):format(H.quote(dir), H.quote(H.root .. '/lua/?.lua;' .. H.root
      .. '/lua/?/init.lua;;'), H.quote(build .. '/lib/?.so;;')))
    assert.equal(0, code)
    assert.equal("false\tmap: cannot start worker process '/nonexistent/psurvey': No such file or directory\n", out)
  end)
end)
