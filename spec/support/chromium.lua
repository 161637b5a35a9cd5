--- spec/support/chromium.lua: a page opened in headless Chromium (Debian's
--- chromium), as ../shared/recipes/chromium-headless.md does it: the
--- screenshot, the DOM, the console (JavaScript errors) and the net log
--- (requests) of one launch; where each section of the page lies (from a
--- copy of the page with a measuring script added: the page itself stays
--- script-free); and what a screenshot shows (png_stats.py). Each launch
--- takes about a second.
local H = require('support.helpers')

local C = {}

-- The browser itself: /usr/bin/chromium is a wrapper script that adds
-- flags and, here, prints errors of its own.
C.bin = '/usr/lib/chromium/chromium'

--- Whether the browser is installed.
function C.available()
  local f = io.open(C.bin, 'rb')
  if f then f:close() end
  return f ~= nil
end

-- Every launch: no sandbox (root), no GPU, no background requests of
-- Chromium's own, every host name resolving to nothing (so a request the
-- page makes fails at once and shows in the net log), 5 s of virtual time
-- for anything the page does after it loads.
local FLAGS = table.concat({ '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--no-first-run', '--disable-background-networking', '--disable-sync', '--disable-component-update',
  '--disable-features=NetworkTimeServiceQuerying', "--host-resolver-rules='MAP * ~NOTFOUND'",
  '--virtual-time-budget=5000' }, ' ')

-- Runs the browser on a file with more flags, HOME a directory of dir's
-- (Chromium writes under $HOME whatever it is told). Returns its stdout.
local function chrome(dir, file, flags)
  os.execute('mkdir -p ' .. H.quote(dir .. '/home'))
  local cmd = ('HOME=%s timeout -k 5 60 %s %s %s %s 2>%s'):format(H.quote(dir .. '/home'), C.bin, FLAGS, flags,
    H.quote('file://' .. file), H.quote(dir .. '/chromium.err'))
  local p = io.popen(cmd)
  local out = p:read('a')
  p:close()
  return out, H.slurp(dir .. '/chromium.err') or ''
end

--- Opens the page at path (absolute) once, in a window width x height:
--- { dom = the DOM after load, console = the console lines (each a
--- failure: errors and logs look alike), requests = the URLs the page
--- asked for, png = the screenshot's path }.
function C.open(path, dir, width, height)
  local png, net = dir .. '/page.png', dir .. '/page.netlog.json'
  local dom, err = chrome(dir, path, ('--enable-logging=stderr --log-net-log=%s --screenshot=%s --window-size=%d,%d'
    .. ' --dump-dom'):format(H.quote(net), H.quote(png), width, height))
  local console = {}
  for line in err:gmatch('[^\n]+') do
    if line:find('INFO:CONSOLE', 1, true) or line:find('Page load failed', 1, true)
      or line:find('Could not find any font', 1, true) then
      console[#console + 1] = line:gsub('^[^%]]*%] ', '')
    end
  end
  -- Requests of the page carry its origin ("null" for a file); Chromium's
  -- own say "not an origin".
  local requests, seen = {}, {}
  for line in (H.slurp(net) or ''):gmatch('[^\n]+') do
    if line:find('"initiator":"', 1, true) and not line:find('"initiator":"not an origin"', 1, true) then
      for url in line:gmatch('"url":"([^"]*)"') do
        if not seen[url] then
          seen[url] = true
          requests[#requests + 1] = url
        end
      end
    end
  end
  return { dom = dom, console = console, requests = requests, png = png }
end

local MEASURE = [[
<script>
  const out = [document.documentElement.scrollHeight];
  for (const s of document.querySelectorAll('section[id]')) {
    const r = s.getBoundingClientRect();
    out.push([s.id, r.left + scrollX, r.top + scrollY, r.width, r.height].map(
      (v) => typeof v === 'number' ? Math.round(v) : v).join(' '));
  }
  const p = document.createElement('pre');
  p.id = 'measured';
  p.textContent = out.join('\n');
  document.body.appendChild(p);
</script>
]]

--- Where each <section id> of the page at path lies in a window of that
--- width: { height = the page's height, [id] = { x, y, w, h } }, measured
--- by a copy of the page with a script added at its end (which moves
--- nothing above it).
function C.sections(path, dir, width)
  local page = H.slurp(path)
  local copy = H.write(dir, 'measured.html', (page:gsub('</body>', function() return MEASURE .. '</body>' end)))
  local dom = chrome(dir, copy, ('--dump-dom --window-size=%d,800'):format(width))
  local text = dom:match('<pre id="measured">(.-)</pre>')
  assert(text, 'the measuring script gave nothing')
  local boxes = {}
  for line in text:gmatch('[^\n]+') do
    local id, x, y, w, h = line:match('^(%S+) (%-?%d+) (%-?%d+) (%d+) (%d+)$')
    if id then
      boxes[id] = { x = tonumber(x), y = tonumber(y), w = tonumber(w), h = tonumber(h) }
    elseif line:match('^%d+$') then
      boxes.height = tonumber(line)
    end
  end
  return boxes
end

--- What the screenshot at png shows, whole ("page") and in each named box
--- ({ name = { x, y, w, h } }): pixels, colours (distinct), ink (the share
--- not white) and has[colour] (pixels of each of the colours, #rrggbb).
function C.stats(png, boxes, colours)
  local args = { H.quote(png) }
  for name, b in pairs(boxes or {}) do
    args[#args + 1] = H.quote(('%s=%d,%d,%d,%d'):format(name, b.x, b.y, b.w, b.h))
  end
  for _, c in ipairs(colours or {}) do args[#args + 1] = H.quote(c) end
  local out = io.popen(('python3 %s/spec/support/png_stats.py %s'):format(H.quote(H.root), table.concat(args, ' ')))
    :read('a')
  return require('cjson').decode(out)
end

--- References in the page's own text to anything off the page that a
--- browser would load (src, href to another site, CSS url() and @import):
--- the recipe's static check. Plain links are listed too; a report has none.
function C.static_refs(html)
  local found = {}
  for attr, value in html:gmatch('(%a+)%s*=%s*["\']?%s*([^"\'%s>]*)') do
    local a = attr:lower()
    if (a == 'src' or a == 'href' or a == 'srcset' or a == 'poster' or a == 'action' or a == 'data')
      and value:match('^%a*:?//') then
      found[#found + 1] = a .. '=' .. value
    end
  end
  for ref in html:gmatch('url%(%s*["\']?%s*(%a*:?//[^)]*)') do found[#found + 1] = 'url(' .. ref end
  for ref in html:gmatch('@import%s+([^;]*)') do found[#found + 1] = '@import ' .. ref end
  return found
end

return C
