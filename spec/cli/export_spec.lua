-- `psurvey results FILE --table NAME --csv | --jsonl`: exports that keep
-- every value, read back by the consumers that exist here (python3's json
-- and csv modules; pandas is not installed on this machine), and that
-- check every write.
local H = require('support.helpers')
local cjson = require('cjson')

-- Each column holds values of one type, one column per kind of value an
-- export has to keep.
local SURVEY = [[
local psurvey = require('psurvey')
local function worker(p)
  local v = p.value
  return {
    nan = 0 / 0, inf = math.huge, ninf = -math.huge, negzero = -0.0, third = v / 3, big = (1 << 62) + v,
    bin = '\xff\0' .. v, text = 'h\u{e9}llo "q",\n' .. v, nul = 'a\0b',
    yes = v % 2 == 1,
    nested = { x = 0 / 0, y = { math.huge, -math.huge, 0.1 }, b = '\xfe' .. v, s = 'ok', n = v },
    plain = { 1, 2.5, 'x', { k = false } },
    dollar = { ['$base64'] = 'bm90IGJ5dGVz' },
    mixed = ({ true, 1, { 1, 2 } })[v], -- a column of values of several types
  }
end
psurvey.map(worker, psurvey.range(1, 3), { name = 'values' })
psurvey.map(function(p) return { s = ('x'):rep(100) .. p.value } end, psurvey.range(1, 2000), { name = 'big' })
]]

