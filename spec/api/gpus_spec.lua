-- GPUs per pset (paramsurvey's num_gpus): a pset's _psurvey.gpus takes
-- that many of its node's GPU ids, which its worker sees in
-- CUDA_VISIBLE_DEVICES; psets without see ''. Testable without a GPU by
-- configuring ids. Runs the psurvey program, so each case sets the
-- driver's environment.
local H = require('support.helpers')

-- Psets that each record what CUDA_VISIBLE_DEVICES holds, in Lua and in a
-- child process, while they sleep; `psets` and `opts` are Lua text.
local function survey(psets, opts)
  return ([[
local psurvey = require('psurvey')
local list = %s
local r = psurvey.map(function(p, system)
  local seen = os.getenv('CUDA_VISIBLE_DEVICES')
  local child = io.popen('printf %%s "${CUDA_VISIBLE_DEVICES-unset}"'):read('a')
  system.sleep(p.sleep or 0)
  return { seen = seen, child = child }
end, list, %s)
]]):format(psets, opts)
end

local no_gpus_env = { CUDA_VISIBLE_DEVICES = false }

local function ids_of(text)
  local ids = {}
  for id in text:gmatch('[^,]+') do ids[#ids + 1] = id end
  return ids
end

local function rows(dir)
  return H.sql(dir .. '/.psurvey/survey.db', 'select i, g, seen, child, _start s, _end e, _status st,'
    .. ' _exception ex from stage1 order by i')
end

describe('psurvey.map with gpus', function()
  teardown(H.cleanup)

  it('gives a pset as many distinct GPU ids as it asks for, and psets without none', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, survey([[{}
for i = 1, 12 do list[i] = { i = i, g = i % 3, sleep = 0.1, _psurvey = { gpus = i % 3 } } end]],
      '{ gpus = { 0, 1, 2, 3 }, ncores = 4 }'), '', no_gpus_env)
    assert.equal('', r.err)
    assert.equal(0, r.code)
    local got = rows(dir)
    assert.equal(12, #got)
    for _, row in ipairs(got) do
      assert.equal(row.seen, row.child) -- children inherit it
      local ids = ids_of(row.seen)
      assert.equal(row.g, #ids, row.seen)
      local seen = {}
      for _, id in ipairs(ids) do
        assert.matches('^[0-3]$', id)
        assert.is_nil(seen[id])
        seen[id] = true
      end
      if row.g == 0 then assert.equal('', row.seen) end
    end
  end)

  it('never gives one GPU id to two psets running at once', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, survey([[{}
for i = 1, 16 do list[i] = { i = i, g = 1 + i % 2, sleep = 0.3, _psurvey = { gpus = 1 + i % 2 } } end]],
      '{ gpus = { 0, 1, 2, 3 }, ncores = 4 }'), '', no_gpus_env)
    assert.equal('', r.err)
    assert.equal(0, r.code)
    local got = rows(dir)
    assert.equal(16, #got)
    local overlaps, used = 0, {}
    for a = 1, #got do
      for _, id in ipairs(ids_of(got[a].seen)) do used[id] = true end
      for b = a + 1, #got do
        local x, y = got[a], got[b]
        if x.s < y.e and y.s < x.e then
          overlaps = overlaps + 1
          for _, id in ipairs(ids_of(x.seen)) do
            for _, other in ipairs(ids_of(y.seen)) do
              assert.are_not.equal(id, other, ('psets %d and %d share GPU %s'):format(x.i, y.i, id))
            end
          end
        end
      end
    end
    assert.is_true(overlaps > 0, 'no two psets ran at once') -- else the check above proves nothing
    assert.same({ ['0'] = true, ['1'] = true, ['2'] = true, ['3'] = true }, used)
  end)

  it('runs psets of one GPU each on every GPU at once', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, survey([[{}
for i = 1, 8 do list[i] = { i = i, g = 1, sleep = 0.2, _psurvey = { gpus = 1 } } end]],
      '{ gpus = { 0, 1 }, ncores = 2 }'), '', no_gpus_env)
    assert.equal(0, r.code, r.err)
    -- Both GPUs at work at once (before a fix, all ran on GPU 0, one at a time).
    local got = rows(dir)
    local together = 0
    for a = 1, #got do
      for b = a + 1, #got do
        local x, y = got[a], got[b]
        if x.s < y.e and y.s < x.e then
          assert.are_not.equal(x.seen, y.seen)
          together = together + 1
        end
      end
    end
    assert.is_true(together > 0, 'the two GPUs never ran psets at once')
  end)

  it('fails a pset that asks for more GPUs than any host has, naming both counts', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, survey([[{ { i = 1, g = 1, _psurvey = { gpus = 1 } },
  { i = 2, g = 5, _psurvey = { gpus = 5 } }, { i = 3, g = 0 } }]], '{ gpus = { 0, 1, 2, 3 } }'), '',
      no_gpus_env)
    assert.equal(1, r.code)
    local got = rows(dir)
    assert.same({ 'ok', 'error', 'ok' }, { got[1].st, got[2].st, got[3].st })
    assert.equal('the pset asks for 5 GPUs (gpus) but this machine has 4', got[2].ex)
    r = H.survey(dir, survey('{ { i = 1, g = 1, _psurvey = { gpus = 1 } } }', '{}'), '--db other.db',
      { CUDA_VISIBLE_DEVICES = '', PSURVEY_VERBOSE = '1' })
    assert.equal(1, r.code)
    assert.matches("pset #1 %(g=1, i=1%) failed: the pset asks for 1 GPU %(gpus%) but this machine has none "
      .. "%(option 'gpus'", r.err)
  end)

  it("takes this machine's GPUs from CUDA_VISIBLE_DEVICES in the driver's environment", function()
    local dir = H.tmpdir()
    local r = H.survey(dir, survey([[{ { i = 1, g = 2, _psurvey = { gpus = 2 } }, { i = 2, g = 0 },
  { i = 3, g = 3, _psurvey = { gpus = 3 } } }]], '{}') .. [[
for _, res in ipairs(psurvey.current_resources()) do print(table.concat(res.gpus, ' ')) end]], '',
      { CUDA_VISIBLE_DEVICES = 'GPU-5e1f,7' })
    assert.equal(1, r.code)
    local got = rows(dir)
    assert.same({ 'GPU-5e1f,7', '' }, { got[1].seen, got[2].seen })
    assert.equal('the pset asks for 3 GPUs (gpus) but this machine has 2', got[3].ex)
    assert.equal('GPU-5e1f 7\n', r.out)
  end)

  it('takes them from nvidia-smi -L when nothing else names them', function()
    local dir = H.tmpdir()
    os.execute('mkdir -p ' .. H.quote(dir .. '/bin'))
    H.write(dir, 'bin/nvidia-smi', '#!/bin/sh\necho "GPU 0: NVIDIA A100 (UUID: GPU-aaaa)"\n'
      .. 'echo "GPU 1: NVIDIA A100 (UUID: GPU-bbbb)"\n')
    os.execute('chmod +x ' .. H.quote(dir .. '/bin/nvidia-smi'))
    local r = H.survey(dir, survey('{ { i = 1, g = 2, _psurvey = { gpus = 2 } } }', '{}'), '',
      { CUDA_VISIBLE_DEVICES = false, PATH = dir .. '/bin:/usr/bin:/bin' })
    assert.equal('', r.err)
    assert.equal(0, r.code)
    assert.equal('0,1', rows(dir)[1].seen)
  end)

  it('refuses bad GPU ids and counts, naming the option', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, survey('{ { i = 1 } }', '{ gpus = { 0, 0 } }'))
    assert.equal(2, r.code)
    assert.matches("option 'gpus' to map%(%): GPU id '0' is listed twice", r.err)
    r = H.survey(dir, survey('{ { i = 1 } }', "{ gpus = { 'a b' } }"))
    assert.matches("option 'gpus' to map%(%): GPU #1: expected an index from 0 or a name such as 'GPU%-8b9d9b4f' "
      .. "%(no commas or spaces%), got 'a b'", r.err)
    r = H.survey(dir, survey('{ { i = 1 } }', '{ gpus = 3 }'))
    assert.matches("option 'gpus' to map%(%): expected a list of GPU ids such as {0, 1} or '0,1', got number", r.err)
    r = H.survey(dir, survey('{ { i = 1 } }', '{}'), '--gpus 0,-1')
    assert.equal(2, r.code)
    assert.matches("option '%-%-gpus': GPU #2: expected an index from 0", r.err)
    r = H.survey(dir, survey('{ { i = 1, _psurvey = { gpus = -1 } } }', '{ gpus = { 0 } }'))
    assert.equal(3, r.code) -- as for every bad _psurvey table: the script's mistake, with its traceback
    assert.matches("per%-pset option 'gpus' must be an integer from 0 to 64, got %-1", r.err)
  end)
end)

