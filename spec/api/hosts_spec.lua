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

describe('psurvey.hosts', function()
  local hosts = require('psurvey.hosts')

  it("reads a host's GPU ids from gpus=", function()
    assert.same({ target = 'alice@lab-pc1', gpus = '0,1' }, hosts.parse('alice@lab-pc1 gpus=0,1'))
    assert.same({ target = 'h', port = 2222, slots = 2, gpus = 'GPU-8b9d,3' },
      hosts.parse('h:2222 slots=2 gpus=GPU-8b9d,3'))
  end)

  it('refuses bad GPU ids, saying why', function()
    assert.same({ nil, "gpus: GPU id '1' is listed twice" }, { hosts.parse('h gpus=1,1') })
    assert.same({ nil, "gpus: GPU #2: expected an index from 0 or a name such as 'GPU-8b9d9b4f' (no commas or spaces),"
      .. " got ''" }, { hosts.parse('h gpus=0,,1') })
  end)

  it('takes gpus as a list in an ssh.hosts table, naming the entry of a bad one', function()
    local list = hosts.gather({ ssh = { hosts = { { host = 'h1', gpus = { 0, 2 } }, 'h2 gpus=1' } } }, 1)
    assert.same({ { target = 'h1', gpus = '0,2' }, { target = 'h2', gpus = '1' } }, list)
    local ok, err = pcall(hosts.gather, { ssh = { hosts = { 'h1', { host = 'h2', gpus = { 0, -1 } } } } }, 1)
    assert.is_false(ok)
    assert.matches("option 'ssh': hosts%[2%]: gpus: GPU #2: expected an index from 0", err)
  end)
end)
