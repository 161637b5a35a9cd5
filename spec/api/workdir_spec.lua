-- Option workdir: each pset runs in a directory of its own,
-- <workdir>/<table>/<index>, made for it, so that the files a simulator
-- writes are kept apart (paramsurvey's chdir and out_subdirs).
local H = require('support.helpers')
local psurvey = require('psurvey')

local SIM = H.root .. '/spec/fixtures/sim.sh'

describe('option workdir', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  it('runs each pset in <workdir>/<table>/<index>, named in system.workdir', function()
    local base = H.tmpdir() .. '/runs'
    local r = psurvey.map(function(p, system, sim)
      local out = system.run({ sim, 'file', 'r=' .. p.r }, { check = true })
      local f = io.open('note.txt', 'w') -- relative: the pset's directory
      f:write(p.r)
      f:close()
      return { dir = system.workdir, said = out.stdout }
    end, psurvey.product({ r = { 1, 2, 3 } }), H.options({ workdir = base, name = 'sweep', user = SIM, ncores = 2 }))
    assert.equal(3, #r)
    local dirs = r:column('dir')
    for i = 1, 3 do
      assert.equal(base .. '/sweep/' .. i, dirs[i])
      assert.equal('r=' .. i .. '\n', H.slurp(base .. '/sweep/' .. i .. '/result.txt'))
      assert.equal(tostring(i), H.slurp(base .. '/sweep/' .. i .. '/note.txt'))
    end
  end)

  it('leaves the worker where it was for the next map, whatever a pset did', function()
    local dir = H.tmpdir()
    local r = psurvey.map(function(_, system)
      return { here = system.run({ 'pwd' }).stdout, dir = system.workdir or false }
    end, { {} }, H.options({ ncores = 1 }))
    assert.is_false(r:column('dir')[1]) -- no workdir: none
    local before = r:column('here')[1]
    psurvey.map(function() return {} end, { {} }, H.options({ ncores = 1, workdir = dir .. '/w' }))
    r = psurvey.map(function(_, system) return { here = system.run({ 'pwd' }).stdout } end, { {} },
      H.options({ ncores = 1 }))
    assert.equal(before, r:column('here')[1])
  end)

  it('is relative to the driver\'s directory', function()
    local dir = H.tmpdir()
    local r = H.survey(dir, [[
local psurvey = require('psurvey')
local r = psurvey.map(function(_, system) return { d = system.workdir } end, { {}, {} }, { name = 't' })
print(r:column('d')[2])
]], '--workdir out')
    assert.equal(0, r.code, r.err)
    assert.equal(dir .. '/out/t/2\n', r.out)
  end)

  it('fails the pset, naming the directory, when it cannot be made', function()
    local dir = H.tmpdir()
    H.write(dir, 'file', '')
    local r = psurvey.map(function() return {} end, { {} }, H.options({ workdir = dir .. '/file' }))
    local row = r.missing:rows()()
    local where = (dir .. '/file/'):gsub('%p', '%%%0')
    assert.matches("workdir: cannot make or enter '" .. where .. "[^']*': Not a directory", row._exception)
  end)

  it('keeps maps with long names that share their first 127 bytes apart', function()
    local base = H.tmpdir() .. '/w'
    local long = ('a'):rep(130)
    for _, suffix in ipairs({ '_x', '_y' }) do
      local r = psurvey.map(function(_, system) return { d = system.workdir } end, { {} },
        H.options({ workdir = base, name = long .. suffix }))
      assert.equal(base .. '/' .. long .. suffix .. '/1', r:column('d')[1])
    end
  end)

  it('rejects a bad value, naming the option', function()
    local ok, err = pcall(psurvey.map, function() end, {}, { workdir = '' })
    assert.is_false(ok)
    assert.matches("option 'workdir' to map%(%): expected a directory name, got string", err)
  end)
end)
