/*
 * lprogram.c: system.run(argv [, opts]) in a worker (lprogram.h).
 *
 *   local r = system.run({ 'sim', '--r', pset.r }, { stdin = text, env = { OMP_NUM_THREADS = 2 },
 *                        cwd = 'out', check = true })
 *   r.code, r.signal, r.stdout, r.stderr
 *
 * argv holds strings (numbers are written as Lua writes them); no shell
 * sees them, so nothing needs quoting. With check, a program that exits
 * with a status other than 0, or is ended by a signal, raises an error
 * holding the status and the end of its standard error: the pset's
 * _exception says why the program failed.
 */
#include "lprogram.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "program.h"

/* An argv or env holds at most this many entries. */
#define ARGS_MAX 4096
/* With check, the error holds at most this many lines and bytes of the end
   of the program's standard error. */
#define TAIL_LINES 10
#define TAIL_BYTES 2000

static const char *const known_opts[] = {"stdin", "env", "cwd", "check", NULL};

/* The strings of argv, as a NULL-ended array in a userdata kept on the
   stack. Raises naming a bad entry. */
static const char **check_argv(lua_State *L, int idx) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n == 0) luaL_argerror(L, idx, "argv must hold the program and its arguments, got none");
  if (n > ARGS_MAX) luaL_argerror(L, idx, "argv has more than 4096 entries");
  const char **argv = lua_newuserdatauv(L, sizeof *argv * (size_t)(n + 1), 0);
  /* The strings, a number's as Lua writes it, kept alive by a table on the
     stack for as long as the call runs. */
  lua_createtable(L, (int)n, 0);
  int anchor = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, idx, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      luaL_argerror(L, idx,
                    lua_pushfstring(L, "argv[%d] must be a string or a number, got %s", (int)i,
                                    luaL_typename(L, -1)));
    size_t len;
    argv[i - 1] = lua_tolstring(L, -1, &len);
    if (strlen(argv[i - 1]) != len)
      luaL_argerror(L, idx, lua_pushfstring(L, "argv[%d] holds a NUL byte", (int)i));
    lua_rawseti(L, anchor, i);
  }
  argv[n] = NULL;
  return argv;
}

/* opts.env as "NAME=value" strings, in a userdata kept on the stack; the
   strings are kept alive by a table on the stack too, so that an error
   midway leaves nothing behind. */
static const char **check_env(lua_State *L, int opts) {
  if (lua_getfield(L, opts, "env") == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  int t = lua_gettop(L);
  if (!lua_istable(L, t)) luaL_argerror(L, 2, "opts.env must be a table of NAME = value");
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    n++;
    lua_pop(L, 1);
  }
  if (n > ARGS_MAX) luaL_argerror(L, 2, "opts.env has more than 4096 entries");
  const char **env = lua_newuserdatauv(L, sizeof *env * (size_t)(n + 1), 0);
  lua_createtable(L, n, 0); /* the strings' anchor */
  int anchor = lua_gettop(L);
  int k = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    size_t kl;
    const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : NULL;
    if (name == NULL || kl == 0 || strchr(name, '=') || strlen(name) != kl)
      luaL_argerror(L, 2, "opts.env's names must be non-empty strings without '=' or NUL");
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_argerror(L, 2,
                    lua_pushfstring(L, "opts.env.%s must be a string or a number, got %s", name,
                                    luaL_typename(L, -1)));
    /* A number value is written as Lua writes it, on a copy: lua_next
       needs the key untouched, and the value is only read. */
    lua_pushvalue(L, -1);
    size_t vl;
    const char *value = lua_tolstring(L, -1, &vl);
    if (strlen(value) != vl)
      luaL_argerror(L, 2, lua_pushfstring(L, "opts.env.%s holds a NUL byte", name));
    lua_pushfstring(L, "%s=%s", name, value);
    env[k++] = lua_tostring(L, -1);
    lua_rawseti(L, anchor, k);
    lua_pop(L, 2);
  }
  env[k] = NULL;
  return env;
}

/* "SIGKILL" for 9. */
static void push_signal(lua_State *L, int sig) {
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev)
    lua_pushfstring(L, "SIG%s", abbrev);
  else
    lua_pushfstring(L, "signal %d", sig);
}

/* The last TAIL_LINES lines of err, at most TAIL_BYTES of them. */
static void push_tail(lua_State *L, const ps_buf_t *err) {
  size_t n = err->len;
  while (n > 0 && (err->data[n - 1] == '\n' || err->data[n - 1] == '\r')) n--;
  size_t start = n, lines = 0;
  while (start > 0 && n - start < TAIL_BYTES) {
    if (err->data[start - 1] == '\n' && ++lines == TAIL_LINES) break;
    start--;
  }
  lua_pushlstring(L, err->data ? err->data + start : "", n - start);
}

int psL_system_run(lua_State *L) {
  lua_settop(L, 2); /* argv, opts (or nil): what check_* push goes above */
  const char **argv = check_argv(L, 1);
  ps_program_t p = {.argv = argv};
  int check = 0;
  const char **env = NULL;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      int known = 0;
      for (int k = 0; known_opts[k] && !known; k++)
        known = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), known_opts[k]) == 0;
      if (!known)
        luaL_argerror(L, 2,
                      lua_pushfstring(L, "unknown option '%s' (known: stdin, env, cwd, check)",
                                      luaL_tolstring(L, -2, NULL)));
      lua_pop(L, 1);
    }
    if (lua_getfield(L, 2, "stdin") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 2, "opts.stdin must be a string");
      p.input = lua_tolstring(L, -1, &p.input_len);
    }
    if (lua_getfield(L, 2, "cwd") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 2, "opts.cwd must be a string");
      p.cwd = lua_tostring(L, -1);
    }
    lua_getfield(L, 2, "check");
    check = lua_toboolean(L, -1);
    env = check_env(L, 2);
    p.env = env;
  }
  ps_program_out_t o;
  ps_err_t err;
  int rc = ps_program_run(&p, &o, &err);
  if (rc != 0) return luaL_error(L, "system.run: %s", err.msg);
  if (check && (!o.exited || o.code != 0)) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (o.exited)
      lua_pushfstring(L, "system.run: '%s' exited with status %d", argv[0], o.code);
    else
      lua_pushfstring(L, "system.run: '%s' was killed by signal %d (SIG%s)", argv[0], o.signal,
                      sigabbrev_np(o.signal) ? sigabbrev_np(o.signal) : "?");
    luaL_addvalue(&b);
    if (o.err.len > 0) {
      luaL_addstring(&b, "; its standard error ends:\n");
      push_tail(L, &o.err);
      luaL_addvalue(&b);
    }
    ps_buf_free(&o.out);
    ps_buf_free(&o.err);
    luaL_pushresult(&b);
    return lua_error(L);
  }
  lua_createtable(L, 0, 4);
  if (o.exited) {
    lua_pushinteger(L, o.code);
    lua_setfield(L, -2, "code");
  } else {
    push_signal(L, o.signal);
    lua_setfield(L, -2, "signal");
  }
  lua_pushlstring(L, o.out.data ? o.out.data : "", o.out.len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, o.err.data ? o.err.data : "", o.err.len);
  lua_setfield(L, -2, "stderr");
  ps_buf_free(&o.out);
  ps_buf_free(&o.err);
  return 1;
}

int psL_system_run_refused(lua_State *L) {
  return luaL_error(L, "system.run is not available in the strict sandbox (it starts programs)");
}
