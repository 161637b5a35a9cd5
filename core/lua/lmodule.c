/*
 * lmodule.c: require('psurvey.core') from any Lua 5.4 program
 * (psurvey/core.so). It also tells where it was loaded from, so that the
 * Lua side finds the psurvey program installed beside it.
 */
#include <dlfcn.h>
#include <lauxlib.h>

#include "lpsurvey.h"

#ifndef PSURVEY_INSTALL_BINDIR
#define PSURVEY_INSTALL_BINDIR ""
#endif

__attribute__((visibility("default"))) int luaopen_psurvey_core(lua_State *L) {
  psL_open_core(L);
  Dl_info info;
  if (dladdr((void *)luaopen_psurvey_core, &info) && info.dli_fname) {
    lua_pushstring(L, info.dli_fname);
    lua_setfield(L, -2, "module_path");
  }
  lua_pushliteral(L, PSURVEY_INSTALL_BINDIR);
  lua_setfield(L, -2, "install_bindir");
  return 1;
}
