-- Options of init() and map(): checks, names in errors, precedence.
local H = require('support.helpers')
local psurvey = require('psurvey')

local function noop() return {} end

-- What the slurm backend says outside an allocation, without nodes.
local NO_ALLOCATION = "'slurm' runs inside a Slurm allocation %(an sbatch script or salloc%), and SLURM_JOB_ID"
  .. ' is not set here'

describe('psurvey options', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('rejects an unknown option, suggesting a near name', function()
    local ok, err = pcall(psurvey.map, noop, {}, { ncore = 2 })
    assert.is_false(ok)
    assert.matches("unknown option 'ncore' to map%(%) %(did you mean 'ncores'%?%)$", err)
    ok, err = pcall(psurvey.init, { verbos = 1 })
    assert.matches("unknown option 'verbos' to init%(%) %(did you mean 'verbose'%?%)$", err)
  end)

  it('rejects a bad value, naming the option', function()
    local ok, err = pcall(psurvey.map, noop, {}, { verbose = 7 })
    assert.is_false(ok)
    assert.matches("option 'verbose' to map%(%): expected 0 to 3, got 7$", err)
    ok, err = pcall(psurvey.map, noop, {}, { ncores = 'two' })
    assert.matches("option 'ncores' to map%(%): expected an integer, got string$", err)
    ok, err = pcall(psurvey.map, noop, {}, { limit = 1.5 })
    assert.matches("option 'limit' to map%(%): expected an integer, got 1.5$", err)
    ok, err = pcall(psurvey.init, { name = 'x' })
    assert.matches("option 'name' belongs to map%(%), not init%(%)$", err)
  end)

  it('says at init() what a backend lacks here, before any map()', function()
    local ok, err = pcall(psurvey.init, { backend = 'slurm' })
    assert.is_false(ok)
    assert.matches("option 'backend' %(from init%): " .. NO_ALLOCATION .. '; or give slurm = { nodes = N, time ='
      .. ' ... } for psurvey to ask for allocations itself$', err)
    ok, err = pcall(psurvey.init, { backend = 'sge' })
    assert.matches("option 'backend' to init%(%): expected 'process', 'ssh' or 'slurm' %(or a list of them%), got "
      .. "'sge'$", err)
    -- The options of the failed init() are not kept.
    assert.equal(1, #psurvey.map(noop, { {} }, H.options()))
  end)

  it('says what ssh and slurm need', function()
    local ok, err = pcall(psurvey.map, noop, {}, { backend = 'ssh' })
    assert.is_false(ok)
    assert.matches("option 'backend' %(from map%): 'ssh' needs hosts: a hosts file %(%-%-hosts FILE%) or ", err)
    ok, err = pcall(psurvey.map, noop, {}, { backend = 'slurm' })
    assert.matches(NO_ALLOCATION, err)
  end)

  it('takes one backend, several separated by commas, or a list of them, each once', function()
    for _, given in ipairs({ 'process', { 'process' } }) do
      local r = psurvey.map(noop, { {} }, H.options({ backend = given }))
      assert.equal(1, #r)
    end
    local cases = {
      { 'proces', "expected 'process', 'ssh' or 'slurm' %(or a list of them%), got 'proces'$" },
      { 'process,', "expected 'process', 'ssh' or 'slurm' %(or a list of them%), got ''$" },
      { { 'process', 42 }, "expected 'process', 'ssh' or 'slurm' %(or a list of them%), got number$" },
      { 'ssh,process,ssh', "'ssh' is listed twice$" },
      { {}, 'expected at least one backend$' },
      { true, "expected 'process', 'ssh', 'slurm' or a list of them, got boolean$" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(psurvey.map, noop, {}, { backend = case[1] })
      assert.is_false(ok)
      assert.matches("option 'backend' to map%(%): " .. case[2], err)
    end
    local ok, err = pcall(psurvey.map, noop, {}, { backend = 'process,slurm' })
    assert.is_false(ok)
    assert.matches("option 'backend' %(from map%): " .. NO_ALLOCATION, err)
  end)

  it('rejects bad arguments to map', function()
    local ok, err = pcall(psurvey.map, 'worker', {})
    assert.matches("bad argument #1 to 'map' %(function expected, got string%)$", err)
    ok, err = pcall(psurvey.map, noop, 'psets')
    assert.matches("bad argument #2 to 'map' %(psets must be a psurvey.product, a psurvey.range or an array "
      .. 'of pset tables, got string%)$', err)
    ok, err = pcall(psurvey.map, noop, { 1, 2 })
    assert.matches("bad argument #2 to 'map' %(pset #1 is a number, expected a table%)$", err)
    ok, err = pcall(psurvey.map, noop, { a = 1 })
    assert.matches("psets must be an array of pset tables, but it has key a %(wrap one pset in {}%)", err)
    ok, err = pcall(psurvey.map, noop, { { x = 1 }, { f = print } })
    assert.matches("pset #2 key 'f' holds a C function, which cannot be sent to workers", err)
    ok, err = pcall(psurvey.map, noop, { { _x = 1 } })
    assert.matches("pset #1 key '_x' is reserved", err)
  end)

  it('refuses a user value that cannot travel', function()
    local ok, err = pcall(psurvey.map, noop, { { a = 1 } }, { user = { f = io.stdout } })
    assert.is_false(ok)
    assert.matches("option 'user': the value.f is a userdata %(FILE%*%), which cannot be encoded", err)
  end)

  it('gives a name used again in this run the first free name_2, name_3, ..., noted in the log', function()
    local opts = H.options({ name = 'round' })
    local names = {}
    for i = 1, 3 do
      local r = psurvey.map(function(p) return { y = p.a * i } end, { { a = 1 } }, opts)
      names[i] = r.name
      assert.equal(i, r:column('y')[1])
    end
    assert.same({ 'round', 'round_2', 'round_3' }, names)
    local r = psurvey.map(noop, { { a = 1 } }, H.options({ db = opts.db, name = 'ROUND' }))
    assert.equal('ROUND_4', r.name)
    local log = H.slurp(r.log)
    assert.matches("table 'round' was written earlier in this run: this map%(%) writes 'round_2'", log)
    assert.matches("table 'round' was written earlier in this run %(as 'ROUND': names that differ only in letter "
      .. "case are one table%): this map%(%) writes 'ROUND_4'", log)
  end)

  it('lets map() options win over init() options', function()
    psurvey.init({ limit = 2, verbose = 0, vstats = 0 })
    local r = psurvey.map(noop, psurvey.range(1, 5), { db = H.tmpdir() .. '/x.db' })
    assert.equal(2, #r)
    r = psurvey.map(noop, psurvey.range(1, 5), { db = H.tmpdir() .. '/x.db', limit = 4 })
    assert.equal(4, #r)
    psurvey.init({})
  end)
end)
