-- The scheduling policy (core/scheduler.c) over nodes of a fake backend,
-- with no processes: core/test/test_scheduler.c plays the workers, and
-- each of its cases is one spec here.
local H = require('support.helpers')

describe('the scheduler', function()
  local program, names = H.c_test('test_scheduler')
  it('has its cases', function()
    assert.is_true(#names >= 10, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)
  for _, name in ipairs(names) do
    it(name, function() H.c_case(program, name) end)
  end
end)
