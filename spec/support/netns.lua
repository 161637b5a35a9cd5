--- spec/support/netns.lua: network namespaces acting as separate hosts,
--- psv-h1, psv-h2, ... at 10.200.0.11, .12, ..., on a private bridge whose
--- end in this namespace is 10.200.0.1 (where a driver here listens for
--- them). The #ssh specs start an sshd in each, the #slurm specs a
--- slurmd. Needs root and iproute2 (.ci/run installs it).
local H = require('support.helpers')

local N = {}

N.HERE = '10.200.0.1'

local function sh(cmd)
  local out, rc = H.shell('{ ' .. cmd .. '; } 2>&1')
  if rc ~= 0 then error(('%s\n-> exit %d: %s'):format(cmd, rc, out), 2) end
  return out
end

--- Host k's namespace and address.
function N.name(k) return 'psv-h' .. k end
function N.address(k) return '10.200.0.' .. (10 + k) end

--- Makes n hosts; returns their addresses. Hosts an earlier run left
--- behind (killed by a timeout) are removed first.
function N.up(n)
  local left = 0
  for name in H.shell('ip netns list'):gmatch('psv%-h(%d+)') do left = math.max(left, tonumber(name)) end
  if left > 0 or H.shell('ip link show psv-br 2>/dev/null') ~= '' then N.down(math.max(left, n)) end
  sh('ip link add psv-br type bridge && ip addr add ' .. N.HERE .. '/24 dev psv-br && ip link set psv-br up')
  local addrs = {}
  for k = 1, n do
    local ns = N.name(k)
    sh(('ip netns add %s && ip link add psv-veth%d type veth peer name eth0 netns %s'):format(ns, k, ns))
    sh(('ip link set psv-veth%d master psv-br up && ip -n %s addr add %s/24 dev eth0'):format(k, ns, N.address(k)))
    sh(('ip -n %s link set eth0 up && ip -n %s link set lo up'):format(ns, ns))
    addrs[k] = N.address(k)
  end
  return addrs
end

--- Cuts (up = false) or restores host k's network link.
function N.link(k, up)
  sh(('ip link set psv-veth%d %s'):format(k, up and 'up' or 'down'))
end

--- Kills every process in host k's namespace (the host "dies"), by pid.
function N.kill_all(k)
  os.execute(('for p in $(ip netns pids %s 2>/dev/null); do kill -9 $p; done'):format(N.name(k)))
end

--- Kills what runs in the n hosts and removes them and the bridge.
function N.down(n)
  for k = 1, n do
    N.kill_all(k)
    os.execute(('ip link del psv-veth%d 2>/dev/null; ip netns del %s 2>/dev/null'):format(k, N.name(k)))
  end
  if n > 0 then os.execute('ip link del psv-br 2>/dev/null') end
end

return N
