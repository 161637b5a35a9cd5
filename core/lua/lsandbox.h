/*
 * lsandbox.h: the worker's sandbox profiles (lsandbox.c).
 */
#ifndef PSL_SANDBOX_H
#define PSL_SANDBOX_H

#include <lua.h>

enum { PSL_SANDBOX_DEFAULT = 0, PSL_SANDBOX_STRICT = 1 };

/* Builds both profiles in the registry of a new state. */
void psL_sandbox_open(lua_State *L);
/* Makes the process-wide parts (the string metatable) follow a profile. */
void psL_sandbox_select(lua_State *L, int profile);
/* Pushes a fresh global table for one pset. */
void psL_sandbox_push_env(lua_State *L, int profile);
/* Whether the global table at idx is as psL_sandbox_push_env made it for
   this profile: empty, its metatable unchanged and, in 'default', that
   metatable never handed out by getmetatable. Such a table can serve the
   next pset. */
int psL_sandbox_env_unused(lua_State *L, int idx, int profile);
/* Makes rawset into the table at idx set *flag to 1 (the worker's system
   table, which __newindex cannot guard against rawset). One table at a
   time: the last one given. */
void psL_sandbox_watch(lua_State *L, int idx, int *flag);
/* PSL_SANDBOX_* for a profile's name, or -1. */
int psL_sandbox_profile(const char *name);

#endif
