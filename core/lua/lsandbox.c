/*
 * lsandbox.c: the environments psets run in, inside a worker process.
 *
 * 'default' keeps the whole standard library (surveys commonly run an
 * external simulator per pset) and gives each pset a fresh global table
 * whose misses fall through to _G. In both profiles `load` accepts text
 * only (bytecode comes from the driver, never from user-reachable input)
 * and the string metatable is protected. In 'default' that is a guard
 * against mistakes, not a wall: `debug` reaches the real load (an upvalue
 * of ours) and everything else in the state, and package.loadlib loads
 * native code.
 *
 * 'strict' is an allow-list: no io, no os.execute/remove/rename/exit, no
 * debug, no collectgarbage, no load/loadfile/dofile, no package.loadlib;
 * `require` loads Lua modules only. The libraries it does give are
 * read-only proxies, and reading an undefined global is an error naming
 * it. This is not a jail against a hostile kernel-level attacker; it keeps
 * a survey's workers honest and reproducible.
 *
 * A pset cannot change the shared parts for the next one: the strict
 * environment metatable is protected, the default one is replaced once
 * getmetatable has handed it out, and rawset refuses the strict library
 * proxies. Because a default stage can reach anything through `debug`, the
 * worker (lworker.c) opens a new Lua state before a strict stage that
 * follows a default one.
 *
 * Registry entries (made once per Lua state by psL_sandbox_open):
 *   psurvey.strict_mt   { __index = miss(allowed), __metatable = false }
 *   psurvey.strict      the allowed globals, by name
 *   psurvey.strict_names  "math.floor" -> the function, for shipped upvalues
 *   psurvey.strict_loaded the Lua modules strict require has loaded
 *   psurvey.string_index, psurvey.strict_string_index  the two __index
 *                       of the string metatable (psL_sandbox_select)
 */
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

#include "lsandbox.h"

static const char *const strict_base[] = {
    "assert",   "error",  "ipairs",       "next",         "pairs",    "pcall",    "print",
    "rawequal", "rawget", "rawlen",       "rawset",       "select",   "tonumber", "tostring",
    "type",     "xpcall", "setmetatable", "getmetatable", "_VERSION", NULL};

/* Libraries the strict profile offers, and the names it leaves out. */
static const struct {
  const char *name;
  const char *const *only; /* NULL: every function but those in `except` */
  const char *const *except;
} strict_libs[] = {
    {"string", NULL, (const char *const[]){"dump", NULL}},
    {"table", NULL, NULL},
    {"math", NULL, NULL},
    {"utf8", NULL, NULL},
    {"coroutine", NULL, NULL},
    {"os", (const char *const[]){"clock", "date", "difftime", "time", "getenv", NULL}, NULL},
    {NULL, NULL, NULL}};

/* Registry refs, made for the state psL_sandbox_open was given: the
   environment metatables (a pset's environment is made for every pset,
   and an integer key is the cheapest lookup) and the name "_G". */
static int mt_ref[2] = {LUA_NOREF, LUA_NOREF};
static int g_name_ref = LUA_NOREF;
/* getmetatable handed out the default environments' metatable. */
static int default_mt_seen;
/* The table whose raw writes set *watched_flag (psL_sandbox_watch). */
static const void *watched;
static int *watched_flag;

static int seen_getmetatable(lua_State *L);
static int guarded_rawset(lua_State *L);

static int in_list(const char *const *list, const char *s) {
  for (; list && *list; list++)
    if (strcmp(*list, s) == 0) return 1;
  return 0;
}

/* load(chunk [, name [, mode [, env]]]) that refuses binary chunks. */
static int text_load(lua_State *L) {
  int n = lua_gettop(L);
  if (n < 3) lua_settop(L, 3);
  if (!lua_isnil(L, 3)) {
    const char *mode = luaL_checkstring(L, 3);
    if (strchr(mode, 'b'))
      return luaL_error(L, "load: binary chunks are not allowed in psurvey workers");
  }
  lua_pushstring(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n < 3 ? 3 : n, LUA_MULTRET);
  return lua_gettop(L);
}

