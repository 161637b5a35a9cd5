-- The schema of psurvey's own tables: made by numbered steps, the version
-- reached recorded in the database (PRAGMA user_version), so that a
-- database of an earlier psurvey is brought up to date once and a newer
-- one is refused.
local H = require('support.helpers')

local survey = [[
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.value * 2 } end, psurvey.range(1, 3), { db = 'r.db', ncores = 1 })
]]

-- A database as psurvey's first files made it, before schema versions
-- (user_version 0): no runs table, and stages without the columns that
-- replay and resume added later. Its stage 'old' holds two rows.
local first_files = [[
PRAGMA journal_mode=WAL;
CREATE TABLE _psurvey_tables(name TEXT PRIMARY KEY, created REAL, finished REAL, status TEXT,
  total INTEGER, ok INTEGER, failed INTEGER, options TEXT);
CREATE TABLE _psurvey_columns(tbl TEXT, name TEXT, role TEXT, types INTEGER, position INTEGER,
  PRIMARY KEY(tbl, name));
CREATE TABLE old(_index INTEGER PRIMARY KEY, _types TEXT, x, y, _status TEXT, _exception TEXT,
  _traceback TEXT, _attempt INTEGER, _worker INTEGER, _host TEXT, _start REAL, _end REAL,
  _duration REAL, _cpu REAL, _memory INTEGER, _name TEXT, _hash INTEGER);
INSERT INTO old(_index, x, y, _status, _attempt, _worker) VALUES (1, 1, 2.5, 'ok', 1, 1), (2, 2, 'two', 'ok', 1, 1);
INSERT INTO _psurvey_columns VALUES ('old', 'x', 'pset', 2, 0), ('old', 'y', 'result', 12, 1);
INSERT INTO _psurvey_tables VALUES ('old', 1e9, 1e9, 'done', 2, 2, 0, '');
]]

local function sqlite3(db, sql)
  local _, rc = H.shell(('sqlite3 %s %s >/dev/null'):format(H.quote(db), H.quote(sql)))
  assert.equal(0, rc, sql)
end

local function user_version(db)
  return H.sql(db, 'PRAGMA user_version')[1].user_version
end

describe('the schema of the results database', function()
  after_each(H.cleanup)

  it('records the version of its tables in the database', function()
    local dir = H.tmpdir()
    assert.equal(0, H.survey(dir, survey).code)
    assert.equal(4, user_version(dir .. '/r.db'))
  end)

  it('brings a database of an earlier psurvey up to date, and reads its stages back', function()
    local dir = H.tmpdir()
    sqlite3(dir .. '/r.db', first_files)
    assert.equal(0, user_version(dir .. '/r.db'))
    local r = H.survey(dir, survey)
    assert.equal(0, r.code, r.err)
    assert.equal(4, user_version(dir .. '/r.db'))
    local columns = {}
    for _, c in ipairs(H.sql(dir .. '/r.db', 'SELECT name FROM pragma_table_info(\'_psurvey_tables\')')) do
      columns[#columns + 1] = c.name
    end
    assert.same({ 'name', 'created', 'finished', 'status', 'total', 'ok', 'failed', 'options', 'run', 'code',
      'user', 'code_hash', 'user_hash', 'sandbox', 'seed', 'timeout', 'memory' }, columns)
    assert.same({ { status = 'done', script = 'survey.lua' } },
      H.sql(dir .. '/r.db', 'SELECT status, script FROM _psurvey_runs'))
    assert.same({ { name = 'old', ok = 2 }, { name = 'stage1', ok = 3 } },
      H.sql(dir .. '/r.db', 'SELECT name, ok FROM _psurvey_tables ORDER BY name'))
    H.write(dir, 'read.lua', [[
local psurvey = require('psurvey')
for row in psurvey.open('r.db', 'old'):rows() do print(row.x, math.type(row.x), row.y, type(row.y)) end
]])
    r = H.run(dir, 'read.lua')
    assert.equal(0, r.code, r.err)
    assert.equal('1\tinteger\t2.5\tnumber\n2\tinteger\ttwo\tstring\n', r.out)
  end)

  it('reads a read-only database of an earlier psurvey that has every table, and leaves it as it was', function()
    local dir = H.tmpdir()
    assert.equal(0, H.survey(dir, survey).code)
    -- What the last psurvey before schema versions left: the same tables, version 0.
    sqlite3(dir .. '/r.db', 'PRAGMA user_version = 0')
    local before = H.slurp(dir .. '/r.db')
    -- As root, permissions do not stop writes: read it as nobody.
    os.execute(('chmod 755 %s && chmod 444 %s/r.db && chmod 777 %s'):format(dir, dir, dir))
    local out, rc = H.shell(('cd %s && setpriv --reuid=nobody --regid=nogroup --clear-groups env PSURVEY_VERBOSE=0 '
      .. '%s results r.db --table stage1 --csv 2>&1'):format(H.quote(dir), H.quote(H.bin)))
    assert.equal(0, rc, out)
    assert.matches('^value,y,', out)
    assert.equal(before, H.slurp(dir .. '/r.db'))
    assert.equal(0, user_version(dir .. '/r.db'))
  end)

  it('refuses a database whose tables a newer psurvey made, and leaves it as it was', function()
    local dir = H.tmpdir()
    assert.equal(0, H.survey(dir, survey).code)
    sqlite3(dir .. '/r.db', 'PRAGMA user_version = 5')
    local r = H.survey(dir, survey)
    assert.equal(3, r.code)
    assert.matches("cannot use database 'r%.db': a newer psurvey wrote it %(its tables are of version 5, this "
      .. "psurvey's of 4%): use that psurvey, or give this survey another 'db'", r.err)
    assert.same({ { name = 'stage1' } }, H.sql(dir .. '/r.db', 'SELECT name FROM _psurvey_tables'))
    assert.equal(5, user_version(dir .. '/r.db'))
  end)
end)
