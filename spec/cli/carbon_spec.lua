-- Progress to Graphite's carbon, as paramsurvey offers it: a real
-- carbon-cache on loopback receives the points, in both of its protocols,
-- and they are read back from its whisper files. A carbon that is down or
-- killed mid-run never slows or stops the survey.
local H = require('support.helpers')
local C = require('support.carbon')

-- 40 psets of 0.25 s on 2 workers, 2 of them failing (15 and 30): about 5 s.
local SURVEY = [[
local psurvey = require('psurvey')
psurvey.init(INIT)
psurvey.map(function(p)
  os.execute('sleep 0.25')
  if p.value % 15 == 0 then error('fifteen') end
  return {}
end, psurvey.range(1, 40), { name = 'grid', ncores = 2 })
]]

local function hidden_log(dir)
  return H.slurp(dir .. '/' .. H.logs(dir)[1])
end

describe('carbon #carbon', function()
  local c

  setup(function()
    assert(C.available(), 'graphite-carbon is not installed (the CI installs it)')
    c = C.start()
  end)

  teardown(function()
    C.stop(c)
    H.cleanup()
  end)

  it('receives counts, rate, run-time percentiles and busy workers per host, in pickle', function()
    local t0 = os.time()
    local r = H.survey(H.tmpdir(), SURVEY:gsub('INIT', ("{ carbon = { port = %d, prefix = 'lab.pickled' } }")
      :format(c.pickle)))
    assert.equal(1, r.code, r.err)
    local base = 'lab.pickled.survey.grid.'
    assert.equal(40, C.wait_for(c, base .. 'total', t0, 40)[1][2])
    local finished = C.wait_for(c, base .. 'finished', t0, 38)
    assert.equal(38, finished[#finished][2])
    assert.equal(2, C.wait_for(c, base .. 'failures', t0, 2)[1][2])
    assert.equal(0, C.wait_for(c, base .. 'active', t0, 0)[1][2])
    local rate = C.points(c, base .. 'rate', t0)
    assert.is_true(rate[#rate][2] > 4 and rate[#rate][2] < 8.5, 'rate ' .. tostring(rate[#rate][2]))
    local p50 = C.points(c, base .. 'runtime_p50', t0)
    assert.is_true(p50[#p50][2] >= 0.24 and p50[#p50][2] < 0.5, 'p50 ' .. tostring(p50[#p50][2]))
    assert.is_true(#C.points(c, base .. 'runtime_p90', t0) >= 1)
    local host = io.popen('hostname'):read('l'):gsub('[^%w_-]', '_')
    assert.equal(0, C.wait_for(c, base .. 'hosts.' .. host .. '.active', t0, 0)[1][2])
  end)

  it('sends every 10 s while a map runs, in plaintext, from paramsurvey\'s names and variables', function()
    local t0 = os.time()
    local long = SURVEY:gsub('range%(1, 40%)', 'range(1, 100)') -- 12.5 s: the last point 2 s after the one at 10 s
    local r = H.survey(H.tmpdir(), long:gsub('INIT', "{ carbon_server = '127.0.0.1', carbon_prefix = 'plain' }"), '',
      { PSURVEY_CARBON_PORT = tostring(c.line), PSURVEY_CARBON_PROTOCOL = 'plaintext' })
    assert.equal(1, r.code, r.err)
    local finished = C.wait_for(c, 'plain.survey.grid.finished', t0, 94, 2) -- 100 less 15, 30, ... 90
    -- One point near 10 s, with about 75 finished, and the last at the end.
    assert.is_true(#finished >= 2, #finished .. ' points')
    assert.is_true(finished[1][2] >= 20 and finished[1][2] < 94, 'first ' .. finished[1][2])
    assert.equal(94, finished[#finished][2])
  end)

  it('never slows the survey when carbon is down, and says so once in the log', function()
    local dir = H.tmpdir()
    local free = c.line + 1 == c.pickle and c.pickle + 1 or c.line + 1
    local t0 = os.time()
    local r = H.survey(dir, SURVEY:gsub('INIT', ('{ carbon = { port = %d } }'):format(free)))
    assert.equal(1, r.code, r.err)
    assert.is_true(os.time() - t0 <= 9, 'took ' .. (os.time() - t0) .. ' s')
    local log = hidden_log(dir)
    local _, said = log:gsub('carbon 127%.0%.0%.1:' .. free .. ': [^\n]*; progress points are dropped until it is back',
      '')
    assert.equal(1, said, log)
  end)

  it('goes on when carbon is killed mid-run', function()
    local other = C.start()
    finally(function() C.stop(other) end) -- should the survey not kill it
    local dir = H.tmpdir()
    -- A first map's points reach carbon; then carbon is killed, and a second
    -- map runs with the connection gone.
    local script = [[
local psurvey = require('psurvey')
psurvey.init({ carbon = { port = PORT, prefix = 'killed' } })
psurvey.map(function() return {} end, { {} }, { name = 'first' })
os.execute(KILL)
psurvey.map(function() os.execute('sleep 0.25') return {} end, psurvey.range(1, 40), { name = 'second', ncores = 2 })
print('done')
]]
    local wsp = other.dir .. '/storage/whisper/killed/survey/first/finished.wsp'
    local kill = ('for i in $(seq 1 400); do /usr/bin/whisper-fetch --from=$(($(date +%%s) - 60)) %s 2>/dev/null '
      .. '| grep -q "1.000000" && break; sleep 0.05; done; kill %d'):format(H.quote(wsp), other.pid)
    local t0 = os.time()
    local source = script:gsub('PORT', tostring(other.pickle)):gsub('KILL', function() return ('%q'):format(kill) end)
    local r = H.survey(dir, source)
    assert.equal(0, r.code, r.err)
    assert.equal('done\n', r.out)
    assert.is_true(os.time() - t0 <= 12, 'took ' .. (os.time() - t0) .. ' s')
    assert.equal(1, C.points(other, 'killed.survey.first.finished', t0)[1][2])
    -- The rest was dropped, and the log said so once.
    local log = hidden_log(dir)
    local _, said = log:gsub('; progress points are dropped until it is back', '')
    assert.equal(1, said, log)
  end)

  it('rejects a bad carbon option, naming it', function()
    local cases = {
      { '{ carbon = { port = 0 } }',
        "option 'carbon' to init%(%): key 'port' must be an integer from 1 to 65535, got 0" },
      { "{ carbon = { protocol = 'udp' } }", "key 'protocol' must be 'pickle' or 'plaintext', got 'udp'" },
      { "{ carbon = { prefix = 'a..b' } }", "key 'prefix' must be dotted words" },
      { '{ carbon = { serve = 1 } }', "unknown key 'serve' %(known: server, port, prefix, protocol%)" },
    }
    for _, case in ipairs(cases) do
      local r = H.survey(H.tmpdir(), SURVEY:gsub('INIT', case[1]))
      assert.equal(2, r.code, r.err)
      assert.matches(case[2], r.err)
    end
    local r = H.survey(H.tmpdir(), SURVEY:gsub('INIT', '{}'), '', { PSURVEY_CARBON_PORT = 'x' })
    assert.equal(2, r.code)
    assert.matches("environment variables PSURVEY_CARBON_%*: PSURVEY_CARBON_PORT must be a number, got string", r.err)
  end)
end)
