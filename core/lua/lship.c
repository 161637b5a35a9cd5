/*
 * lship.c: the worker function travels as bytecode (lua_dump, with debug
 * information for tracebacks) and its upvalues by value, through the value
 * encoding plus a few tags of its own (value.h): standard library
 * functions and tables by name, loaded modules by name (required on the
 * worker side), back references for shared or recursive tables and
 * functions, metatables, and _ENV. Lua 5.4's load() sets a dumped
 * function's first upvalue to the globals and leaves the rest nil, so the
 * worker side restores every upvalue by index.
 *
 * The worker side trusts the bytecode (Lua 5.4 cannot verify it: only the
 * driver makes it) but nothing around it: every count, index, reference,
 * name and length is checked before it is used, and malformed bytes are
 * PSL_UNSHIP_MALFORMED, never a crash.
 */
#include "lship.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcodec.h"
#include "value.h"

/* Metatables of psurvey's plain-data types, in the registry under these
   names on both sides (psL_open_range), shipped by name. */
static const char *const psurvey_types[] = {"psurvey.range", NULL};

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
  /* The worker's own upvalue that took the most bytes, for the message
     of a worker too large to send. */
  char biggest[64];
  size_t biggest_len;
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
  /* psurvey's own types, whose metatables every worker has. */
  for (int i = 0; psurvey_types[i]; i++) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, psurvey_types[i]) == LUA_TTABLE) {
      lua_pushstring(L, psurvey_types[i]);
      lua_rawset(L, names);
    } else {
      lua_pop(L, 1);
    }
  }
}

static int refuse(ship_t *S, const char *what) {
  snprintf(S->err, S->errsz,
           "%s is %s, which cannot be sent to worker processes: create it inside the worker, "
           "pass plain data in map's 'user' option, or require its module inside the worker",
           S->path, what);
  return -1;
}

