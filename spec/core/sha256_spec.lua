-- SHA-256 and HMAC-SHA-256 (core/sha256.c), by which an agent that
-- connects back proves it holds the run's token; each case of
-- core/test/test_sha256.c is one spec here.
local H = require('support.helpers')

describe('SHA-256 and HMAC', function()
  local program, names = H.c_test('test_sha256')
  it('has its cases', function()
    assert.is_true(#names >= 4, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)
  for _, name in ipairs(names) do
    it(name, function() H.c_case(program, name) end)
  end
end)
