--- psurvey gc [FILE|SCRIPT.lua] [--keep N] [--yes]: lists what a survey's
--- directory no longer needs, with the space each takes: the tables of rows
--- a resume set aside (psets the survey no longer has: status 'unmatched'
--- in _psurvey_tables) and the hidden logs of older runs in .psurvey/logs/.
--- With --yes it removes them, but for the N newest of each kind.
local core = require('psurvey.core')
local common = require('psurvey.commands.common')

local say, usage_error = common.say, common.usage_error

-- The newest set-aside table of a database and the newest log are kept
-- unless --keep says otherwise: the last resume's leftovers and the last
-- run's log are what one still looks at ("what did that run do?"); older
-- ones are what gc is for.
local KEEP = 1
local LOGS = '.psurvey/logs'

local M = {
  usage = { 'gc [FILE|SCRIPT.lua] [--keep N] [--yes]' },
  help = {
    { 'gc [FILE] [--keep N]', 'list the tables of rows set aside by resumes and the logs of older runs in'
      .. ' .psurvey/logs, with their sizes (FILE: a database or a script; default: every .psurvey/*.db)' },
    { 'gc ... --yes', ('remove them, but the N newest of each kind (default %d), and compact the database')
      :format(KEEP) },
  },
}

--- 1536 -> "1.5 KiB"
local function size(n)
  if n == nil then return '?' end
  if n < 1024 then return ('%d B'):format(n) end
  local units = { 'KiB', 'MiB', 'GiB', 'TiB' }
  local u = 0
  repeat
    n, u = n / 1024, u + 1
  until n < 1024 or u == #units
  return ('%.1f %s'):format(n, units[u])
end

local function file_size(path)
  local f = io.open(path, 'rb')
  if not f then return 0 end
  local n = f:seek('end')
  f:close()
  return n or 0
end