/* loadfile(name [, mode [, env]]) and dofile(name), text only. */
static int text_loadfile(lua_State *L) {
  const char *name = luaL_optstring(L, 1, NULL);
  const char *mode = luaL_optstring(L, 2, "t");
  if (strchr(mode, 'b'))
    return luaL_error(L, "loadfile: binary chunks are not allowed in psurvey workers");
  int env = !lua_isnone(L, 3) ? 3 : 0;
  if (luaL_loadfilex(L, name, "t") != LUA_OK) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  if (env) {
    lua_pushvalue(L, env);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  }
  return 1;
}

static int text_dofile(lua_State *L) {
  const char *name = luaL_optstring(L, 1, NULL);
  lua_settop(L, 1);
  if (luaL_loadfilex(L, name, "t") != LUA_OK) return lua_error(L);
  lua_call(L, 0, LUA_MULTRET);
  return lua_gettop(L) - 1;
}

/* A command that needs no shell: words of plain characters, the first not
   an assignment. Anything else (quotes, $, globs, redirections, pipes,
   ;, &, ~, newlines...) goes to /bin/sh as usual. */
static int simple_command(const char *cmd, char **argv, int max, char *buf, size_t bufsz) {
  size_t n = strlen(cmd);
  if (n == 0 || n >= bufsz) return 0;
  for (size_t k = 0; k < n; k++) {
    unsigned char c = (unsigned char)cmd[k];
    if (!(c == ' ' || c == '\t' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || strchr("_./:+,@%-", c)))
      return 0;
  }
  memcpy(buf, cmd, n + 1);
  int argc = 0;
  for (char *p = strtok(buf, " \t"); p; p = strtok(NULL, " \t")) {
    if (argc == max - 1) return 0;
    argv[argc++] = p;
  }
  argv[argc] = NULL;
  return argc > 0;
}

/*
 * os.execute(cmd) in a worker: the standard function, except that a simple
 * command (`sleep 0.01`, `/opt/sim/run --n 4 out.dat`) is started directly
 * instead of through `/bin/sh -c`, which saves a process per call; surveys
 * often run one external program per pset. The results are those of the
 * standard function. A name that is not a program (a shell builtin such as
 * `exit` or `cd`) goes to the shell after all.
 */
static int fast_execute(lua_State *L) {
  const char *cmd = lua_tostring(L, 1);
  char *argv[64], buf[1024];
  if (cmd && lua_gettop(L) == 1 && simple_command(cmd, argv, 64, buf, sizeof buf)) {
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    pid_t pid;
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE); /* the worker ignores it; a program must not */
    sigaddset(&dflt, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc == 0) {
      int status;
      while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return luaL_fileresult(L, 0, NULL);
      errno = 0; /* luaL_execresult reads errno: the PATH search left one */
      return luaL_execresult(L, status);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* __newindex of a read-only library proxy. */
static int readonly(lua_State *L) {
  return luaL_error(L, "the strict sandbox's '%s' library is read-only",
                    lua_tostring(L, lua_upvalueindex(1)));
}

/* __index of the strict environment: allowed globals, or an error. */
static int strict_miss(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "undefined global '%s' (the strict sandbox has no such name)",
                      lua_tostring(L, 2));
  return luaL_error(L, "undefined global of type %s", luaL_typename(L, 2));
}

/*
 * require(name) in the strict profile: allowed libraries, or a Lua module
 * found on the package.path the worker started with, run in a strict
 * environment of its own. package.searchpath and that path are this
 * closure's upvalues, taken when the profile is built: nothing a pset
 * reaches can change where strict modules come from.
 */
static int strict_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "psurvey.strict");
  if (lua_getfield(L, -1, name) == LUA_TTABLE) return 1;
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "psurvey.strict_loaded");
  int loaded = lua_gettop(L);
  if (lua_getfield(L, loaded, name) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1)); /* package.searchpath */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2)); /* package.path */
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2))
    return luaL_error(L, "module '%s' not found (the strict sandbox loads Lua modules only):\n\t%s",
                      name, lua_tostring(L, -1));
  lua_pop(L, 1);
  const char *found = lua_tostring(L, -1);
  if (luaL_loadfilex(L, found, "t") != LUA_OK) return lua_error(L);
  psL_sandbox_push_env(L, PSL_SANDBOX_STRICT);
  lua_setupvalue(L, -2, 1);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -3);
  lua_call(L, 2, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, loaded, name);
  return 1;
}

/* Pushes a read-only proxy of the library table at idx, keeping only the
   allowed names; also records "lib.fn" names in the table at names. */
