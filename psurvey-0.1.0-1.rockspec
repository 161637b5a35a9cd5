rockspec_format = "3.0"
package = "psurvey"
version = "0.1.0-1"
-- `luarocks make` builds from the current directory and ignores this.
source = { url = "." }
description = {
  summary = "Run a Lua worker function once per parameter set, in parallel, with results in SQLite",
  license = "MIT",
  detailed = [[
    psurvey schedules a worker function over persistent worker processes
    (libuv), runs each parameter set in a fresh global environment and
    stores every result and failure in SQLite. It runs on this machine, on
    ssh hosts, or both as one pool. The rock installs the Lua module
    (psurvey, psurvey/core.so), the psurvey program, which the module starts
    as its workers, and its man page (psurvey(1), made with help2man when it
    is installed).
  ]],
}
dependencies = { "lua >= 5.4, < 5.5" }
-- From the system (Debian: libuv1-dev, libsqlite3-dev); found by CMake.
external_dependencies = {
  LIBUV = { header = "uv.h" },
  SQLITE3 = { header = "sqlite3.h" },
}
build = {
  type = "cmake",
  -- LuaRocks' cmake backend sets no build type, and installs into $(PREFIX),
  -- the rock's own directory: $(PREFIX)/bin is deployed to the tree's bin/,
  -- $(LIBDIR) to lib/lua/5.4 and $(LUADIR) to share/lua/5.4.
  variables = {
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    CMAKE_BUILD_TYPE = "Release",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA_CMOD_DIR = "$(LIBDIR)",
    LUA_LMOD_DIR = "$(LUADIR)",
  },
}
-- Debian's busted; `type = "busted"` would try to download busted.
test = { type = "command", command = "busted --lua=lua5.4" }
