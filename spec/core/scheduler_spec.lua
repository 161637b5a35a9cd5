-- The scheduling policy (core/scheduler.c) over nodes of a fake backend,
-- with no processes: core/test/test_scheduler.c plays the workers, and
-- each of its cases is one spec here.
local H = require('support.helpers')

local program = (os.getenv('BUILD_DIR') or (H.root .. '/build')) .. '/tests/test_scheduler'

describe('the scheduler', function()
  local list = io.popen(H.quote(program) .. ' --list 2>&1')
  local names = {}
  for line in list:lines() do names[#names + 1] = line end
  list:close()

  it('has its cases', function()
    assert.is_true(#names >= 10, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)

  for _, name in ipairs(names) do
    it(name, function()
      local out, rc = H.shell(('%s %s 2>&1'):format(H.quote(program), H.quote(name)))
      assert.equal('ok ' .. name .. '\n', out)
      assert.equal(0, rc)
    end)
  end
end)