static void push_proxy(lua_State *L, const char *libname, int lib, const char *const *only,
                       const char *const *except, int names) {
  lua_newtable(L); /* the proxy */
  lua_newtable(L); /* its metatable */
  lua_newtable(L); /* the allowed contents */
  lua_pushnil(L);
  while (lua_next(L, lib) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (k && (only ? in_list(only, k) : !in_list(except, k))) {
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, -5);
      lua_pushfstring(L, "%s.%s", libname, k);
      lua_pushvalue(L, -2);
      lua_rawset(L, names);
    }
    lua_pop(L, 1);
  }
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, libname);
  lua_pushcclosure(L, readonly, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

void psL_sandbox_open(lua_State *L) {
  int top = lua_gettop(L);
  /* A new state: refs of an earlier one mean nothing here. */
  mt_ref[0] = mt_ref[1] = g_name_ref = LUA_NOREF;
  default_mt_seen = 0;
  watched = NULL;
  watched_flag = NULL;
  /* Text-only loading, in _G itself: both profiles. */
  lua_pushglobaltable(L);
  int G = lua_gettop(L);
  lua_getfield(L, G, "load");
  lua_pushcclosure(L, text_load, 1);
  lua_setfield(L, G, "load");
  lua_pushcfunction(L, text_loadfile);
  lua_setfield(L, G, "loadfile");
  lua_pushcfunction(L, text_dofile);
  lua_setfield(L, G, "dofile");
  lua_getfield(L, G, "os");
  lua_getfield(L, -1, "execute");
  lua_pushcclosure(L, fast_execute, 1);
  lua_setfield(L, -2, "execute");
  lua_pop(L, 1);
  lua_getfield(L, G, "getmetatable");
  lua_pushcclosure(L, seen_getmetatable, 1);
  lua_setfield(L, G, "getmetatable");
  lua_getfield(L, G, "rawset");
  lua_pushcclosure(L, guarded_rawset, 1);
  lua_setfield(L, G, "rawset");

  /* The string metatable: its real __index is kept for 'default'. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  int smt = lua_gettop(L);
  lua_pushboolean(L, 0);
  lua_setfield(L, smt, "__metatable");
  lua_getfield(L, smt, "__index");
  lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.string_index");

  lua_newtable(L);
  int allowed = lua_gettop(L);
  lua_newtable(L);
  int names = lua_gettop(L);
  for (int i = 0; strict_base[i]; i++) {
    lua_getfield(L, G, strict_base[i]);
    lua_pushvalue(L, -1);
    lua_setfield(L, names, strict_base[i]);
    lua_setfield(L, allowed, strict_base[i]);
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  int loaded = lua_gettop(L);
  for (int i = 0; strict_libs[i].name; i++) {
    lua_getfield(L, loaded, strict_libs[i].name);
    push_proxy(L, strict_libs[i].name, lua_gettop(L), strict_libs[i].only, strict_libs[i].except,
               names);
    lua_pushvalue(L, -1);
    lua_setfield(L, names, strict_libs[i].name);
    lua_setfield(L, allowed, strict_libs[i].name);
    lua_pop(L, 1);
  }
  /* Strings index the proxy's contents in the strict profile (no dump). */
  lua_getfield(L, allowed, "string");
  lua_getmetatable(L, -1);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.strict_string_index");
  lua_pop(L, 2);
  lua_getfield(L, loaded, LUA_LOADLIBNAME);
  lua_getfield(L, -1, "searchpath");
  lua_getfield(L, -2, "path");
  lua_remove(L, -3);
  lua_pushcclosure(L, strict_require, 2);
  lua_pushvalue(L, -1);
  lua_setfield(L, names, "require");
  lua_setfield(L, allowed, "require");
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.strict_loaded");

  lua_createtable(L, 0, 2);
  lua_pushvalue(L, allowed);
  lua_pushcclosure(L, strict_miss, 1);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.strict_mt");
  lua_pushvalue(L, allowed);
  lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.strict");
  lua_pushvalue(L, names);
  lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.strict_names");
  lua_settop(L, top);
}

void psL_sandbox_select(lua_State *L, int profile) {
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_getfield(
      L, LUA_REGISTRYINDEX,
      profile == PSL_SANDBOX_STRICT ? "psurvey.strict_string_index" : "psurvey.string_index");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 2);
}

