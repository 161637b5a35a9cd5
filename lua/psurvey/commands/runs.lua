--- psurvey results FILE --runs: the runs that wrote a database, with what
--- cites each (its git commit, whether the work tree had changes, its note
--- and tags). Called by `psurvey results`; not a command of its own.
local format = require('psurvey.format')
local common = require('psurvey.commands.common')

local M = {}

-- Tags are kept as a JSON object; SQLite's json_each spells them key=value.
local RUNS = [[
SELECT id, started, status, script, git_commit, git_dirty, note,
  (SELECT group_concat(key || '=' || value, ' ') FROM json_each(r.tags)) AS tags
FROM _psurvey_runs r ORDER BY id]]

--- Prints the runs of the database `store` holds, oldest first, to stdout.
function M.print(store)
  local cursor = store:query(RUNS)
  local rows = {}
  for row in function() return cursor:next() end do
    rows[#rows + 1] = {
      id = row.id,
      started = row.started and os.date('%Y-%m-%d %H:%M:%S', math.floor(row.started)) or '',
      status = row.status or '',
      script = row.script or '',
      -- The short commit, '-dirty' when tracked files had changes (as git describe --dirty).
      git = row.git_commit and (row.git_commit:sub(1, 7) .. (row.git_dirty == 1 and '-dirty' or '')) or '',
      note = row.note or '',
      tags = row.tags or '',
    }
  end
  local i = 0
  io.stdout:write(format.table({ 'id', 'started', 'status', 'script', 'git', 'note', 'tags' },
    function() i = i + 1 return rows[i] end), '\n')
end

--- psurvey results FILE --runs: argv as `results` got it.
function M.run(argv)
  local file
  for i = 2, #argv do
    local a = argv[i]
    if a ~= '--runs' then
      if a:sub(1, 1) == '-' then return common.usage_error("results: --runs does not go with '%s'", a) end
      if file then return common.usage_error("'results' takes one database file") end
      file = a
    end
  end
  if not file then return common.usage_error('results: which database? psurvey results FILE --runs') end
  local store, code = common.open(file, 'results')
  if not store then return code end
  local ok, e = pcall(M.print, store)
  store:close()
  if not ok then
    common.say('results: %s', common.message(e))
    return 3
  end
  return 0
end

return M
