/*
 * lspace.c: the psurvey.source userdata of samples and views (space.h,
 * view.h): core.sample draws psets from a space, core.filter keeps the
 * psets a function accepts, core.shuffle orders them by a seed, core.cross
 * is the product of sources of any kind. What the user wrote is checked in
 * psets.lua, in the user's words; here a space that is not what psets.lua
 * makes raises a plain error.
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lcodec.h"
#include "lpsurvey.h"
#include "space.h"
#include "view.h"

static const char *const kinds[] = {"uniform", "log", "int", "choices", NULL};
static const char *const methods[] = {"random", "lhs", "sobol", NULL};

static void free_dims(ps_dim_t *dims, int n) {
  for (int d = 0; d < n; d++) {
    free(dims[d].name);
    ps_buf_free(&dims[d].values);
    free(dims[d].offsets);
  }
  free(dims);
}

/* Reads the key of the space at the top of the stack into a; fills msg
   when it is not one. */
static void to_dim(lua_State *L, ps_dim_t *a, char *msg, size_t msgsz) {
  int t = lua_gettop(L);
  size_t len;
  ps_buf_init(&a->values);
  lua_getfield(L, t, "name");
  const char *name = lua_tolstring(L, -1, &len);
  if (name == NULL || len == 0) {
    snprintf(msg, msgsz, "a key of the space has no name");
    lua_settop(L, t);
    return;
  }
  a->name = malloc(len + 1);
  if (a->name) memcpy(a->name, name, len + 1);
  a->namelen = len;
  lua_getfield(L, t, "kind");
  a->kind = -1;
  for (int k = 0; lua_type(L, -1) == LUA_TSTRING && kinds[k]; k++)
    if (strcmp(lua_tostring(L, -1), kinds[k]) == 0) a->kind = k;
  lua_getfield(L, t, "lo");
  lua_getfield(L, t, "hi");
  if (a->name == NULL) {
    snprintf(msg, msgsz, "out of memory");
  } else if (a->kind == PS_DIM_UNIFORM || a->kind == PS_DIM_LOG) {
    a->lo = lua_tonumber(L, -2);
    a->hi = lua_tonumber(L, -1);
    if (!(a->lo < a->hi) || !isfinite(a->hi - a->lo) || (a->kind == PS_DIM_LOG && !(a->lo > 0)))
      snprintf(msg, msgsz, "key '%s' is not a range", a->name);
  } else if (a->kind == PS_DIM_INT) {
    a->ilo = (int64_t)lua_tointeger(L, -2);
    a->ihi = (int64_t)lua_tointeger(L, -1);
    if (!lua_isinteger(L, -2) || !lua_isinteger(L, -1) || a->ilo > a->ihi)
      snprintf(msg, msgsz, "key '%s' is not a range of integers", a->name);
  } else if (a->kind == PS_DIM_CHOICES && lua_getfield(L, t, "values") == LUA_TTABLE) {
    int vals = lua_gettop(L);
    a->n = (int64_t)lua_rawlen(L, vals);
    a->offsets = a->n > 0 ? malloc(sizeof(size_t) * (size_t)(a->n + 1)) : NULL;
    if (a->n == 0)
      snprintf(msg, msgsz, "key '%s' has no choices", a->name);
    else if (a->offsets == NULL)
      snprintf(msg, msgsz, "out of memory");
    for (int64_t j = 0; a->offsets && j < a->n && !msg[0]; j++) {
      a->offsets[j] = a->values.len;
      lua_rawgeti(L, vals, (lua_Integer)j + 1);
      psL_encerr_t e;
      if (lua_isnil(L, -1))
        snprintf(msg, msgsz, "key '%s' choice #%lld is nil (a hole in the list)", a->name,
                 (long long)j + 1);
      else if (psL_encode(L, -1, &a->values, 1, &e) != 0)
        snprintf(msg, msgsz, "key '%s' choice #%lld%s is %s, which cannot be sent to workers",
                 a->name, (long long)j + 1, e.path, e.what);
      lua_pop(L, 1);
    }
    if (a->offsets) a->offsets[a->n] = a->values.len;
    if (!msg[0] && a->values.failed) snprintf(msg, msgsz, "out of memory");
  } else {
    snprintf(msg, msgsz, "key '%s' is not a range or a list of choices", a->name);
  }
  lua_settop(L, t);
}

/*
 * core.sample(keys, n, method, seed) -> source, where keys lists
 * { name = 'x', kind = 'uniform'|'log'|'int', lo = a, hi = b } and
 * { name = 'x', kind = 'choices', values = {...} }; method is 'random',
 * 'lhs' or 'sobol'; seed an integer.
 */
