/*
 * make_code_corpus.c: writes the seeds of fuzz_code, `make_code_corpus
 * DIR` (into DIR/fuzz_code): workers of every shape that shipping knows
 * (upvalues of plain data, nested functions, standard functions, a
 * module, shared and recursive tables, metatables, _ENV), shipped by the
 * real psL_ship, each for both profiles (the first byte). Bytecode is that
 * of the Lua it is built with; run it again when Lua's changes.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lship.h"

/* Each chunk returns the worker, as a survey script's local function. */
static const struct {
  const char *name;
  const char *chunk;
} workers[] = {
    {"empty", "return function() end"},
    {"globals", "return function(p) return { n = tostring(p.n) .. type(x) } end"},
    {"data",
     "local t = { 1, 2.5, 'three', x = { y = true, [4] = -7 } } local s = ('z'):rep(70)\n"
     "return function() return t, s, 0/0, math.maxinteger end"},
    {"stdlib",
     "local floor, fmt, str = math.floor, string.format, string\n"
     "return function(p) return floor(p), fmt('%d', 1), str.rep('a', 2), print end"},
    {"nested",
     "local function sq(x) return x * x end local function f(x) return sq(x) + 1 end\n"
     "return function(p) return f(p), sq end"},
    {"shared", "local t = {} t.self = t local u = { t, t } return function() return t, u end"},
    {"object",
     "local P = {} P.__index = P function P.new(x) return setmetatable({ x = x }, P) end\n"
     "function P:get() return self.x end local o = P.new(3)\n"
     "local d = setmetatable({}, { __index = { scale = 2 } })\n"
     "return function() return o:get(), P, d.scale end"},
    {"module", "local m = require('m') return function(p) return m.f(p) end"},
    {"counter", "local n = 0 return function() n = n + 1 return n, _ENV end"},
    {NULL, NULL}};

static void write_seed(const char *dir, const char *name, int strict, const char *p, size_t n) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s_%s", dir, name, strict ? "strict" : "default");
  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    perror(path);
    exit(1);
  }
  fputc(strict, f);
  fwrite(p, 1, n, f);
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_code_corpus DIR\n");
    return 2;
  }
  char dir[500], mdir[] = "/tmp/psurvey-code-corpus.XXXXXX", mfile[300];
  snprintf(dir, sizeof dir, "%s/fuzz_code", argv[1]);
  mkdir(argv[1], 0777);
  mkdir(dir, 0777);
  if (mkdtemp(mdir) == NULL) return 1;
  snprintf(mfile, sizeof mfile, "%s/m.lua", mdir);
  FILE *m = fopen(mfile, "w");
  if (m == NULL) return 1;
  fputs("local M = { x = 1 }\nfunction M.f(a) return a + M.x end\nreturn M\n", m);
  fclose(m);

  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua", mdir);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  for (int i = 0; workers[i].name; i++) {
    if (luaL_dostring(L, workers[i].chunk) != LUA_OK) {
      fprintf(stderr, "%s: %s\n", workers[i].name, lua_tostring(L, -1));
      return 1;
    }
    ps_buf_t b;
    char err[700];
    ps_buf_init(&b);
    if (psL_ship(L, -1, &b, 0, err, sizeof err) != 0) {
      fprintf(stderr, "%s: %s\n", workers[i].name, err);
      return 1;
    }
    for (int strict = 0; strict <= 1; strict++)
      write_seed(dir, workers[i].name, strict, b.data, b.len);
    ps_buf_free(&b);
    lua_settop(L, 0);
  }
  lua_close(L);
  unlink(mfile);
  rmdir(mdir);
  return 0;
}
