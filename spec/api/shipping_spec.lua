-- Shipping the worker (core.ship, lship.c): what travels with it, and what
-- is refused before any worker process starts.
local H = require('support.helpers')
local psurvey = require('psurvey')

local function first_row(r)
  local row = (r:rows())()
  if row then
    row._status = 'ok'
    return row
  end
  return (r.missing:rows())()
end

describe('shipping the worker', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  for _, profile in ipairs({ 'default', 'strict' }) do
    it('sends an upvalue table with its metatable, in the ' .. profile .. ' profile', function()
      local Point = {}
      Point.__index = Point
      function Point.new(x, y) return setmetatable({ x = x, y = y }, Point) end
      function Point:norm2() return self.x * self.x + self.y * self.y end
      local origin = Point.new(3, 4)
      local defaults = setmetatable({ given = 1 }, { __index = { scale = 2 } })
      local r = psurvey.map(function(p)
        local moved = Point.new(origin.x + p.dx, origin.y)
        return {
          n = origin:norm2(), m = moved:norm2(), scale = defaults.scale, given = defaults.given,
          same = getmetatable(origin) == Point, raw = rawget(defaults, 'scale'),
        }
      end, { { dx = 1 } }, H.options({ sandbox = profile, retries = 0 }))
      local row = first_row(r)
      assert.equal('ok', row._status, row._exception)
      assert.same({ 25, 32, 2, 1, true }, { row.n, row.m, row.scale, row.given, row.same })
      assert.is_nil(row.raw)
    end)
  end

  it('refuses an upvalue whose metatable cannot travel, naming it', function()
    local handle = setmetatable({}, { __index = io.stderr })
    local ok, err = pcall(psurvey.map, function() return { h = handle.x } end, { { a = 1 } }, H.options())
    assert.is_false(ok)
    assert.matches("map: the worker cannot be sent to worker processes: its upvalue 'handle' %-> "
      .. 'metatable%.__index is a userdata %(FILE%*%), which cannot be sent to worker processes', err)
  end)

  it('refuses a worker over the frame limit before any process starts, naming its biggest upvalue', function()
    local small = ('y'):rep(1000)
    local big = ('x'):rep(241 * 1024 * 1024)
    local db = H.tmpdir() .. '/results.db'
    local ok, err = pcall(psurvey.map, function() return { n = #big + #small } end, { { a = 1 } },
      { db = db, verbose = 0, vstats = 0 })
    big = nil -- luacheck: ignore 311 (frees the string)
    collectgarbage()
    assert.is_false(ok)
    assert.equal('map: the worker cannot be sent to worker processes: it is 241.0 MiB encoded, '
      .. "over the 240 MiB a worker may take (its biggest upvalue, 'big', takes 241.0 MiB)", err)
    assert.is_nil(H.slurp(db)) -- nothing ran, nothing was written
  end)
end)
