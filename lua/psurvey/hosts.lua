--- psurvey.hosts: the ssh backend's list of hosts, from a hosts file and
--- from the `ssh = { hosts = {...} }` option. An entry is
---
---   [user@]host[:port] [slots=N] [psurvey=/path/to/psurvey] [gpus=0,1]
---
--- as a line of the file (blank lines and # comments are skipped), as a
--- string in ssh.hosts, or as a table { host = 'user@h', port = 22,
--- slots = 4, psurvey = '/opt/bin/psurvey', gpus = { 0, 1 } }. A host's
--- gpus are its GPU ids, as its CUDA_VISIBLE_DEVICES would name them.
local errors = require('psurvey.errors')
local options = require('psurvey.options')

local M = {}

--- Parses one entry; returns the host table, or nil and why not.
function M.parse(text)
  local words = {}
  for w in text:gmatch('%S+') do words[#words + 1] = w end
  if #words == 0 then return nil, 'empty entry' end
  local target, port = words[1]:match('^([^:]+):(%d+)$')
  target = target or words[1]
  if target:find('[%s:]') or target == '' then return nil, ("'%s' is not [user@]host[:port]"):format(words[1]) end
  if target:sub(1, 1) == '-' then
    return nil, ("'%s' is not a host: it begins with '-', which ssh would read as an option"):format(target)
  end
  local host = { target = target, port = port and math.tointeger(tonumber(port)) or nil }
  for i = 2, #words do
    local k, v = words[i]:match('^(%w+)=(.+)$')
    if k == 'slots' then
      host.slots = math.tointeger(tonumber(v))
      if not host.slots or host.slots < 1 then return nil, ("slots must be a positive integer, got '%s'"):format(v) end
    elseif k == 'psurvey' then
      host.psurvey = v
    elseif k == 'gpus' then
      local ids, why = options.check_gpus(v)
      if not ids then return nil, 'gpus: ' .. why end
      host.gpus = table.concat(ids, ',')
    else
      return nil, ("unknown setting '%s' (known: slots=N, psurvey=/path, gpus=ID,ID)"):format(words[i])
    end
  end
  return host
end

--- The hosts of a file; raises naming the file and line of a bad entry.
function M.read(path, level)
  local f, err = io.open(path)
  if not f then errors.raise(("option 'hosts': cannot read the hosts file: %s"):format(err), level + 1) end
  local out, n = {}, 0
  for line in f:lines() do
    n = n + 1
    local text = line:gsub('#.*$', '')
    if text:find('%S') then
      local host, why = M.parse(text)
      if not host then
        f:close()
        errors.raise(('%s:%d: %s'):format(path, n, why), level + 1)
      end
      out[#out + 1] = host
    end
  end
  f:close()
  return out
end

--- The hosts given by the options `hosts` (a file) and `ssh.hosts`.
function M.gather(values, level)
  local out = values.hosts and M.read(values.hosts, level + 1) or {}
  for i, entry in ipairs(values.ssh and values.ssh.hosts or {}) do
    local host, why
    if type(entry) == 'string' then
      host, why = M.parse(entry)
    elseif type(entry) == 'table' and type(entry.host) == 'string' then
      host, why = M.parse(entry.host .. (entry.port and (':' .. entry.port) or ''))
      if host then host.slots, host.psurvey = entry.slots, entry.psurvey end
      if host and entry.gpus ~= nil then
        local ids, bad = options.check_gpus(entry.gpus)
        if ids then host.gpus = table.concat(ids, ',') else host, why = nil, 'gpus: ' .. bad end
      end
    else
      why = 'expected a string or a table with a host'
    end
    if not host then errors.raise(("option 'ssh': hosts[%d]: %s"):format(i, why), level + 1) end
    out[#out + 1] = host
  end
  return out
end

return M
