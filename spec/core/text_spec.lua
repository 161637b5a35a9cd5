-- Text in fixed fields (ps_text, ps_textf in core/ps.h), the one place
-- that cuts a message, a host name or a reason to fit: each case of
-- core/test/test_text.c is one spec here.
local H = require('support.helpers')

describe('text in fixed fields', function()
  H.c_cases(it, 'test_text', 3)
end)
