-- luacheck configuration: `luacheck lua spec examples` from the repository root.
std = 'lua54'
max_line_length = 120
codes = true

-- Worker functions are written with their full signature, worker(pset, system, user),
-- so that readers see what a worker receives even when it uses only part of it.
ignore = { '212/pset', '212/system', '212/user' }

files['spec'] = { std = '+busted', ignore = { '211/ok', '231/ok', '311/ok', '212' } }
