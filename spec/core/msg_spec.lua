-- The timers at the end of a RESULTS frame (core/msg.c, core/frame.h) and
-- the statistics they carry (core/stats.c): each case of
-- core/test/test_msg.c is one spec here.
local H = require('support.helpers')

describe('the timers of a results frame', function()
  local program, names = H.c_test('test_msg')
  it('has its cases', function()
    assert.is_true(#names >= 6, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)
  for _, name in ipairs(names) do
    it(name, function() H.c_case(program, name) end)
  end
end)
