-- The ssh backend's hosts, as they reach the ssh command line: no entry
-- can be taken by ssh for an option. A stand-in ssh program records the
-- command line it is given (no ssh server is needed).
local H = require('support.helpers')
local psurvey = require('psurvey')

local function noop() return {} end

describe('psurvey ssh hosts', function()
  teardown(function()
    H.shutdown()
    H.cleanup()
  end)

  after_each(function() psurvey.shutdown() end)

  it('refuses a hosts file entry that begins with -, naming the file and line', function()
    local dir = H.tmpdir()
    local file = H.write(dir, 'hosts.txt', '# the lab\nlab-pc1\n-oProxyCommand=touch%20/tmp/owned slots=2\n')
    local ok, err = pcall(psurvey.map, noop, psurvey.range(1, 2), H.options({ backend = 'ssh', hosts = file }))
    assert.is_false(ok)
    assert.equal(("%s:3: '-oProxyCommand=touch%%20/tmp/owned' is not a host: it begins with '-', which ssh "
      .. 'would read as an option'):format(file), err:match('[^\n]*hosts%.txt:3: .*$'))
  end)

  it('refuses an ssh.hosts entry that begins with -, naming its index', function()
    for _, entry in ipairs({ '-F/dev/null', { host = '-oProxyCommand=x' } }) do
      local ok, err = pcall(psurvey.map, noop, psurvey.range(1, 2), H.options({ backend = 'ssh',
        ssh = { hosts = { 'lab-pc1', entry } } }))
      assert.is_false(ok)
      local text = type(entry) == 'table' and entry.host or entry
      assert.matches(("option 'ssh': hosts%%[2%%]: '%s' is not a host: it begins with '%%-', which ssh would read "
        .. 'as an option$'):format(text:gsub('%p', '%%%0')), err)
    end
  end)

  it("puts '--' before the host in the ssh command line, after every option", function()
    local dir = H.tmpdir()
    local argv = dir .. '/argv.txt'
    local fake = H.write(dir, 'fake-ssh', ([[#!/bin/sh
printf '%%s\n' "$@" >%s
echo 'ssh: connect to host lab-pc2 port 2222: Connection refused' >&2
exit 255
]]):format(H.quote(argv)))
    os.execute('chmod 755 ' .. H.quote(fake))
    local ssh = { program = fake, options = { '-F', 'my_config' },
      hosts = { 'alice@lab-pc2:2222 psurvey=/opt/psurvey' } }
    local ok, err = pcall(psurvey.map, noop, psurvey.range(1, 2), H.options({ backend = 'ssh', ssh = ssh }))
    assert.is_false(ok)
    assert.matches('every ssh host is lost or unreachable', err)
    local lines = {}
    for line in io.lines(argv) do lines[#lines + 1] = line end
    assert.same({ '-F', 'my_config', '-T', '-e', 'none', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-p', '2222',
      '--', 'alice@lab-pc2', "'/opt/psurvey' agent" }, lines)
  end)
end)
