-- The engine as the Lua modules drive it: workers run on the nodes its
-- backends add (engine:backend), and a mistake in that wiring is said,
-- never waited on.
local H = require('support.helpers')
local core = require('psurvey.core')

describe('the engine', function()
  local function run(engine)
    return engine:run(core.array({ { a = 1 }, { a = 2 } }), nil,
      { name = 'wired', ncores = 1, code = core.ship(function(p) return { b = p.a } end), user = core.encode(nil) })
  end

  it('runs on this machine once the process backend is added, as often as it is added', function()
    local engine = core.engine(H.bin)
    engine:backend('process', {})
    engine:backend('process', {})
    local res, err = run(engine)
    engine:close()
    assert.is_nil(err)
    assert.equal(2, res.ok)
  end)

  it('says it has no node to run on instead of waiting for one', function()
    local engine = core.engine(H.bin)
    local res, err = run(engine)
    engine:close()
    assert.is_nil(res)
    assert.equal('no backend: the engine has no node to run workers on', err)
  end)

  it('refuses a backend it does not know, and a second set of ssh hosts', function()
    local engine = core.engine(H.bin)
    finally(function() engine:close() end)
    assert.has_error(function() engine:backend('pbs', {}) end,
      "bad argument #1 to 'backend' (unknown backend 'pbs')")
    local hosts = { hosts = { { target = '127.0.0.1', port = 1 } }, reconnect = 0 }
    engine:backend('ssh', hosts)
    assert.has_error(function() engine:backend('ssh', hosts) end, 'the ssh hosts are set once per run')
  end)
end)
