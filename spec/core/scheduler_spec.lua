-- The scheduling policy (core/scheduler.c) over nodes of a fake backend,
-- with no processes: core/test/test_scheduler.c plays the workers, and
-- each of its cases is one spec here.
local H = require('support.helpers')

describe('the scheduler', function()
  H.c_cases(it, 'test_scheduler', 10)
end)
