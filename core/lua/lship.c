/*
 * lship.c: the worker function travels as bytecode (lua_dump, with debug
 * information for tracebacks) and its upvalues by value, through the value
 * encoding plus a few tags of its own (value.h): standard library
 * functions and tables by name, loaded modules by name (required on the
 * worker side), back references for shared or recursive tables and
 * functions, and _ENV. Lua 5.4's load() sets a dumped function's first
 * upvalue to the globals and leaves the rest nil, so the worker side
 * restores every upvalue by index.
 */
#include "lship.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcodec.h"
#include "value.h"

static const char *const std_libs[] = {"_G",   "string",    "table", "math",    "io", "os",
                                       "utf8", "coroutine", "debug", "package", NULL};

typedef struct ship_s {
  lua_State *L;
  ps_buf_t *b;
  int names;   /* stack index: value -> standard name */
  int modules; /* stack index: package.loaded */
  int seen;    /* stack index: table or function -> back reference id */
  int nseen;
  int canonical; /* stripped bytecode, sorted keys: for the code hash */
  char *err;
  size_t errsz;
  char path[300];
} ship_t;

/* Builds { [math.floor] = "math.floor", [math] = "math", [print] = "print" }. */
static void push_std_names(lua_State *L) {
  lua_newtable(L);
  int names = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  for (int i = 0; std_libs[i]; i++) {
    if (lua_getfield(L, -1, std_libs[i]) != LUA_TTABLE) {
      lua_pop(L, 1);
      continue;
    }
    int lib = lua_gettop(L);
    lua_pushvalue(L, lib);
    if (lua_rawget(L, names) == LUA_TNIL) {
      lua_pushvalue(L, lib);
      lua_pushstring(L, std_libs[i]);
      lua_rawset(L, names);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, lib) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION) {
        lua_pushvalue(L, -1);
        if (lua_rawget(L, names) == LUA_TNIL) {
          lua_pushvalue(L, -2);
          if (i == 0)
            lua_pushvalue(L, -4);
          else
            lua_pushfstring(L, "%s.%s", std_libs[i], lua_tostring(L, -4));
          lua_rawset(L, names);
        }
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int refuse(ship_t *S, const char *what) {
  snprintf(S->err, S->errsz,
           "%s is %s, which cannot be sent to worker processes: create it inside the worker, "
           "pass plain data in map's 'user' option, or require its module inside the worker",
           S->path, what);
  return -1;
}

static int ship_value(ship_t *S, int idx, int depth);

static int writer(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  ps_buf_put((ps_buf_t *)ud, p, n);
  return 0;
}

/* Returns 1 (and writes a back reference) when the object was shipped
   before; otherwise gives it the next id. */
static int backref(ship_t *S, int idx) {
  lua_State *L = S->L;
  lua_pushvalue(L, idx);
  if (lua_rawget(L, S->seen) == LUA_TNUMBER) {
    ps_buf_putc(S->b, PS_TAG_BACKREF);
    ps_buf_put_varint(S->b, (uint64_t)lua_tointeger(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, S->nseen++);
  lua_rawset(L, S->seen);
  return 0;
}

static int ship_function(ship_t *S, int idx, int depth) {
  lua_State *L = S->L;
  if (backref(S, idx)) return 0;
  ps_buf_t code;
  ps_buf_init(&code);
  lua_pushvalue(L, idx);
  lua_dump(L, writer, &code, S->canonical);
  lua_pop(L, 1);
  ps_buf_putc(S->b, PS_TAG_FUNC);
  ps_put_bytes(S->b, code.data, code.len);
  ps_buf_free(&code);
  int nups = 0;
  while (lua_getupvalue(L, idx, nups + 1) != NULL) {
    lua_pop(L, 1);
    nups++;
  }
  ps_buf_put_varint(S->b, (uint64_t)nups);
  size_t pathlen = strlen(S->path);
  for (int i = 1; i <= nups; i++) {
    const char *name = lua_getupvalue(L, idx, i);
    if (strcmp(name, "_ENV") == 0) {
      ps_buf_putc(S->b, PS_TAG_ENV);
      lua_pop(L, 1);
      continue;
    }
    snprintf(S->path + pathlen, sizeof S->path - pathlen, "%supvalue '%s'", pathlen ? " -> " : "its ",
             *name ? name : "?");
    if (ship_value(S, lua_gettop(L), depth + 1) != 0) return -1;
    lua_pop(L, 1);
    S->path[pathlen] = '\0';
  }
  return 0;
}

typedef struct keybytes_s {
  size_t off, len;
  int slot; /* its index in the keys table */
  const char *base;
} keybytes_t;

static int keybytes_cmp(const void *pa, const void *pb) {
  const keybytes_t *a = pa, *b = pb;
  int c = memcmp(a->base + a->off, b->base + b->off, a->len < b->len ? a->len : b->len);
  return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* The hash part of the table at idx, keys sorted by their encoding, so
   that equal tables always ship as equal bytes (the code hash). */
static int ship_sorted_hash(ship_t *S, int idx, lua_Integer n, uint64_t nhash, size_t pathlen, int depth) {
  lua_State *L = S->L;
  ps_buf_t enc;
  keybytes_t *order = malloc(sizeof *order * (nhash ? nhash : 1));
  if (order == NULL) return refuse(S, "a table too large for memory");
  ps_buf_init(&enc);
  lua_createtable(L, (int)nhash, 0);
  int keys = lua_gettop(L);
  int m = 0, rc = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= n) continue;
    int kt = lua_type(L, -1);
    psL_encerr_t e;
    order[m].off = enc.len;
    if ((kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN) || psL_encode(L, -1, &enc, 1, &e) != 0) {
      lua_pop(L, 1);
      rc = refuse(S, "a table with a key that is not a string, number or boolean");
      break;
    }
    order[m].len = enc.len - order[m].off;
    order[m].slot = m + 1;
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, ++m);
  }
  for (int k = 0; k < m; k++) order[k].base = enc.data;
  if (rc == 0 && !enc.failed) qsort(order, (size_t)m, sizeof *order, keybytes_cmp);
  for (int k = 0; rc == 0 && k < m; k++) {
    lua_rawgeti(L, keys, order[k].slot);
    psL_keypath(L, -1, S->path + pathlen, sizeof S->path - pathlen);
    ps_buf_put(S->b, enc.data + order[k].off, order[k].len);
    lua_rawget(L, idx);
    rc = ship_value(S, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  free(order);
  ps_buf_free(&enc);
  lua_settop(L, keys - 1);
  if (rc == 0) S->path[pathlen] = '\0';
  return rc;
}

static int ship_table(ship_t *S, int idx, int depth) {
  lua_State *L = S->L;
  if (depth > PS_MAX_DEPTH) return refuse(S, "nested deeper than 100 levels");
  if (backref(S, idx)) return 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  uint64_t nhash = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!(lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= n)) nhash++;
  }
  ps_put_table(S->b, (uint64_t)n, nhash);
  size_t pathlen = strlen(S->path);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    snprintf(S->path + pathlen, sizeof S->path - pathlen, "[%lld]", (long long)i);
    if (ship_value(S, lua_gettop(L), depth + 1) != 0) return -1;
    lua_pop(L, 1);
  }
  if (S->canonical) return ship_sorted_hash(S, idx, n, nhash, pathlen, depth);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 && lua_tointeger(L, -2) <= n) {
      lua_pop(L, 1);
      continue;
    }
    psL_keypath(L, -2, S->path + pathlen, sizeof S->path - pathlen);
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
      return refuse(S, "a table with a key that is not a string, number or boolean");
    psL_encerr_t e;
    if (psL_encode(L, -2, S->b, 0, &e) != 0) return refuse(S, e.what);
    if (ship_value(S, lua_gettop(L), depth + 1) != 0) return -1;
    lua_pop(L, 1);
  }
  S->path[pathlen] = '\0';
  return 0;
}

