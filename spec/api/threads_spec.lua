-- OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS in workers:
-- the pset's ncores when it sets one, else the user's own setting, else
-- 1, in the worker's environment and in what it starts.
local H = require('support.helpers')

local SURVEY = [[
local psurvey = require('psurvey')
local psets = {
  { n = 1 },
  { n = 2, _psurvey = { ncores = 2 } },
  { n = 3 },
  { n = 4, _psurvey = { ncores = 1 } },
  { n = 5 },
}
local r = psurvey.map(function(p)
  local shell = io.popen('echo "$OMP_NUM_THREADS $OPENBLAS_NUM_THREADS $MKL_NUM_THREADS"'):read('l')
  return { lua = os.getenv('OMP_NUM_THREADS'), blas = os.getenv('OPENBLAS_NUM_THREADS'),
    mkl = os.getenv('MKL_NUM_THREADS'), shell = shell }
end, psets, { db = false, ncores = 2, group_size = 5 })
for row in r:rows() do print(row.n, row.lua, row.blas, row.mkl, row.shell) end
]]

local unset = { OMP_NUM_THREADS = false, OPENBLAS_NUM_THREADS = false, MKL_NUM_THREADS = false }

describe('thread variables in workers', function()
  teardown(H.cleanup)

  it('are 1, or the pset ncores, set again for each pset of one worker', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, SURVEY, '', unset)
    assert.equal('', r.err)
    assert.equal(0, r.code)
    assert.equal(table.concat({
      '1\t1\t1\t1\t1 1 1',
      '2\t2\t2\t2\t2 2 2',
      '3\t1\t1\t1\t1 1 1',
      '4\t1\t1\t1\t1 1 1',
      '5\t1\t1\t1\t1 1 1',
    }, '\n') .. '\n', r.out)
  end)

  it("keep the user's own setting for psets without ncores", function()
    local dir = H.tmpdir()
    local env = { OMP_NUM_THREADS = '3', OPENBLAS_NUM_THREADS = false, MKL_NUM_THREADS = '8' }
    local r = H.survey(dir, SURVEY, '', env)
    assert.equal('', r.err)
    assert.equal(0, r.code)
    assert.equal(table.concat({
      '1\t3\t1\t8\t3 1 8',
      '2\t2\t2\t2\t2 2 2',
      '3\t3\t1\t8\t3 1 8',
      '4\t1\t1\t1\t1 1 1',
      '5\t3\t1\t8\t3 1 8',
    }, '\n') .. '\n', r.out)
  end)
end)
