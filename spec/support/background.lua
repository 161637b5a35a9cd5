--- spec/support/background.lua: the psurvey program running in the
--- background, to be stopped by a signal and timed: how long from the
--- signal to its exit, and how it ended.
local H = require('support.helpers')

local B = {}

local function now()
  return io.popen('date +%s.%N'):read('n')
end
B.now = now

--- Starts `psurvey <args>` in dir with the given environment, as H.run
--- does, but in the background, through the command `via` if given (such
--- as 'nohup'); returns { dir = dir, pid = its pid }.
---@param args string already quoted for the shell
function B.start(dir, args, env, via)
  local vars = { 'PSURVEY_VERBOSE=0', 'PSURVEY_VSTATS=0' }
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. '=' .. H.quote(v) end
  local unset = {}
  for line in io.popen('env'):lines() do
    local k = line:match('^(PSURVEY_[%w_]+)=')
    if k and k ~= 'PSURVEY_BIN' then unset[#unset + 1] = '-u ' .. k end
  end
  os.execute(('rm -f %s/.rc %s/.pid'):format(H.quote(dir), H.quote(dir)))
  -- The shell that waits for it records its exit status in .rc.
  os.execute(([[(cd %s && { env %s %s %s %s %s >.out 2>.err </dev/null & echo $! >.pid; wait $!; echo $? >.rc; }) \
    >/dev/null 2>&1 </dev/null &]]):format(H.quote(dir), table.concat(unset, ' '), table.concat(vars, ' '), via or '',
    H.quote(H.bin), args))
  local pid
  for _ = 1, 100 do
    pid = tonumber(H.slurp(dir .. '/.pid'))
    if pid then break end
    os.execute('sleep 0.01')
  end
  return { dir = dir, pid = assert(pid, 'the driver did not start') }
end

--- A worker that counts the `sleep SECONDS` processes the workers before it
--- left running (waiting up to a second for a killed one to go), then
--- leaves one of its own: { left = count }. seconds is a number no other
--- process sleeps, such as 100.375.
function B.leaving_worker(seconds)
  local pattern = ('sleep %s'):format(seconds):gsub('%.', '[.]')
  local command = ('sleep %s &'):format(seconds)
  return function()
    local left
    for _ = 1, 50 do
      left = tonumber(io.popen(('pgrep -fc "%s"'):format(pattern)):read('l'))
      if left == 0 then break end
      os.execute('sleep 0.02')
    end
    os.execute(command)
    return { left = left }
  end
end

--- Waits up to secs seconds until the shell condition cond holds; true if it did.
function B.wait_for(cond, secs)
  local loop = '(for i in $(seq 1 %d); do { %s; } >/dev/null 2>&1 && exit 0; sleep 0.02; done; exit 1)'
  local _, rc = H.shell(loop:format(math.ceil(secs * 50), cond))
  return rc == 0
end

--- Whether the driver has exited.
function B.done(proc)
  local rc = H.slurp(proc.dir .. '/.rc')
  return rc ~= nil and rc ~= ''
end

-- Waits up to limit seconds for the driver to exit; returns whether it did
-- (if not, it is killed with SIGKILL) and { code, out, err }.
local function ending(proc, limit)
  local rc = H.quote(proc.dir .. '/.rc')
  local ended = B.wait_for(('[ -s %s ]'):format(rc), limit)
  if not ended then
    os.execute(('kill -9 %d 2>/dev/null'):format(proc.pid))
    B.wait_for(('[ -s %s ]'):format(rc), 5)
  end
  return ended, {
    code = tonumber(H.slurp(proc.dir .. '/.rc')),
    out = H.slurp(proc.dir .. '/.out') or '',
    err = H.slurp(proc.dir .. '/.err') or '',
  }
end

--- Sends signal sig (INT, TERM, HUP, ...) to the driver and waits up to
--- limit seconds for it to exit. Returns the seconds it took and
--- { code, out, err }, or nil and how it looked after limit seconds (it is
--- then killed with SIGKILL).
function B.stop(proc, sig, limit)
  local t0 = now()
  os.execute(('kill -%s %d'):format(sig, proc.pid))
  local ended, r = ending(proc, limit)
  local took = now() - t0
  if not ended then return nil, r end
  return took, r
end

--- Waits up to limit seconds for the driver to exit by itself; returns
--- { code, out, err }, or nil and how it looked (it is then killed).
function B.finish(proc, limit)
  local ended, r = ending(proc, limit)
  if not ended then return nil, r end
  return r
end

--- Kills the driver with SIGKILL if it still runs (for `finally`).
function B.kill(proc)
  if proc and not B.done(proc) then os.execute(('kill -9 %d 2>/dev/null'):format(proc.pid)) end
end

--- Processes whose command line holds text, waiting up to a second for
--- them to go (a process killed a moment ago may still be listed).
function B.leftovers(text)
  local left
  for _ = 1, 50 do
    left = H.processes(text)
    if #left == 0 then return left end
    os.execute('sleep 0.02')
  end
  return left
end

--- Kills (SIGKILL) the processes whose command line holds text: what a
--- failed spec left behind.
function B.kill_leftovers(text)
  for _, line in ipairs(H.processes(text)) do
    os.execute(('kill -9 %d 2>/dev/null'):format(tonumber(line:match('^%s*(%d+)'))))
  end
end

return B
