-- The CPUs a process may use (core/cpus.c): the cgroup v2 cpu.max parser
-- and the quota up a cgroup tree; each case of core/test/test_cpus.c is
-- one spec here.
local H = require('support.helpers')

describe('usable CPUs', function()
  local program, names = H.c_test('test_cpus')
  it('has its cases', function()
    assert.is_true(#names >= 7, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)
  for _, name in ipairs(names) do
    it(name, function() H.c_case(program, name) end)
  end
end)
