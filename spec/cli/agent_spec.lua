-- README "Slurm", "How agents connect": `psurvey agent --connect HOST:PORT
-- --slots N` offers N workers at once instead of one per CPU. Here srun is
-- a stand-in on the PATH that starts the agents on this machine, as a real
-- srun starts one per node of an allocation (the #slurm specs run the real
-- one): the driver, inside "an allocation", hands them the token in the
-- environment, and each connects back over loopback.
local H = require('support.helpers')

describe('psurvey agent', function()
  local SURVEY = [[
  local psurvey = require('psurvey')
  local results = psurvey.map(function(p, system)
    system.sleep(0.05)
    return { y = p.x * p.x }
  end, psurvey.product({ x = psurvey.range(1, 60) }), { name = 'squares', backend = 'slurm',
    slurm = { listen = '127.0.0.1' } })
  print(#results, #results.missing)
  ]]

  local function stand_in_srun(dir, extra)
    os.execute('mkdir -p ' .. H.quote(dir .. '/bin'))
    H.write(dir, 'bin/srun', ([=[#!/usr/bin/env bash
nodes=1
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in --nodes=*) nodes=${1#--nodes=} ;; esac
  shift
done
for _ in $(seq "$nodes"); do "$@" %s & done
wait
]=]):format(extra))
    os.execute('chmod +x ' .. H.quote(dir .. '/bin/srun'))
  end

  it('offers --slots N workers: two agents of 3 slots run 6 workers', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', SURVEY)
    stand_in_srun(dir, '--slots 3')
    local r = H.run(dir, 'survey.lua', { SLURM_JOB_ID = 'stand-in', SLURM_JOB_NUM_NODES = '2',
      PATH = dir .. '/bin:' .. os.getenv('PATH') })
    assert.equal(0, r.code, r.err)
    assert.equal('60\t0\n', r.out)
    local log = H.slurp(dir .. '/' .. H.logs(dir)[1])
    local _, agents = log:gsub('connected %(%S+, 3 cores, %d+ MiB%), 3 slots', '')
    assert.equal(2, agents, log)
    assert.same({ { n = 6 } }, H.sql(dir .. '/.psurvey/survey.db', 'select count(distinct _worker) n from squares'))
  end)

  it('refuses a --slots that is not a number from 1 to 4096, saying so', function()
    for _, bad in ipairs({ '0', '-2', '4097', 'many', '3x' }) do
      local out, rc = H.shell(('%s agent --connect 127.0.0.1:1 --slots %s 2>&1'):format(H.bin, bad))
      assert.equal(2, rc, bad)
      assert.matches('usage: psurvey agent %[%-%-connect HOST:PORT %[%-%-token%-file FILE%] %[%-%-slots N%]%]', out)
      assert.matches('%-%-slots N: run N workers at once %(1 to 4096%)', out)
    end
  end)
end)
