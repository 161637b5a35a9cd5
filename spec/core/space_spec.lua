-- The sample generator and the keyed bijection (core/space.h) and the
-- views built on it (core/view.h): each case of core/test/test_space.c is
-- one spec here.
local H = require('support.helpers')

describe('samples and views', function()
  H.c_cases(it, 'test_space', 7)
end)
