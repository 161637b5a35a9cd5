-- The worker program (`psurvey worker`) fed CODE frames by hand: a
-- malformed shipped function ends it with a clear error, never a signal.
local H = require('support.helpers')
local core = require('psurvey.core')

local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = n // 128
    out[#out + 1] = string.char(n > 0 and b + 128 or b)
  until n == 0
  return table.concat(out)
end

local function bytes(s) return varint(#s) .. s end

-- A frame: 4-byte little-endian length (kind byte included), kind, payload.
local function frame(kind, payload) return string.pack('<I4', #payload + 1) .. string.char(kind) .. payload end

local CODE, CODE_OK, FATAL = 2, 3, 8
local TAG_TABLE, TAG_FUNC, TAG_BACKREF, TAG_ENV = '\6', '\7', '\9', '\10'

local function code_frame(fn, sandbox)
  return frame(CODE, varint(1) .. varint(0) .. bytes('stage1') .. bytes(fn) .. bytes(core.encode(nil))
    .. varint(sandbox or 0) .. varint(0) .. bytes('') .. varint(0))
end

-- Frames the worker wrote, as { kind, payload } pairs.
local function frames_of(s)
  local out, pos = {}, 1
  while pos + 4 <= #s do
    local n = string.unpack('<I4', s, pos)
    out[#out + 1] = { s:byte(pos + 4), s:sub(pos + 5, pos + 3 + n) }
    pos = pos + 4 + n
  end
  return out
end

-- Runs `psurvey worker` on the given input; returns its exit status, the
-- frames it wrote after HELLO and its stderr.
local function feed(input)
  local dir = H.tmpdir()
  H.write(dir, 'in', input)
  local _, rc = H.shell(('%s worker <%s >%s 2>%s'):format(H.quote(H.bin), H.quote(dir .. '/in'),
    H.quote(dir .. '/out'), H.quote(dir .. '/err')))
  local frames = frames_of(H.slurp(dir .. '/out'))
  table.remove(frames, 1)
  return rc, frames, H.slurp(dir .. '/err')
end

-- The message of the FATAL frame a worker ended with (a string: `bytes`).
local function fatal_message(frames)
  local last = frames[#frames]
  assert.equal(FATAL, last[1])
  local n = last[2]:byte(1)
  return last[2]:sub(2, 1 + n)
end

-- Bytecode of functions with a known list of upvalues.
local no_upvalues = string.dump(function() return 1 end)
local a, b = 1, 2
local two_upvalues = string.dump(function() return a + b end)
local env_second = string.dump(function() return a + tostring(b) end) -- a, _ENV, b
-- The closure's upvalue count is byte 32 of a dump, after the 31 of the
-- header; the prototype lists its upvalues apart. Here they disagree.
local function with_closure_count(dump, n) return dump:sub(1, 31) .. string.char(n) .. dump:sub(33) end
assert(two_upvalues:byte(32) == 2)
-- The upvalue names come last in a dump: one more name than upvalues
-- (the loader of Lua 5.4.4 writes it past the end of its array).
local function more_upvalue_names(dump)
  assert(dump:sub(-5) == '\x82\x82a\x82b', 'the dump ends with its two upvalue names')
  return dump:sub(1, -6) .. '\x83\x82a\x82b\x82c'
end
local more_names = more_upvalue_names(two_upvalues)

describe('the worker program fed a malformed CODE frame', function()
  teardown(H.cleanup)

  it('loads a well-formed one and answers CODE_OK', function()
    local rc, frames = feed(code_frame(TAG_FUNC .. bytes(env_second) .. varint(3) .. core.encode(1) .. TAG_ENV
      .. core.encode(2)))
    assert.equal(0, rc)
    assert.same({ { CODE_OK, '\1\0' } }, frames)
  end)

  local cases = {
    ['an _ENV upvalue past the function\'s count'] = {
      TAG_FUNC .. bytes(no_upvalues) .. varint(1) .. TAG_ENV,
      'malformed worker code: the function has 0 upvalues, the code gives 1' },
    ['an _ENV upvalue at an index past the count'] = {
      TAG_FUNC .. bytes(two_upvalues) .. varint(3) .. core.encode(1) .. core.encode(2) .. TAG_ENV,
      'malformed worker code: the function has 2 upvalues, the code gives 3' },
    ['fewer upvalues than the function has'] = {
      TAG_FUNC .. bytes(two_upvalues) .. varint(1) .. core.encode(1),
      'malformed worker code: the function has 2 upvalues, the code gives 1' },
    ['an upvalue count over 255'] = {
      TAG_FUNC .. bytes(no_upvalues) .. varint(300),
      'malformed worker code: the function has 0 upvalues, the code gives 300' },
    ['bytecode whose closure has fewer upvalues than its prototype'] = {
      TAG_FUNC .. bytes(with_closure_count(two_upvalues, 1)) .. varint(2) .. core.encode(1) .. core.encode(2),
      'malformed worker code: its bytecode gives its closure 1 upvalues and its function 2' },
    ['bytecode whose closure has more upvalues than its prototype'] = {
      TAG_FUNC .. bytes(with_closure_count(two_upvalues, 3)) .. varint(3) .. core.encode(1) .. core.encode(2)
      .. core.encode(3),
      'malformed worker code: its bytecode gives its closure 3 upvalues and its function 2' },
    ['bytecode with more upvalue names than upvalues'] = {
      TAG_FUNC .. bytes(more_names) .. varint(2) .. core.encode(1) .. core.encode(2),
      'malformed worker code: its bytecode names more or fewer upvalues than its function has' },
    ['bytecode with bytes after its function'] = {
      TAG_FUNC .. bytes(two_upvalues .. 'xy') .. varint(2) .. core.encode(1) .. core.encode(2),
      'malformed worker code: its bytecode has 2 bytes after its function' },
    ['bytes after the function'] = {
      TAG_FUNC .. bytes(no_upvalues) .. varint(0) .. 'abc',
      'malformed worker code: 3 bytes after the function' },
    ['a back reference to nothing seen yet'] = {
      TAG_FUNC .. bytes(two_upvalues) .. varint(2) .. TAG_BACKREF .. varint(5) .. core.encode(2),
      'malformed worker code: back reference 5 to one of 1 tables and functions' },
    ['text instead of bytecode'] = {
      TAG_FUNC .. bytes('return 1') .. varint(0),
      'malformed worker code: its bytecode is not a chunk of this Lua (' .. _VERSION .. '.' },
    ['a truncated function'] = {
      TAG_FUNC .. bytes(env_second) .. varint(3) .. core.encode(1),
      'malformed worker code: truncated' },
    ['a table larger than the frame'] = {
      TAG_FUNC .. bytes(two_upvalues) .. varint(2) .. TAG_TABLE .. varint(1 << 40) .. varint(0),
      'malformed worker code: a table of 1099511627776 items and 0 pairs, more than the 0 bytes left' },
    ['_ENV as a value'] = {
      TAG_FUNC .. bytes(two_upvalues) .. varint(2) .. TAG_TABLE .. varint(1) .. varint(0) .. TAG_ENV,
      'malformed worker code: _ENV outside an upvalue' },
  }
  for what, case in pairs(cases) do
    it('ends with a clear error, never a signal, on ' .. what, function()
      for _, sandbox in ipairs({ 0, 1 }) do
        local rc, frames, err = feed(code_frame(case[1], sandbox))
        assert.equal(2, rc, err)
        if case[2]:sub(-1) == '.' then -- a prefix: the rest names the Lua release
          assert.equal(case[2], fatal_message(frames):sub(1, #case[2]))
        else
          assert.equal(case[2], fatal_message(frames))
          assert.equal('psurvey worker: ' .. case[2] .. '\n', err)
        end
      end
    end)
  end
end)
