-- What one pset, or one stage, cannot leave behind for the next on the same
-- worker process: changed libraries, keys in `system`, a fed environment
-- metatable, a poisoned strict profile. Every spec runs its psets on one
-- worker (ncores = 1), in order, so the second pset meets what the first left.
local H = require('support.helpers')
local psurvey = require('psurvey')

-- Runs psets on one worker; returns the rows by `step`, failed ones too.
local function run(worker, psets, extra)
  local opts = { ncores = 1, retries = 0 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local r = psurvey.map(worker, psets, H.options(opts))
  local out = {}
  for row in r:rows() do
    row._status = 'ok'
    out[row.step] = row
  end
  for row in r.missing:rows() do out[row.step] = row end
  return out
end

describe('isolation between psets', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('keeps a strict library read-only for rawset too, so the next pset finds it unchanged', function()
    local rows = run(function(p)
      if p.step == 1 then
        local _, floor_err = pcall(rawset, math, 'floor', function() return 'poisoned' end)
        local _, string_err = pcall(rawset, string, 'injected', true)
        return { floor_err = floor_err, string_err = string_err, floor = math.floor(2.5), key = next(string) }
      end
      return { floor = math.floor(2.5), key = next(string) }
    end, { { step = 1 }, { step = 2 } }, { sandbox = 'strict' })
    assert.matches("the strict sandbox's 'math' library is read%-only$", rows[1].floor_err)
    assert.matches("the strict sandbox's 'string' library is read%-only$", rows[1].string_err)
    assert.same({ 2, 2 }, { rows[1].floor, rows[2].floor })
    assert.is_nil(rows[1].key)
    assert.is_nil(rows[2].key)
  end)

  it('keeps a strict library unchanged for a later map', function()
    run(function() pcall(rawset, table, 'concat', function() return 'poisoned' end) end, { { step = 1 } },
      { sandbox = 'strict' })
    local rows = run(function() return { r = table.concat({ 'a', 'b' }) } end, { { step = 1 } },
      { sandbox = 'strict' })
    assert.equal('ab', rows[1].r)
  end)

  for _, profile in ipairs({ 'default', 'strict' }) do
    it('gives the next pset a system table without the keys rawset added, in the ' .. profile .. ' profile',
      function()
        local rows = run(function(p, system)
          if p.step == 1 then rawset(system, 'leak', 'from pset 1') end
          return { leak = system.leak }
        end, { { step = 1 }, { step = 2 } }, { sandbox = profile })
        assert.equal('from pset 1', rows[1].leak)
        assert.equal('ok', rows[2]._status)
        assert.is_nil(rows[2].leak)
      end)
  end

  it('gives each default environment a metatable of its own, so a pset can neither break nor feed the next',
    function()
      local rows = run(function(p)
        if p.step == 1 then
          local env, getmt = _ENV, getmetatable
          getmt(env).__index = { fed = 'from pset 1' }
          return { fed = fed } -- luacheck: ignore 113 (fed: a global, on purpose)
        elseif p.step == 2 then
          local set = setmetatable
          set(_ENV, { __index = function() return 'from pset 2' end })
          return { fed = fed } -- luacheck: ignore 113
        end
        return { fed = fed, print = type(print) } -- luacheck: ignore 113
      end, { { step = 1 }, { step = 2 }, { step = 3 } })
      assert.equal('from pset 1', rows[1].fed) -- its own metatable: the pset sees what it did
      assert.equal('from pset 2', rows[2].fed)
      assert.equal('ok', rows[3]._status)
      assert.is_nil(rows[3].fed)
      assert.equal('function', rows[3].print)
    end)
end)

describe('isolation between stages on one worker', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('gives a strict stage a profile that an earlier default stage could not poison', function()
    local first = run(function(_, system)
      local reg = debug.getregistry()
      local strict = reg['psurvey.strict']
      if strict then debug.getmetatable(strict.math).__index.floor = function() return 'poisoned' end end
      debug.setmetatable(0, { __index = function() return 'poisoned' end })
      debug.getmetatable('').__unm = function() return 'poisoned' end
      return { pid = system.pid }
    end, { { step = 1 } })
    local rows = run(function(_, system)
      return {
        pid = system.pid,
        floor = math.floor(2.5),
        number = tostring(select(2, pcall(function() return (2).x end))),
        unm = -'2',
      }
    end, { { step = 1 } }, { sandbox = 'strict' })
    assert.equal(first[1].pid, rows[1].pid) -- the same worker process
    assert.equal('ok', rows[1]._status, rows[1]._exception)
    assert.equal(2, rows[1].floor)
    assert.matches('attempt to index a number value', rows[1].number)
    assert.equal(-2, rows[1].unm)
  end)
end)

describe('the limits of a pset', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  for _, timeout in ipairs({ 0, 5 }) do
    it(('ends a pset over its memory limit even when a pcall in a coroutine catches it (timeout %d)')
      :format(timeout), function()
        local marker = H.tmpdir() .. '/ran-on'
        local rows = run(function(p)
          local co = coroutine.wrap(function()
            pcall(function()
              local t = {} -- luacheck: ignore 241 (grows until the limit stops it)
              for i = 1, 1e7 do t[i] = i end
            end)
            local f = io.open(p.marker, 'w')
            f:write('the coroutine ran on after its memory limit')
            f:close()
          end)
          co()
          return { escaped = true }
        end, { { step = 1, marker = marker } }, { memory = 4, timeout = timeout })
        assert.equal('memory', rows[1]._status)
        assert.equal('memory limit of 4 MiB exceeded', rows[1]._exception)
        assert.is_nil(H.slurp(marker))
      end)
  end
end)
