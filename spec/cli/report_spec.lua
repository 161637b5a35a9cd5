-- psurvey report: the HTML page of a results database, made from a real
-- survey (examples/sweep2d.lua) and real SQLite, checked as text, by tidy,
-- and (#browser) in headless Chromium: each section rendered and not
-- blank, the charts and labels in the DOM, no JavaScript error, no request.
-- With PSURVEY_UPDATE_SCREENSHOT=1 the browser spec also writes the
-- README's screenshot, doc/report.png.
local H = require('support.helpers')
local C = require('support.chromium')

-- The sections of a stage, as the page names them.
local SECTIONS = { 'summary', 'throughput', 'busy', 'runtime', 'failures', 'slowest', 'results', 'scatter', 'heatmap' }

-- The example's database and its report, made once.
local example = {}
local function sweep2d()
  if example.page then return example end
  local dir = H.tmpdir()
  local r = H.run(dir, H.quote(H.root .. '/examples/sweep2d.lua'), { PSURVEY_NCORES = '2' })
  assert(r.code == 1, r.err)
  r = H.run(dir, 'report .psurvey/sweep2d.db')
  example = { dir = dir, db = dir .. '/.psurvey/sweep2d.db', path = dir .. '/sweep2d.html', run = r }
  example.page = H.slurp(example.path)
  return example
end

-- The text of a page without its tags and with its entities read back
-- (enough for the entities the report writes).
local function text(page)
  return (page:gsub('<[^>]*>', ' '):gsub('&lt;', '<'):gsub('&gt;', '>'):gsub('&quot;', '"'):gsub('&#39;', "'")
    :gsub('&amp;', '&'):gsub('%s+', ' '))
end

describe('psurvey report', function()
  teardown(H.cleanup)

  it('writes NAME.html in the working directory and says so', function()
    local e = sweep2d()
    assert.equal(0, e.run.code)
    assert.matches('^psurvey: report: wrote sweep2d%.html %(%d+ KiB%)\n$', e.run.err)
    assert.equal('', e.run.out)
    assert.is_true(#e.page > 20000 and #e.page < 400000, #e.page .. ' bytes')
  end)

  it('holds every section, its charts and their axis titles', function()
    local page = sweep2d().page
    assert.matches('^<!DOCTYPE html>\n<html lang="en">', page)
    for _, id in ipairs({ 'provenance', 's1' }) do
      assert.truthy(page:find('<section id="' .. id .. '"', 1, true), id)
    end
    for _, name in ipairs(SECTIONS) do
      assert.truthy(page:find('<section id="s1-' .. name .. '"', 1, true), name)
    end
    for _, chart in ipairs({ 'throughput', 'busy', 'runtime', 'scatter', 'heatmap' }) do
      assert.truthy(page:find('<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="s1-' .. chart .. '-chart"', 1,
        true), chart)
    end
    local t = text(page)
    assert.matches('time since the first start %(m?s%)', t)
    local host = H.sql(sweep2d().db, 'SELECT host FROM _psurvey_runs')[1].host
    for _, label in ipairs({ 'psets finished per second', host .. ' · 1', host .. ' · 2',
      'run time', 'p50', 'p90', 'p99', 'amplitude against frequency', 'Heatmap: amplitude over frequency and damping',
      'mean amplitude' }) do
      assert.truthy(t:find(label, 1, true), label)
    end
  end)

  it('loads nothing from elsewhere: no script, no link, no font, no image', function()
    local page = sweep2d().page
    assert.same({}, C.static_refs(page))
    for _, tag in ipairs({ '<script', '<link', '<img', '<iframe', '@font-face', '@import' }) do
      assert.falsy(page:lower():find(tag, 1, true), tag)
    end
  end)

  it('is valid HTML to tidy', function()
    local out, rc = H.shell('tidy -errors -quiet ' .. H.quote(sweep2d().path) .. ' 2>&1')
    assert.equal('', out)
    assert.equal(0, rc)
  end)

  it('groups the failures by message, with their first psets', function()
    local t = text(sweep2d().page)
    assert.matches("18 error system.run: 'awk' exited with status 3; its standard error ends: no damping: the"
      .. ' transient never dies away #1 [^#]*#8 [^#]*#15 ', t)
    assert.matches("1 error system.run: 'awk' exited with status 4; its standard error ends: amplitude blew up: |x| >"
      .. ' 100 at t = [%d.]+ #57 ', t)
    -- ... and the attempts table the same way, attempt by attempt.
    assert.truthy(t:find('#1 (attempt 1), #8 (attempt 1), #15 (attempt 1)', 1, true))
    assert.truthy(t:find('From the table sweep_attempts', 1, true))
  end)

  it('lists the slowest psets, slowest first', function()
    local page = sweep2d().page
    local slowest = page:match('<section id="s1%-slowest">(.-)</section>')
    local first = math.tointeger(H.sql(sweep2d().db,
      'SELECT _index FROM sweep ORDER BY _duration DESC, _index LIMIT 1')[1]._index)
    assert.matches('<tbody><tr><td class="n">' .. first .. '</td>', slowest)
    local n = 0
    for _ in slowest:gmatch('<tr>') do n = n + 1 end
    assert.equal(11, n) -- the header and ten psets
  end)

  it('shows the provenance: script, hashes, versions, options and where each came from', function()
    local e = sweep2d()
    local run = H.sql(e.db, 'SELECT * FROM _psurvey_runs')[1]
    local stage = H.sql(e.db, 'SELECT code_hash FROM _psurvey_tables')[1]
    local t = text(e.page)
    for _, s in ipairs({ 'script ' .. run.script, 'script_hash ' .. run.script_hash, 'lua Lua 5.4',
      'sqlite ' .. run.sqlite, 'libuv ' .. run.libuv, 'psurvey ' .. run.psurvey, 'host ' .. run.host,
      'code_hash ' .. stage.code_hash, 'ncores 2 environment', 'retries 0 map', 'backend \'process\' default' }) do
      assert.truthy(t:find(s, 1, true), s)
    end
    assert.matches('started 20%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d UTC', t)
  end)

  it('shows columns that runs gain, escaped, and does without those it lacks', function()
    local e = sweep2d()
    local dir = H.tmpdir()
    os.execute(('cp %s %s/copy.db'):format(H.quote(e.db), H.quote(dir)))
    -- A column a later psurvey might add, and one an earlier lacked.
    H.sql(dir .. '/copy.db', [[ALTER TABLE _psurvey_runs ADD COLUMN future TEXT;
      ALTER TABLE _psurvey_runs DROP COLUMN git_commit;
      UPDATE _psurvey_runs SET note = '<b>calibration</b> & "run" 2', git_dirty = 1, future = 'x<y']])
    local r = H.run(dir, 'report copy.db -o out.html')
    assert.equal(0, r.code, r.err)
    local page = H.slurp(dir .. '/out.html')
    assert.truthy(page:find('<th>note</th><td class="wrap">&lt;b&gt;calibration&lt;/b&gt; &amp; &quot;run&quot; 2</td>',
      1, true))
    assert.truthy(page:find('<th>git_dirty</th><td>1</td>', 1, true))
    assert.truthy(page:find('<th>future</th><td class="wrap">x&lt;y</td>', 1, true))
    assert.falsy(page:find('<b>calibration', 1, true))
    assert.falsy(page:find('git_commit', 1, true))
  end)

  it('plots the keys asked for with --x, --y and --z', function()
    local e = sweep2d()
    local r = H.run(e.dir, 'report .psurvey/sweep2d.db --table sweep --x damping --y frequency --z lag -o picked.html')
    assert.equal(0, r.code, r.err)
    local t = text(H.slurp(e.dir .. '/picked.html'))
    assert.truthy(t:find('lag against damping and frequency (choose with --x, --y, --z)', 1, true))
    assert.truthy(t:find('Heatmap: lag over damping and frequency', 1, true))
  end)

  it('escapes every name and value it shows', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [==[
local psurvey = require('psurvey')
local psets = psurvey.product({ ['x "<a>"'] = psurvey.range(1, 12), ['k&y'] = { 'a<b', "c'd" } })
psurvey.map(function(p)
  local v = p['x "<a>"']
  if v == 7 then error('<script>alert(1)</script> & "quoted"') end
  return { ['z <i>'] = v == 3 and math.huge or v * 1.5, s = 'text <b>' .. v .. '\0' }
end, psets, { name = 'we"ird <name>' })
]==])
    assert.equal(1, r.code)
    r = H.run(dir, 'report survey.lua')
    assert.equal(0, r.code, r.err)
    local page = H.slurp(dir .. '/survey.html')
    assert.falsy(page:find('<script', 1, true))
    assert.falsy(page:find('text <b>', 1, true))
    assert.falsy(page:find('z <i>', 1, true))
    assert.falsy(page:find('\0', 1, true))
    for _, s in ipairs({ '<h2>Stage we&quot;ird &lt;name&gt;</h2>', '&lt;script&gt;alert(1)&lt;/script&gt; &amp;'
      .. ' &quot;quoted&quot;', 'z &lt;i&gt; against x &quot;&lt;a&gt;&quot; and k&amp;y', '>c&#39;d</text>' }) do
      assert.truthy(page:find(s, 1, true), s)
    end
    local out, rc = H.shell('tidy -errors -quiet ' .. H.quote(dir .. '/survey.html') .. ' 2>&1')
    assert.equal('', out)
    assert.equal(0, rc)
  end)

  describe('refuses, naming what there is', function()
    local function report(args)
      local e = sweep2d()
      return H.run(e.dir, 'report .psurvey/sweep2d.db ' .. args)
    end

    it('an unknown table', function()
      local r = report('--table swep')
      assert.equal(2, r.code)
      assert.equal("psurvey: report: no table 'swep' (did you mean 'sweep'?) (its tables: sweep)\n"
        .. '(see psurvey --help)\n', r.err)
    end)

    it('an unknown pset key for --x or --y', function()
      local r = report('--x frequncy')
      assert.equal(2, r.code)
      assert.equal("psurvey: report: --x: no pset key 'frequncy' in table 'sweep' (did you mean 'frequency'?)"
        .. ' (its pset keys: damping, frequency)\n(see psurvey --help)\n', r.err)
      r = report('--y amplitude')
      assert.equal(2, r.code)
      assert.equal("psurvey: report: --y: no pset key 'amplitude' in table 'sweep' (its pset keys: damping,"
        .. ' frequency)\n(see psurvey --help)\n', r.err)
    end)

    it('a result for --z that is not there or not a number', function()
      local r = report('--z damping')
      assert.equal(2, r.code)
      assert.equal("psurvey: report: --z: no numeric result 'damping' in table 'sweep' (its numeric results:"
        .. ' amplitude, lag, steps)\n(see psurvey --help)\n', r.err)
    end)

    it('a database that is not there, and options it does not know', function()
      local dir = H.tmpdir()
      local r = H.run(dir, 'report nothing.db')
      assert.equal(3, r.code)
      assert.equal("psurvey: report: cannot open 'nothing.db'\n", r.err)
      r = H.run(dir, 'report survey.lua')
      assert.equal(3, r.code)
      assert.equal("psurvey: report: no database for 'survey.lua' here: .psurvey/survey.db does not exist (has it run"
        .. ' in this directory?)\n', r.err)
      r = H.run(dir, 'report nothing.db --colour red')
      assert.equal(2, r.code)
      assert.equal("psurvey: report: unknown option '--colour'\n(see psurvey --help)\n", r.err)
      r = H.run(dir, 'report')
      assert.equal(2, r.code)
      r = H.run(dir, 'report nothing.db -o')
      assert.equal("psurvey: report: option '-o' needs a value\n(see psurvey --help)\n", r.err)
    end)
  end)

  describe('of stages with little to show', function()
    local dir, page
    setup(function()
      dir = H.tmpdir()
      local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function() return { y = 1 } end, {}, { name = 'empty' })
psurvey.map(function(p) error('always ' .. p.a) end, psurvey.product({ a = { 1, 2 }, b = { 1, 2, 3 } }),
  { name = 'broken' })
psurvey.map(function() end, psurvey.product({ a = { 1, 2 }, b = { 1, 2, 3 } }), { name = 'quiet' })
psurvey.map(function(p) return { y = p.value * 2 } end, psurvey.range(1, 5), { name = 'line' })
]])
      assert(r.code == 1, r.err)
      r = H.run(dir, 'report survey.lua')
      assert(r.code == 0, r.err)
      page = H.slurp(dir .. '/survey.html')
    end)

    -- The section of the stage at position k.
    local function stage(k)
      return text(page:match('<section id="s' .. k .. '" class="stage">(.-)\n<section id="s' .. (k + 1))
        or page:match('<section id="s' .. k .. '" class="stage">(.*)$'))
    end

    it('has a section per stage, in the order they ran', function()
      local names = {}
      for name in page:gmatch('<section id="s%d+" class="stage"><h2>Stage ([^<]*)</h2>') do names[#names + 1] = name end
      assert.same({ 'empty', 'broken', 'quiet', 'line' }, names)
      local out, rc = H.shell('tidy -errors -quiet ' .. H.quote(dir .. '/survey.html') .. ' 2>&1')
      assert.equal('', out)
      assert.equal(0, rc)
    end)

    it('an empty stage: says that nothing ran', function()
      local t = stage(1)
      assert.truthy(t:find('No pset has finished in this stage.', 1, true))
      assert.truthy(t:find('No pset failed.', 1, true))
      assert.truthy(t:find('No pset of this stage succeeded: there is no result to plot.', 1, true))
      assert.falsy(t:find('<svg', 1, true))
    end)

    it('a stage whose psets all failed: its failures, and no result', function()
      local t = stage(2)
      assert.truthy(t:find('3 error survey.lua:3: always 1 #1 a=1, b=1 #2 a=1, b=2 #3 a=1, b=3 ', 1, true))
      assert.truthy(t:find('3 error survey.lua:3: always 2 #4 a=2, b=1 ', 1, true))
      assert.truthy(t:find('No pset of this stage succeeded: there is no result to plot.', 1, true))
      assert.truthy(page:find('id="s2-throughput-chart"', 1, true))
    end)

    it('a stage without results, and one with a single pset key', function()
      assert.truthy(stage(3):find('This stage stored no results.', 1, true))
      local t = stage(4)
      assert.truthy(t:find('y against value', 1, true))
      assert.truthy(t:find('A heatmap needs two pset keys with several values; this stage has one.', 1, true))
    end)

    it('--x, --y and --z need --table when there are several stages', function()
      local r = H.run(dir, 'report survey.lua --x a')
      assert.equal(2, r.code)
      assert.equal('psurvey: report: --x, --y and --z pick keys of one table: say which with --table\n'
        .. '(see psurvey --help)\n', r.err)
    end)
  end)

  -- The acceptance bound of issue 16: a report of a 1,000,000-pset stage
  -- in under 10 s and under 5 MiB (measured on a 2-core VM: about 3.5 s
  -- and 410 KiB).
  it('of a stage of a million psets is written in under 10 s and is under 5 MiB', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
local psets = psurvey.product({ a = psurvey.range(1, 1000), b = psurvey.range(1, 1000) })
psurvey.map(function(p)
  if p.a % 997 == 0 and p.b % 3 == 0 then error('bad pair ' .. (p.b % 2)) end
  return { y = p.a * 0.5 + p.b, n = p.a }
end, psets, { name = 'million' })
]], '--ncores 2')
    assert.equal(1, r.code)
    assert.equal(1000000, math.tointeger(H.sql(dir .. '/.psurvey/survey.db', 'SELECT count(*) AS n FROM million')[1].n))
    local out = H.shell(('cd %s && s=$(date +%%s%%N) && %s report survey.lua 2>&1'
      .. ' && echo "ns=$(($(date +%%s%%N) - s))"'):format(H.quote(dir), H.quote(H.bin)))
    local ns = tonumber(out:match('ns=(%d+)'))
    assert(ns, out)
    local page = H.slurp(dir .. '/survey.html')
    assert.is_true(ns < 10e9, ('%.2f s'):format(ns / 1e9))
    assert.is_true(#page < 5 * 1024 * 1024, #page .. ' bytes')
    for _, name in ipairs(SECTIONS) do
      assert.truthy(page:find('<section id="s1-' .. name .. '"', 1, true), name)
    end
    local t = text(page)
    assert.truthy(t:find('1000000 psets 999667 succeeded 333 failed', 1, true))
    assert.truthy(t:find('167 error survey.lua:4: bad pair 1 #996003 ', 1, true))
    assert.truthy(t:find('166 error survey.lua:4: bad pair 0 #996006 ', 1, true))
  end)

  describe('in a browser #browser', function()
    local e, shot, boxes
    setup(function()
      assert(C.available(), 'no ' .. C.bin .. ': apt-get install chromium fonts-dejavu-core')
      e = sweep2d()
      local dir = H.tmpdir()
      boxes = C.sections(e.path, dir, 1000)
      shot = C.open(e.path, dir, 1000, boxes.height)
    end)

    it('renders every section, and none is blank', function()
      local wanted = {}
      for _, id in ipairs({ 'provenance', 's1-summary', 's1-throughput', 's1-busy', 's1-runtime', 's1-failures',
        's1-slowest', 's1-scatter', 's1-heatmap' }) do
        assert.is_table(boxes[id], id)
        assert.is_true(boxes[id].h > 40, id)
        wanted[id] = boxes[id]
      end
      local stats = C.stats(shot.png, wanted, { '#0072b2', '#d55e00', '#e69f00' })
      assert.equal(1000, stats.width)
      for id in pairs(wanted) do
        -- Text alone gives some ink and, antialiased, many greys.
        assert.is_true(stats[id].ink > 0.01, id .. ': ink ' .. stats[id].ink)
        assert.is_true(stats[id].colours >= 8, id .. ': ' .. stats[id].colours .. ' colours')
      end
      -- The charts in their colours: succeeded in blue, failed in orange,
      -- the heatmap's scale in many colours.
      for _, id in ipairs({ 's1-throughput', 's1-busy', 's1-runtime' }) do
        assert.is_true(stats[id].has['#0072b2'] > 200, id)
      end
      assert.is_true(stats['s1-scatter'].has['#e69f00'] > 100, 'the line of means') -- the points are translucent
      for _, id in ipairs({ 's1-throughput', 's1-runtime' }) do
        assert.is_true(stats[id].has['#d55e00'] > 20, id)
      end
      assert.is_true(stats['s1-heatmap'].colours > 60, stats['s1-heatmap'].colours .. ' colours in the heatmap')
      assert.is_true(stats['s1-heatmap'].ink > 0.3, 'heatmap ink ' .. stats['s1-heatmap'].ink)
    end)

    it('holds the charts and their labels in the DOM', function()
      local dom = shot.dom
      for _, name in ipairs(SECTIONS) do assert.truthy(dom:find('id="s1-' .. name .. '"', 1, true), name) end
      local charts = 0
      for _ in dom:gmatch('<svg[^>]* class="chart"') do charts = charts + 1 end
      assert.equal(5, charts)
      local rects = 0
      for _ in dom:match('id="s1%-heatmap%-chart"(.-)</svg>'):gmatch('<rect') do rects = rects + 1 end
      assert.equal(19 * 7, rects)
      for _, label in ipairs({ '>psets finished per second</text>', '>frequency</text>', '>damping</text>',
        '>amplitude</text>', '>p90</text>', '<title>histogram of pset run times</title>' }) do
        assert.truthy(dom:find(label, 1, true), label)
      end
    end)

    it('logs no JavaScript error and asks for nothing over the network', function()
      assert.same({}, shot.console)
      assert.same({}, shot.requests)
    end)

    it('would see an error and a request: a copy of the page with both', function()
      local dir = H.tmpdir()
      local bad = e.page:gsub('</h1>', '</h1><img src="https://cdn.example.com/logo.png" alt="">', 1)
        :gsub('</body>', '<script>undefinedFn();</script></body>', 1)
      local seen = C.open(H.write(dir, 'bad.html', bad), dir, 800, 600)
      assert.equal(1, #seen.console)
      assert.matches('Uncaught ReferenceError: undefinedFn is not defined', seen.console[1])
      assert.same({ 'https://cdn.example.com/logo.png' }, seen.requests)
      assert.same({ 'src=https://cdn.example.com/logo.png' }, C.static_refs(bad))
    end)

    it('writes the README screenshot with PSURVEY_UPDATE_SCREENSHOT=1', function()
      if os.getenv('PSURVEY_UPDATE_SCREENSHOT') ~= '1' then return end
      -- The stage's charts, from its throughput to its heatmap.
      local dir = H.tmpdir()
      local page = e.page:gsub('<section id="provenance">.-</section>\n', '')
        :gsub('<section id="s1%-summary">.-</section>\n', '')
        :gsub('<section id="s1%-failures">.-</section>\n', ''):gsub('<section id="s1%-slowest">.-</section>\n', '')
      local path = H.write(dir, 'shot.html', page)
      local b = C.sections(path, dir, 1000)
      C.open(path, dir, 1000, math.min(b.height, 3400))
      os.execute(('mkdir -p %s/doc && cp %s %s/doc/report.png'):format(H.quote(H.root), H.quote(dir .. '/page.png'),
        H.quote(H.root)))
    end)
  end)
end)
