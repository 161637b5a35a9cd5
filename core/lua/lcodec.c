/*
 * lcodec.c: the codec between Lua values and wire bytes (see value.h for
 * the format). The encoder walks tables with raw access only, detects
 * cycles, and reports the first value that cannot travel with the path of
 * keys that leads to it. The decoder checks every length and depth.
 */
#include "lcodec.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "value.h"

typedef struct enc_s {
  lua_State *L;
  ps_buf_t *b;
  int canonical;
  psL_encerr_t *e;
  const void *ancestors[PS_MAX_DEPTH + 1];
} enc_t;

static int encode_value(enc_t *E, int idx, int depth);

static int fail(enc_t *E, const char *what) {
  snprintf(E->e->what, sizeof E->e->what, "%s", what);
  E->e->path[0] = '\0';
  return -1;
}

void psL_keypath(lua_State *L, int keyidx, char *out, size_t outsz) {
  switch (lua_type(L, keyidx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, keyidx, &n);
      int ident = n > 0 && n < 64 && !(s[0] >= '0' && s[0] <= '9');
      for (size_t k = 0; k < n && ident; k++)
        ident = (s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
                (s[k] >= '0' && s[k] <= '9') || s[k] == '_';
      if (ident)
        snprintf(out, outsz, ".%s", s);
      else
        snprintf(out, outsz, "[\"%.60s\"]", s);
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, keyidx))
        snprintf(out, outsz, "[%lld]", (long long)lua_tointeger(L, keyidx));
      else
        snprintf(out, outsz, "[%.17g]", lua_tonumber(L, keyidx));
      break;
    case LUA_TBOOLEAN:
      snprintf(out, outsz, "[%s]", lua_toboolean(L, keyidx) ? "true" : "false");
      break;
    default: snprintf(out, outsz, "[%s]", luaL_typename(L, keyidx));
  }
}

/* Prepends the key at keyidx to the error path while unwinding. */
static int prepend_key(enc_t *E, int keyidx) {
  char part[96];
  psL_keypath(E->L, keyidx, part, sizeof part);
  size_t plen = strlen(part), have = strlen(E->e->path);
  if (plen + have + 1 > sizeof E->e->path) return -1;
  memmove(E->e->path + plen, E->e->path, have + 1);
  memcpy(E->e->path, part, plen);
  return -1;
}

static int encode_key(enc_t *E, int idx) {
  lua_State *L = E->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TNUMBER:
    case LUA_TBOOLEAN: return encode_value(E, idx, 0);
    default: {
      char what[96];
      snprintf(what, sizeof what, "a table key that is a %s", luaL_typename(L, idx));
      return fail(E, what);
    }
  }
}

typedef struct key_s {
  int idx;  /* stack index of the key */
  int kind; /* 0 boolean, 1 number, 2 string */
  double num;
  lua_Integer inum;
  int isint;
  const char *s;
  size_t len;
} sortkey_t;

static int key_cmp(const void *pa, const void *pb) {
  const sortkey_t *a = pa, *b = pb;
  if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
  if (a->kind == 2) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
  }
  if (a->isint && b->isint) return a->inum < b->inum ? -1 : a->inum > b->inum;
  return a->num < b->num ? -1 : a->num > b->num;
}

