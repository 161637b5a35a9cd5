-- examples/simulator.lua: each pset runs an external program, the way a
-- survey drives a real simulator. The "simulator" is a small awk program
-- (awk is always there on Debian) that integrates a thrown ball with air
-- drag, step by step: it prints how far and how high the ball went and
-- writes its trajectory to trajectory.csv in its working directory.
--
-- system.run starts it from an argv array: no shell, so nothing needs
-- quoting, and check = true turns a failed run into the pset's error with
-- the end of the program's stderr. The workdir option gives each pset its
-- own directory, simulator-runs/<table>/<index>, where its files stay.
local psurvey = require('psurvey')

-- The simulation: Euler steps of dt seconds until the ball lands.
local SIMULATOR = [[
BEGIN {
  if (drag < 0) { print "drag must be >= 0, got " drag > "/dev/stderr"; exit 3 }
  a = angle * atan2(0, -1) / 180
  vx = v0 * cos(a); vy = v0 * sin(a); x = 0; y = 0; top = 0; t = 0; n = 0
  print "t,x,y" > "trajectory.csv"
  while (y >= 0) {
    v = sqrt(vx * vx + vy * vy)
    vx -= drag * v * vx * dt
    vy -= (g + drag * v * vy) * dt
    x += vx * dt; y += vy * dt; t += dt
    if (y > top) top = y
    if (++n % 100 == 0) printf "%.3f,%.3f,%.3f\n", t, x, y > "trajectory.csv"
  }
  printf "%.3f %.3f %.3f\n", x, top, t
}
]]

-- Runs the simulator for one pset. The constants that do not vary (speed,
-- gravity, time step, the program) come from `user`. An error raised here
-- does not stop the survey: that pset goes to results.missing with it.
local function throw_worker(pset, system, user)
  local run = system.run({ 'awk', '-v', 'angle=' .. pset.angle, '-v', 'drag=' .. pset.drag,
    '-v', 'v0=' .. user.v0, '-v', 'g=' .. user.g, '-v', 'dt=' .. user.dt, user.program }, { check = true })
  local distance, height, flight = run.stdout:match('^(%S+) (%S+) (%S+)')
  if not distance then error('cannot read the simulator output: ' .. run.stdout) end
  -- Where its trajectory is: the last three parts of its own directory.
  local dir = system.workdir:match('[^/]+/[^/]+/[^/]+$')
  return { distance = tonumber(distance), height = tonumber(height), flight = tonumber(flight), dir = dir }
end

local user = { v0 = 20, g = 9.81, dt = 0.001, program = SIMULATOR }

-- Stage 1, a grid: 6 angles x 3 drags.
local grid = psurvey.product({ angle = psurvey.range(25, 50, 5), drag = { 0, 0.02, 0.1 } })
local throws = psurvey.map(throw_worker, grid, { name = 'throws', user = user, workdir = 'simulator-runs' })
print(throws)
for _, drag in ipairs({ 0, 0.02, 0.1 }) do
  local best
  for row in throws:rows() do
    if row.drag == drag and (not best or row.distance > best.distance) then best = row end
  end
  print(('drag %-4g: the farthest throw is at %d degrees: %.1f m'):format(drag, best.angle, best.distance))
end

-- Stage 2, a space instead of a grid: 20 throws drawn by Latin hypercube
-- sampling over angle and drag (each of the 20 strata of each key holds
-- one), reproducible by its seed.
local space = { angle = { 20, 60 }, drag = { 0, 0.1 } }
local sampled = psurvey.map(throw_worker, psurvey.sample(space, 20, { method = 'lhs', seed = 7 }),
  { name = 'sampled', user = user, workdir = 'simulator-runs' })
local best
for row in sampled:rows() do
  if not best or row.distance > best.distance then best = row end
end
print(('\nof %d sampled throws the farthest is at %.1f degrees with drag %.3f: %.1f m'):format(#sampled,
  best.angle, best.drag, best.distance))
print(('its trajectory: %s/trajectory.csv'):format(best.dir))
