-- Provenance: each run records what cites it (its command line, working
-- directory, the git commit of its script and whether the work tree had
-- changes, a note and tags), `psurvey results FILE --runs` lists them, and
-- each row says which run made it (_run), in tables of older psurveys too.
local H = require('support.helpers')

local survey = [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.x * 2 } end, psurvey.product({ x = psurvey.range(1, 5) }), { ncores = 1 })
]]

local function db(dir) return dir .. '/.psurvey/survey.db' end

local function git(dir, args)
  local out, rc = H.shell(('cd %s && export GIT_AUTHOR_NAME=spec GIT_COMMITTER_NAME=spec'
    .. ' GIT_AUTHOR_EMAIL=spec@example.org GIT_COMMITTER_EMAIL=spec@example.org && git %s 2>&1'):format(
    H.quote(dir), args))
  assert.equal(0, rc, out)
  return out
end

local function runs(dir)
  -- NULL (no note, no tags) as ''.
  return H.sql(db(dir), "SELECT id, status, argv, cwd, git_commit, git_dirty, coalesce(note, '') note,"
    .. " coalesce(tags, '') tags FROM _psurvey_runs ORDER BY id")
end

describe('provenance of runs', function()
  after_each(H.cleanup)

  it('records argv, the working directory, the git commit, the dirty flag, the note and the tags', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', survey)
    git(dir, 'init -q . && git add survey.lua && git commit -qm first')
    local head = git(dir, 'rev-parse HEAD'):match('^(%x+)\n$')
    assert.equal(40, #head)
    local r = H.run(dir, "survey.lua --note 'first try' --tag series=B --tag 'host=lab 1' --tag eq=a=b")
    assert.equal(0, r.code, r.err)
    assert.equal('', r.err)
    -- An untracked file (here .psurvey/ itself) does not make the tree dirty.
    H.write(dir, 'notes.txt', 'untracked\n')
    r = H.run(dir, 'survey.lua --resume')
    assert.equal(0, r.code, r.err)
    -- A change to a tracked file does.
    H.write(dir, 'survey.lua', survey .. '-- changed\n')
    r = H.run(dir, 'survey.lua --resume')
    assert.equal(0, r.code, r.err)
    local cwd = H.shell(('cd %s && pwd -P'):format(H.quote(dir))):match('^(.-)\n$')
    assert.same({
      { id = 1, status = 'done', cwd = cwd, git_commit = head, git_dirty = 0, note = 'first try',
        argv = ('["%s","survey.lua","--note","first try","--tag","series=B","--tag","host=lab 1","--tag","eq=a=b"]')
          :format(H.bin),
        tags = '{"eq":"a=b","host":"lab 1","series":"B"}' },
      { id = 2, status = 'done', cwd = cwd, git_commit = head, git_dirty = 0, note = '', tags = '',
        argv = ('["%s","survey.lua","--resume"]'):format(H.bin) },
      { id = 3, status = 'done', cwd = cwd, git_commit = head, git_dirty = 1, note = '', tags = '',
        argv = ('["%s","survey.lua","--resume"]'):format(H.bin) },
    }, runs(dir))
    -- And the hidden log each run wrote.
    local logs = {}
    for _, row in ipairs(H.sql(db(dir), 'SELECT log FROM _psurvey_runs ORDER BY id')) do logs[#logs + 1] = row.log end
    table.sort(logs)
    local written = H.logs(dir)
    assert.equal(3, #written)
    assert.same(written, logs)
  end)

  it('lists the runs with results --runs', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', survey)
    git(dir, 'init -q . && git add survey.lua && git commit -qm first')
    local short = git(dir, 'rev-parse --short=7 HEAD'):match('^(%x+)\n$')
    assert.equal(0, H.run(dir, "survey.lua --note 'clean run' --tag series=B --tag k=v").code)
    H.write(dir, 'survey.lua', survey .. '-- changed\n')
    assert.equal(0, H.run(dir, 'survey.lua --resume').code)
    local r = H.run(dir, 'results .psurvey/survey.db --runs')
    assert.equal(0, r.code, r.err)
    local lines = {}
    for line in r.out:gmatch('([^\n]*)\n') do lines[#lines + 1] = line end
    assert.equal(4, #lines)
    assert.matches('^id%s+started%s+status%s+script%s+git%s+note%s+tags$', lines[1])
    assert.matches(('^ 1  %%d%%d%%d%%d%%-%%d%%d%%-%%d%%d %%d%%d:%%d%%d:%%d%%d  done    survey%%.lua  %s  '
      .. '      clean run  k=v series=B$'):format(short), lines[3])
    assert.matches(('^ 2  %%S+ %%S+  done    survey%%.lua  %s%%-dirty$'):format(short), lines[4])
    -- The script's name finds its database too.
    local by_script = H.run(dir, 'results survey.lua --runs')
    assert.equal(r.out, by_script.out)
  end)

  it('records no commit outside a git work tree, or without git, and says nothing about it', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, survey)
    assert.equal(0, r.code, r.err)
    assert.equal('', r.err)
    local function recorded()
      return H.sql(db(dir), 'SELECT git_commit IS NOT NULL c, git_dirty IS NOT NULL d FROM _psurvey_runs ORDER BY id')
    end
    assert.same({ { c = 0, d = 0 } }, recorded())
    -- A git work tree, but no git on the PATH: nothing is started, nothing recorded.
    git(dir, 'init -q . && git add survey.lua && git commit -qm first')
    r = H.run(dir, 'survey.lua --resume', { PATH = '/nonexistent' })
    assert.equal(0, r.code, r.err)
    assert.equal('', r.err)
    assert.same({ c = 0, d = 0 }, recorded()[2])
    r = H.run(dir, 'survey.lua --resume')
    assert.equal(0, r.code, r.err)
    assert.same({ c = 1, d = 1 }, recorded()[3])
  end)

  it('takes the note and tags from init() and the environment, and refuses them in map()', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.init({ note = 'from init', tag = { a = '1', b = 2 } })
psurvey.map(function(p) return { y = p.value } end, psurvey.range(1, 2), { ncores = 1 })
]])
    local r = H.run(dir, 'survey.lua --tag c=3', { PSURVEY_TAG = 'b=env' })
    assert.equal(0, r.code, r.err)
    r = H.run(dir, 'survey.lua', { PSURVEY_NOTE = 'from the environment' })
    assert.equal(0, r.code, r.err)
    local rows = runs(dir)
    assert.equal('from init', rows[1].note)
    assert.equal('{"a":"1","b":"env","c":"3"}', rows[1].tags)
    assert.equal('from the environment', rows[2].note)
    assert.equal('{"a":"1","b":"2"}', rows[2].tags)
    H.write(dir, 'map.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p) return p end, psurvey.range(1, 2), { note = 'x' })
]])
    r = H.run(dir, 'map.lua')
    assert.equal(2, r.code)
    assert.matches("option 'note' belongs to init%(%), not map%(%)", r.err)
  end)

  it('refuses a --tag without a key or without =, naming the option', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', survey)
    local r = H.run(dir, 'survey.lua --tag nokey')
    assert.equal(2, r.code)
    assert.equal("psurvey: option '--tag': expected KEY=VALUE, got 'nokey'\n(see psurvey --help)\n", r.err)
    r = H.run(dir, 'survey.lua --tag =v')
    assert.equal(2, r.code)
    assert.equal("psurvey: option '--tag': expected a non-empty string as a key, got ''\n(see psurvey --help)\n",
      r.err)
    r = H.run(dir, 'survey.lua', { PSURVEY_TAG = 'nokey' })
    assert.equal(2, r.code)
    assert.matches("environment variable PSURVEY_TAG: expected KEY=VALUE, got 'nokey'", r.err)
  end)