static int encode_table(enc_t *E, int idx, int depth) {
  lua_State *L = E->L;
  const void *self = lua_topointer(L, idx);
  if (depth >= PS_MAX_DEPTH) return fail(E, "a table nested deeper than 100 levels");
  for (int d = 0; d < depth; d++)
    if (E->ancestors[d] == self) return fail(E, "a cyclic table (it contains itself)");
  E->ancestors[depth] = self;
  if (!lua_checkstack(L, 8)) return fail(E, "a table too deep for the Lua stack");

  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  ps_buf_putc(E->b, PS_TAG_TABLE);
  ps_buf_put_varint(E->b, (uint64_t)n);
  size_t countpos = E->b->len;
  ps_buf_putc(E->b, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    if (encode_value(E, lua_gettop(L), depth + 1) != 0) {
      lua_pushinteger(L, i);
      prepend_key(E, -1);
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 1);
  }

  uint64_t nhash = 0;
  if (!E->canonical) {
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      if (lua_isinteger(L, -2)) {
        lua_Integer k = lua_tointeger(L, -2);
        if (k >= 1 && k <= n) {
          lua_pop(L, 1);
          continue;
        }
      }
      if (encode_key(E, lua_gettop(L) - 1) != 0 || encode_value(E, lua_gettop(L), depth + 1) != 0) {
        prepend_key(E, -2);
        lua_pop(L, 2);
        return -1;
      }
      nhash++;
      lua_pop(L, 1);
    }
    ps_buf_patch_varint(E->b, countpos, nhash);
    return 0;
  }

  /* Canonical: collect the keys on the stack, sort them, then encode. */
  int base = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1)) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k >= 1 && k <= n) continue;
    }
    if (!lua_checkstack(L, 4)) {
      lua_settop(L, base);
      return fail(E, "a table with too many keys");
    }
    lua_pushvalue(L, -1); /* keep a copy as the next key */
    lua_insert(L, -2);
    nhash++;
  }
  sortkey_t *keys = nhash ? malloc(nhash * sizeof *keys) : NULL;
  if (nhash && keys == NULL) {
    lua_settop(L, base);
    return fail(E, "out of memory");
  }
  for (uint64_t k = 0; k < nhash; k++) {
    sortkey_t *K = &keys[k];
    K->idx = base + 1 + (int)k;
    int t = lua_type(L, K->idx);
    K->kind = t == LUA_TBOOLEAN ? 0 : t == LUA_TNUMBER ? 1 : 2;
    K->isint = lua_isinteger(L, K->idx);
    K->inum = K->isint ? lua_tointeger(L, K->idx) : 0;
    K->num = t == LUA_TNUMBER ? lua_tonumber(L, K->idx)
                              : (t == LUA_TBOOLEAN ? lua_toboolean(L, K->idx) : 0);
    K->s = t == LUA_TSTRING ? lua_tolstring(L, K->idx, &K->len) : NULL;
    if (t != LUA_TSTRING) K->len = 0;
  }
  if (nhash > 1) qsort(keys, nhash, sizeof *keys, key_cmp);
  int rc = 0;
  for (uint64_t k = 0; k < nhash && rc == 0; k++) {
    int kidx = keys[k].idx;
    lua_pushvalue(L, kidx);
    lua_rawget(L, idx);
    if (encode_key(E, kidx) != 0 || encode_value(E, lua_gettop(L), depth + 1) != 0) {
      prepend_key(E, kidx);
      rc = -1;
    }
    lua_pop(L, 1);
  }
  free(keys);
  lua_settop(L, base);
  if (rc == 0) ps_buf_patch_varint(E->b, countpos, nhash);
  return rc;
}

static int encode_value(enc_t *E, int idx, int depth) {
  lua_State *L = E->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: ps_put_nil(E->b); return 0;
    case LUA_TBOOLEAN: ps_put_bool(E->b, lua_toboolean(L, idx)); return 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        ps_put_int(E->b, (int64_t)lua_tointeger(L, idx));
      else
        ps_put_float(E->b, (double)lua_tonumber(L, idx));
      return 0;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      ps_put_str(E->b, s, n);
      return 0;
    }
    case LUA_TTABLE: return encode_table(E, idx, depth);
    case LUA_TFUNCTION: return fail(E, lua_iscfunction(L, idx) ? "a C function" : "a function");
    case LUA_TTHREAD: return fail(E, "a coroutine");
    case LUA_TLIGHTUSERDATA: return fail(E, "a light userdata");
    default: {
      /* Name the userdata by its metatable's __name (FILE*, ...). */
      char what[128];
      int t = luaL_getmetafield(L, idx, "__name");
      if (t == LUA_TSTRING)
        snprintf(what, sizeof what, "a userdata (%s)", lua_tostring(L, -1));
      else
        snprintf(what, sizeof what, "a userdata");
      if (t != LUA_TNIL) lua_pop(L, 1);
      return fail(E, what);
    }
  }
}