static int space_sample(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 2);
  int method = luaL_checkoption(L, 3, "random", methods);
  lua_Integer seed = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, n >= 0, 2, "count must be an integer >= 0");
  lua_Integer ndims = (lua_Integer)luaL_len(L, 1);
  if (ndims > 10000) return luaL_error(L, "a space of more than 10000 keys");
  ps_dim_t *dims = calloc((size_t)(ndims ? ndims : 1), sizeof *dims);
  if (dims == NULL) return luaL_error(L, "out of memory");
  char msg[600] = "";
  int d;
  for (d = 0; d < ndims && !msg[0]; d++) {
    lua_rawgeti(L, 1, d + 1);
    if (lua_type(L, -1) == LUA_TTABLE)
      to_dim(L, &dims[d], msg, sizeof msg);
    else
      snprintf(msg, sizeof msg, "key #%d of the space is not a table", d + 1);
    lua_pop(L, 1);
  }
  ps_err_t err;
  ps_source_t *src = NULL;
  if (!msg[0]) {
    src = ps_sample_new(dims, (int)ndims, (int64_t)n, method, (uint64_t)seed, &err);
    if (src == NULL) snprintf(msg, sizeof msg, "%s", err.msg);
  }
  if (src == NULL) {
    free_dims(dims, d);
    return luaL_error(L, "%s", msg);
  }
  free(dims); /* the names and buffers are the sample's now */
  psL_push_source(L, src, 0);
  return 1;
}

/* core.filter(source, fn) -> source of the psets for which fn(pset) is
   truthy; raises naming the pset fn failed on */
static int space_filter(lua_State *L) {
  ps_source_t *base = psL_checksource(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int64_t *index = NULL, kept = 0, cap = 0;
  ps_buf_t b;
  ps_buf_init(&b);
  char msg[600] = "";
  for (int64_t i = 0; i < base->count && !msg[0]; i++) {
    b.len = 0;
    base->get(base, i, &b);
    char why[200];
    lua_pushvalue(L, 2);
    if (b.failed) {
      snprintf(msg, sizeof msg, "out of memory");
    } else if (psL_decode(L, b.data, b.len, why, sizeof why) != 0) {
      snprintf(msg, sizeof msg, "cannot decode pset #%lld: %s", (long long)i + 1, why);
    } else if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      snprintf(msg, sizeof msg, "the function failed on pset #%lld: %s", (long long)i + 1,
               lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    } else if (lua_toboolean(L, -1)) {
      if (kept == cap) {
        cap = cap ? cap * 2 : 64;
        int64_t *more = realloc(index, sizeof *index * (size_t)cap);
        if (more == NULL)
          snprintf(msg, sizeof msg, "out of memory");
        else
          index = more;
      }
      if (!msg[0]) index[kept++] = i;
    }
    lua_settop(L, 2);
  }
  ps_buf_free(&b);
  ps_source_t *src = msg[0] ? NULL : ps_view_new(base, index, kept);
  if (src == NULL) {
    free(index);
    return luaL_error(L, "%s", msg[0] ? msg : "out of memory");
  }
  psL_push_source(L, src, 1);
  return 1;
}

/* core.shuffle(source, seed) -> source of the same psets in a seeded order */
static int space_shuffle(lua_State *L) {
  ps_source_t *base = psL_checksource(L, 1);
  lua_Integer seed = luaL_optinteger(L, 2, 0);
  ps_source_t *src = ps_shuffle_new(base, (uint64_t)seed);
  if (src == NULL) return luaL_error(L, "out of memory");
  psL_push_source(L, src, 1);
  return 1;
}

/* core.cross(sources) -> source: their product, the first varying slowest
   (no key may be in two of them: psets.lua checks) */
static int space_cross(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 10000, 1, "1 to 10000 sources expected");
  ps_source_t **parts = lua_newuserdatauv(L, sizeof *parts * (size_t)n, 0); /* freed by the GC */
  lua_createtable(L, (int)n, 0); /* the parts' userdata: the cross keeps them alive */
  for (lua_Integer k = 1; k <= n; k++) {
    lua_rawgeti(L, 1, k);
    parts[k - 1] = psL_checksource(L, -1);
    lua_rawseti(L, -2, k);
  }
  ps_err_t err;
  ps_source_t *src = ps_cross_new(parts, (int)n, &err);
  if (src == NULL) return luaL_error(L, "%s", err.msg);
  psL_push_source(L, src, -1);
  return 1;
}

void psL_open_space(lua_State *L) {
  lua_pushcfunction(L, space_cross);
  lua_setfield(L, -2, "cross");
  lua_pushcfunction(L, space_sample);
  lua_setfield(L, -2, "sample");
  lua_pushcfunction(L, space_filter);
  lua_setfield(L, -2, "filter");
  lua_pushcfunction(L, space_shuffle);
  lua_setfield(L, -2, "shuffle");
}