end)

describe('the _run column', function()
  after_each(H.cleanup)

  it('says which run made each row of a table resumed across three runs', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  if p.value == 2 and os.getenv('FAIL_TWO') then error('two fails') end
  return { y = p.value * 2 }
end, psurvey.range(1, 5), { ncores = 1 })
]])
    -- The first run fails pset 2 and is stopped after 3 psets; the second
    -- runs pset 2 again and the fourth; the third the last.
    local r = H.run(dir, 'survey.lua --limit 3', { FAIL_TWO = '1' })
    assert.equal(1, r.code)
    assert.equal(0, H.run(dir, 'survey.lua --resume --limit 4').code)
    assert.equal(0, H.run(dir, 'survey.lua --resume').code)
    assert.same({ { _index = 1, _run = 1 }, { _index = 2, _run = 2 }, { _index = 3, _run = 1 },
      { _index = 4, _run = 2 }, { _index = 5, _run = 3 } },
      H.sql(db(dir), 'SELECT _index, _run FROM stage1 ORDER BY _index'))
    -- Read back like psurvey's other columns.
    local r2 = H.run(dir, 'results .psurvey/survey.db --table stage1 --jsonl')
    assert.equal(0, r2.code, r2.err)
    local runs_of = {}
    for line in r2.out:gmatch('[^\n]+') do runs_of[#runs_of + 1] = tonumber(line:match('"_run":(%d+)')) end
    assert.same({ 1, 2, 1, 2, 3 }, runs_of)
  end)

  it('leaves a database of the last psurvey readable, and resumable: its old rows have no run', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.value * 2 } end, psurvey.range(1, tonumber(arg[1])), { ncores = 1 })
]])
    assert.equal(0, H.run(dir, 'survey.lua 3').code)
    -- What the psurvey before provenance made (schema version 2): no _run in
    -- its stages, no provenance in its runs.
    local _, rc = H.shell(('sqlite3 %s %s'):format(H.quote(db(dir)), H.quote([[
ALTER TABLE stage1 DROP COLUMN _run;
ALTER TABLE _psurvey_runs DROP COLUMN argv; ALTER TABLE _psurvey_runs DROP COLUMN cwd;
ALTER TABLE _psurvey_runs DROP COLUMN git_commit; ALTER TABLE _psurvey_runs DROP COLUMN git_dirty;
ALTER TABLE _psurvey_runs DROP COLUMN note; ALTER TABLE _psurvey_runs DROP COLUMN tags;
ALTER TABLE _psurvey_runs DROP COLUMN log;
PRAGMA user_version = 2;]])))
    assert.equal(0, rc)
    -- Read as it is, without _run.
    local r = H.run(dir, 'results .psurvey/survey.db --table stage1 --csv')
    assert.equal(0, r.code, r.err)
    assert.equal('value,y,_index,_status,_exception,_traceback,_attempt,_worker,_host,_start,_end,_duration,_cpu,'
      .. '_memory,_name,_hash', r.out:match('^[^\r]*'))
    H.write(dir, 'read.lua', [[
local psurvey = require('psurvey')
for row in psurvey.open('.psurvey/survey.db', 'stage1'):rows() do io.write(row.value, ':', row.y, ' ') end
]])
    r = H.run(dir, 'read.lua')
    assert.equal(0, r.code, r.err)
    assert.equal('1:2 2:4 3:6 ', r.out)
    -- Resumed: the table gains _run, the new rows say their run.
    r = H.run(dir, 'survey.lua --resume --note later -- 5')
    assert.equal(0, r.code, r.err)
    assert.same({ { _index = 1, r = 0 }, { _index = 2, r = 0 }, { _index = 3, r = 0 }, { _index = 4, r = 2 },
      { _index = 5, r = 2 } }, H.sql(db(dir), 'SELECT _index, coalesce(_run, 0) r FROM stage1 ORDER BY _index'))
    assert.same({ { user_version = 4 } }, H.sql(db(dir), 'PRAGMA user_version'))
    assert.same({ { id = 1, note = '' }, { id = 2, note = 'later' } },
      H.sql(db(dir), "SELECT id, coalesce(note, '') note FROM _psurvey_runs"))
  end)
end)
