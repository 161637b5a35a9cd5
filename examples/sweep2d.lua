-- examples/sweep2d.lua: a two-parameter sweep of a simulator, some of
-- whose runs fail, made to be looked at with `psurvey report`:
--
--   psurvey examples/sweep2d.lua
--   psurvey report .psurvey/sweep2d.db      # writes sweep2d.html here
--
-- The "simulator" is a small awk program: a damped oscillator driven at
-- a frequency (x'' + 2 damping x' + x = cos(frequency t)), integrated
-- step by step until its start-up transient has died away; it prints the
-- amplitude and phase lag it settles to and how many steps it took. The
-- sweep crosses 19 driving frequencies with 7 dampings. Without damping
-- the transient never dies away: the program gives up (exit 3), or, near
-- resonance, stops when the swing blows up (exit 4). Those psets fail and
-- the survey goes on; the report groups them by message, and its heatmap
-- of amplitude over frequency and damping shows the resonance ridge with
-- the failed row in grey.
local psurvey = require('psurvey')

local SIMULATOR = [[
BEGIN {
  dt = 0.002; x = 0; v = 0; t = 0; n = 0
  settle = damping > 0 ? 6 / damping : 400
  if (settle > 400) settle = 400
  period = 2 * atan2(0, -1) / frequency
  while (t < settle + 2 * period) {
    v += (cos(frequency * t) - 2 * damping * v - x) * dt
    x += v * dt; t += dt; n++
    if (x > 100 || x < -100) { printf "amplitude blew up: |x| > 100 at t = %.1f\n", t > "/dev/stderr"; exit 4 }
    if (t > settle && (x > top || top == "")) { top = x; lag = (frequency * t) % (2 * atan2(0, -1)) }
  }
  if (damping == 0) { print "no damping: the transient never dies away" > "/dev/stderr"; exit 3 }
  printf "%.6f %.6f %d\n", top, lag, n
}
]]

local function oscillator(pset, system, user)
  local run = system.run({ 'awk', '-v', 'frequency=' .. pset.frequency, '-v', 'damping=' .. pset.damping,
    user.program }, { check = true })
  local amplitude, lag, steps = run.stdout:match('^(%S+) (%S+) (%S+)')
  return { amplitude = tonumber(amplitude), lag = tonumber(lag), steps = math.tointeger(tonumber(steps)) }
end

-- Damping varies fastest: the undamped runs are spread through the sweep
-- (when a map's first 10 psets all fail alike, psurvey warns that the
-- worker looks broken).
local grid = psurvey.product({ { 'frequency', psurvey.range(0.2, 2.0, 0.1) },
  { 'damping', { 0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8 } } })
local sweep = psurvey.map(oscillator, grid, { name = 'sweep', user = { program = SIMULATOR }, retries = 0 })

local best
for row in sweep:rows() do
  if row.damping == 0.05 and (not best or row.amplitude > best.amplitude) then best = row end
end
print(('%d of %d runs settled; %d failed'):format(#sweep, #grid, #sweep.missing))
print(('with damping 0.05 the largest swing is %.2f, driven at frequency %.1f'):format(best.amplitude,
  best.frequency))
print('see it all: psurvey report .psurvey/sweep2d.db')
