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
    assert.is_not_nil(io.open(prefix .. '/share/man/man1/psurvey.1'))
    assert.is_not_nil(io.open(prefix .. '/share/doc/psurvey/LICENSE'))
    assert.is_not_nil(io.open(prefix .. '/share/doc/psurvey/README.md'))
  end)

  it('has a man page, made from --help by help2man, that man renders', function()
    local build = H.bin:match('^(.*)/bin/psurvey$')
    local page = build .. '/psurvey.1'
    assert.is_not_nil(io.open(page), 'no ' .. page .. ' (is help2man installed?)')
    local out, code = H.shell(('MANWIDTH=80 man -l %s 2>/dev/null'):format(H.quote(page)))
    assert.equal(0, code)
    for _, section in ipairs({ 'NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'EXAMPLES' }) do
      assert.matches('\n' .. section .. '\n', out)
    end
    assert.matches('psurvey%s+%-%s+run a Lua worker once per parameter set', out)
    -- Every option of --help is in it (man may hyphenate a long word at a line's end).
    for _, spec in ipairs(require('psurvey.options').specs) do
      if spec.flag and spec.name ~= 'name' and spec.name ~= 'user' then
        assert.matches('\n%s+' .. spec.flag:gsub('%-', '%%-'), out)
      end
    end
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
