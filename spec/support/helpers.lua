--- spec/support/helpers.lua: running the real psurvey program and reading
--- what it wrote. Every spec runs real processes and real SQLite files.
local H = {}

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.quote = sh_quote

local function abspath(p)
  if p:sub(1, 1) == '/' then return p end
  local pwd = os.getenv('PWD') or io.popen('pwd'):read('l')
  return pwd .. '/' .. p
end

--- The psurvey program under test.
H.bin = abspath(os.getenv('PSURVEY_BIN') or 'build/bin/psurvey')
H.root = abspath('.')

local function slurp(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('a')
  f:close()
  return s
end
H.slurp = slurp

--- A new empty directory, removed by H.cleanup().
local dirs = {}
function H.tmpdir()
  local d = io.popen('mktemp -d /tmp/psurvey-spec.XXXXXX'):read('l')
  dirs[#dirs + 1] = d
  return d
end

function H.cleanup()
  for _, d in ipairs(dirs) do os.execute('rm -rf ' .. sh_quote(d)) end
  dirs = {}
end

--- Writes content to dir/name and returns the path.
function H.write(dir, name, content)
  local path = dir .. '/' .. name
  local f = assert(io.open(path, 'wb'))
  f:write(content)
  f:close()
  return path
end

--- Runs `psurvey <args>` in dir with the given environment; returns
--- { code = exit status, out = stdout, err = stderr }.
---@param args string already quoted for the shell
--- wrap, when given, runs the program under a command (e.g. 'taskset -c 0').
function H.run(dir, args, env, stdin, wrap)
  local vars = { 'PSURVEY_VERBOSE=0', 'PSURVEY_VSTATS=0', 'PSURVEY_CENSUS=1' }
  -- env's false unsets a variable: env takes -u before the assignments.
  local unset = {}
  for k, v in pairs(env or {}) do
    if v == false then
      unset[#unset + 1] = '-u ' .. k
    else
      vars[#vars + 1] = k .. '=' .. sh_quote(v)
    end
  end
  -- Drop the caller's own PSURVEY_* settings: each spec says what it wants.
  for line in io.popen('env'):lines() do
    local k = line:match('^(PSURVEY_[%w_]+)=')
    if k and k ~= 'PSURVEY_BIN' and k ~= 'PSURVEY_CENSUS' then unset[#unset + 1] = '-u ' .. k end
  end
  local cmd = ('cd %s && env %s %s %s%s %s >.out 2>.err%s; echo $? >.rc'):format(sh_quote(dir),
    table.concat(unset, ' '), table.concat(vars, ' '), wrap and (wrap .. ' ') or '', sh_quote(H.bin), args,
    stdin and (' <' .. sh_quote(stdin)) or ' </dev/null')
  os.execute(cmd)
  local err = slurp(dir .. '/.err') or ''
  -- Every run ends with nothing left open (core/census.h).
  assert(not err:find('psurvey: census: ', 1, true), err)
  return {
    code = tonumber(slurp(dir .. '/.rc')),
    out = slurp(dir .. '/.out') or '',
    err = err,
  }
end

--- The hidden logs a run in dir wrote, as paths relative to dir
--- (.psurvey/logs/YYYYMMDD-HHMMSS.log), oldest first.
function H.logs(dir)
  local out = {}
  for name in io.popen('ls -A ' .. sh_quote(dir .. '/.psurvey/logs') .. ' 2>/dev/null'):lines() do
    if name:match('%.log$') then out[#out + 1] = '.psurvey/logs/' .. name end
  end
  table.sort(out)
  return out
end

--- Writes a survey script and runs it.
function H.survey(dir, source, args, env)
  H.write(dir, 'survey.lua', source)
  return H.run(dir, 'survey.lua ' .. (args or ''), env)
end

--- Rows of a query against a SQLite file, through the sqlite3 shell in
--- JSON mode (so the test reads what a user's tools would read).
function H.sql(db, query)
  local out = io.popen(('sqlite3 -json %s %s'):format(sh_quote(db), sh_quote(query))):read('a')
  if out == '' then return {} end
  local cjson = require('cjson')
  return cjson.decode(out)
end

--- One line of the shell: stdout and the exit status.
function H.shell(cmd)
  local p = io.popen(cmd .. '; echo "rc=$?"')
  local out = p:read('a')
  p:close()
  local body, rc = out:match('^(.*)rc=(%d+)\n$')
  return body, tonumber(rc)
end

--- Processes whose command line contains text (to find leftovers).
function H.processes(text)
  local out = {}
  for line in io.popen('ps -eo pid=,args='):lines() do
    if line:find(text, 1, true) and not line:find('ps -eo', 1, true) then out[#out + 1] = line end
  end
  return out
end

--- Starts `psurvey first` in dir in the background, waits until its run is
--- in db (the database it writes), runs `psurvey second` beside it, then
--- waits for the first; returns what the second printed (stdout and
--- stderr) followed by "second=<its exit status>".
function H.beside_a_writer(dir, db, first, second)
  return H.shell(([[cd %s && { %s %s >first.out 2>first.err </dev/null & }
    for i in $(seq 1 100); do
      [ "$(sqlite3 %s "select count(*) from _psurvey_runs where status = 'running'" 2>/dev/null)" = 1 ] && break
      sleep 0.05
    done
    env PSURVEY_VERBOSE=0 %s %s 2>&1; echo "second=$?"; wait]]):format(sh_quote(dir), sh_quote(H.bin), first,
    sh_quote(db), sh_quote(H.bin), second))
end

--- A C test program of core/test/ (built into BUILD_DIR/tests): its path
--- and the names of its cases.
function H.c_test(name)
  local program = (os.getenv('BUILD_DIR') or (H.root .. '/build')) .. '/tests/' .. name
  local names = {}
  local list = io.popen(sh_quote(program) .. ' --list 2>&1')
  for line in list:lines() do names[#names + 1] = line end
  list:close()
  return program, names
end

--- Runs one case of a C test program: it passes alone, saying so.
function H.c_case(program, name)
  local out, rc = H.shell(('%s %s 2>&1'):format(sh_quote(program), sh_quote(name)))
  assert(out == 'ok ' .. name .. '\n' and rc == 0, ('%s (exit %s):\n%s'):format(program, rc, out))
end

--- Inside a describe block: one spec per case of C test program `name`
--- (core/test/), and one that it lists at least `at_least` of them. `it`
--- is the spec file's own (busted gives it to spec files, not modules).
function H.c_cases(it, name, at_least)
  local program, names = H.c_test(name)
  it('has its cases', function()
    assert(#names >= at_least, 'no cases from ' .. program .. ': ' .. table.concat(names, '\n'))
  end)
  for _, case in ipairs(names) do
    it(case, function() H.c_case(program, case) end)
  end
end

--- Shuts psurvey down and checks that nothing the engine made is still
--- open once unreachable objects are collected (core.census()): a count
--- left above zero is a leak, named in the failure.
function H.shutdown()
  local psurvey = require('psurvey')
  psurvey.shutdown()
  collectgarbage('collect')
  collectgarbage('collect')
  local left = {}
  for name, n in pairs(require('psurvey.core').census()) do
    if n ~= 0 then left[#left + 1] = ('%s=%d'):format(name, n) end
  end
  table.sort(left)
  assert(#left == 0, 'still open after shutdown: ' .. table.concat(left, ', '))
end

--- In-process: psurvey with a database in a fresh directory.
function H.options(extra)
  local o = { verbose = 0, vstats = 0, db = H.tmpdir() .. '/results.db' }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

return H
