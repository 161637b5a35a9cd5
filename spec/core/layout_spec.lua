-- The engine's floors (core/README.md): each file of core/ includes only
-- its own floor and those below, headers include each other without a
-- cycle, and no engine file speaks Lua.
local H = require('support.helpers')

-- The floor of every file of core/, by name without its extension.
local floors = {
  ps = 0, util = 0, buf = 0, log = 0, stats = 0, census = 0, cpus = 0, sha256 = 0,
  value = 1, json = 1, hash = 1, brief = 1, tally = 1,
  source = 2, resources = 2, space = 2, view = 2,
  frame = 3, link = 3, child = 3, program = 3, capture = 3, carbon = 3, auth = 3, dial = 3, errand = 3,
  msg = 4,
  node = 5, pool = 5, ['local'] = 5, relay = 5, ssh = 5, agent = 5, gate = 5, slurm = 5, sbatch = 5,
  store = 5, store_private = 5, schema = 5, catalog = 5, query = 5, stage = 5, sqlstage = 5, memstage = 5,
  resume = 5, cursor = 5, celltypes = 5, export = 5,
  scheduler = 6, outcome = 6,
  run = 7, run_private = 7, finish = 7, refusals = 7, progress = 7,
}

local function includes(path)
  local out = {}
  for line in io.lines(path) do
    local quoted = line:match('^#include "([^"]+)"')
    local system = line:match('^#include <([^>]+)>')
    if quoted then out[#out + 1] = quoted end
    if system then out[#out + 1] = '<' .. system .. '>' end
  end
  return out
end

local function engine_files()
  local list = {}
  for name in io.popen('ls ' .. H.quote(H.root .. '/core')):lines() do
    if name:match('%.[ch]$') then list[#list + 1] = name end
  end
  return list
end

describe('the engine (core/)', function()
  local files = engine_files()

  it('puts every file on a floor', function()
    local missing = {}
    for _, f in ipairs(files) do
      if floors[f:gsub('%.[ch]$', '')] == nil then missing[#missing + 1] = f end
    end
    assert.same({}, missing)
  end)

  it('includes only its own floor and those below', function()
    local upward = {}
    for _, f in ipairs(files) do
      local mine = floors[f:gsub('%.[ch]$', '')]
      for _, inc in ipairs(includes(H.root .. '/core/' .. f)) do
        local theirs = floors[inc:gsub('%.h$', '')]
        if theirs and mine and theirs > mine then upward[#upward + 1] = ('%s -> %s'):format(f, inc) end
      end
    end
    assert.same({}, upward)
  end)

  it('has no cycle among its headers', function()
    local graph = {}
    for _, f in ipairs(files) do
      if f:match('%.h$') then
        graph[f] = {}
        for _, inc in ipairs(includes(H.root .. '/core/' .. f)) do
          if not inc:match('^<') then table.insert(graph[f], inc) end
        end
      end
    end
    local state, cycle = {}, nil
    local function visit(h, path)
      if state[h] == 'done' or cycle then return end
      if state[h] == 'open' then
        cycle = table.concat(path, ' -> ') .. ' -> ' .. h
        return
      end
      state[h] = 'open'
      path[#path + 1] = h
      for _, next in ipairs(graph[h] or {}) do visit(next, path) end
      path[#path] = nil
      state[h] = 'done'
    end
    for h in pairs(graph) do visit(h, {}) end
    assert.is_nil(cycle)
  end)

  it('does not include Lua, nor the bindings', function()
    local lua = { ['<lua.h>'] = true, ['<lauxlib.h>'] = true, ['<lualib.h>'] = true, ['<luaconf.h>'] = true }
    for name in io.popen('ls ' .. H.quote(H.root .. '/core/lua')):lines() do
      if name:match('%.h$') then lua[name] = true end
    end
    local found = {}
    for _, f in ipairs(files) do
      for _, inc in ipairs(includes(H.root .. '/core/' .. f)) do
        if lua[inc] then found[#found + 1] = ('%s -> %s'):format(f, inc) end
      end
    end
    assert.same({}, found)
  end)
end)
