# shellcheck shell=bash
# bench/surveys.sh: the survey scripts and input lists of the benchmark
# workloads, sourced by bench/run (timings) and bench/profile (perf
# profiles) so that both measure exactly the same surveys. Not a program:
# it only defines the sizes below and write_surveys.
#
# Each workload is numbered as in bench/RESULTS.md:
#   1  1,000,000 no-op psets, lazy product, db = false, ncores = 2
#   2  the same, every result stored in SQLite (table 'million')
#   3  10,000 psets each running os.execute('/bin/true')
#   4  2,000 psets of 10 ms: system.sleep(0.01) (the target), and for the
#      side by side with the peers os.execute('sleep 0.01'), and a Lua
#      busy-wait
#  (3, 4: also through /bin/sh on a part of the list, the "-sh" variants)
#   5  10,000 psets of heavy-tailed run time (99% 0.1 ms, 1% 200 ms)
#   6  a 1-pset survey, default options (db on, ncores default)
#   7  100,000 psets of 20 keys (strings, floats), a nested-table result
#   8  results:rows() over the 1,000,000 rows workload 2 stored
#   9  200 psets with a new worker process each (max_tasks_per_child = 1)
#      and with 2 workers throughout, the driver holding 0 or 500 MiB

BIG_SIDE=1000 # workloads 1, 2, 8: a BIG_SIDE x BIG_SIDE product
TRUE_N=10000   # workload 3
SLEEP_N=2000   # workload 4
SLEEP_S=0.01
TRUE_SH_N=2500 # workload 3 through /bin/sh (psurvey-sh, xargs-sh)
SLEEP_SH_N=500 # workload 4 through /bin/sh
MIXED_N=10000      # workload 5
# Workload 5's list is the same on every run and machine. The seed is the
# first (counting from 1) whose 10,000 draws hold exactly 1% long psets, and
# exactly 1% in their first 1,000 too (bench/run's peers run those).
MIXED_SEED=104
MIXED_SHORT=0.0001 # seconds, 99% of the psets
MIXED_LONG=0.2     # seconds, 1% of the psets
MIXED_P_LONG=0.01
WIDE_N=100000 # workload 7 (the product below has this many psets)
SPAWN_N=200    # workload 9
SPAWN_HEAP=500 # workload 9, MiB of Lua strings the driver holds

# The driver's own peak RSS (getrusage of the driver process alone, without
# its workers), appended to every survey and read back from stderr: GNU time
# only reports the largest process of the tree.
DRIVER_PEAK='local _, peak = psurvey.vmem()
io.stderr:write(("driver_peak_kib %d\n"):format(math.floor(peak * 1024 * 1024 + 0.5)))'

