--- psurvey.resources: the GPUs of this machine, and what the backends in
--- use offer (current_resources). The engine counts CPUs (core/cpus.c);
--- this module says where GPU ids come from and reads the nodes back.
local core = require('psurvey.core')
local hosts = require('psurvey.hosts')
local options = require('psurvey.options')

local M = {}

-- CUDA's reading of CUDA_VISIBLE_DEVICES: ids up to the first it cannot
-- use ('NoDevFiles' from a batch system, -1), which hides the rest.
local function from_cuda_visible(text)
  local ids = {}
  for id in (text .. ','):gmatch('([^,]*),') do
    id = id:match('^%s*(.-)%s*$')
    if id == '' or id == 'NoDevFiles' or not options.check_gpus({ id }) then break end
    ids[#ids + 1] = id
  end
  return ids
end

-- The indexes `nvidia-smi -L` lists ("GPU 0: NVIDIA A100 (UUID: GPU-...)"),
-- or nil when it is not on the PATH or fails.
-- Looked for on the PATH without a shell: a map() that finds none costs a
-- few file lookups, not two processes.
local function on_path(name)
  for dir in (os.getenv('PATH') or ''):gmatch('[^:]+') do
    local f = io.open(dir .. '/' .. name, 'rb')
    if f then
      f:close()
      return dir .. '/' .. name
    end
  end
end

local function from_nvidia_smi()
  local found = on_path('nvidia-smi')
  if not found then return nil end
  local pipe = io.popen("'" .. found:gsub("'", "'\\''") .. "' -L 2>/dev/null")
  local text = pipe:read('a')
  if not pipe:close() then return nil end
  local ids = {}
  for index in ('\n' .. text):gmatch('\nGPU (%d+):') do ids[#ids + 1] = index end
  return ids
end

--- Where this machine's GPU ids come from, first found wins: each source
--- is { name, find(values) -> list of ids or nil }. (A Slurm node's come
--- from its agent: the CUDA_VISIBLE_DEVICES Slurm gave the agent's step.)
M.gpu_sources = {
  { name = "option 'gpus'", find = function(values) return values.gpus end },
  { name = 'CUDA_VISIBLE_DEVICES', find = function()
    local text = os.getenv('CUDA_VISIBLE_DEVICES')
    return text and from_cuda_visible(text)
  end },
  { name = 'nvidia-smi -L', find = from_nvidia_smi },
}

--- This machine's GPU ids for the resolved options, and where they came
--- from ('none' when nowhere).
function M.gpus_here(values)
  for _, source in ipairs(M.gpu_sources) do
    local ids = source.find(values)
    if ids then return ids, source.name end
  end
  return {}, 'none'
end

local function split(text)
  local ids = {}
  for id in text:gmatch('[^,]+') do ids[#ids + 1] = id end
  return ids
end

--- One entry per node of the backends in use: { host, backend, num_cores,
--- memory (GiB), gpus = { ids }, connected }. From the engine's nodes once
--- a map() has set them up; before, from the options: this machine as it
--- is, ssh hosts as configured (their cores and memory are known once they
--- connect: nil until then).
function M.current(engine, values)
  local out = {}
  local nodes = engine and engine:nodes() or {}
  if #nodes > 0 then
    for _, n in ipairs(nodes) do
      local here = n.backend == 'process'
      out[#out + 1] = {
        host = here and n.host or n.name,
        backend = n.backend,
        num_cores = (here or n.ever_up) and n.cores or nil,
        memory = (here or n.ever_up) and n.memory_mb / 1024 or nil,
        gpus = split(n.gpus),
        connected = n.state == 'up',
      }
    end
    return out
  end
  for _, name in ipairs(values.backend) do
    if name == 'process' then
      out[#out + 1] = { host = core.hostname(), backend = 'process', num_cores = (core.cpus()),
        memory = core.memory() / 1024, gpus = (M.gpus_here(values)), connected = true }
    elseif name == 'ssh' then
      for _, h in ipairs(hosts.gather(values, 3)) do
        out[#out + 1] = { host = h.target .. (h.port and (':' .. h.port) or ''), backend = 'ssh',
          gpus = h.gpus and split(h.gpus) or {}, connected = false }
      end
    end
  end
  return out
end

return M
