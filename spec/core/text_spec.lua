-- Text in fixed fields (ps_text, ps_textf in core/ps.h), the one place
-- that cuts a message, a host name or a reason to fit: each case of
-- core/test/test_text.c is one spec here.
local H = require('support.helpers')

describe('text in fixed fields', function()
  local program, names = H.c_test('test_text')
  it('has its cases', function()
    assert.is_true(#names >= 3, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)
  for _, name in ipairs(names) do
    it(name, function() H.c_case(program, name) end)
  end
end)
