-- SHA-256 and HMAC-SHA-256 (core/sha256.c), by which an agent that
-- connects back proves it holds the run's token; each case of
-- core/test/test_sha256.c is one spec here.
local H = require('support.helpers')

describe('SHA-256 and HMAC', function()
  H.c_cases(it, 'test_sha256', 4)
end)
