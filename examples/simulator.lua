-- examples/simulator.lua: each pset runs an external program, the way a
-- survey drives a real simulator. The "simulator" is a small awk program
-- (awk is always there on Debian) that integrates a thrown ball with air
-- drag, step by step, and prints how far and how high it went. The worker
-- passes the pset's parameters on the command line, reads the output and
-- returns numbers.
local psurvey = require('psurvey')

-- The simulation: Euler steps of dt seconds until the ball lands. It holds
-- no single quote, so the shell command below can wrap it in '...'.
local SIMULATOR = [[
BEGIN {
  a = angle * atan2(0, -1) / 180
  vx = v0 * cos(a); vy = v0 * sin(a); x = 0; y = 0; top = 0; t = 0
  while (y >= 0) {
    v = sqrt(vx * vx + vy * vy)
    vx -= drag * v * vx * dt
    vy -= (g + drag * v * vy) * dt
    x += vx * dt; y += vy * dt; t += dt
    if (y > top) top = y
  }
  printf "%.3f %.3f %.3f\n", x, top, t
}
]]

-- Runs the simulator for one pset. The constants that do not vary (speed,
-- gravity, time step) come from `user`. An error raised here does not stop
-- the survey: that pset goes to results.missing with the message.
local function throw_worker(pset, system, user)
  local cmd = ("awk -v angle=%.17g -v drag=%.17g -v v0=%.17g -v g=%.17g -v dt=%.17g '%s'"):format(
    pset.angle, pset.drag, user.v0, user.g, user.dt, user.program)
  local pipe = assert(io.popen(cmd, 'r'))
  local out = pipe:read('a')
  local ok, how, code = pipe:close()
  if not ok then error(('awk failed (%s %s): %s'):format(how, code, out)) end
  local distance, height, flight = out:match('^(%S+) (%S+) (%S+)')
  if not distance then error('cannot read the simulator output: ' .. out) end
  return { distance = tonumber(distance), height = tonumber(height), flight = tonumber(flight) }
end

local psets = psurvey.product({ angle = psurvey.range(25, 50, 5), drag = { 0, 0.02, 0.1 } })
local results = psurvey.map(throw_worker, psets, {
  name = 'throws',
  user = { v0 = 20, g = 9.81, dt = 0.001, program = SIMULATOR },
})

-- print() shows a results object as a table, one row per pset.
print(results)

-- With drag, the farthest throw is flatter than 45 degrees.
for _, drag in ipairs({ 0, 0.02, 0.1 }) do
  local best
  for row in results:rows() do
    if row.drag == drag and (not best or row.distance > best.distance) then best = row end
  end
  print(('drag %-4g: the farthest throw is at %d degrees: %.1f m'):format(
    drag, best.angle, best.distance))
end
