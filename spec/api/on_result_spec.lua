-- map()'s on_result: paramsurvey's out_func, a function the driver calls
-- with each pset's stored row while the survey runs.
local H = require('support.helpers')
local psurvey = require('psurvey')

describe('map option on_result', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('is called in the driver with each stored row, failures too, while the map runs', function()
    local calls, during = {}, {}
    local r = psurvey.map(function(p)
      if p.value == 3 then error('three', 0) end
      return { y = p.value * 2 }
    end, psurvey.range(1, 5), H.options({
      name = 'called',
      ncores = 1, -- one worker: rows come in pset order, so pset #5's call is the last
      on_result = function(row, system)
        calls[row._index] = row
        -- The store holds the row already: another reader sees it.
        during[row._index] = { finished = system.progress.finished, failures = system.progress.failures,
          total = system.progress.total, name = system.name }
        if row._index == 4 then error('callback error', 0) end
        if row._index == 5 then during.exceptions = system.progress.exceptions end
      end,
    }))
    assert.equal(4, #r)
    for i = 1, 5 do assert.is_table(calls[i], 'pset #' .. i) end
    assert.same({ value = 2, y = 4 }, { value = calls[2].value, y = calls[2].y })
    assert.equal('ok', calls[2]._status)
    assert.equal('number', type(calls[2]._duration))
    assert.equal('integer', math.type(calls[2]._worker))
    assert.equal('error', calls[3]._status)
    assert.equal('three', calls[3]._exception)
    assert.is_nil(calls[3].y)
    -- Counts include the row itself; they grow as the map runs.
    local last = during[5]
    assert.same({ finished = 4, failures = 1, total = 5, name = 'called' }, last)
    -- The worker's error and the callback's own, as results.progress counts them.
    assert.equal(2, during.exceptions)
    assert.equal(2, r.progress.exceptions)
    assert.is_true(during[1].finished + during[1].failures <= during[5].finished + during[5].failures)
  end)

  it('reports its own error with the traceback, counts it, keeps the row and goes on', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
local function check(row) if row.value == 2 then error('cannot file pset ' .. row.value) end end
local r = psurvey.map(function(p) return { y = p.value } end, psurvey.range(1, 4), {
  name = 'cb', ncores = 1, on_result = function(row) check(row) end })
print(#r, r.progress.exceptions, r.progress.on_result_errors, r.progress.failures, r.progress.finished)
]], '', { PSURVEY_VERBOSE = '2' })
    assert.equal(1, r.code, r.err) -- an error of the script's own code: exit status 1, as a failed pset
    assert.equal('4\t1\t1\t0\t4\n', r.out)
    assert.matches('psurvey: cb: on_result failed on pset #2 %(value=2%): survey%.lua:2: cannot file pset 2\n', r.err)
    assert.matches("\n    [^\n]*in upvalue 'check'", r.err) -- verbose 2: the traceback
    local log = H.slurp(dir .. '/' .. H.logs(dir)[1])
    assert.matches('stage cb: on_result failed on pset #2: survey%.lua:2: cannot file pset 2\n', log)
    assert.matches("in upvalue 'check'", log)
    assert.same({ { n = 4 } }, H.sql(dir .. '/.psurvey/survey.db', 'select count(*) as n from cb'))
  end)

  it('cannot start another map() while one runs, and the refused one leaves no trace', function()
    local err
    local db = H.tmpdir() .. '/nested.db'
    local first = psurvey.map(function() return {} end, { {} }, H.options({
      db = db,
      on_result = function()
        local ok, e = pcall(psurvey.map, function() end, { {} }, H.options({ db = db }))
        err = not ok and e
      end,
    }))
    assert.matches('map%(%) cannot be called while a map%(%) runs', err)
    -- Default names go on from the first: the refused map took none.
    local second = psurvey.map(function() return {} end, { {} }, H.options({ db = db }))
    assert.equal(tonumber(first.name:match('%d+$')) + 1, tonumber(second.name:match('%d+$')))
  end)

  it('is a function given to map(), never a flag or a variable', function()
    local ok, err = pcall(psurvey.map, function() end, {}, { on_result = 'print' })
    assert.is_false(ok)
    assert.matches("option 'on_result' to map%(%): expected a function%(row, system%), got string$", err)
    ok, err = pcall(psurvey.init, { on_result = print })
    assert.matches("option 'on_result' belongs to map%(%), not init%(%)$", err)
    local r = H.survey(H.tmpdir(), "require('psurvey').map(function() end, {})", '', { PSURVEY_ON_RESULT = 'x' })
    assert.equal(2, r.code)
    assert.matches("environment variable PSURVEY_ON_RESULT: option 'on_result' is a function: give it to map%(%)",
      r.err)
    r = H.run(H.tmpdir(), 'survey.lua --on-result x')
    assert.matches("unknown option '%-%-on%-result'", r.err)
  end)
end)