int psL_encode(lua_State *L, int idx, ps_buf_t *b, int canonical, psL_encerr_t *e) {
  enc_t E;
  E.L = L;
  E.b = b;
  E.canonical = canonical;
  E.e = e;
  e->what[0] = e->path[0] = '\0';
  int top = lua_gettop(L);
  int rc = encode_value(&E, lua_absindex(L, idx), 0);
  lua_settop(L, top);
  if (rc == 0 && b->failed) {
    snprintf(e->what, sizeof e->what, "too large: out of memory");
    return -1;
  }
  return rc;
}

static int decode_value(lua_State *L, ps_reader_t *r, int depth, char *err, size_t errsz) {
  ps_item_t it;
  if (depth > PS_MAX_DEPTH) {
    snprintf(err, errsz, "value nested deeper than %d levels", PS_MAX_DEPTH);
    return -1;
  }
  if (!lua_checkstack(L, 4)) {
    snprintf(err, errsz, "value too deep for the Lua stack");
    return -1;
  }
  if (ps_read_item(r, &it) != 0) {
    snprintf(err, errsz, "malformed value (bad tag or length)");
    return -1;
  }
  switch (it.type) {
    case PS_V_NIL: lua_pushnil(L); return 0;
    case PS_V_BOOL: lua_pushboolean(L, (int)it.i); return 0;
    case PS_V_INT: lua_pushinteger(L, (lua_Integer)it.i); return 0;
    case PS_V_FLOAT: lua_pushnumber(L, (lua_Number)it.d); return 0;
    case PS_V_STR: lua_pushlstring(L, it.s, it.len); return 0;
    default: break;
  }
  int narr = it.narr > 1u << 26 ? 1 << 26 : (int)it.narr;
  int nhash = it.nhash > 1u << 26 ? 1 << 26 : (int)it.nhash;
  lua_createtable(L, narr, nhash);
  for (uint64_t k = 0; k < it.narr; k++) {
    if (decode_value(L, r, depth + 1, err, errsz) != 0) {
      lua_pop(L, 1);
      return -1;
    }
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  for (uint64_t k = 0; k < it.nhash; k++) {
    if (decode_value(L, r, depth + 1, err, errsz) != 0) {
      lua_pop(L, 1);
      return -1;
    }
    int t = lua_type(L, -1);
    if (t == LUA_TNIL || t == LUA_TTABLE ||
        (t == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))) {
      snprintf(err, errsz, "malformed value (a table key is %s)",
               t == LUA_TNIL     ? "nil"
               : t == LUA_TTABLE ? "a table"
                                 : "NaN");
      lua_pop(L, 2);
      return -1;
    }
    if (decode_value(L, r, depth + 1, err, errsz) != 0) {
      lua_pop(L, 2);
      return -1;
    }
    lua_rawset(L, -3);
  }
  return 0;
}

int psL_decode_from(lua_State *L, ps_reader_t *r, char *err, size_t errsz) {
  return decode_value(L, r, 0, err, errsz);
}

int psL_decode(lua_State *L, const char *s, size_t n, char *err, size_t errsz) {
  ps_reader_t r;
  ps_reader_init(&r, s, n);
  if (decode_value(L, &r, 0, err, errsz) != 0) return -1;
  if (ps_reader_left(&r) != 0) {
    lua_pop(L, 1);
    snprintf(err, errsz, "malformed value (%zu bytes left over)", ps_reader_left(&r));
    return -1;
  }
  return 0;
}

/* A stored cell or a frame's item, as a Lua value: a table travels as
   its encoding and is decoded here. */
void psL_push_item(lua_State *L, const ps_item_t *it) {
  char err[200];
  switch (it->type) {
    case PS_V_NIL: lua_pushnil(L); break;
    case PS_V_BOOL: lua_pushboolean(L, (int)it->i); break;
    case PS_V_INT: lua_pushinteger(L, (lua_Integer)it->i); break;
    case PS_V_FLOAT: lua_pushnumber(L, (lua_Number)it->d); break;
    case PS_V_STR: lua_pushlstring(L, it->s, it->len); break;
    default:
      if (psL_decode(L, it->s, it->len, err, sizeof err) != 0)
        luaL_error(L, "stored table: %s", err);
  }
}