static int ship_value(ship_t *S, int idx, int depth) {
  lua_State *L = S->L;
  int t = lua_type(L, idx);
  if (t == LUA_TTABLE || t == LUA_TFUNCTION) {
    lua_pushvalue(L, idx);
    if (lua_rawget(L, S->names) == LUA_TSTRING) {
      ps_buf_putc(S->b, PS_TAG_STDREF);
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      ps_put_bytes(S->b, s, n);
      lua_pop(L, 1);
      return 0;
    }
    lua_pop(L, 1);
  }
  if (t == LUA_TTABLE) {
    /* A loaded module travels by name and is required on the other side. */
    lua_pushnil(L);
    while (lua_next(L, S->modules) != 0) {
      if (lua_rawequal(L, -1, idx) && lua_type(L, -2) == LUA_TSTRING) {
        ps_buf_putc(S->b, PS_TAG_MODULE);
        size_t n;
        const char *s = lua_tolstring(L, -2, &n);
        ps_put_bytes(S->b, s, n);
        lua_pop(L, 2);
        return 0;
      }
      lua_pop(L, 1);
    }
    return ship_table(S, idx, depth);
  }
  if (t == LUA_TFUNCTION) {
    if (lua_iscfunction(L, idx)) return refuse(S, "a C function that is not part of Lua's standard library");
    return ship_function(S, idx, depth);
  }
  psL_encerr_t e;
  if (psL_encode(L, idx, S->b, 0, &e) != 0) return refuse(S, e.what);
  return 0;
}

