--- spec/support/slurm.lua: a real single-node Slurm cluster (munged,
--- slurmctld, slurmd) started by hand in a temporary directory, for the
--- #slurm specs: no systemd, nothing written under /etc/slurm; every
--- Slurm command the specs run reads SLURM_CONF. Needs root and Debian's
--- slurm-wlm and munge (setup.sh and .ci/run install them). Jobs of
--- partition urgent preempt (cancel) those of partition debug, the default.
local H = require('support.helpers')
local N = require('support.netns')

local S = {}

-- A TCP port nothing here listens on, from a range clear of the kernel's
-- ephemeral ports: each cluster has its own, so a cluster an earlier run
-- left behind (killed by a timeout) cannot answer for this one.
local function free_port(not_this)
  for _ = 1, 100 do
    local port = math.random(20000, 29999)
    local busy = H.shell(('ss -ltnH "sport = :%d"'):format(port))
    if port ~= not_this and busy == '' then return port end
  end
  error('no free TCP port between 20000 and 29999')
end

local function sh(script)
  local ok = os.execute(script)
  return ok
end

--- Starts the cluster: slurmctld and one slurmd on this machine, or, with
--- hosts = n, slurmctld here (10.200.0.1) and one slurmd in each of the n
--- network-namespace hosts h1..hN (netns.lua: they must be up). Returns
--- { dir, conf, env = 'SLURM_CONF=...' }, or nil and why.
function S.start(hosts)
  local d = H.tmpdir()
  local conf = d .. '/etc/slurm.conf'
  local cpus = math.tointeger(tonumber((H.shell('nproc'):gsub('%s', ''))))
  os.execute(('mkdir -p %s/etc %s/state %s/spool %s/log'):format(d, d, d, d))
  local where, nodes, slurmd = 'localhost', {}, {}
  if hosts then
    where = ('%s(%s)'):format((H.shell('hostname -s'):gsub('%s', '')), N.HERE)
    for k = 1, hosts do
      nodes[k] = ('NodeName=h%d NodeAddr=%s CPUs=%d RealMemory=1000 State=UNKNOWN'):format(k, N.address(k), cpus)
      -- nsenter, not `ip netns exec`: slurmd wants the root mount namespace.
      slurmd[k] = ('nsenter --net=/run/netns/%s unshare --uts sh -c "hostname h%d; exec slurmd -D -N h%d" '
        .. '>%s/log/slurmd-h%d.out 2>&1 &\necho $! > %s/slurmd-h%d.bgpid'):format(N.name(k), k, k, d, k, d, k)
    end
  else
    -- Two GPUs, as far as Slurm knows: gres/gpu over two device files, so a
    -- job given --gres=gpu:N has CUDA_VISIBLE_DEVICES set by Slurm (the files
    -- are character devices of NVIDIA's major number, which nothing opens).
    os.execute(('mkdir -p %s/dev && mknod %s/dev/nvidia0 c 195 0 && mknod %s/dev/nvidia1 c 195 1'):format(d, d, d))
    H.write(d, 'etc/gres.conf', ('NodeName=localhost Name=gpu File=%s/dev/nvidia[0-1]\n'):format(d))
    nodes[1] = ('NodeName=localhost CPUs=%d RealMemory=1000 Gres=gpu:2 State=UNKNOWN\nGresTypes=gpu'):format(cpus)
    slurmd[1] = ('slurmd -D -N localhost >%s/log/slurmd.out 2>&1 &\necho $! > %s/slurmd.bgpid'):format(d, d)
  end
  local ctld_port = free_port()
  local slurmd_port = free_port(ctld_port)
  H.write(d, 'etc/slurm.conf', ([[
ClusterName=psurvey
SlurmctldHost=%s
SlurmctldPort=%d
SlurmdPort=%d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool/%%n
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd-%%n.pid
SlurmctldLogFile=%s/log/slurmctld.log
SlurmdLogFile=%s/log/slurmd-%%n.log
SlurmdTimeout=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=1
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
%s
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
]]):format(where, ctld_port, slurmd_port, d, d, d, d, d, d, table.concat(nodes, '\n')))
  local env = 'SLURM_CONF=' .. H.quote(conf)
  -- munged: its key (the package makes one), its socket directory, as user munge.
  local ok = sh(([[
set -e
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F >%s/log/munged.out 2>&1 &
  echo $! > %s/munged.pid
fi
for i in $(seq 250); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.02; done
export %s
slurmctld -D -i >%s/log/slurmctld.out 2>&1 &
echo $! > %s/slurmctld.bgpid
for i in $(seq 500); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.02; done
kill -0 $(cat %s/slurmctld.bgpid)  # ours is up (its own ports keep another from answering)
%s
for i in $(seq 500); do [ "$(sinfo -h -o %%T 2>/dev/null | sort -u)" = idle ] && exit 0; sleep 0.02; done
exit 1
]]):format(d, d, env, d, d, d, table.concat(slurmd, '\n')))
  -- Stopped by the spec's teardown, or else when the Lua state closes
  -- (busted skips teardown in some runs with --filter).
  local cluster = setmetatable({ dir = d, conf = conf, env = env }, { __gc = function(c) S.stop(c) end })
  if not ok then
    S.stop(cluster)
    local logs = H.shell(('cat %s/log/*.log %s/log/*.out 2>/dev/null'):format(d, d))
    return nil, 'the Slurm cluster did not come up: ' .. logs
  end
  return cluster
end

--- Stops what start() started, by pid: the slurmds, slurmctld, munged.
function S.stop(cluster)
  if not cluster or cluster.stopped then return end
  cluster.stopped = true
  local pidfiles = H.shell(('ls %s/slurmd*.bgpid 2>/dev/null'):format(cluster.dir))
  local names = {}
  for f in pidfiles:gmatch('[^\n]+') do names[#names + 1] = f end
  names[#names + 1] = cluster.dir .. '/slurmctld.bgpid'
  names[#names + 1] = cluster.dir .. '/munged.pid'
  for _, name in ipairs(names) do
    local pid = tonumber(H.slurp(name) or '')
    if pid then
      os.execute(('kill -TERM %d 2>/dev/null; for i in $(seq 100); do kill -0 %d 2>/dev/null || exit 0; '
        .. 'sleep 0.05; done; kill -KILL %d 2>/dev/null'):format(pid, pid, pid))
    end
  end
end

--- What H.run wraps a survey on the cluster in: a survey that hangs fails
--- its spec (exit 124) instead of the whole suite's time.
S.LIMIT = 'timeout -s KILL 180'

--- Runs a shell command with the cluster's SLURM_CONF; returns its stdout.
function S.run(cluster, cmd)
  return H.shell('export ' .. cluster.env .. '; ' .. cmd)
end

--- Submits `script` (text) from dir with sbatch, waits up to secs for the
--- job to end; returns its id and final state (COMPLETED, FAILED...).
function S.batch(cluster, dir, script, secs)
  H.write(dir, 'job.sh', script)
  local id = S.run(cluster, ('cd %s && sbatch --parsable job.sh'):format(H.quote(dir))):match('%d+')
  assert(id, 'sbatch gave no job id')
  local state
  for _ = 1, (secs or 60) * 10 do
    state = S.run(cluster, ('scontrol show job %s -o 2>/dev/null'):format(id)):match('JobState=(%S+)')
    if state and state ~= 'PENDING' and state ~= 'RUNNING' and state ~= 'CONFIGURING'
      and state ~= 'COMPLETING' then break end
    os.execute('sleep 0.1')
  end
  return id, state
end

--- An sbatch script that runs `psurvey survey.lua --backend slurm [args]`
--- with the given #SBATCH options, its output in job.out and job.err.
function S.survey_script(options, args)
  return ('#!/bin/bash\n#SBATCH %s --output=job.out --error=job.err\n%s survey.lua --backend slurm %s\n'):format(
    options, H.bin, args or '')
end

--- Runs that script in dir, waiting up to secs; returns the job's id, its
--- final state and what it wrote to job.out and job.err.
function S.survey_job(cluster, dir, options, args, secs)
  local id, state = S.batch(cluster, dir, S.survey_script(options, args), secs)
  return id, state, H.slurp(dir .. '/job.out') or '', H.slurp(dir .. '/job.err') or ''
end

return S
