-- Named timers inside the worker: system.clock, system.record and
-- system.time, and the statistics of their samples across a map's psets
-- and workers in results.stats.timers.
local H = require('support.helpers')
local psurvey = require('psurvey')

local function column(view, key)
  local out = {}
  for row in view:rows() do out[#out + 1] = row[key] end
  return out
end

local function distinct(list)
  local seen, n = {}, 0
  for _, v in ipairs(list) do
    if not seen[v] then n = n + 1 end
    seen[v] = true
  end
  return n
end

-- The fields of a timer's statistics, without its percentiles.
local function summary(t)
  return { name = t.name, count = t.count, mean = t.mean, min = t.min, max = t.max }
end

describe('named timers', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  describe('system.clock', function()
    it('is monotonic, in float seconds, and finer than a microsecond', function()
      local r = psurvey.map(function(_, system)
        local last, finest, backwards = system.clock(), math.huge, 0
        for _ = 1, 10000 do
          local now = system.clock()
          if now < last then backwards = backwards + 1 end
          if now > last and now - last < finest then finest = now - last end
          last = now
        end
        local t0 = system.clock()
        system.sleep(0.02)
        return { kind = math.type(t0), backwards = backwards, finest = finest, slept = system.clock() - t0 }
      end, { { k = 1 } }, H.options())
      local row = r:rows()()
      assert.same({ 'float', 0 }, { row.kind, row.backwards })
      assert.is_true(row.finest < 1e-6, 'finest step ' .. row.finest)
      assert.is_true(row.slept >= 0.02 and row.slept < 0.5, 'slept ' .. row.slept)
    end)
  end)

  describe('system.record', function()
    it('aggregates the samples of every pset of every worker by name', function()
      local r = psurvey.map(function(_, system)
        system.record('a', 0.25)
        system.record('b', 0.5)
        system.record('b', 1.0)
        return { w = system.worker }
      end, psurvey.range(1, 200), H.options({ ncores = 2 }))
      assert.equal(200, #r)
      assert.equal(2, distinct(column(r, 'w')))
      local a, b = r.stats.timers.a, r.stats.timers.b
      assert.same({ name = 'a', count = 200, mean = 0.25, min = 0.25, max = 0.25 }, summary(a))
      assert.same({ name = 'b', count = 400, mean = 0.75, min = 0.5, max = 1.0 }, summary(b))
      -- Percentiles as for the run time: a log-linear histogram (1/32),
      -- within the samples' range.
      assert.same({ 0.25, 0.25, 0.25, 0.25, 0.25, 0.25 }, { a.p25, a.p50, a.p75, a.p90, a.p95, a.p99 })
      assert.equal(0.5, b.p25)
      assert.is_true(b.p90 > 0.98 and b.p90 <= 1.0, 'p90 ' .. b.p90)
      assert.equal("timer 'a' of 200 samples: mean 250 ms, min 250 ms, p50 250 ms, p90 250 ms, "
        .. 'p99 250 ms, max 250 ms', tostring(a))
    end)

    it('gives no timers to a map that records none', function()
      local r = psurvey.map(function() return nil end, psurvey.range(1, 3), H.options())
      assert.same({}, r.stats.timers)
      assert.equal(3, r.stats.count)
    end)

    it('keeps what a failed attempt recorded before it failed, for each attempt', function()
      local r = psurvey.map(function(p, system)
        system.record('x', 0.5)
        if p.value == 3 then error('three is bad') end
      end, psurvey.range(1, 10), H.options({ ncores = 1,
        retries = function(_, _, attempt) if attempt < 2 then return {} end end }))
      assert.equal(9, #r)
      assert.equal(2, #r:attempts())
      assert.same({ name = 'x', count = 11, mean = 0.5, min = 0.5, max = 0.5 }, summary(r.stats.timers.x))
    end)

    it('loses the unsent samples of a worker that dies, and goes on', function()
      local r = psurvey.map(function(p, system)
        system.record('x', 0.5)
        if p.value == 2 then os.execute('kill -9 ' .. system.pid) end
      end, psurvey.range(1, 10), H.options({ ncores = 1, group_size = 1, retries = 0 }))
      assert.equal(9, #r)
      assert.equal('signal', r.missing:rows()()._status)
      assert.equal(9, r.stats.timers.x.count)
    end)

    it('takes a sample of 0 and sub-microsecond samples', function()
      local r = psurvey.map(function(_, system)
        system.record('tiny', 0)
        system.record('tiny', 2.5e-7)
      end, psurvey.range(1, 2), H.options())
      local t = r.stats.timers.tiny
      assert.same({ name = 'tiny', count = 4, mean = 1.25e-7, min = 0, max = 2.5e-7 }, summary(t))
      assert.equal("timer 'tiny' of 4 samples: mean 125 ns, min 0 us, p50 0 us, p90 250 ns, p99 250 ns, "
        .. 'max 250 ns', tostring(t))
    end)

    it('raises on bad arguments, naming the argument', function()
      local r = psurvey.map(function(p, system)
        local calls = {
          function() system.record() end,
          function() system.record('', 1) end,
          function() system.record('a\n', 1) end,
          function() system.record(('x'):rep(129), 1) end,
          function() system.record('a') end,
          function() system.record('a', -1) end,
          function() system.record('a', 0 / 0) end,
          function() system.record('a', math.huge) end,
          function() system.record('a', '1 s') end,
          function() system.time('a') end,
          function() system.time(nil, function() end) end,
        }
        local ok, msg = pcall(calls[p.value])
        return { ok = ok, msg = msg:gsub('^[^:]*:%d+: ', '') }
      end, psurvey.range(1, 11), H.options())
      assert.same({
        "bad argument #1 to 'record' (string expected, got no value)",
        "bad argument #1 to 'record' (timer name must not be empty)",
        "bad argument #1 to 'record' (timer name must be UTF-8 without control characters, "
          .. 'of at most 128 bytes)',
        "bad argument #1 to 'record' (timer name must be UTF-8 without control characters, "
          .. 'of at most 128 bytes)',
        "bad argument #2 to 'record' (number expected, got no value)",
        "bad argument #2 to 'record' (seconds must be a finite number >= 0)",
        "bad argument #2 to 'record' (seconds must be a finite number >= 0)",
        "bad argument #2 to 'record' (seconds must be a finite number >= 0)",
        "bad argument #2 to 'record' (number expected, got string)",
        "bad argument #2 to 'time' (function expected, got no value)",
        "bad argument #1 to 'time' (string expected, got nil)",
      }, column(r, 'msg'))
      assert.same({}, r.stats.timers)
    end)

    it('holds 64 names in a map, and refuses a 65th', function()
      local r = psurvey.map(function(_, system)
        for k = 1, 64 do system.record(('t%02d'):format(k), 0.001) end
        local ok, msg = pcall(function() system.record('one too many', 0.001) end)
        return { ok = ok, msg = msg:gsub('^[^:]*:%d+: ', '') }
      end, psurvey.range(1, 2), H.options())
      assert.same({ "bad argument #1 to 'record' (more than 64 timer names in one map)",
        "bad argument #1 to 'record' (more than 64 timer names in one map)" }, column(r, 'msg'))
      local names = {}
      for name, t in pairs(r.stats.timers) do names[#names + 1] = name .. '=' .. t.count end
      assert.equal(64, #names)
      assert.equal(2, r.stats.timers.t64.count)
    end)
  end)

  describe('system.time', function()
    it("returns fn's results, and records how long it took", function()
      local r = psurvey.map(function(_, system)
        local a, b, c, n = system.time('add', function(x, y) return x + y, nil, 'z' end, 1, 2)
        local d = select('#', system.time('add', function() end))
        system.time('nap', system.sleep, 0.02)
        return { a = a, b = b, c = c, n = n, none = d }
      end, psurvey.range(1, 3), H.options())
      assert.same({ 3, 3, 3 }, column(r, 'a'))
      assert.same({ 'z', 'z', 'z' }, column(r, 'c'))
      assert.same({ 0, 0, 0 }, column(r, 'none'))
      local add, nap = r.stats.timers.add, r.stats.timers.nap
      assert.equal(6, add.count)
      assert.is_true(add.max < 0.01, 'add took ' .. add.max)
      assert.equal(3, nap.count)
      assert.is_true(nap.min >= 0.02 and nap.max < 0.5, 'nap ' .. nap.min .. ' .. ' .. nap.max)
    end)

    it('records the time of a function that raises, and lets its error through unchanged', function()
      local r = psurvey.map(function(p, system)
        local object = { why = 'mine' }
        local ok, err = pcall(system.time, 'boom', function()
          system.sleep(0.01)
          if p.value == 1 then error('plain failure') end
          error(object)
        end)
        if p.value == 3 then system.time('boom', error, 'the pset fails', 0) end
        return { ok = ok, err = type(err) == 'table' and (err == object and 'the same table') or err }
      end, psurvey.range(1, 3), H.options({ retries = 0 }))
      assert.same({ false, false }, column(r, 'ok'))
      assert.matches('^.*timers_spec.lua:%d+: plain failure$', column(r, 'err')[1])
      assert.equal('the same table', column(r, 'err')[2])
      assert.equal('the pset fails', r.missing:rows()()._exception)
      local boom = r.stats.timers.boom
      assert.equal(4, boom.count)
      assert.is_true(boom.min < 0.01 and boom.max >= 0.01, 'boom ' .. boom.min .. ' .. ' .. boom.max)
    end)

    it('times a function that yields, across its coroutine', function()
      local r = psurvey.map(function(_, system)
        local co = coroutine.wrap(function()
          return system.time('co', function()
            local got = coroutine.yield('paused')
            system.sleep(0.01)
            return got * 2
          end)
        end)
        local first = co()
        return { first = first, last = co(21) }
      end, { { k = 1 } }, H.options())
      assert.same({ first = 'paused', last = 42, k = 1 }, r:rows()())
      assert.equal(1, r.stats.timers.co.count)
      assert.is_true(r.stats.timers.co.min >= 0.01)
    end)
  end)

  it('works in the strict sandbox', function()
    local r = psurvey.map(function(_, system)
      local t0 = system.clock()
      system.record('strict', 0.125)
      local v = system.time('strict', function() return 7 end)
      return { v = v, up = system.clock() >= t0 }
    end, psurvey.range(1, 4), H.options({ sandbox = 'strict', ncores = 2 }))
    assert.same({ 7, 7, 7, 7 }, column(r, 'v'))
    assert.equal(8, r.stats.timers.strict.count)
    assert.equal(0.125, r.stats.timers.strict.max)
  end)

  describe('at vstats 1', function()
    local SURVEY = [[
local psurvey = require('psurvey')
psurvey.map(function(p, system)
  system.record('solve', p.value / 4)
  system.record('io', 0.002)
end, psurvey.range(1, 4), { name = 'timed' })
]]

    it('prints a line per timer after the run time, in name order', function()
      local dir = H.tmpdir()
      local r = H.survey(dir, SURVEY, '', { PSURVEY_VSTATS = '1' })
      assert.equal(0, r.code, r.err)
      local lines = {}
      for line in r.err:gmatch('[^\n]+') do lines[#lines + 1] = line end
      assert.equal(3, #lines, r.err)
      assert.matches('^psurvey: timed: run time of 4 psets: mean ', lines[1])
      assert.same({
        "psurvey: timed: timer 'io' of 4 samples: mean 2 ms, min 2 ms, p50 2 ms, p90 2 ms, p99 2 ms, max 2 ms",
        "psurvey: timed: timer 'solve' of 4 samples: mean 625 ms, min 250 ms, p50 499 ms, p90 998 ms, "
          .. 'p99 998 ms, max 1 s',
      }, { lines[2], lines[3] })
    end)

    it('prints none at vstats 0', function()
      local dir = H.tmpdir()
      local r = H.survey(dir, SURVEY, '', { PSURVEY_VSTATS = '0' })
      assert.same({ 0, '' }, { r.code, r.err })
    end)
  end)
end)
