-- The timers at the end of a RESULTS frame (core/msg.c, core/frame.h) and
-- the statistics they carry (core/stats.c): each case of
-- core/test/test_msg.c is one spec here.
local H = require('support.helpers')

describe('the timers of a results frame', function()
  H.c_cases(it, 'test_msg', 6)
end)