describe('psurvey.current_resources', function()
  teardown(H.cleanup)

  it("answers from init()'s options before any map(), then from the nodes", function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.init({ gpus = { 1, 3 }, db = false })
local function show()
  local list = psurvey.current_resources()
  for _, res in ipairs(list) do
    print(#list, res.host == require('psurvey.core').hostname(), res.backend, math.type(res.num_cores),
      res.num_cores == psurvey.current_core_count(), res.memory > 0.1, table.concat(res.gpus, ','), res.connected)
  end
  print(psurvey.backend())
end
show()
psurvey.map(function() end, { {} })
show()
]], '', { CUDA_VISIBLE_DEVICES = false })
    assert.equal('', r.err)
    assert.equal(0, r.code)
    local line = '1\ttrue\tprocess\tinteger\ttrue\ttrue\t1,3\ttrue\nprocess\n'
    assert.equal(line .. line, r.out)
  end)

  it('counts the CPUs taskset allows', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', "print(require('psurvey').current_core_count())")
    local r = H.run(dir, 'survey.lua', nil, nil, 'taskset -c 0')
    assert.equal('1\n', r.out)
  end)

  it('lists ssh hosts as configured before they connect', function()
    local dir = H.tmpdir()
    H.write(dir, 'hosts.txt', 'alice@lab-pc1 gpus=0,1\nlab-pc2:2222 slots=8\n')
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.init({ backend = 'process,ssh', hosts = 'hosts.txt', gpus = {} })
for _, res in ipairs(psurvey.current_resources()) do
  print(res.backend, res.num_cores ~= nil, table.concat(res.gpus, ','), res.connected)
end
print(psurvey.backend(), psurvey.current_core_count() == require('psurvey.core').cpus())
]])
    assert.equal('', r.err)
    assert.equal('process\ttrue\t\ttrue\nssh\tfalse\t0,1\tfalse\nssh\tfalse\t\tfalse\nprocess,ssh\ttrue\n', r.out)
  end)
end)
