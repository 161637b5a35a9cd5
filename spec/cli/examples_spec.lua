-- Every example in examples/ runs and exits 0: examples are tests.
local H = require('support.helpers')

-- Examples whose psets fail on purpose, to show what failures look like:
-- they exit 1, and stderr holds the one line of each map that groups its
-- failures.
local FAILING = {
  ['spring.lua'] = '^psurvey: spring: 6 failed: 3 x "[^\n]*", 3 x "did not settle in 60 s" %(tracebacks: [^\n]*%)\n$',
  ['sweep2d.lua'] = '^psurvey: sweep: 19 failed: 18 x "[^\n]*, 1 x "[^\n]*\n$',
}

describe('examples', function()
  teardown(H.cleanup)
  for name in io.popen('ls ' .. H.root .. '/examples/*.lua'):lines() do
    local short = name:match('([^/]+)$')
    it('runs ' .. short, function()
      local dir = H.tmpdir()
      local r = H.run(dir, H.quote(name), { PSURVEY_NCORES = '2' })
      if FAILING[short] then
        assert.matches(FAILING[short], r.err)
        assert.equal(1, r.code)
      else
        assert.equal('', r.err)
        assert.equal(0, r.code)
      end
      assert.is_true(#r.out > 0)
      assert.is_not_nil(io.open(dir .. '/.psurvey/' .. short:gsub('%.lua$', '.db')))
    end)
  end

  it('prints the readme example as a table of 5 rows', function()
    local r = H.run(H.tmpdir(), H.quote(H.root .. '/examples/readme.lua'), { PSURVEY_NCORES = '2' })
    assert.matches('^duration%s+id%s+', r.out)
    local rows = 0
    for _ in r.out:gmatch('\n%s*0%.3%s+%d') do rows = rows + 1 end
    assert.equal(5, rows)
  end)
end)

describe('the progress display', function()
  teardown(H.cleanup)

  it('draws a live bar on a terminal', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function() os.execute('sleep 0.05') return {} end, psurvey.range(1, 20), { name = 'bar' })
]])
    -- script(1) gives the program a pseudo-terminal
    local out = H.shell(('cd %s && LANG=C.UTF-8 script -qec "%s survey.lua --verbose 1 --ncores 2" /dev/null')
      :format(H.quote(dir), H.bin))
    assert.matches('\r\27%[Kbar [^\r]* %d+%% %d+/20 done, %d+ running, 0 failed, [%d.,]+/s, ETA ', out)
    assert.matches('psurvey: bar: done: 20 ok, 0 failed in ', out)
  end)

  -- The bar lines a run drew on a terminal of `cols` columns, escape codes
  -- taken out, and their widths in characters.
  local function bar_lines(cols, env)
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function() os.execute('sleep 0.05') return {} end, psurvey.range(1, 20), { name = 'bar' })
]])
    local out = H.shell(('cd %s && %s LANG=C.UTF-8 script -qec "stty cols %d; %s survey.lua --verbose 1 --vstats 0 '
      .. '--ncores 2" /dev/null'):format(H.quote(dir), env or '', cols, H.bin))
    local lines, widest = {}, 0
    for line in out:gsub('\27%[K', ''):gmatch('[^\r\n]+') do
      if line:find('%d+%% %d+/20 done') then
        lines[#lines + 1] = line
        widest = math.max(widest, utf8.len(line))
      end
    end
    return lines, widest, out
  end

  it('fits the bar to the terminal\'s width: 40 and 200 columns', function()
    local lines, widest = bar_lines(40)
    assert.is_true(#lines > 0)
    assert.is_true(widest <= 39, widest .. ' columns')
    lines, widest = bar_lines(200)
    assert.is_true(#lines > 0)
    assert.is_true(widest <= 199, widest .. ' columns')
    assert.matches('^bar [\u{2588}\u{2591}]+ +%d+%% %d+/20 done, %d+ running, 0 failed', lines[#lines])
  end)

  it('draws no bar and no escape codes under TERM=dumb', function()
    local lines, _, out = bar_lines(80, 'TERM=dumb')
    assert.same({}, lines)
    assert.is_nil(out:find('\27[', 1, true))
    assert.matches('psurvey: bar: done: 20 ok, 0 failed in ', out)
  end)

  it('prints a progress line every second at verbose 2 when not on a terminal', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function() os.execute('sleep 0.1') return {} end, psurvey.range(1, 24), { name = 'lines' })
]], '--verbose 2 --ncores 2')
    local lines = 0
    for _ in r.err:gmatch('psurvey: lines: %d+/24 done, %d+ running, 0 failed, [%d.]+/s, ETA %d+s\n') do
      lines = lines + 1
    end
    assert.is_true(lines >= 1)
  end)
end)
