-- A user's mistake gets a clear message and exit status 2, without a
-- traceback into psurvey's own files; an error of the script itself keeps
-- exit status 3 and its traceback.
local H = require('support.helpers')

local function survey(source, args, env)
  local dir = H.tmpdir()
  return H.survey(dir, source, args, env), dir
end

-- A clean user error: status 2, one message, nothing of psurvey's insides.
local function assert_user_error(r, pattern)
  assert.equal(2, r.code, r.err)
  assert.matches(pattern, r.err)
  assert.is_nil(r.err:find('stack traceback', 1, true), r.err)
  assert.is_nil(r.err:find('psurvey/%a+%.lua'), r.err)
end

local MAP = [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.value } end, psurvey.range(1, 3), %s)
]]

describe('psurvey user errors', function()
  after_each(H.cleanup)

  it('exit 2 for a bad option value from map(), init(), the environment or the command line', function()
    assert_user_error(survey(MAP:format("{ ncores = 'many' }")),
      "^psurvey: survey%.lua:2: option 'ncores' to map%(%): expected an integer, got string\n$")
    assert_user_error(survey("require('psurvey').init({ verbose = 7 })"),
      "^psurvey: survey%.lua:1: option 'verbose' to init%(%): expected 0 to 3, got 7\n$")
    assert_user_error(survey(MAP:format('{}'), '', { PSURVEY_NCORES = 'abc' }),
      "^psurvey: survey%.lua:2: environment variable PSURVEY_NCORES: 'abc' is not an integer\n$")
    local r = survey(MAP:format('{}'), '--timeout -1')
    assert.equal(2, r.code)
    assert.matches("option '%-%-timeout': expected a number of seconds from 0 to 1e%+09 %(0: none%), got %-1", r.err)
  end)

  it('exit 2 for values out of range, naming the option, instead of overflows', function()
    assert_user_error(survey(MAP:format('{ timeout = 1e300 }')),
      "option 'timeout' to map%(%): expected a number of seconds from 0 to 1e%+09 %(0: none%), got 1e%+300")
    assert_user_error(survey(MAP:format('{ memory = 2^60 }')),
      "option 'memory' to map%(%): expected a number of MiB from 0 to 1e%+09 %(0: none%), got")
    assert_user_error(survey(MAP:format('{ retries = math.maxinteger }')),
      "option 'retries' to map%(%): expected 0 to 99, got 9223372036854775807")
    assert_user_error(survey(MAP:format('{ ncores = 1 << 40 }')),
      "option 'ncores' to map%(%): expected %-10000 to 10000, got 1099511627776")
    local r = survey([[
local psurvey = require('psurvey')
psurvey.map(function() end, { { _psurvey = { timeout = 1e300 } } })
]])
    assert.equal(3, r.code)
    assert.matches("pset #1 key '_psurvey': per%-pset option 'timeout' must be a number of seconds from 0 to 1e%+09",
      r.err)
  end)

  it("exit 2 for a worker and a 'user' value that together are over a frame, before any worker starts", function()
    assert_user_error(survey([[
local psurvey = require('psurvey')
local big = ('x'):rep(130 * 2^20)
psurvey.map(function() return { n = #big } end, psurvey.range(1, 1), { user = ('y'):rep(130 * 2^20) })
]]), "option 'user': the worker %(130%.0 MiB%) and 'user' %(130%.0 MiB%) together are over the 240 MiB a worker may")
  end)

  it('exit 2 for a replay index that is not a row', function()
    local r, dir = survey(MAP:format('{}'))
    assert.equal(0, r.code)
    for _, index in ipairs({ '0', '-1', 'x' }) do
      r = H.run(dir, 'replay .psurvey/survey.db stage1 ' .. index)
      assert.equal(2, r.code)
      assert.matches('INDEX as in the _index column', r.err)
    end
  end)

  it('exit 2 when the database is being written by another psurvey', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p, system) system.sleep(0.05) end, psurvey.range(1, 60), { db = 'x.db', ncores = 2 })
]])
    local out = H.beside_a_writer(dir, 'x.db', 'survey.lua', 'survey.lua')
    assert.matches("^psurvey: database 'x%.db' is being written by another psurvey %(pid %d+ on [^)]+%)", out)
    assert.matches('second=2\n$', out)
    assert.is_nil(out:find('traceback', 1, true))
  end)

  it('exit 2 on a resume whose worker changed', function()
    local r, dir = survey(MAP:format('{}'))
    assert.equal(0, r.code)
    H.write(dir, 'survey.lua', MAP:format('{}'):gsub('y = p.value', 'y = -p.value'))
    assert_user_error(H.run(dir, 'survey.lua --resume'),
      "^psurvey: survey%.lua:2: resume: table 'stage1' in %.psurvey/survey%.db holds 3 rows made with another "
      .. 'version of the worker function')
  end)

  it('exit 2 when every ssh host is unreachable', function()
    local dir = H.tmpdir()
    H.write(dir, 'nossh', '#!/bin/sh\necho "ssh: connect to host $3: Connection refused" >&2\nexit 255\n')
    os.execute('chmod +x ' .. H.quote(dir .. '/nossh'))
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function() end, psurvey.range(1, 3),
  { backend = 'ssh', ssh = { hosts = { 'h1', 'h2' }, program = './nossh' } })
]])
    assert_user_error(H.run(dir, 'survey.lua'), 'every ssh host is lost or unreachable')
  end)

  it("exit 2 naming the missing directory of 'db'", function()
    assert_user_error(survey(MAP:format("{ db = 'no/such/dir/r.db' }")),
      "option 'db': directory 'no/such/dir' does not exist %(for the database 'no/such/dir/r%.db'%)")
  end)

  it('exit 2 for a database that cannot be written: a read-only file, a read-only directory', function()
    local dir = H.tmpdir()
    -- As root, permissions do not stop writes: the surveys run as nobody.
    os.execute(('cd %s && : >ro.db && chmod 444 ro.db && mkdir rodir && chmod 555 rodir && chmod 777 .'):format(
      H.quote(dir)))
    for db, pattern in pairs({ ['ro.db'] = "^psurvey: database 'ro%.db' is read%-only: psurvey must write its results"
        .. ' there; fix its permissions', ['rodir/r.db'] = "^psurvey: cannot open database 'rodir/r%.db': unable to"
        .. ' open database file %(can its directory be written%?%)\n$' }) do
      H.write(dir, 'survey.lua', MAP:format(('{ db = %q }'):format(db)))
      local out, rc = H.shell(('cd %s && setpriv --reuid=nobody --regid=nogroup --clear-groups env PSURVEY_VERBOSE=0'
        .. ' %s survey.lua 2>&1'):format(H.quote(dir), H.quote(H.bin)))
      assert.equal(2, rc, out)
      assert.matches(pattern, out)
    end
  end)

  it('exit 2 for a stage name with a NUL byte, or too long', function()
    assert_user_error(survey(MAP:format("{ name = 'a\\0b' }")), "option 'name': a table name cannot hold a NUL byte")
    assert_user_error(survey(MAP:format("{ name = ('n'):rep(201) }")),
      "option 'name': a table name of 201 bytes is too long %(at most 200%)")
  end)

  it('takes stage names that differ only in case as the same name', function()
    local r, dir = survey([[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.value } end, psurvey.range(1, 3), { name = 'Grid' })
]])
    assert.equal(0, r.code, r.err)
    r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = 2 * p.value } end, psurvey.range(1, 3), { name = 'grid' })
]])
    assert.equal(0, r.code, r.err)
    local names = H.sql(dir .. '/.psurvey/survey.db', 'select name from _psurvey_tables order by created')
    assert.equal(2, #names)
    assert.matches('^Grid_%d+_%d+$', names[1].name)
    assert.equal('grid', names[2].name)
    local opened = require('psurvey').open(dir .. '/.psurvey/survey.db', 'GRID')
    assert.same({ 2, 4, 6, n = 3 }, opened:column('y'))
    r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function() end, psurvey.range(1, 1), { name = 'one' })