# write_surveys DIR: writes w1.lua ... w9_*.lua and the input lists into DIR.
# w2.lua stores into the database given with --db; w8.lua takes that file
# as its first script argument (psurvey w8.lua -- FILE).
write_surveys() {
  local d=$1

  # The same worker for 1 and 2, so that the difference is the storage.
  cat >"$d/w1.lua" <<EOF
local psurvey = require('psurvey')
local psets = psurvey.product({ a = psurvey.range(1, $BIG_SIDE), b = psurvey.range(1, $BIG_SIDE) })
psurvey.map(function(p) return { y = p.b } end, psets, { db = false, ncores = 2 })
$DRIVER_PEAK
EOF

  cat >"$d/w2.lua" <<EOF
local psurvey = require('psurvey')
local psets = psurvey.product({ a = psurvey.range(1, $BIG_SIDE), b = psurvey.range(1, $BIG_SIDE) })
psurvey.map(function(p) return { y = p.b } end, psets, { ncores = 2, name = 'million' })
$DRIVER_PEAK
EOF

  # The exit status is checked so that a failing command cannot pass for a
  # fast one.
  cat >"$d/w3.lua" <<EOF
local psurvey = require('psurvey')
local function run(p)
  assert(os.execute('/bin/true'))
  return { i = p.value }
end
psurvey.map(run, psurvey.range(1, $TRUE_N), { ncores = 2 })
$DRIVER_PEAK
EOF

  # system.run: the program from an argv array, its exit status and both
  # outputs read back (pipes and poll), no shell.
  cat >"$d/w3_run.lua" <<EOF
local psurvey = require('psurvey')
local function run(p, system)
  system.run({ '/bin/true' }, { check = true })
  return { i = p.value }
end
psurvey.map(run, psurvey.range(1, $TRUE_N), { ncores = 2 })
$DRIVER_PEAK
EOF

  # psurvey's workers start a command without shell syntax directly
  # (posix_spawn, no /bin/sh in between); the quotes of the "-sh" variants
  # send the same command through /bin/sh -c, as stock Lua's os.execute
  # always does, to show what the shell costs.
  cat >"$d/w3_sh.lua" <<EOF
local psurvey = require('psurvey')
local function run(p)
  assert(os.execute("'/bin/true'"))
  return { i = p.value }
end
psurvey.map(run, psurvey.range(1, $TRUE_SH_N), { ncores = 2 })
$DRIVER_PEAK
EOF

  cat >"$d/w4_sh.lua" <<EOF
local psurvey = require('psurvey')
local function nap(p)
  assert(os.execute("sleep '$SLEEP_S'"))
  return { i = p.value }
end
psurvey.map(nap, psurvey.range(1, $SLEEP_SH_N), { ncores = 2 })
$DRIVER_PEAK
EOF

  # A wait in the worker itself: what a pset of 10 ms costs psurvey.
  cat >"$d/w4_nap.lua" <<EOF
local psurvey = require('psurvey')
local function nap(p, system)
  system.sleep($SLEEP_S)
  return { i = p.value }
end
psurvey.map(nap, psurvey.range(1, $SLEEP_N), { ncores = 2 })
$DRIVER_PEAK
EOF

  # The same command the peers run, one process a pset.
  cat >"$d/w4_exec.lua" <<EOF
local psurvey = require('psurvey')
local function nap(p)
  assert(os.execute('sleep $SLEEP_S'))
  return { i = p.value }
end
psurvey.map(nap, psurvey.range(1, $SLEEP_N), { ncores = 2 })
$DRIVER_PEAK
EOF

  # The same 10 ms without a shell: a busy-wait on the worker's CPU clock,
  # so that what exceeds the ideal is psurvey's, not /bin/sh's.
  cat >"$d/w4_busy.lua" <<EOF
local psurvey = require('psurvey')
local function spin(p)
  local t = os.clock() + $SLEEP_S
  while os.clock() < t do end
  return { i = p.value }
end
psurvey.map(spin, psurvey.range(1, $SLEEP_N), { ncores = 2 })
$DRIVER_PEAK
EOF

  # The run times of workload 5, one per line, drawn once with a fixed seed
  # (Lua 5.4's xoshiro256**, the same on every machine) so that every tool
  # and every run gets the same list.
  lua5.4 -e "
    math.randomseed($MIXED_SEED)
    for _ = 1, $MIXED_N do
      print(math.random() < $MIXED_P_LONG and '$MIXED_LONG' or '$MIXED_SHORT')
    end" >"$d/mixed.txt"

  # w5.lua FILE: busy-waits each pset's run time (a sleep through
  # os.execute would cost ten times the 0.1 ms of the short psets).
  cat >"$d/w5.lua" <<'EOF'
local psurvey = require('psurvey')
local psets = {}
for line in io.lines((...)) do psets[#psets + 1] = { i = #psets + 1, d = tonumber(line) } end
local function spin(p)
  local t = os.clock() + p.d
  while os.clock() < t do end
  return { d = p.d }
end
psurvey.map(spin, psets, { ncores = 2 })
EOF
  echo "$DRIVER_PEAK" >>"$d/w5.lua"

  # Default options: the database in .psurvey/, ncores = all cores but one.
  cat >"$d/w6.lua" <<EOF
local psurvey = require('psurvey')
psurvey.map(function(p) return { y = p.x } end, { { x = 1 } })
$DRIVER_PEAK
EOF

  # 20 pset keys: 5 that vary (10 x 10 x 10 x 10 x 10 = 100,000 psets:
  # strings, floats, an integer) and 15 constants of a typical model
  # configuration; the result holds a string, a float and a nested table
  # (stored as JSON).
  cat >"$d/w7.lua" <<EOF
local psurvey = require('psurvey')
local r = psurvey.range
local function model(p)
  return {
    label = p.s1 .. '/' .. p.s2,
    energy = p.f1 * p.f2 + p.tol,
    detail = { p.i, p.f1, { name = p.model, grid = { p.nx, p.ny } } },
  }
end
local psets = psurvey.product({
  s1 = { 'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa' },
  s2 = { 'red', 'orange', 'yellow', 'green', 'blue', 'indigo', 'violet', 'black', 'white', 'grey' },
  f1 = r(0.5, 5, 0.5), f2 = r(0.125, 1.25, 0.125), i = r(1, 10),
  model = { 'lorenz-96' }, solver = { 'rk45' }, tol = { 1e-6 }, dt = { 0.01 },
  t_end = { 100.0 }, nx = { 64 }, ny = { 32 }, forcing = { 8.0 }, damping = { 0.125 },
  boundary = { 'periodic' }, init = { 'random' }, output = { 'summary' }, units = { 'si' },
  alpha = { 1.5 }, beta = { 2.75 },
})
assert(#psets == $WIDE_N)
psurvey.map(model, psets, { ncores = 2, name = 'wide' })
$DRIVER_PEAK
EOF

  cat >"$d/w8.lua" <<EOF
local psurvey = require('psurvey')
local n = 0
for _ in psurvey.open((...), 'million'):rows() do n = n + 1 end
assert(n == $((BIG_SIDE * BIG_SIDE)), 'rows: ' .. n)
$DRIVER_PEAK
EOF

  # Starting workers while the driver holds a large heap: w9_HEAP_spawn.lua
  # starts a worker process for every pset, w9_HEAP_keep.lua keeps 2; the
  # difference is what starting $SPAWN_N workers costs.
  local heap mode extra
  for heap in 0 "$SPAWN_HEAP"; do
    for mode in spawn keep; do
      extra=''
      [[ $mode == spawn ]] && extra=', max_tasks_per_child = 1'
      cat >"$d/w9_${heap}_$mode.lua" <<EOF
local psurvey = require('psurvey')
local heap = {}
for i = 1, $heap do heap[i] = ('%8d'):format(i):rep(1024 * 1024 // 8) end -- 1 MiB each
psurvey.map(function(p) return { y = p.value } end, psurvey.range(1, $SPAWN_N),
  { db = false, ncores = 2$extra })
assert(#heap == $heap)
$DRIVER_PEAK
EOF
    done
  done
}
