--- spec/support/sshd.lua: real OpenSSH servers for the #ssh specs: one on
--- loopback, and one inside each of a few network namespaces acting as
--- separate hosts (netns.lua). Needs root, openssh-server and iproute2
--- (.ci/run installs them).
local H = require('support.helpers')
local N = require('support.netns')

local S = {}

local function sh(cmd)
  local out, rc = H.shell('{ ' .. cmd .. '; } 2>&1')
  if rc ~= 0 then error(('%s\n-> exit %d: %s'):format(cmd, rc, out), 2) end
  return out
end

--- Keys and an ssh client config in a fresh directory; returns it.
function S.setup()
  local dir = H.tmpdir()
  os.execute('chmod 755 ' .. dir)
  sh(('ssh-keygen -q -t ed25519 -N "" -f %s/host_key && ssh-keygen -q -t ed25519 -N "" -f %s/client_key'):format(
    dir, dir))
  sh(('cp %s/client_key.pub %s/authorized_keys && chmod 644 %s/authorized_keys'):format(dir, dir, dir))
  H.write(dir, 'ssh_config', ([[
Host *
  User root
  IdentityFile %s/client_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
]]):format(dir))
  sh('install -d -m 0755 /run/sshd')
  return { dir = dir, config = dir .. '/ssh_config', servers = {}, netns = 0 }
end

local function sshd_config(s, name, addr, port)
  return H.write(s.dir, name .. '.conf', ([[
Port %d
ListenAddress %s
HostKey %s/host_key
PidFile %s/%s.pid
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
]]):format(port, addr, s.dir, s.dir, name, s.dir))
end

local function wait_listening(log)
  sh(('(for i in $(seq 1 200); do grep -q "Server listening" %s 2>/dev/null && exit 0; sleep 0.02; done; '
    .. 'cat %s; exit 1)'):format(log, log))
end

--- sshd on 127.0.0.1:port; returns the port.
function S.loopback(s, port)
  local conf = sshd_config(s, 'lo', '127.0.0.1', port)
  local log = s.dir .. '/lo.log'
  sh(('/usr/sbin/sshd -D -e -f %s >/dev/null 2>%s </dev/null & echo $! > %s/lo.bgpid'):format(conf, log, s.dir))
  s.servers[#s.servers + 1] = s.dir .. '/lo.bgpid'
  wait_listening(log)
  return port
end

--- n hosts (netns.lua) with an sshd each on 10.200.0.(10+k):22, each with
--- its own host name hK; returns the addresses.
function S.hosts(s, n)
  local addrs = N.up(n)
  s.netns = n
  for k = 1, n do
    local conf = sshd_config(s, 'h' .. k, addrs[k], 22)
    local log = ('%s/h%d.log'):format(s.dir, k)
    sh(('ip netns exec %s unshare --uts sh -c "hostname h%d; exec /usr/sbin/sshd -D -e -f %s" >/dev/null 2>%s '
      .. '</dev/null & echo $! > %s/h%d.bgpid'):format(N.name(k), k, conf, log, s.dir, k))
    s.servers[#s.servers + 1] = ('%s/h%d.bgpid'):format(s.dir, k)
    wait_listening(log)
  end
  return addrs
end

--- Cuts (up = false) or restores host k's network link.
S.link = N.link

--- PIDs of processes whose command line holds text (in any namespace).
function S.pids(text)
  local out = {}
  for _, line in ipairs(H.processes(text)) do out[#out + 1] = tonumber(line:match('^%s*(%d+)')) end
  return out
end

--- Stops every server and process in the namespaces, removes the namespaces.
function S.stop(s)
  for _, f in ipairs(s.servers) do
    os.execute(('P=$(cat %s 2>/dev/null) && { for c in $(ps -o pid= --ppid $P); do kill $c; done; kill $P; }'
      .. ' 2>/dev/null'):format(f))
  end
  N.down(s.netns)
  s.servers, s.netns = {}, 0
end

return S