int psL_ship(lua_State *L, int idx, ps_buf_t *b, int canonical, char *err, size_t errsz) {
  ship_t S;
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  memset(&S, 0, sizeof S);
  S.canonical = canonical;
  S.L = L;
  S.b = b;
  S.err = err;
  S.errsz = errsz;
  luaL_checkstack(L, 40, "shipping the worker");
  push_std_names(L);
  S.names = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  S.modules = lua_gettop(L);
  lua_newtable(L);
  S.seen = lua_gettop(L);
  int rc;
  if (lua_type(L, idx) != LUA_TFUNCTION || lua_iscfunction(L, idx)) {
    snprintf(err, errsz, "the worker must be a Lua function");
    rc = -1;
  } else {
    rc = ship_function(&S, idx, 0);
  }
  lua_settop(L, top);
  if (rc == 0 && b->failed) {
    snprintf(err, errsz, "the worker is too large: out of memory");
    rc = -1;
  }
  return rc;
}

/* Worker side. */

typedef struct unship_s {
  lua_State *L;
  ps_reader_t *r;
  int envholder;
  int refs; /* stack index: id -> table or function */
  int nrefs;
  int strict; /* resolve names in the strict sandbox (lsandbox.c) */
  char *err;
  size_t errsz;
} unship_t;

static int unship_value(unship_t *U, int depth);

static int bad(unship_t *U, const char *what) {
  snprintf(U->err, U->errsz, "malformed worker code: %s", what);
  return -1;
}

/* Resolves "math.floor" or "print" against this state's standard libraries. */
static int push_stdref(unship_t *U, const char *name, size_t n) {
  lua_State *L = U->L;
  if (U->strict) {
    lua_getfield(L, LUA_REGISTRYINDEX, "psurvey.strict_names");
    lua_pushlstring(L, name, n);
    int t = lua_rawget(L, -2);
    lua_remove(L, -2);
    if (t != LUA_TNIL) return 0;
    lua_pop(L, 1);
    snprintf(U->err, U->errsz,
             "the worker uses '%.*s' (an upvalue), which the strict sandbox does not allow: "
             "use sandbox = 'default' or leave it out",
             (int)n, name);
    return -1;
  }
  const char *dot = memchr(name, '.', n);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (dot == NULL) {
    lua_pushlstring(L, name, n);
    if (lua_rawget(L, -2) == LUA_TTABLE) { /* a library table */
      lua_remove(L, -2);
      return 0;
    }
    lua_pop(L, 1);
    lua_getfield(L, -1, "_G");
    lua_pushlstring(L, name, n);
    lua_rawget(L, -2);
    lua_remove(L, -2);
  } else {
    lua_pushlstring(L, name, (size_t)(dot - name));
    if (lua_rawget(L, -2) != LUA_TTABLE) {
      lua_pop(L, 2);
      snprintf(U->err, U->errsz, "standard library '%.*s' is missing in the worker", (int)n, name);
      return -1;
    }
    lua_pushlstring(L, dot + 1, n - (size_t)(dot - name) - 1);
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    snprintf(U->err, U->errsz, "standard function '%.*s' is missing in the worker", (int)n, name);
    return -1;
  }
  return 0;
}

static void add_ref(unship_t *U) {
  lua_pushvalue(U->L, -1);
  lua_rawseti(U->L, U->refs, ++U->nrefs);
}

