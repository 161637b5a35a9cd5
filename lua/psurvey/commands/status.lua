--- psurvey status [FILE|SCRIPT.lua] [--watch]: how a survey does, read
--- from its database while it runs (the driver's heartbeat, written about
--- once a second: _psurvey_heartbeat) and after: the running stages, their
--- counts, rate and ETA, busy workers per host, the last failures; or the
--- last run's stages and how they ended. It only reads.
local core = require('psurvey.core')
local format = require('psurvey.format')
local common = require('psurvey.commands.common')

local say, usage_error = common.say, common.usage_error

local M = {
  usage = { 'status [FILE|SCRIPT.lua] [--watch]' },
  help = {
    { 'status [FILE] [--watch]', 'how a survey does, from its database: running stages, counts, rate, ETA,'
      .. ' busy workers, the last failures; or how the last run ended. --watch redraws every second until'
      .. ' the survey ends' },
  },
}

-- A heartbeat older than this while a stage runs means the driver stopped
-- beating (it writes one about every second); on this machine a driver
-- whose pid is gone is known at once.
local STALE_S = 5
-- Failures listed per stage: running, and ended.
local FAILURES_RUNNING, FAILURES_ENDED = 5, 3

local now = core.now

--- Seconds left as the live bar writes them (progress.c): 42s, 4m10s, 2h05m.
local function eta_text(s)
  if s == nil or s < 0 then return '?' end
  if s < 60 then return ('%.0fs'):format(s) end
  if s < 3600 then return ('%dm%02ds'):format(s // 60, math.floor(s) % 60) end
  return ('%dh%02dm'):format(s // 3600, math.floor(s) // 60 % 60)
end

--- A span of time people read: 12s, 4m10s, 2h05m.
local function ago(s)
  return eta_text(math.max(0, s))
end

local function utf8_terminal()
  local lang = os.getenv('LC_ALL')
  if not lang or lang == '' then lang = os.getenv('LANG') end
  return lang ~= nil and (lang:find('UTF%-8') or lang:find('utf8')) ~= nil
end

--- The columns to cut lines to: $COLUMNS, the terminal's, or 80.
local function columns(tty)
  local n = tonumber(os.getenv('COLUMNS') or '')
  if not n and tty then
    local p = io.popen('stty size </dev/tty 2>/dev/null')
    if p then
      n = tonumber((p:read('l') or ''):match('^%d+ (%d+)'))
      p:close()
    end
  end
  return n and n > 20 and n or 80
end

--- s on one line, at most width characters (UTF-8 aware).
local function cut(s, width)
  s = tostring(s):match('^[^\n]*'):gsub('[\t\r]', ' ')
  if not utf8.len(s) then s = s:gsub('[\128-\255]', '?') end
  if utf8.len(s) <= width then return s end
  if utf8_terminal() then return s:sub(1, utf8.offset(s, width) - 1) .. '…' end
  return s:sub(1, utf8.offset(s, width - 2) - 1) .. '...'
end

local function rows(store, sql, ...)
  local ok, c = pcall(store.query, store, sql, ...)
  local out = {}
  if not ok then return out end
  for row in c.next, c do out[#out + 1] = row end
  return out
end

local function quote_ident(name)
  return '"' .. name:gsub('"', '""') .. '"'
end

--- Whether process pid runs on this machine.
local function alive(pid)
  return os.execute(('kill -0 %d 2>/dev/null'):format(math.tointeger(pid) or 0)) == true
end

--- "vm 2/2, lab-pc1 0/8" from the heartbeat's JSON.
local function hosts_text(json)
  local parts = {}
  for host, busy, workers in (json or ''):gmatch('"([^"]*)":{"busy":(%d+),"workers":(%d+)}') do
    parts[#parts + 1] = ('%s %s/%s'):format(host, busy, workers)
  end
  return table.concat(parts, ', ')
end

--- The last failures of a stage, newest first, a line each.
local function failures(out, store, stage, limit)
  local list = rows(store, ('SELECT _index, _status, _exception FROM %s WHERE _status <> \'ok\''
    .. ' ORDER BY _end DESC LIMIT ?1'):format(quote_ident(stage)), limit)
  if #list == 0 then return end
  out[#out + 1] = '  last failures:'
  for _, f in ipairs(list) do
    -- The first line of the message: every line is cut to the width later.
    out[#out + 1] = ('    #%d %s: %s'):format(f._index or 0, f._status or '?',
      (f._exception or ''):match('^[^\n]*'))
  end
end

--- The lines of one look at the database.
local function look(store, path)
  local out = { ('psurvey status: %s'):format(path) }
  local run = rows(store, 'SELECT id, started, finished, status, script, host, pid FROM _psurvey_runs'
    .. ' ORDER BY id DESC LIMIT 1')[1]
  if not run then
    out[#out + 1] = 'no run recorded yet'
    return out, 'ended'
  end
  local t = now()
  local stages = rows(store, 'SELECT name, status, total, ok, failed, created, finished FROM _psurvey_tables'
    .. ' WHERE run = ?1 ORDER BY created', run.id)
  local beat = rows(store, 'SELECT * FROM _psurvey_heartbeat WHERE run = ?1', run.id)[1]
  local script = run.script ~= '' and run.script or 'a Lua program'
  local started = os.date('%Y-%m-%d %H:%M:%S', math.floor(run.started or 0))
  if run.status ~= 'running' then
    out[#out + 1] = ('run %d of %s: %s, started %s, took %s'):format(run.id, script, run.status or '?', started,
      format.seconds((run.finished or t) - (run.started or t)))
    for _, s in ipairs(stages) do
      out[#out + 1] = ('stage %s: %s: %d ok, %d failed of %d%s'):format(s.name, s.status or '?', s.ok or 0,
        s.failed or 0, s.total or 0, s.finished and s.created
        and (' in ' .. format.seconds(s.finished - s.created)) or '')
      if (s.failed or 0) > 0 then failures(out, store, s.name, FAILURES_ENDED) end
    end
    if #stages == 0 then out[#out + 1] = 'no stage ran' end
    return out, 'ended'
  end

  -- The run is marked running: is its driver still beating?
  local state = 'running'
  out[#out + 1] = ('run %d of %s, started %s (%s ago), driver pid %d on %s'):format(run.id, script, started,
    ago(t - (run.started or t)), run.pid or 0, run.host or '?')
  local age = beat and (t - beat.beat) or (t - (run.started or t))
  local here = run.host == core.hostname()
  local running = {}
  for _, s in ipairs(stages) do
    if s.status == 'running' then running[#running + 1] = s end
  end
  -- On this machine a driver that is gone is known at once; elsewhere, by
  -- its beats stopping while a stage runs.
  local gone = here and not alive(run.pid)
  if gone or (age > STALE_S and #running > 0) then
    if not gone and here then
      out[#out + 1] = ('driver pid %d on %s has not beaten for %s but still runs (the database locked by'
        .. ' another program? the process stopped?)'):format(run.pid, run.host, ago(age))
      state = 'stalled'
    else
      out[#out + 1] = ('driver pid %d on %s stopped beating %s ago (killed?)'):format(run.pid, run.host or '?',
        ago(age))
      state = here and 'dead' or 'stalled'
    end
  end
  for _, s in ipairs(stages) do
    if s.status ~= 'running' then
      out[#out + 1] = ('stage %s: %s: %d ok, %d failed of %d'):format(s.name, s.status or '?', s.ok or 0,
        s.failed or 0, s.total or 0)
    end
  end
  for _, s in ipairs(running) do
    local b = beat and beat.stage == s.name and beat or nil
    -- The counts of the rows committed (_psurvey_tables has them with the
    -- rows, so they are as fresh as the failures listed); the rest from the beat.
    local total, ok, failed = s.total or 0, s.ok or 0, s.failed or 0
    local line = ('  %d/%d done (%d ok, %d failed)'):format(ok + failed, total, ok, failed)
    if state == 'dead' then
      out[#out + 1] = ('stage %s: was running when its driver stopped'):format(s.name)
      out[#out + 1] = line .. '; --resume runs the rest'
      b = nil
    else
      out[#out + 1] = ('stage %s: running for %s'):format(s.name, ago(t - (b and b.started or s.created or t)))
    end
    if b then
      line = line .. (', %d active, %.1f psets/s'):format(b.active or 0, b.rate or 0)
      if b.eta then
        -- The ETA as the driver measured it, less the time since its beat.
        local since = math.max(0, t - b.beat)
        local function left(v) return math.max(0, v - since) end
        line = line .. ', ETA ' .. eta_text(left(b.eta))
        if b.eta_lo and b.eta_hi then
          local lo, hi = eta_text(left(b.eta_lo)), eta_text(left(b.eta_hi))
          if lo ~= hi then line = line .. (' (%s%s%s)'):format(lo, utf8_terminal() and '–' or '-', hi) end
        end
      else
        line = line .. ', ETA ?'
      end
    end
    if state ~= 'dead' then out[#out + 1] = line end
    if b and b.p50 then
      out[#out + 1] = ('  run time p50 %s, p90 %s'):format(format.seconds(b.p50), format.seconds(b.p90 or b.p50))
    end
    if b and b.hosts then out[#out + 1] = '  busy workers: ' .. hosts_text(b.hosts) end
    if failed > 0 then failures(out, store, s.name, FAILURES_RUNNING) end
  end
  if #running == 0 and state == 'running' then
    out[#out + 1] = ('no stage running: the script is between maps (last beat %s ago)'):format(ago(age))
  end
  return out, state
end

function M.run(argv)
  local target, watch
  for i = 2, #argv do
    local a = argv[i]
    if a == '--watch' then
      watch = true
    elseif a:sub(1, 1) == '-' then
      return usage_error("unknown option '%s' to 'status'", a)
    elseif target == nil then
      target = a
    else
      return usage_error("'status' takes one database file or script")
    end
  end
  if target == nil then
    -- The database written last in .psurvey/.
    local p = io.popen('ls -t .psurvey/*.db 2>/dev/null')
    target = p and p:read('l')
    if p then p:close() end
    if not target then
      say('status: no database in .psurvey/ here: give one (psurvey status FILE|SCRIPT.lua)')
      return 3
    end
  end
  local store, path = common.open(target, 'status')
  if not store then return path end
  local tty = core.isatty(1)
  local term = os.getenv('TERM')
  local clear = tty and term ~= 'dumb'
  local width = columns(tty) - 1
  local first = true
  while true do
    local ok, lines, state = pcall(look, store, path)
    if not ok then
      say('status: %s', common.message(lines))
      store:close()
      return 3
    end
    if watch and clear then
      io.stdout:write('\27[H\27[2J')
    elseif not first then
      io.stdout:write('\n')
    end
    first = false
    for k, line in ipairs(lines) do lines[k] = cut(line, width) end
    io.stdout:write(table.concat(lines, '\n'), '\n')
    io.stdout:flush()
    if not watch or state == 'ended' or state == 'dead' then
      store:close()
      return state == 'dead' and 1 or 0
    end
    -- A second's wait; Ctrl-C kills the sleep, and ends the watch.
    local slept, how, sig = os.execute('sleep 1')
    if not slept and how == 'signal' then
      store:close()
      return 128 + sig
    end
  end
end

return M
