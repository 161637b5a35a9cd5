-- The CPUs a process may use (core/cpus.c): the cgroup v2 cpu.max parser
-- and the quota up a cgroup tree; each case of core/test/test_cpus.c is
-- one spec here.
local H = require('support.helpers')

describe('usable CPUs', function()
  H.c_cases(it, 'test_cpus', 7)
end)