/*
 * The metatable of the environments: one for every default environment,
 * { __index = _G }, and one for every strict one (protected). A default
 * pset may change its environment's metatable (setmetatable(_ENV, nil),
 * getmetatable(_ENV).__index = ...), but not for the next pset: once
 * getmetatable has handed the shared one out, the next pset gets a new
 * environment with a new metatable. Nothing is checked per pset.
 */
static void push_env_mt(lua_State *L, int profile) {
  int k = profile == PSL_SANDBOX_STRICT;
  if (k == 0 && default_mt_seen) {
    luaL_unref(L, LUA_REGISTRYINDEX, mt_ref[0]);
    mt_ref[0] = LUA_NOREF;
    default_mt_seen = 0;
  }
  if (mt_ref[k] == LUA_NOREF) {
    if (k) {
      lua_getfield(L, LUA_REGISTRYINDEX, "psurvey.strict_mt");
    } else {
      lua_createtable(L, 0, 1);
      lua_pushglobaltable(L);
      lua_setfield(L, -2, "__index");
    }
    mt_ref[k] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, mt_ref[k]);
}

/* getmetatable(v): the standard one (upvalue 1), noting when it hands out
   the default environments' metatable. */
static int seen_getmetatable(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  if (mt_ref[0] != LUA_NOREF && lua_type(L, 1) == LUA_TTABLE) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, mt_ref[0]);
    if (lua_rawequal(L, 1, -1)) default_mt_seen = 1;
    lua_pop(L, 1);
  }
  return 1;
}

/*
 * rawset(t, k, v): the standard one (upvalue 1), except that a strict
 * library proxy stays read-only (rawset would write into the proxy, which
 * every pset shares) and that a write into the watched table
 * (psL_sandbox_watch) is noted.
 */
static int guarded_rawset(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getmetatable(L, 1)) {
    lua_getfield(L, -1, "__newindex");
    if (lua_tocfunction(L, -1) == readonly) {
      lua_getupvalue(L, -1, 1);
      return luaL_error(L, "the strict sandbox's '%s' library is read-only", lua_tostring(L, -1));
    }
    lua_pop(L, 2);
  }
  if (watched_flag && lua_topointer(L, 1) == watched) *watched_flag = 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

void psL_sandbox_watch(lua_State *L, int idx, int *flag) {
  watched = lua_topointer(L, idx);
  watched_flag = flag;
}

/* In the default profile a pset's _G is its own global table, not the
   shared one its globals fall back to: `_G.x = 1` must not reach the next
   pset. (The strict profile has no _G.) The name is kept as a reference,
   for the check of every pset. */
static void push_g_name(lua_State *L) {
  if (g_name_ref == LUA_NOREF) {
    lua_pushliteral(L, "_G");
    g_name_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, g_name_ref);
}

void psL_sandbox_push_env(lua_State *L, int profile) {
  lua_createtable(L, 0, profile == PSL_SANDBOX_DEFAULT);
  push_env_mt(L, profile);
  lua_setmetatable(L, -2);
  if (profile == PSL_SANDBOX_DEFAULT) {
    push_g_name(L);
    lua_pushvalue(L, -2);
    lua_rawset(L, -3);
  }
}

int psL_sandbox_env_unused(lua_State *L, int idx, int profile) {
  if (profile == PSL_SANDBOX_DEFAULT && default_mt_seen) return 0;
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L), unused = 1;
  lua_pushnil(L);
  if (profile == PSL_SANDBOX_DEFAULT) {
    /* Its one key: _G, itself. */
    if (lua_next(L, idx) == 0) return 0;
    push_g_name(L);
    unused = lua_rawequal(L, -1, -3) && lua_rawequal(L, -2, idx);
    lua_pop(L, 2); /* the name and the value: the key stays for lua_next */
  }
  if (unused && lua_next(L, idx) != 0) unused = 0;
  lua_settop(L, top);
  if (!unused || !lua_getmetatable(L, idx)) return 0;
  push_env_mt(L, profile);
  unused = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return unused;
}

int psL_sandbox_profile(const char *name) {
  if (strcmp(name, "default") == 0) return PSL_SANDBOX_DEFAULT;
  if (strcmp(name, "strict") == 0) return PSL_SANDBOX_STRICT;
  return -1;
}
