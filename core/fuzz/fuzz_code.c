/*
 * fuzz_code.c: libFuzzer target for the worker's side of shipping
 * (psL_unship, core/lua/lship.c), in a real Lua 5.4 state with both
 * sandbox profiles (lsandbox.c), fed what a CODE frame carries as its
 * shipped function: bytes from a peer.
 *
 * The input is one control byte (bit 0: the strict profile), then the
 * shipped function. Each input gets a new state, built as the worker
 * builds its own, and is unshipped under lua_pcall as on_code does. What
 * must hold, beyond no crash, no sanitizer report and no leak:
 *   - success pushes one Lua function and nothing else; failure pushes
 *     nothing (the caller's stack is as it was) and says why;
 *   - PSL_UNSHIP_MALFORMED comes with a message "malformed worker code: ...";
 *   - in the strict profile, nothing reachable from the function (its
 *     upvalues, tables, metatables, and the upvalues of C closures) is the
 *     real global table or a real library table: only the profile's own.
 *
 * The bytecode inside is given to Lua as it is. Lua 5.4 does not verify
 * bytecode: running malicious bytecode can crash it, loading it must not.
 * Nothing here runs the function. Modules resolve against a directory made
 * at start-up holding one module, `m`, so that no input loads code from the
 * machine's Lua path. Lua's heap is capped, so a size read from the input
 * fails as Lua's "not enough memory", not as libFuzzer's out-of-memory.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lsandbox.h"
#include "lship.h"
#include "value.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAP_CAP (64u << 20)

static size_t heap;
static char module_dir[300], module_file[320], module_path[320];

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    heap -= osize;
    return NULL;
  }
  if (nsize > osize && heap - osize + nsize > HEAP_CAP) return NULL;
  void *p = realloc(ptr, nsize);
  if (p != NULL) heap = heap - osize + nsize;
  return p;
}

static void remove_module(void) {
  unlink(module_file);
  rmdir(module_dir);
}

/* A directory with m.lua, for the module paths of every state; removed at
   exit. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  snprintf(module_dir, sizeof module_dir, "/tmp/psurvey-fuzz-code.XXXXXX");
  if (mkdtemp(module_dir) == NULL) return 0;
  snprintf(module_file, sizeof module_file, "%s/m.lua", module_dir);
  FILE *f = fopen(module_file, "w");
  if (f) {
    fputs("local M = { x = 1 }\nfunction M.f(a) return a + M.x end\nreturn M\n", f);
    fclose(f);
  }
  snprintf(module_path, sizeof module_path, "%s/?.lua", module_dir);
  atexit(remove_module);
  return 0;
}

/* The worker's state: the libraries, a module path of our own (strict
   require takes it when the profile is built), the profiles. */
static lua_State *new_state(void) {
  lua_State *L = lua_newstate(capped_alloc, NULL);
  FZ_ASSERT(L != NULL);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, module_path);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  psL_sandbox_open(L);
  return L;
}

typedef struct run_s {
  const char *p;
  size_t n;
  int strict;
  int rc; /* psL_unship's */
  char err[600];
} run_t;

/* Under lua_pcall, as lworker.c's load_code: the holder is argument 2. */
static int unship(lua_State *L) {
  run_t *a = lua_touserdata(L, 1);
  ps_reader_t r;
  ps_reader_init(&r, a->p, a->n);
  int top = lua_gettop(L);
  a->rc = psL_unship(L, &r, 2, a->strict, a->err, sizeof a->err);
  if (a->rc != 0) {
    FZ_ASSERT(lua_gettop(L) == top);
    return 0;
  }
  FZ_ASSERT(lua_gettop(L) == top + 1 && lua_type(L, -1) == LUA_TFUNCTION &&
            !lua_iscfunction(L, -1));
  FZ_ASSERT(ps_reader_left(&r) == 0);
  return 1;
}

/* Whether the value on top is one of the real tables a strict function
   must never reach (the global table, package.loaded and the libraries
   in it): `real` is a set of them. */
static int is_real(lua_State *L, int real) {
  lua_pushvalue(L, -1);
  int found = lua_rawget(L, real) != LUA_TNIL;
  lua_pop(L, 1);
  return found;
}

/* Walks everything reachable from the value on top (popping it), marking
   what it saw in `seen`; asserts that none of it is real. */
static void walk(lua_State *L, int seen, int real, int depth) {
  int v = lua_gettop(L);
  int t = lua_type(L, v);
  if ((t != LUA_TTABLE && t != LUA_TFUNCTION) || depth > 200) {
    lua_pop(L, 1);
    return;
  }
  lua_pushvalue(L, v);
  if (lua_rawget(L, seen) != LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, v);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  FZ_ASSERT(!is_real(L, real));
  luaL_checkstack(L, 8, "fuzz walk");
  if (t == LUA_TFUNCTION) {
    for (int n = 1; lua_getupvalue(L, v, n) != NULL; n++) walk(L, seen, real, depth + 1);
  } else {
    lua_pushnil(L);
    while (lua_next(L, v) != 0) {
      lua_pushvalue(L, -2);
      walk(L, seen, real, depth + 1);
      walk(L, seen, real, depth + 1);
    }
    if (lua_getmetatable(L, v)) walk(L, seen, real, depth + 1);
  }
  lua_pop(L, 1);
}

/* The set of real tables of a state. */
static int push_real(lua_State *L) {
  lua_newtable(L);
  int real = lua_gettop(L);
  lua_pushglobaltable(L);
  lua_pushboolean(L, 1);
  lua_rawset(L, real);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -1);
  lua_pushboolean(L, 1);
  lua_rawset(L, real);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushboolean(L, 1);
      lua_rawset(L, real);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return real;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  run_t a;
  a.strict = data[0] & 1;
  a.p = (const char *)data + 1;
  a.n = size - 1;
  a.rc = 0;
  a.err[0] = '\0';
  lua_State *L = new_state();
  psL_sandbox_select(L, a.strict ? PSL_SANDBOX_STRICT : PSL_SANDBOX_DEFAULT);
  /* The holder, as the worker makes it; its _ENV is a table of our own
     before the first pset, so that the walk can tell it apart. */
  luaL_loadstring(L, "return");
  int holder = lua_gettop(L);
  lua_newtable(L);
  lua_setupvalue(L, holder, 1);
  lua_pushcfunction(L, unship);
  lua_pushlightuserdata(L, &a);
  lua_pushvalue(L, holder);
  int status = lua_pcall(L, 2, 1, 0);
  if (status == LUA_OK && a.rc == 0 && a.strict) {
    int fn = lua_gettop(L);
    int real = push_real(L);
    lua_newtable(L);
    int seen = lua_gettop(L);
    lua_pushvalue(L, fn);
    walk(L, seen, real, 0);
  }
  if (a.rc == PSL_UNSHIP_MALFORMED) FZ_ASSERT(strncmp(a.err, "malformed worker code: ", 23) == 0);
  if (a.rc != 0) FZ_ASSERT(a.err[0] != '\0');
  lua_close(L);
  FZ_ASSERT(heap == 0);
  return 0;
}