-- Reads an export with python3 and prints, per row, each column's value as
-- a tagged text that says its type and its exact bits (tag() in Lua below
-- writes the same text for a Lua value). CSV cells are typeless: the types
-- expected per column come in argv as col=type.
local PYTHON = [=[
import base64, csv, json, math, struct, sys

def hook(d):
    if len(d) == 1 and isinstance(d.get('$base64'), str):
        return base64.b64decode(d['$base64'], validate=True)
    return d

def tag(v):
    if v is None: return 'n'
    if isinstance(v, bool): return 'b:' + ('true' if v else 'false')
    if isinstance(v, int): return 'i:%d' % v
    if isinstance(v, float): return 'f:nan' if math.isnan(v) else 'f:' + struct.pack('>d', v).hex()
    if isinstance(v, str): return 's:' + v.encode('utf-8').hex()
    if isinstance(v, bytes): return 's:' + v.hex()
    if isinstance(v, list): items = [(i + 1, x) for i, x in enumerate(v)]
    else: items = list(v.items())
    return 't{' + ','.join(sorted(tag(k) + '=' + tag(x) for k, x in items)) + '}'

rows = []
if sys.argv[1] == 'raw':
    with open(sys.argv[2], newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
elif sys.argv[1] == 'jsonl':
    with open(sys.argv[2], encoding='utf-8') as f:
        for line in f:
            rows.append({k: tag(v) for k, v in json.loads(line, object_hook=hook).items()})
else:
    types = dict(a.split('=', 1) for a in sys.argv[3:])
    read = {'int': int, 'float': float, 'str': str, 'bool': lambda c: c == 'true',
            'json': lambda c: json.loads(c, object_hook=hook)}
    with open(sys.argv[2], newline='', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            rows.append({k: tag(read[types[k]](c)) for k, c in row.items() if k in types and c != ''})
print(json.dumps(rows))
]=]

local function hex(s)
  return (s:gsub('.', function(c) return ('%02x'):format(c:byte()) end))
end

-- The tagged text of a Lua value, as PYTHON writes it.
local function tag(v)
  local t = math.type(v) or type(v)
  if t == 'nil' then return 'n' end
  if t == 'boolean' then return 'b:' .. tostring(v) end
  if t == 'integer' then return ('i:%d'):format(v) end
  if t == 'float' then return v ~= v and 'f:nan' or 'f:' .. hex(string.pack('>d', v)) end
  if t == 'string' then return 's:' .. hex(v) end
  local items = {}
  for k, x in pairs(v) do items[#items + 1] = tag(k) .. '=' .. tag(x) end
  table.sort(items)
  return 't{' .. table.concat(items, ',') .. '}'
end

describe('psurvey results --jsonl and --csv', function()
  local dir, stored
  setup(function()
    dir = H.tmpdir()
    local r = H.survey(dir, SURVEY)
    assert.equal(0, r.code, r.err)
    H.write(dir, 'read.py', PYTHON)
    -- What the survey stored, every column, as psurvey reads it back.
    local store = assert(require('psurvey.core').store(dir .. '/.psurvey/survey.db'))
    local cursor = store:cursor('values', 'all')
    stored = {}
    for row in function() return cursor:next() end do stored[#stored + 1] = row end
    assert.equal(3, #stored)
    assert.equal('ok', stored[1]._status)
    assert.is_true(stored[1].nan ~= stored[1].nan)
    assert.same({ true, 1, 'integer', { 1, 2 } }, { stored[1].mixed, stored[2].mixed, math.type(stored[2].mixed),
      stored[3].mixed })
  end)
  teardown(H.cleanup)

  local function export(fmt)
    local r = H.run(dir, ('results .psurvey/survey.db --table values --%s'):format(fmt))
    assert.equal(0, r.code, r.err)
    assert.equal('', r.err)
    H.write(dir, 'out.' .. fmt, r.out)
    return r.out
  end

  -- mode: 'jsonl', 'csv' (with types) or 'raw' (the CSV cells as text).
  local function python(mode, types)
    local args = {}
    for col, t in pairs(types or {}) do args[#args + 1] = col .. '=' .. t end
    local file = mode == 'jsonl' and 'out.jsonl' or 'out.csv'
    local out, rc = H.shell(('cd %s && python3 read.py %s %s %s'):format(H.quote(dir), mode, file,
      table.concat(args, ' ')))
    assert.equal(0, rc)
    return cjson.decode(out)
  end

  it('keeps NaN, Infinity and -Infinity in JSON Lines, as Python reads them', function()
    local out = export('jsonl')
    local first = out:match('^[^\n]*')
    assert.matches('"nan":NaN', first, 1, true)
    assert.matches('"inf":Infinity', first, 1, true)
    assert.matches('"ninf":-Infinity', first, 1, true)
    assert.matches('"negzero":-0.0', first, 1, true)
    assert.matches('"y":[Infinity,-Infinity,0.1]', first, 1, true)
    local rows = python('jsonl')
    for i, row in ipairs(rows) do
      for _, col in ipairs({ 'nan', 'inf', 'ninf', 'negzero', 'third', 'big' }) do
        assert.equal(tag(stored[i][col]), row[col])
      end
    end
  end)

  it('writes a string that is not UTF-8 as {"$base64": ...} in JSON Lines, apart from text', function()
    local first = export('jsonl'):match('^[^\n]*')
    assert.matches('"bin":{"$base64":"/wAx"}', first, 1, true)
    assert.matches('"text":"h\u{e9}llo \\"q\\",\\n1"', first, 1, true)
    assert.matches('"nul":"a\\u0000b"', first, 1, true)
    local rows = python('jsonl')
    for i, row in ipairs(rows) do
      for _, col in ipairs({ 'bin', 'text', 'nul', 'yes' }) do assert.equal(tag(stored[i][col]), row[col]) end
    end
  end)

  it('writes nested NaN and binary strings in tables the same way', function()
    local first = export('jsonl'):match('^[^\n]*')
    assert.matches('"b":{"$base64":"/jE="}', first, 1, true)
    assert.matches('"x":NaN', first, 1, true)
    local rows = python('jsonl')
    for i, row in ipairs(rows) do
      for _, col in ipairs({ 'nested', 'plain' }) do assert.equal(tag(stored[i][col]), row[col]) end
    end
  end)

  it('keeps every stored value of every column, psurvey\'s too, in JSON Lines', function()
    export('jsonl')
    local rows = python('jsonl')
    assert.equal(3, #rows)
    for i, row in ipairs(rows) do
      local want = {}
      for k, v in pairs(stored[i]) do
        if k ~= 'dollar' then want[k] = tag(v) end
      end
      row.dollar = nil
      assert.same(want, row)
    end
  end)

  it('writes a table whose only key is $base64 as a binary string would be (the one ambiguity)', function()
    local first = export('jsonl'):match('^[^\n]*')
    assert.matches('"dollar":{"$base64":"bm90IGJ5dGVz"}', first, 1, true)
    assert.same({ ['$base64'] = 'bm90IGJ5dGVz' }, stored[1].dollar)
    assert.equal(tag('not bytes'), python('jsonl')[1].dollar)
  end)

  it('writes NaN and infinities in CSV cells as NaN, Infinity and -Infinity', function()
    export('csv')
    local rows = python('raw')
    assert.equal(3, #rows)
    for _, row in ipairs(rows) do
      assert.same({ 'NaN', 'Infinity', '-Infinity', '-0.0' }, { row.nan, row.inf, row.ninf, row.negzero })
    end
  end)

  it('writes binary strings and tables in CSV cells as the same JSON, read back by Python', function()
    local out = export('csv')
    assert.matches('"{""$base64"":""/wAx""}"', out, 1, true)
    local types = { value = 'int', nan = 'float', inf = 'float', ninf = 'float', negzero = 'float', third = 'float',
      big = 'int', bin = 'json', text = 'str', nul = 'str', yes = 'bool', nested = 'json', plain = 'json' }
    local rows = python('csv', types)
    assert.equal(3, #rows)
    for i, row in ipairs(rows) do
      local want = {}
      for k in pairs(types) do want[k] = tag(stored[i][k]) end
      assert.same(want, row)
    end
  end)

  it('raises naming the file when store:export cannot write it', function()
    local store = assert(require('psurvey.core').store(dir .. '/.psurvey/survey.db'))
    assert.has_error(function() store:export('big', 'csv', '/dev/full') end,
      '/dev/full: cannot write the export: No space left on device')
    assert.is_true(store:export('values', 'jsonl', dir .. '/copy.jsonl'))
    assert.equal(export('jsonl'), H.slurp(dir .. '/copy.jsonl'))
  end)

  for _, fmt in ipairs({ 'csv', 'jsonl' }) do
    it(('exits 3 naming the failed write when the %s export cannot be written'):format(fmt), function()
      for _, tbl in ipairs({ 'values', 'big' }) do -- a few bytes, and more than one buffer
        local out, rc = H.shell(('cd %s && %s results .psurvey/survey.db --table %s --%s 2>err >/dev/full'):format(
          H.quote(dir), H.quote(H.bin), tbl, fmt))
        assert.equal('', out)
        assert.equal(3, rc)
        assert.equal('psurvey: results: cannot write the export: No space left on device\n', H.slurp(dir .. '/err'))
      end
    end)
  end
end)