local function rows_of(store, sql, ...)
  local cursor, out = store:query(sql, ...), {}
  for row in function() return cursor:next() end do out[#out + 1] = row end
  return out
end

--- Runs marked running in the database whose process lives on this host:
--- a survey writing it now (a run that crashed left a dead pid).
local function live_runs(store)
  local out, host = {}, core.hostname()
  for _, r in ipairs(rows_of(store, "SELECT id, pid, host, started, cwd, log FROM _psurvey_runs"
    .. " WHERE status = 'running'")) do
    if r.host == host and r.pid and core.alive(r.pid) then out[#out + 1] = r end
  end
  return out
end

--- The bytes a stage's tables take (its table, attempts and output tables
--- and their indexes), as SQLite's dbstat counts their pages; nil when
--- this SQLite has no dbstat.
local function table_bytes(store, name)
  local ok, rows = pcall(rows_of, store, 'SELECT coalesce(sum(pgsize), 0) AS bytes FROM dbstat WHERE name IN'
    .. ' (SELECT name FROM sqlite_master WHERE tbl_name IN (?1, ?2, ?3))', name, name .. '_attempts',
    name .. '_output')
  return ok and rows[1].bytes or nil
end

--- The set-aside tables of a database, newest first: { name, rows, at,
--- bytes, companions = { names } }.
local function set_aside(store)
  local out = {}
  for _, r in ipairs(rows_of(store, "SELECT name, total, finished FROM _psurvey_tables WHERE status = 'unmatched'"
    .. ' ORDER BY finished DESC, name DESC')) do
    local companions = {}
    for _, c in ipairs(rows_of(store, "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?1, ?2)"
      .. ' ORDER BY name', r.name .. '_attempts', r.name .. '_output')) do
      companions[#companions + 1] = c.name
    end
    out[#out + 1] = { name = r.name, rows = r.total or 0, at = r.finished or 0, bytes = table_bytes(store, r.name),
      companions = companions }
  end
  return out
end

--- The logs of .psurvey/logs, newest first: { path, stamp, bytes }. A log
--- is named YYYYMMDD-HHMMSS.log, or YYYYMMDD-HHMMSS-K.log for the K-th run
--- started in that second.
local function logs()
  local list = core.listdir(LOGS) or {}
  local out = {}
  for _, name in ipairs(list) do
    local stamp, k = name:match('^(%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d)%-?(%d*)%.log$')
    if stamp then
      local path = LOGS .. '/' .. name
      out[#out + 1] = { path = path, stamp = stamp, k = tonumber(k) or 1, bytes = file_size(path) }
    end
  end
  table.sort(out, function(a, b)
    if a.stamp ~= b.stamp then return a.stamp > b.stamp end
    return a.k > b.k
  end)
  return out
end

local function parse(argv)
  local o, code = common.arguments(argv, 'gc', { ['--keep'] = 'keep' }, { ['--yes'] = function(o) o.yes = true end })
  if not o then return nil, code end
  if o.keep == nil then
    o.keep = KEEP
  else
    local v = o.keep
    o.keep = v:match('^%d+$') and math.tointeger(tonumber(v))
    if not o.keep then return nil, usage_error("gc: option '--keep' needs a count (0, 1, ...), got '%s'", v) end
  end
  return o
end

--- The databases gc looks at: FILE's, or every .psurvey/*.db here.
local function databases(file)
  if file then return { file } end
  local out = {}
  for _, name in ipairs(core.listdir('.psurvey') or {}) do
    if name:match('%.db$') then out[#out + 1] = '.psurvey/' .. name end
  end
  return out
end

--- What one database holds for gc, printed; returns { path, store, tables
--- to remove, bytes, running } or nil and an exit status.
local function survey_db(target, keep, live)
  local store, path = common.open(target, 'gc')
  if not store then return nil, path end
  local running = live_runs(store)
  for _, r in ipairs(running) do live[#live + 1] = r end
  local tables = set_aside(store)
  local db = { path = path, store = store, remove = {}, bytes = 0, running = running[1] }
  io.stdout:write(('%s: %d table%s set aside by resumes%s\n'):format(path, #tables, #tables == 1 and '' or 's',
    #tables > 0 and keep > 0 and (', the %d newest kept'):format(math.min(keep, #tables)) or ''))
  -- Pages the file holds but no table uses (rows resumes moved or a stage
  -- deleted): compacting gives them back too.
  local free = rows_of(store, 'SELECT (SELECT freelist_count FROM pragma_freelist_count()) *'
    .. ' (SELECT page_size FROM pragma_page_size()) AS bytes')[1].bytes or 0
  db.free = free
  for i, t in ipairs(tables) do
    local kept = i <= keep
    io.stdout:write(('  %s %-40s %6d rows  set aside %s  %10s%s\n'):format(kept and 'keep' or 'gc  ', t.name, t.rows,
      os.date('%Y-%m-%d %H:%M:%S', math.floor(t.at)), size(t.bytes),
      #t.companions > 0 and ('  with ' .. table.concat(t.companions, ', ')) or ''))
    if not kept then
      db.remove[#db.remove + 1] = t.name
      db.bytes = db.bytes + (t.bytes or 0)
      db.unknown = db.unknown or t.bytes == nil
    end
  end
  if free > 0 then
    io.stdout:write(('  and %s of free pages in the file, given back when it is compacted\n'):format(size(free)))
  end
  return db
end

--- The logs gc would remove: all but the `keep` newest, and never one a
--- running survey writes: its run holds a lock on it (whatever database
--- it uses) and records it (a run of a psurvey that did neither keeps
--- every log from a second before its start on).
local function old_logs(keep, live)
  local list, remove, bytes = logs(), {}, 0
  local here, written, first_live = core.cwd(), {}, nil
  for _, r in ipairs(live) do
    if r.log and r.cwd then
      written[r.log:sub(1, 1) == '/' and r.log or (r.cwd .. '/' .. r.log)] = true
    else
      local s = os.date('%Y%m%d-%H%M%S', math.floor(r.started or 0) - 1)
      if first_live == nil or s < first_live then first_live = s end
    end
  end
  io.stdout:write(('%s: %d log%s%s\n'):format(LOGS, #list, #list == 1 and '' or 's',
    #list > 0 and keep > 0 and (', the %d newest kept'):format(math.min(keep, #list)) or ''))
  for i, l in ipairs(list) do
    local running = written[here .. '/' .. l.path] or (first_live and l.stamp >= first_live)
      or core.in_use(l.path)
    local kept = i <= keep or running
    io.stdout:write(('  %s %-40s %10s%s\n'):format(kept and 'keep' or 'gc  ', l.path, size(l.bytes),
      running and '  (a survey that runs now writes it)' or ''))
    if not kept then
      remove[#remove + 1] = l
      bytes = bytes + l.bytes
    end
  end
  return remove, bytes
end

--- Removes a database's set-aside tables and compacts it; returns the
--- bytes of its files (with the WAL) before and after, or nil and why.
local function collect_db(db)
  local ok, err = db.store:lock()
  if not ok then return nil, err end
  local before = file_size(db.path) + file_size(db.path .. '-wal')
  ok, err = db.store:drop_stages(db.remove)
  if not ok then return nil, err end
  ok, err = db.store:compact()
  if not ok then return nil, err end
  return before, file_size(db.path) + file_size(db.path .. '-wal')
end

function M.run(argv)
  local o, code = parse(argv)
  if not o then return code end
  local paths = databases(o.file)
  local has_logs = #(core.listdir(LOGS) or {}) > 0
  if #paths == 0 and not has_logs then
    return usage_error('gc: no database in .psurvey/ here and no logs: give one, psurvey gc FILE')
  end
  local status, live, dbs = 0, {}, {}
  for _, p in ipairs(paths) do
    local db, why = survey_db(p, o.keep, live)
    if db then dbs[#dbs + 1] = db else status = why end
  end
  -- Logs are shared by every database of this directory: a survey running
  -- on any of them keeps its log.
  if o.file then
    for _, p in ipairs(databases(nil)) do
      local store = core.store(p)
      if store then
        for _, r in ipairs(live_runs(store)) do live[#live + 1] = r end
        store:close()
      end
    end
  end
  local logs_gone, log_bytes = old_logs(o.keep, live)
  local ntables, bytes, unknown = 0, log_bytes, false
  local free = 0
  for _, db in ipairs(dbs) do
    ntables, bytes, unknown = ntables + #db.remove, bytes + db.bytes, unknown or db.unknown
    free = free + db.free
  end
  io.stdout:write(('to remove: %d table%s and %d log%s, %s%s\n'):format(ntables, ntables == 1 and '' or 's',
    #logs_gone, #logs_gone == 1 and '' or 's', size(bytes),
    unknown and ' and the tables whose size this SQLite cannot tell (no dbstat)' or ''))
  for _, db in ipairs(dbs) do
    if db.running then
      say("gc: a survey is running on '%s' (pid %d on %s): run gc once it has finished", db.path, db.running.pid,
        db.running.host)
      status = 3
    end
  end
  if not o.yes then
    for _, db in ipairs(dbs) do db.store:close() end
    if (ntables + #logs_gone > 0 or free > 0) and status == 0 then
      io.stdout:write(('nothing removed: psurvey gc%s --yes removes them (--keep N keeps the N newest of each'
        .. ' kind)\n'):format(o.file and (' ' .. o.file) or ''))
    end
    return status
  end
  for _, db in ipairs(dbs) do
    if not db.running and (#db.remove > 0 or db.free > 0) then
      local before, after = collect_db(db)
      if before then
        io.stdout:write(('%s: removed %d table%s and compacted it: %s, was %s\n'):format(db.path, #db.remove,
          #db.remove == 1 and '' or 's', size(after), size(before)))
      else
        local why = after
        say("gc: '%s': %s", db.path, common.message(why))
        status = 3
      end
    end
    db.store:close()
  end
  local removed, freed = 0, 0
  for _, l in ipairs(logs_gone) do
    if os.remove(l.path) then removed, freed = removed + 1, freed + l.bytes end
  end
  if #logs_gone > 0 then
    io.stdout:write(('%s: removed %d log%s, %s\n'):format(LOGS, removed, removed == 1 and '' or 's', size(freed)))
  end
  return status
end

return M