static int ship_value(ship_t *S, int idx, int depth);
static int ship_contents(ship_t *S, int idx, int depth);

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
    snprintf(S->path + pathlen, sizeof S->path - pathlen, "%supvalue '%s'",
             pathlen ? " -> " : "its ", *name ? name : "?");
    size_t before = S->b->len;
    if (ship_value(S, lua_gettop(L), depth + 1) != 0) return -1;
    if (depth == 0 && S->b->len - before > S->biggest_len) {
      S->biggest_len = S->b->len - before;
      snprintf(S->biggest, sizeof S->biggest, "%s", *name ? name : "?");
    }
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
static int ship_sorted_hash(ship_t *S, int idx, lua_Integer n, uint64_t nhash, size_t pathlen,
                            int depth) {
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
    if ((kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN) ||
        psL_encode(L, -1, &enc, 1, &e) != 0) {
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

/* Ships the metatable of the table at idx (the table is shipped), so that
   an object or a table with __index defaults works on the other side. */
static int ship_metatable(ship_t *S, int idx, size_t pathlen, int depth) {
  lua_State *L = S->L;
  lua_getmetatable(L, idx);
  snprintf(S->path + pathlen, sizeof S->path - pathlen, " -> metatable");
  if (ship_value(S, lua_gettop(L), depth + 1) != 0) return -1;
  lua_pop(L, 1);
  S->path[pathlen] = '\0';
  return 0;
}

static int ship_table(ship_t *S, int idx, int depth) {
  lua_State *L = S->L;
  if (depth > PS_MAX_DEPTH) return refuse(S, "nested deeper than 100 levels");
  if (backref(S, idx)) return 0;
  /* A table with a metatable: the tag, the table, then its metatable,
     shipped after the table so that it may refer back to it. */
  int has_mt = lua_getmetatable(L, idx);
  if (has_mt) {
    lua_pop(L, 1);
    ps_buf_putc(S->b, PS_TAG_META);
  }
  if (ship_contents(S, idx, depth) != 0) return -1;
  return has_mt ? ship_metatable(S, idx, strlen(S->path), depth) : 0;
}

/* The array part, then the hash part, of the table at idx. */
static int ship_contents(ship_t *S, int idx, int depth) {
  lua_State *L = S->L;
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
    if (lua_iscfunction(L, idx))
      return refuse(S, "a C function that is not part of Lua's standard library");
    return ship_function(S, idx, depth);
  }
  psL_encerr_t e;
  if (psL_encode(L, idx, S->b, 0, &e) != 0) return refuse(S, e.what);
  return 0;
}

int psL_ship(lua_State *L, int idx, ps_buf_t *b, int canonical, char *err, size_t errsz) {
  ship_t S;
  int top = lua_gettop(L);
  size_t start = b->len;
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
  if (rc == 0 && b->len - start > PS_VALUE_MAX) {
    /* It would not fit in a CODE frame beside the user value: every
       worker process would refuse it, and each pset be blamed. */
    if (S.biggest_len > 0)
      snprintf(
          err, errsz,
          "it is %.1f MiB encoded, over the %u MiB a worker may take (its biggest upvalue, '%s', "
          "takes %.1f MiB)",
          (double)(b->len - start) / (1 << 20), PS_VALUE_MAX >> 20, S.biggest,
          (double)S.biggest_len / (1 << 20));
    else
      snprintf(err, errsz, "it is %.1f MiB encoded, over the %u MiB a worker may take",
               (double)(b->len - start) / (1 << 20), PS_VALUE_MAX >> 20);
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

/* Malformed bytes: the message says what was wrong, and where the
   decoder was when it saw it. */
static int bad(unship_t *U, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(unship_t *U, const char *fmt, ...) {
  va_list ap;
  int k = snprintf(U->err, U->errsz, "malformed worker code: ");
  va_start(ap, fmt);
  if (k > 0 && (size_t)k < U->errsz) vsnprintf(U->err + k, U->errsz - (size_t)k, fmt, ap);
  va_end(ap);
  return PSL_UNSHIP_MALFORMED;
}

/* Resolves "math.floor" or "print" against this state's standard libraries. */
static int push_stdref(unship_t *U, const char *name, size_t n) {
  lua_State *L = U->L;
  for (int i = 0; psurvey_types[i]; i++) {
    if (strlen(psurvey_types[i]) != n || memcmp(psurvey_types[i], name, n) != 0) continue;
    if (lua_getfield(L, LUA_REGISTRYINDEX, psurvey_types[i]) == LUA_TTABLE) return 0;
    lua_pop(L, 1);
    snprintf(U->err, U->errsz, "psurvey's type '%s' is missing in the worker", psurvey_types[i]);
    return -1;
  }
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
    lua_pushglobaltable(L); /* a base function: the real globals */
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

/*
 * The structure of a Lua 5.4 binary chunk (ldump.c), walked before Lua
 * loads it. Lua checks the header but trusts the rest, and the loader of
 * Lua 5.4.4 (Debian 12's) writes one upvalue name per name it reads, past
 * the end of the prototype's array when there are more names than
 * upvalues, and recurses once per nested function with no limit. So here
 * every count is checked against the bytes left, the names against the
 * upvalues, the nesting against a limit, and the closure's upvalue count
 * (a header byte) against the main function's. The instructions are not
 * checked: running bytecode that no lua_dump wrote can still crash Lua.
 */
#define CHUNK_HEADER 31 /* signature, versions, LUAC_DATA, sizes, LUAC_INT, LUAC_NUM */
#define CHUNK_MAX_DEPTH 200

typedef struct chunk_s {
  const unsigned char *p, *end;
  const char *why;
} chunk_t;

static int chunk_fail(chunk_t *C, const char *why) {
  if (C->why == NULL) C->why = why;
  return -1;
}

/* lundump.c's loadUnsigned: 7 bits a byte, most significant first, the
   last byte marked by its high bit. */
static int chunk_unsigned(chunk_t *C, size_t limit, size_t *out) {
  size_t x = 0;
  int b;
  limit >>= 7;
  do {
    if (C->p >= C->end) return chunk_fail(C, "is truncated");
    b = *C->p++;
    if (x >= limit) return chunk_fail(C, "holds a number too large");
    x = (x << 7) | (size_t)(b & 0x7f);
  } while ((b & 0x80) == 0);
  *out = x;
  return 0;
}

/* A count of items of at least `each` bytes: no more than the bytes left
   can hold. */
static int chunk_count(chunk_t *C, size_t each, size_t *n) {
  if (chunk_unsigned(C, (size_t)INT_MAX, n) != 0) return -1;
  if (*n > (size_t)(C->end - C->p) / each)
    return chunk_fail(C, "holds a count larger than its bytes");
  return 0;
}

static int chunk_skip(chunk_t *C, size_t n) {
  if (n > (size_t)(C->end - C->p)) return chunk_fail(C, "is truncated");
  C->p += n;
  return 0;
}

static int chunk_string(chunk_t *C) {
  size_t n;
  if (chunk_unsigned(C, ~(size_t)0, &n) != 0) return -1;
  return n == 0 ? 0 : chunk_skip(C, n - 1);
}

static int chunk_function(chunk_t *C, int depth, size_t *nups) {
  size_t n, k, dummy;
  if (depth > CHUNK_MAX_DEPTH) return chunk_fail(C, "nests functions too deep");
  if (chunk_string(C) != 0 || chunk_unsigned(C, INT_MAX, &dummy) != 0 ||
      chunk_unsigned(C, INT_MAX, &dummy) != 0 || chunk_skip(C, 3) != 0)
    return -1;
  if (chunk_count(C, 4, &n) != 0 || chunk_skip(C, 4 * n) != 0) return -1; /* code */
  if (chunk_count(C, 1, &n) != 0) return -1;                              /* constants */
  for (k = 0; k < n; k++) {
    if (chunk_skip(C, 1) != 0) return -1;
    switch (C->p[-1]) {
      case LUA_TNIL:
      case LUA_TBOOLEAN:                   /* false */
      case LUA_TBOOLEAN | (1 << 4): break; /* true */
      case LUA_TNUMBER:                    /* integer */
      case LUA_TNUMBER | (1 << 4):         /* float */
        if (chunk_skip(C, 8) != 0) return -1;
        break;
      case LUA_TSTRING:
      case LUA_TSTRING | (1 << 4):
        if (chunk_string(C) != 0) return -1;
        break;
      default: return chunk_fail(C, "holds a constant of no known type");
    }
  }
  if (chunk_count(C, 3, nups) != 0 || chunk_skip(C, 3 * *nups) != 0) return -1; /* upvalues */
  if (chunk_count(C, 1, &n) != 0) return -1; /* nested functions */
  for (k = 0; k < n; k++)
    if (chunk_function(C, depth + 1, &dummy) != 0) return -1;
  if (chunk_count(C, 1, &n) != 0 || chunk_skip(C, n) != 0) return -1; /* line info */
  if (chunk_count(C, 2, &n) != 0) return -1;                          /* absolute line info */
  for (k = 0; k < n; k++)
    if (chunk_unsigned(C, INT_MAX, &dummy) != 0 || chunk_unsigned(C, INT_MAX, &dummy) != 0)
      return -1;
  if (chunk_count(C, 3, &n) != 0) return -1; /* local variables */
  for (k = 0; k < n; k++)
    if (chunk_string(C) != 0 || chunk_unsigned(C, INT_MAX, &dummy) != 0 ||
        chunk_unsigned(C, INT_MAX, &dummy) != 0)
      return -1;
  if (chunk_count(C, 1, &n) != 0) return -1; /* upvalue names: none, or one each */
  if (n != 0 && n != *nups)
    return chunk_fail(C, "names more or fewer upvalues than its function has");
  for (k = 0; k < n; k++)
    if (chunk_string(C) != 0) return -1;
  return 0;
}

static int header_writer(lua_State *L, const void *p, size_t n, void *ud) {
  ps_buf_t *b = ud;
  (void)L;
  if (b->len < CHUNK_HEADER) ps_buf_put(b, p, n);
  return 0;
}

/* Whether code[0..n) is a Lua 5.4 chunk this loader can take; why not in
   why. The header must be the one this Lua writes (made once). */
static int check_chunk(lua_State *L, const char *code, size_t n, char *why, size_t whysz) {
  static char header[CHUNK_HEADER];
  static int have_header;
  if (!have_header) {
    ps_buf_t b;
    ps_buf_init(&b);
    luaL_loadstring(L, "return");
    lua_dump(L, header_writer, &b, 1);
    lua_pop(L, 1);
    if (b.failed || b.len < CHUNK_HEADER) {
      ps_buf_free(&b);
      snprintf(why, whysz, "cannot be checked: out of memory");
      return -1;
    }
    memcpy(header, b.data, CHUNK_HEADER);
    ps_buf_free(&b);
    have_header = 1;
  }
  if (n < CHUNK_HEADER + 1 || memcmp(code, header, CHUNK_HEADER) != 0) {
    snprintf(why, whysz, "is not a chunk of this Lua (%s)", LUA_RELEASE);
    return -1;
  }
  chunk_t C = {(const unsigned char *)code + CHUNK_HEADER + 1, (const unsigned char *)code + n,
               NULL};
  size_t nups;
  if (chunk_function(&C, 0, &nups) != 0) {
    snprintf(why, whysz, "%s", C.why);
    return -1;
  }
  if (C.p != C.end) {
    snprintf(why, whysz, "has %zu bytes after its function", (size_t)(C.end - C.p));
    return -1;
  }
  if ((unsigned char)code[CHUNK_HEADER] != nups) {
    snprintf(why, whysz, "gives its closure %d upvalues and its function %zu",
             (unsigned char)code[CHUNK_HEADER], nups);
    return -1;
  }
  return 0;
}

/*
 * How many upvalues the function at f has, or -1. A loaded chunk's closure
 * takes its count from a header byte and its prototype from its own list:
 * bytecode that no lua_dump wrote can make them differ, and lua_getupvalue
 * reads the closure's array by the prototype's count. So the closure's
 * count (lua_getinfo "u") comes first, and each index up to it is checked
 * against the prototype before any is written.
 */
static int count_upvalues(lua_State *L, int f) {
  lua_Debug ar;
  lua_pushvalue(L, f);
  lua_getinfo(L, ">u", &ar);
  for (int n = 1; n <= ar.nups; n++) {
    if (lua_getupvalue(L, f, n) == NULL) return -1;
    lua_pop(L, 1);
  }
  return ar.nups;
}

/*
 * A function: its bytecode, its upvalue count, then each upvalue: _ENV or
 * a value. The count must be the function's own: an index past it would
 * write outside the closure (lua_upvaluejoin checks nothing), and one
 * left out would keep what load() put there, the real global table.
 */
static int unship_function(unship_t *U, int depth) {
  lua_State *L = U->L;
  const char *code;
  size_t len;
  uint64_t nups;
  char why[120];
  if (ps_read_bytes(U->r, &code, &len) != 0) return bad(U, "truncated bytecode");
  if (check_chunk(L, code, len, why, sizeof why) != 0) return bad(U, "its bytecode %s", why);
  if (luaL_loadbufferx(L, code, len, "=worker", "b") != LUA_OK) {
    int rc = bad(U, "its bytecode does not load: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return rc;
  }
  add_ref(U);
  int f = lua_gettop(L);
  if (ps_read_varint(U->r, &nups) != 0) return bad(U, "truncated");
  int have = count_upvalues(L, f);
  if (have < 0) return bad(U, "its bytecode gives the function fewer upvalue names than upvalues");
  if (nups != (uint64_t)have)
    return bad(U, "the function has %d upvalues, the code gives %llu", have,
               (unsigned long long)nups);
  for (int i = 1; i <= have; i++) {
    if (ps_reader_left(U->r) == 0) return bad(U, "truncated");
    if (*U->r->p == PS_TAG_ENV) {
      U->r->p++;
      lua_upvaluejoin(L, f, i, U->envholder, 1);
      continue;
    }
    int rc = unship_value(U, depth + 1);
    if (rc != 0) return rc;
    lua_setupvalue(L, f, i);
  }
  return 0;
}

static int unship_table(unship_t *U, int depth) {
  lua_State *L = U->L;
  uint64_t narr, nhash;
  if (ps_read_varint(U->r, &narr) != 0 || ps_read_varint(U->r, &nhash) != 0)
    return bad(U, "truncated");
  /* Each item takes a byte at least: the counts are checked before they
     size anything. */
  size_t left = ps_reader_left(U->r);
  if (narr > left || nhash > left || narr + nhash > left)
    return bad(U, "a table of %llu items and %llu pairs, more than the %zu bytes left",
               (unsigned long long)narr, (unsigned long long)nhash, left);
  lua_createtable(L, (int)narr, (int)nhash);
  add_ref(U);
  for (uint64_t k = 1; k <= narr; k++) {
    int rc = unship_value(U, depth + 1);
    if (rc != 0) return rc;
    lua_rawseti(L, -2, (lua_Integer)k);
  }
  for (uint64_t k = 0; k < nhash; k++) {
    char why[200];
    if (psL_decode_from(L, U->r, why, sizeof why) != 0) return bad(U, "a table key: %s", why);
    int t = lua_type(L, -1);
    if (t == LUA_TNIL || t == LUA_TTABLE ||
        (t == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1)))
      return bad(U, "a table key that is %s",
                 t == LUA_TNIL     ? "nil"
                 : t == LUA_TTABLE ? "a table"
                                   : "NaN");
    int rc = unship_value(U, depth + 1);
    if (rc != 0) return rc;
    lua_rawset(L, -3);
  }
  return 0;
}

/* A table and its metatable, which may refer back to the table. */
static int unship_meta(unship_t *U, int depth) {
  lua_State *L = U->L;
  if (ps_reader_left(U->r) == 0 || *U->r->p != PS_TAG_TABLE)
    return bad(U, "a metatable for no new table");
  U->r->p++;
  int rc = unship_table(U, depth);
  if (rc == 0) rc = unship_value(U, depth + 1);
  if (rc != 0) return rc;
  if (lua_type(L, -1) != LUA_TTABLE)
    return bad(U, "a metatable that is a %s", luaL_typename(L, -1));
  lua_setmetatable(L, -2);
  return 0;
}

/* A module: required on this side, in the profile's own require. */
static int unship_module(unship_t *U) {
  lua_State *L = U->L;
  const char *s;
  size_t n;
  if (ps_read_bytes(U->r, &s, &n) != 0) return bad(U, "truncated module name");
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
}

static int unship_value(unship_t *U, int depth) {
  lua_State *L = U->L;
  const char *s;
  size_t n;
  uint64_t id;
  if (depth > PS_MAX_DEPTH) return bad(U, "nested deeper than %d levels", PS_MAX_DEPTH);
  luaL_checkstack(L, 8, "unshipping the worker");
  if (ps_reader_left(U->r) == 0) return bad(U, "truncated");
  switch (*U->r->p) {
    case PS_TAG_FUNC: U->r->p++; return unship_function(U, depth);
    case PS_TAG_TABLE: U->r->p++; return unship_table(U, depth);
    case PS_TAG_META: U->r->p++; return unship_meta(U, depth);
    case PS_TAG_STDREF:
      U->r->p++;
      if (ps_read_bytes(U->r, &s, &n) != 0) return bad(U, "truncated name");
      return push_stdref(U, s, n);
    case PS_TAG_MODULE: U->r->p++; return unship_module(U);
    case PS_TAG_BACKREF:
      U->r->p++;
      if (ps_read_varint(U->r, &id) != 0) return bad(U, "truncated");
      if (id >= (uint64_t)U->nrefs)
        return bad(U, "back reference %llu to one of %d tables and functions",
                   (unsigned long long)id, U->nrefs);
      lua_rawgeti(L, U->refs, (lua_Integer)id + 1);
      return 0;
    case PS_TAG_ENV: return bad(U, "_ENV outside an upvalue");
    default: {
      char why[200];
      if (psL_decode_from(L, U->r, why, sizeof why) != 0) return bad(U, "%s", why);
      return 0;
    }
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
  int rc;
  if (ps_reader_left(r) == 0 || *r->p != PS_TAG_FUNC) {
    rc = bad(&U, "not a function");
  } else {
    r->p++;
    rc = unship_function(&U, 0);
    if (rc == 0 && ps_reader_left(r) != 0)
      rc = bad(&U, "%zu bytes after the function", ps_reader_left(r));
  }
  if (rc != 0) {
    lua_settop(L, U.refs - 1);
    return rc;
  }
  lua_remove(L, U.refs);
  return 0;
}