static int unship_function(unship_t *U, int depth) {
  lua_State *L = U->L;
  const char *code;
  size_t len;
  uint64_t nups;
  if (ps_read_bytes(U->r, &code, &len) != 0) return bad(U, "bytecode");
  if (luaL_loadbufferx(L, code, len, "=worker", "b") != LUA_OK) {
    snprintf(U->err, U->errsz, "cannot load the worker's bytecode: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  add_ref(U);
  int f = lua_gettop(L);
  if (ps_read_varint(U->r, &nups) != 0 || nups > 255) return bad(U, "upvalue count");
  for (int i = 1; i <= (int)nups; i++) {
    if (ps_reader_left(U->r) == 0) return bad(U, "truncated");
    if (*U->r->p == PS_TAG_ENV) {
      U->r->p++;
      lua_upvaluejoin(L, f, i, U->envholder, 1);
      continue;
    }
    if (unship_value(U, depth + 1) != 0) return -1;
    if (lua_setupvalue(L, f, i) == NULL) {
      lua_pop(L, 1);
      return bad(U, "upvalue count does not match the bytecode");
    }
  }
  return 0;
}

static int unship_table(unship_t *U, int depth) {
  lua_State *L = U->L;
  uint64_t narr, nhash;
  if (ps_read_varint(U->r, &narr) != 0 || ps_read_varint(U->r, &nhash) != 0) return bad(U, "table");
  if (narr > ps_reader_left(U->r) || nhash > ps_reader_left(U->r)) return bad(U, "table size");
  lua_createtable(L, (int)narr, (int)nhash);
  add_ref(U);
  for (uint64_t k = 1; k <= narr; k++) {
    if (unship_value(U, depth + 1) != 0) return -1;
    lua_rawseti(L, -2, (lua_Integer)k);
  }
  for (uint64_t k = 0; k < nhash; k++) {
    if (psL_decode_from(L, U->r, U->err, U->errsz) != 0) return -1;
    if (lua_isnil(L, -1) || lua_type(L, -1) == LUA_TTABLE) return bad(U, "table key");
    if (unship_value(U, depth + 1) != 0) return -1;
    lua_rawset(L, -3);
  }
  return 0;
}

static int unship_value(unship_t *U, int depth) {
  lua_State *L = U->L;
  const char *s;
  size_t n;
  uint64_t id;
  if (depth > PS_MAX_DEPTH) return bad(U, "nested too deep");
  luaL_checkstack(L, 8, "unshipping the worker");
  if (ps_reader_left(U->r) == 0) return bad(U, "truncated");
  switch (*U->r->p) {
    case PS_TAG_FUNC: U->r->p++; return unship_function(U, depth);
    case PS_TAG_TABLE: U->r->p++; return unship_table(U, depth);
    case PS_TAG_STDREF:
      U->r->p++;
      if (ps_read_bytes(U->r, &s, &n) != 0) return bad(U, "name");
      return push_stdref(U, s, n);
    case PS_TAG_MODULE:
      U->r->p++;
      if (ps_read_bytes(U->r, &s, &n) != 0) return bad(U, "module name");
      if (U->strict) {
        lua_getfield(L, LUA_REGISTRYINDEX, "psurvey.strict");
        lua_getfield(L, -1, "require");
        lua_remove(L, -2);
      } else {
        lua_getglobal(L, "require");
      }
      lua_pushlstring(L, s, n);
      lua_call(L, 1, 1);
      return 0;
    case PS_TAG_BACKREF:
      U->r->p++;
      if (ps_read_varint(U->r, &id) != 0 || id >= (uint64_t)U->nrefs) return bad(U, "reference");
      lua_rawgeti(L, U->refs, (lua_Integer)id + 1);
      return 0;
    case PS_TAG_ENV: return bad(U, "_ENV outside an upvalue");
    default: return psL_decode_from(L, U->r, U->err, U->errsz);
  }
}

int psL_unship(lua_State *L, ps_reader_t *r, int envholder, int strict, char *err, size_t errsz) {
  unship_t U;
  U.strict = strict;
  U.L = L;
  U.r = r;
  U.envholder = lua_absindex(L, envholder);
  U.err = err;
  U.errsz = errsz;
  U.nrefs = 0;
  lua_newtable(L);
  U.refs = lua_gettop(L);
  if (ps_reader_left(r) == 0 || *r->p != PS_TAG_FUNC) {
    lua_settop(L, U.refs - 1);
    return bad(&U, "not a function");
  }
  r->p++;
  if (unship_function(&U, 0) != 0) {
    lua_settop(L, U.refs - 1);
    return -1;
  }
  lua_remove(L, U.refs);
  return 0;
}
