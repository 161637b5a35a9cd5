-- What a terminal line says of failed psets: the pset named by its values
-- (core/brief.h) and a stage's failures grouped (core/tally.h). Each case
-- of core/test/test_report.c is one spec here.
local H = require('support.helpers')

describe('failure reports', function()
  local program, names = H.c_test('test_report')
  it('has its cases', function()
    assert.is_true(#names >= 4, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)
  for _, name in ipairs(names) do
    it(name, function() H.c_case(program, name) end)
  end
end)
