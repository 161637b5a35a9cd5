-- What a terminal line says of failed psets: the pset named by its values
-- (core/brief.h) and a stage's failures grouped (core/tally.h). Each case
-- of core/test/test_report.c is one spec here.
local H = require('support.helpers')

describe('failure reports', function()
  H.c_cases(it, 'test_report', 4)
end)
