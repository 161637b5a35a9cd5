--- spec/support/carbon.lua: a private carbon-cache (Debian's
--- graphite-carbon) on loopback for the specs that speak its protocols,
--- started on free ports with a configuration of its own, and read back
--- from its whisper files (../shared/recipes/carbon-loopback.md).
local H = require('support.helpers')

local C = {}

local PY = '/usr/bin/python3' -- Debian's: it has the carbon and whisper modules

--- Whether carbon-cache is installed here.
function C.available()
  return io.open('/usr/bin/carbon-cache') ~= nil and io.open('/usr/bin/whisper-fetch') ~= nil
end

-- Two free TCP ports on 127.0.0.1.
local function free_ports()
  local out = io.popen(PY .. [[ -c 'import socket; s = [socket.socket() for _ in "lp"]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))']]):read('l')
  local a, b = out:match('^(%d+) (%d+)$')
  return tonumber(a), tonumber(b)
end

--- Starts a carbon-cache; returns { dir, line, pickle, pid } once both
--- receivers listen.
function C.start()
  local c = { dir = H.tmpdir() }
  c.line, c.pickle = free_ports()
  os.execute(('mkdir -p %s/conf %s/storage'):format(H.quote(c.dir), H.quote(c.dir)))
  H.write(c.dir, 'conf/carbon.conf', ([[
[cache]
STORAGE_DIR = %s/storage
LOCAL_DATA_DIR = %s/storage/whisper
PID_DIR = %s/storage
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = %d
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = %d
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = 0
MAX_CREATES_PER_MINUTE = inf
ENABLE_TAGS = False
CARBON_METRIC_INTERVAL = 0
]]):format(c.dir, c.dir, c.dir, c.line, c.pickle))
  H.write(c.dir, 'conf/storage-schemas.conf', '[default]\npattern = .*\nretentions = 1s:1h\n')
  c.pid = tonumber(io.popen(('PYTHONWARNINGS=ignore %s /usr/bin/carbon-cache --config=%s/conf/carbon.conf '
    .. '--nodaemon start >%s/carbon.log 2>&1 & echo $!'):format(PY, H.quote(c.dir), H.quote(c.dir))):read('l'))
  for _ = 1, 400 do
    local log = H.slurp(c.dir .. '/carbon.log') or ''
    if log:find('CarbonReceiverFactory starting on ' .. c.pickle, 1, true)
      and log:find('CarbonReceiverFactory starting on ' .. c.line, 1, true) then
      return c
    end
    os.execute('sleep 0.05')
  end
  C.stop(c)
  error('carbon-cache did not start: ' .. (H.slurp(c.dir .. '/carbon.log') or ''))
end

--- Stops it (SIGTERM; points still in its cache are lost: poll first).
function C.stop(c)
  if c and c.pid then
    os.execute(('kill %d 2>/dev/null; for i in $(seq 1 100); do kill -0 %d 2>/dev/null || break; sleep 0.05; done')
      :format(c.pid, c.pid))
    c.pid = nil
  end
end

--- The points of a metric (dotted path) from `from` to now, as
--- { {time, value}, ... } without the empty slots.
function C.points(c, path, from)
  local file = ('%s/storage/whisper/%s.wsp'):format(c.dir, path:gsub('%.', '/'))
  if not io.open(file) then return {} end
  local out = {}
  for line in io.popen(('/usr/bin/whisper-fetch --from=%d %s 2>/dev/null'):format(from - 1, H.quote(file))):lines() do
    local t, v = line:match('^(%d+)\t(%S+)$')
    if t and v ~= 'None' then out[#out + 1] = { tonumber(t), tonumber(v) } end
  end
  return out
end

--- Waits (up to 20 s) until the metric's last point is `want` and it has
--- at least `count` points (default 1); returns its points.
function C.wait_for(c, path, from, want, count)
  local points
  for _ = 1, 400 do
    points = C.points(c, path, from)
    if #points >= (count or 1) and points[#points][2] == want then return points end
    os.execute('sleep 0.05')
  end
  return points
end

return C
