-- The database under stress: files that are not SQLite or cannot be
-- written, a second writer, a full disk, and readers while a survey runs.
-- Each case ends with a clear error and nothing finished lost.
local H = require('support.helpers')

local slow_survey = [[
local psurvey = require('psurvey')
psurvey.map(function(p)
  os.execute('sleep 0.01')
  return { v = p.value }
end, psurvey.range(1, %d), { ncores = 2, db = %q })
]]

describe('the results database', function()
  after_each(H.cleanup)

  it('refuses a file that is not an SQLite database, and leaves it as it was', function()
    local dir = H.tmpdir()
    H.write(dir, 'notes.db', 'my thesis notes, not a database\n')
    local r = H.survey(dir, slow_survey:format(3, 'notes.db'))
    assert.equal(3, r.code)
    assert.matches("'notes%.db' is not an SQLite database: give psurvey another 'db' file", r.err)
    assert.equal('my thesis notes, not a database\n', H.slurp(dir .. '/notes.db'))
  end)

  it('says so when the database is read-only', function()
    local dir = H.tmpdir()
    assert.equal(0, H.survey(dir, slow_survey:format(2, 'ro.db')).code)
    -- As root, permissions do not stop writes: run the second survey as nobody.
    os.execute(('chmod 755 %s && chmod 444 %s/ro.db && chmod 777 %s'):format(dir, dir, dir))
    local out, rc = H.shell(('cd %s && setpriv --reuid=nobody --regid=nogroup --clear-groups env PSURVEY_VERBOSE=0 '
      .. '%s survey.lua 2>&1'):format(H.quote(dir), H.quote(H.bin)))
    assert.equal(2, rc) -- the user's mistake: the message alone, exit 2
    assert.matches("database 'ro%.db' is read%-only: psurvey must write its results there", out)
    assert.same({ { n = 2 } }, H.sql(dir .. '/ro.db', 'select count(*) n from stage1'))
  end)

  it('gives a second writer a clear error while the first goes on unharmed', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', slow_survey:format(300, 'shared.db'))
    local out, rc = H.beside_a_writer(dir, 'shared.db', 'survey.lua', 'survey.lua')
    assert.equal(0, rc)
    assert.matches("database 'shared%.db' is being written by another psurvey %(pid %d+ on [^)]+%): wait for it "
      .. "to finish, or give this survey another 'db'", out)
    assert.matches('second=2', out)
    assert.same({ { n = 300, ok = 300 } }, H.sql(dir .. '/shared.db',
      "select count(*) n, sum(_status = 'ok') ok from stage1"))
  end)

  it('is claimed by its writer under every name: a symbolic or a hard link is the same database', function()
    for _, link in ipairs({ 'ln -s shared.db', 'ln shared.db' }) do
      local dir = H.tmpdir()
      H.write(dir, 'survey.lua', slow_survey:format(300, 'shared.db'))
      H.write(dir, 'survey2.lua', slow_survey:format(300, 'other.db'))
      assert.equal(0, H.run(dir, 'survey.lua', { PSURVEY_LIMIT = '1' }).code)
      os.execute(('cd %s && %s other.db'):format(H.quote(dir), link))
      local out = H.beside_a_writer(dir, 'shared.db', 'survey.lua', 'survey2.lua')
      -- (Through a hard link, SQLite does not see the other's journal, so
      -- not its pid either.)
      assert.matches("database 'other%.db' is being written by another psurvey %(pid [^)]+%)", out)
      assert.matches('second=2', out)
    end
  end)

  it('never writes or truncates another file to claim the database', function()
    local dir = H.tmpdir()
    H.write(dir, 'precious.txt', 'two years of notes\n')
    -- What an older psurvey used as its lock file, pointing elsewhere.
    os.execute(('cd %s && ln -s precious.txt results.db.lock'):format(H.quote(dir)))
    H.write(dir, 'survey.lua', slow_survey:format(3, 'results.db'))
    assert.equal(0, H.run(dir, 'survey.lua').code)
    assert.equal('two years of notes\n', H.slurp(dir .. '/precious.txt'))
  end)

  it('can be read with the sqlite3 shell while a survey writes it', function()
    local dir = H.tmpdir()
    H.write(dir, 'survey.lua', slow_survey:format(200, 'live.db'))
    local out = H.shell(([[cd %s && { %s survey.lua >/dev/null 2>&1 </dev/null & }
      for i in $(seq 1 200); do
        n=$(sqlite3 live.db 'select count(*) from stage1' 2>/dev/null) && [ "$n" -gt 0 ] && echo "seen $n" && break
        sleep 0.02
      done; wait; sqlite3 live.db 'select count(*) from stage1']]):format(H.quote(dir), H.quote(H.bin)))
    local seen, final = out:match('seen (%d+)\n(%d+)\n')
    assert.is_not_nil(seen, out)
    assert.is_true(tonumber(seen) < 200, 'the survey was over before it could be read')
    assert.equal('200', final)
  end)

  it('stops with an error on a full disk, keeping a readable database of what finished', function()
    local dir = H.tmpdir()
    local disk = dir .. '/disk'
    local _, rc = H.shell(('mkdir %s && mount -t tmpfs -o size=600k psurvey-spec %s'):format(disk, disk))
    assert.equal(0, rc, 'cannot mount a tmpfs (the specs run as root)')
    finally(function() os.execute('umount ' .. H.quote(disk)) end)
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { blob = ('x'):rep(20000) .. p.value } end, psurvey.range(1, 200),
  { db = 'disk/full.db', ncores = 2 })
]])
    assert.equal(3, r.code)
    assert.matches('cannot store results: .*database or disk is full', r.err)
    local rows = H.sql(disk .. '/full.db', 'select count(*) n from stage1')
    assert.is_true(rows[1].n > 0 and rows[1].n < 200, 'rows: ' .. tostring(rows[1].n))
    assert.same({ { s = 'failed' } }, H.sql(disk .. '/full.db', "select status s from _psurvey_tables"))
    -- The stage's counts are those of the rows that were committed.
    assert.same({ { same = 1 } }, H.sql(disk .. '/full.db', 'select ok + failed = (select count(*) from stage1) same'
      .. ' from _psurvey_tables'))
  end)
end)