psurvey.map(function() end, psurvey.range(1, 1), { name = 'ONE' })
]])
    assert.equal(0, r.code, r.err)
    names = H.sql(dir .. '/.psurvey/survey.db', "select name from _psurvey_tables where name like 'one%' order by name")
    assert.same({ { name = 'ONE_2' }, { name = 'one' } }, names)
  end)

  it('takes PSURVEY_USER and --ssh as data literals, never as code', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
local r = psurvey.map(function(p, system, user) return { u = user } end, psurvey.range(1, 1))
local u = r:column('u')[1]
print(u.a, u.b[1], u.b[2], u[3], u.s, math.type(u.b[2]))
]])
    local r = H.run(dir, 'survey.lua', { PSURVEY_USER = [[{ a = -1, b = { 'x', 2.5 }, [3] = true, s = "q\"\n" }]] })
    assert.equal(0, r.code, r.err)
    assert.equal('-1\tx\t2.5\ttrue\tq"\n\tfloat\n', r.out)
    for _, code in ipairs({ '(function() os.exit(7) end)()', 'os.exit(7)', '("x"):rep(1e10)',
      '{ a = os.getenv("HOME") }', '{ 1 + 1 }' }) do
      r = H.run(dir, 'survey.lua', { PSURVEY_USER = code })
      assert_user_error(r, 'environment variable PSURVEY_USER: .* is not a Lua value')
    end
    r = H.run(dir, [[survey.lua --ssh '{ hosts = { os.exit(7) } }']])
    assert.equal(2, r.code)
    assert.matches("option '%-%-ssh': .* is not a Lua value", r.err)
  end)

  it('keeps exit 3 and the traceback for an error of the script itself', function()
    local r = survey([[
local function inner() error('my own bug') end
inner()
]])
    assert.equal(3, r.code)
    assert.matches('survey%.lua:1: my own bug\nstack traceback:', r.err)
  end)
end)
