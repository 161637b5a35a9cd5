-- The sample generator and the keyed bijection (core/space.h) and the
-- views built on it (core/view.h): each case of core/test/test_space.c is
-- one spec here.
local H = require('support.helpers')

describe('samples and views', function()
  local program, names = H.c_test('test_space')
  it('has its cases', function()
    assert.is_true(#names >= 7, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)
  for _, name in ipairs(names) do
    it(name, function() H.c_case(program, name) end)
  end
end)
