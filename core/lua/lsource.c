/*
 * lsource.c: the "psurvey.source" userdata: the psets of a stage, from a
 * lazy product (core.product) or from a Lua array of pset tables
 * (core.array), encoded once here so the engine never calls Lua; and
 * the axes of psurvey.range, linspace and logspace (core.range,
 * core.linspace: plain tables, see lrange.c), whose values the engine
 * computes (source.h). Samples and views of a source are made in
 * lspace.c.
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lcodec.h"
#include "lpsurvey.h"
#include "node.h"
#include "source.h"
#include "value.h"

#define SOURCE "psurvey.source"

typedef struct lsource_s {
  ps_source_t *src; /* owned */
} lsource_t;

ps_source_t *psL_checksource(lua_State *L, int idx) {
  lsource_t *u = luaL_checkudata(L, idx, SOURCE);
  return u->src;
}

void psL_push_source(lua_State *L, ps_source_t *src, int base) {
  if (base) base = lua_absindex(L, base);
  lsource_t *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->src = src;
  luaL_setmetatable(L, SOURCE);
  if (base) {
    lua_pushvalue(L, base);
    lua_setiuservalue(L, -2, 1);
  }
}

static void push_source(lua_State *L, ps_source_t *src) { psL_push_source(L, src, 0); }

/* Whether the key on top is a key of table t; leaves the stack as it was. */
static int key_known(lua_State *L, int t) {
  lua_pushvalue(L, -1);
  int known = lua_rawget(L, t) != LUA_TNIL;
  lua_pop(L, 1);
  return known;
}

static int valid_key(const char *s, size_t n) {
  return n > 0 && ps_utf8_valid(s, n) && memchr(s, 0, n) == NULL;
}

/* Returns nil, argument, "A to B[ by C]: why" for a failed range; the
   arguments as the caller wrote them (Lua's own text of the numbers). */
static int axis_fail(lua_State *L, int arg, int nargs, const char *why) {
  lua_pushnil(L);
  lua_pushinteger(L, arg);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_tolstring(L, 1, NULL);
  luaL_addvalue(&b);
  luaL_addstring(&b, " to ");
  luaL_tolstring(L, 2, NULL);
  luaL_addvalue(&b);
  if (nargs == 3) {
    luaL_addstring(&b, " by ");
    luaL_tolstring(L, 3, NULL);
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, ": ");
  luaL_addstring(&b, why);
  luaL_pushresult(&b);
  return 3;
}

/* core.range(first, last, step) -> axis, or nil, argument, why. The
   arguments are finite numbers and step is not 0 (psets.lua checks);
   integers when first and step are integers. */
static int source_range(lua_State *L) {
  double first = luaL_checknumber(L, 1), last = luaL_checknumber(L, 2),
         step = luaL_checknumber(L, 3);
  luaL_argcheck(L, isfinite(first), 1, "finite number expected");
  luaL_argcheck(L, isfinite(last), 2, "finite number expected");
  luaL_argcheck(L, isfinite(step) && step != 0, 3, "finite number other than 0 expected");
  ps_axis_t a;
  ps_err_t err;
  int rc;
  memset(&a, 0, sizeof a);
  if (lua_isinteger(L, 1) && lua_isinteger(L, 3) && lua_isinteger(L, 2))
    rc = ps_axis_range_int(&a, lua_tointeger(L, 1), lua_tointeger(L, 2), lua_tointeger(L, 3), &err);
  else if (lua_isinteger(L, 1) && lua_isinteger(L, 3))
    rc = ps_axis_range_int_to(&a, lua_tointeger(L, 1), last, lua_tointeger(L, 3), &err);
  else
    rc = ps_axis_range_float(&a, first, last, step, &err);
  if (rc != 0) return axis_fail(L, 2, 3, err.msg);
  psL_push_axis(L, &a);
  return 1;
}

/* core.linspace(first, last, n, log) -> axis, or nil, argument, why:
   numpy.linspace, or with log numpy.logspace. */
static int source_linspace(lua_State *L) {
  double first = luaL_checknumber(L, 1), last = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  int log = lua_toboolean(L, 4);
  luaL_argcheck(L, isfinite(first), 1, "finite number expected");
  luaL_argcheck(L, isfinite(last), 2, "finite number expected");
  luaL_argcheck(L, n >= 0, 3, "count must be an integer >= 0");
  ps_axis_t a;
  ps_err_t err;
  memset(&a, 0, sizeof a);
  if (ps_axis_linspace(&a, first, last, (int64_t)n, log, &err) != 0)
    return axis_fail(L, 2, 2, err.msg);
  psL_push_axis(L, &a);
  return 1;
}

/*
 * core.product(axes) -> source, where axes lists, in enumeration order
 * (the last varies fastest), { name = 'x', values = {...} } or
 * { name = 'x', axis = <a core.range or core.linspace axis> }.
 */
static int source_product(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)luaL_len(L, 1);
  if (n > 10000) return luaL_error(L, "a product of more than 10000 keys");
  ps_axis_t *axes = calloc((size_t)(n ? n : 1), sizeof *axes);
  int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
  char msg[600] = "";
  if (axes == NULL || order == NULL) {
    free(axes);
    free(order);
    return luaL_error(L, "out of memory");
  }
  int k;
  for (k = 0; k < n; k++) {
    ps_axis_t *a = &axes[k];
    order[k] = k;
    lua_rawgeti(L, 1, k + 1);
    lua_getfield(L, -1, "name");
    size_t len;
    const char *name = lua_tolstring(L, -1, &len);
    if (name == NULL || !valid_key(name, len)) {
      snprintf(msg, sizeof msg, "product key #%d is not a valid name", k + 1);
      lua_pop(L, 2);
      break;
    }
    char *name_copy = malloc(len + 1);
    if (name_copy) memcpy(name_copy, name, len + 1);
    a->name = name_copy;
    a->namelen = len;
    lua_pop(L, 1);
    ps_buf_init(&a->values);
    if (lua_getfield(L, -1, "axis") != LUA_TNIL) {
      ps_axis_t r;
      if (psL_to_axis(L, -1, &r) != 0 || name_copy == NULL) {
        if (name_copy == NULL)
          snprintf(msg, sizeof msg, "out of memory");
        else
          snprintf(msg, sizeof msg, "product key '%s' axis is not a psurvey.range", name_copy);
        lua_pop(L, 2);
        break;
      }
      /* A range axis is plain numbers: the product takes a copy. */
      *a = r;
      a->name = name_copy;
      a->namelen = len;
      ps_buf_init(&a->values);
      a->offsets = NULL;
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_getfield(L, -1, "values");
    int vals = lua_gettop(L);
    a->n = (int64_t)luaL_len(L, vals);
    a->offsets = malloc(sizeof(size_t) * (size_t)(a->n + 1));
    if (a->offsets == NULL || a->name == NULL) {
      snprintf(msg, sizeof msg, "out of memory");
      lua_pop(L, 2);
      break;
    }
    int64_t j;
    for (j = 0; j < a->n; j++) {
      a->offsets[j] = a->values.len;
      lua_rawgeti(L, vals, (lua_Integer)j + 1);
      psL_encerr_t e;
      if (lua_isnil(L, -1)) {
        snprintf(msg, sizeof msg, "product key '%s' value #%lld is nil (a hole in the list)",
                 a->name, (long long)j + 1);
      } else if (psL_encode(L, -1, &a->values, 1, &e) != 0) {
        snprintf(msg, sizeof msg,
                 "product key '%s' value #%lld%s is %s, which cannot be sent to workers", a->name,
                 (long long)j + 1, e.path, e.what);
      }
      lua_pop(L, 1);
      if (msg[0]) break;
    }
    a->offsets[a->n] = a->values.len;
    lua_pop(L, 2);
    if (msg[0]) break;
  }
  ps_err_t err;
  ps_source_t *src = msg[0] ? NULL : ps_product_new(axes, n, order, &err);
  if (src == NULL) {
    if (!msg[0]) snprintf(msg, sizeof msg, "%s", err.msg);
    for (int j = 0; j < n; j++) {
      free(axes[j].name);
      ps_buf_free(&axes[j].values);
      free(axes[j].offsets);
    }
  }
  free(axes);
  free(order);
  if (src == NULL) return luaL_error(L, "%s", msg);
  push_source(L, src);
  return 1;
}

int psL_check_limits(lua_State *L, int idx, ps_limits_t *out, char *msg, size_t msgsz) {
  static const char *const known = "timeout, memory, ncores, gpus, retries, name";
  idx = lua_absindex(L, idx);
  ps_limits_unset(out);
  if (lua_type(L, idx) != LUA_TTABLE) {
    snprintf(msg, msgsz, "expected a table of per-pset options (%s), got a %s", known,
             luaL_typename(L, idx));
    return -1;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    int isnum = lua_type(L, -1) == LUA_TNUMBER;
    double d = isnum ? lua_tonumber(L, -1) : 0;
    int isint = lua_isinteger(L, -1);
    lua_Integer i = isint ? lua_tointeger(L, -1) : 0;
    const char *want = NULL;
    /* The same ranges as map()'s options (options.lua). */
    if (strcmp(k, "timeout") == 0) {
      if (!isnum || !(d >= 0) || d > 1e9) want = "a number of seconds from 0 to 1e+09 (0: none)";
      out->timeout = d;
    } else if (strcmp(k, "memory") == 0) {
      if (!isnum || !(d >= 0) || d > 1e9) want = "a number of MiB from 0 to 1e+09 (0: none)";
      out->memory = d;
    } else if (strcmp(k, "ncores") == 0) {
      if (!isint || i < 1 || i > 10000) want = "an integer from 1 to 10000";
      out->ncores = (int)i;
    } else if (strcmp(k, "gpus") == 0) {
      if (!isint || i < 0 || i > PS_GPUS_MAX) want = "an integer from 0 to " PS_GPUS_MAX_TEXT;
      out->gpus = (int)i;
    } else if (strcmp(k, "retries") == 0) {
      if (!isint || i < 0 || i > 99) want = "an integer from 0 to 99";
      out->retries = (int)i;
    } else if (strcmp(k, "name") == 0) {
      if (lua_type(L, -1) != LUA_TSTRING) {
        want = "a string";
      } else {
        free(out->name);
        out->name = strdup(lua_tostring(L, -1));
      }
    } else {
      snprintf(msg, msgsz, "unknown per-pset option '%s' (known: %s)", k, known);
      lua_pop(L, 2);
      ps_limits_free(out);
      return -1;
    }
    if (want) {
      snprintf(msg, msgsz, "per-pset option '%s' must be %s, got %s", k, want,
               isnum ? lua_tostring(L, -1) : luaL_typename(L, -1));
      lua_pop(L, 2);
      ps_limits_free(out);
      return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* Encodes psets[i] as a table of string keys into b; fills msg on error.
   Its _psurvey table, if any, goes to *limits instead of the encoding. */
static int encode_pset(lua_State *L, int i, ps_buf_t *b, ps_limits_t **limits, char *msg,
                       size_t msgsz) {
  int t = lua_gettop(L);
  *limits = NULL;
  if (lua_type(L, t) != LUA_TTABLE) {
    snprintf(msg, msgsz, "pset #%d is a %s, expected a table", i, luaL_typename(L, t));
    return -1;
  }
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      char kp[96];
      psL_keypath(L, -1, kp, sizeof kp);
      snprintf(msg, msgsz, "pset #%d has key %s: pset keys must be strings", i,
               kp + (kp[0] == '.'));
      lua_settop(L, t);
      return -1;
    }
    size_t n;
    const char *k = lua_tolstring(L, -1, &n);
    if (!valid_key(k, n)) {
      snprintf(msg, msgsz,
               "pset #%d key '%.60s' is not a valid column name (it must be non-empty UTF-8)", i,
               k);
      lua_settop(L, t);
      return -1;
    }
    if (strcmp(k, "_psurvey") == 0) continue;
    if (k[0] == '_') {
      snprintf(msg, msgsz,
               "pset #%d key '%.60s' is reserved: keys starting with '_' are psurvey's columns "
               "(per-pset options go in '_psurvey')",
               i, k);
      lua_settop(L, t);
      return -1;
    }
  }
  if (lua_getfield(L, t, "_psurvey") != LUA_TNIL) {
    char why[300];
    ps_limits_t *l = malloc(sizeof *l);
    if (l == NULL) {
      snprintf(msg, msgsz, "out of memory");
      return -1;
    }
    if (psL_check_limits(L, -1, l, why, sizeof why) != 0) {
      free(l);
      snprintf(msg, msgsz, "pset #%d key '_psurvey': %s", i, why);
      lua_settop(L, t);
      return -1;
    }
    *limits = l;
    /* The pset without its options: they are not a column. */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "_psurvey") == 0) {
        lua_pop(L, 1);
        continue;
      }
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
    lua_replace(L, t);
    lua_settop(L, t);
  } else {
    lua_pop(L, 1);
  }
  psL_encerr_t e;
  if (psL_encode(L, t, b, 1, &e) != 0) {
    snprintf(msg, msgsz, "pset #%d key '%s' holds %s, which cannot be sent to workers", i,
             e.path + (e.path[0] == '.'), e.what);
    return -1;
  }
  return 0;
}

/*
 * Keys that differ only in ASCII case are one column name to SQLite: a
 * pset list with two such keys (in one pset or in two) is refused before
 * anything runs. The pset (a table of string keys, checked) is on top;
 * seen and seen + 1 are the tables of keys met so far, by name and by
 * lower-case name. Most psets have the keys of the one before: one lookup
 * each.
 */
static int check_case(lua_State *L, int seen, lua_Integer i, char *msg, size_t msgsz) {
  int t = lua_gettop(L), rc = 0;
  lua_pushnil(L);
  while (rc == 0 && lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (key_known(L, seen)) continue;
    size_t n;
    const char *k = lua_tolstring(L, -1, &n);
    luaL_Buffer lower;
    char *p = luaL_buffinitsize(L, &lower, n);
    for (size_t c = 0; c < n; c++) p[c] = (char)(k[c] >= 'A' && k[c] <= 'Z' ? k[c] + 32 : k[c]);
    luaL_pushresultsize(&lower, n);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, seen + 1) == LUA_TSTRING) {
      const char *other = lua_tostring(L, -1);
      lua_pushvalue(L, -1);
      lua_rawget(L, seen);
      snprintf(msg, msgsz,
               "pset #%lld key '%.60s' and pset #%lld key '%.60s' differ only in letter case, "
               "which SQLite column "
               "names cannot tell apart: rename one",
               (long long)i, k, (long long)lua_tointeger(L, -1), other);
      rc = -1;
      break;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, seen + 1); /* lower -> key */
    lua_pushvalue(L, -1);
    lua_pushinteger(L, i);
    lua_rawset(L, seen); /* key -> i */
  }
  lua_settop(L, t);
  return rc;
}

/* core.array(psets) -> source; raises naming the first bad pset */
static int source_array(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  /* A table that is not an array is most likely one pset passed alone. */
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
      char kp[96];
      psL_keypath(L, -1, kp, sizeof kp);
      return luaL_error(
          L, "psets must be an array of pset tables, but it has key %s (wrap one pset in {})",
          kp + (kp[0] == '.'));
    }
  }
  ps_buf_t b;
  ps_buf_init(&b);
  int64_t *offsets = malloc(sizeof(int64_t) * (size_t)(n + 1));
  if (offsets == NULL) return luaL_error(L, "out of memory");
  char msg[600];
  ps_limits_t **limits = NULL; /* allocated at the first pset that has some */
  lua_newtable(L);             /* key -> the first pset that has it */
  lua_newtable(L);             /* key in lower case -> the key */
  int seen = lua_gettop(L) - 1;
  for (lua_Integer i = 1; i <= n; i++) {
    offsets[i - 1] = (int64_t)b.len;
    lua_rawgeti(L, 1, i);
    ps_limits_t *l = NULL;
    int rc = encode_pset(L, (int)i, &b, &l, msg, sizeof msg);
    if (rc == 0) rc = check_case(L, seen, i, msg, sizeof msg);
    lua_pop(L, 1);
    if (rc == 0 && l && limits == NULL) {
      limits = calloc((size_t)n, sizeof *limits);
      if (limits == NULL) rc = -1, snprintf(msg, sizeof msg, "out of memory");
    }
    if (l) {
      if (limits) {
        limits[i - 1] = l;
      } else {
        ps_limits_free(l);
        free(l);
      }
    }
    if (rc != 0 || b.failed) {
      ps_buf_free(&b);
      free(offsets);
      for (lua_Integer j = 0; limits && j < n; j++)
        if (limits[j]) ps_limits_free(limits[j]), free(limits[j]);
      free(limits);
      return luaL_error(L, "%s", rc ? msg : "out of memory");
    }
  }
  offsets[n] = (int64_t)b.len;
  size_t len;
  char *data = ps_buf_steal(&b, &len);
  ps_source_t *src = ps_array_new(data, offsets, limits, (int64_t)n);
  if (src == NULL) {
    free(data);
    free(offsets);
    free(limits);
    return luaL_error(L, "out of memory");
  }
  push_source(L, src);
  return 1;
}

/* #source -> number of psets */
static int source_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)psL_checksource(L, 1)->count);
  return 1;
}

/* source:get(i) -> pset table i (1-based) */
static int source_get(lua_State *L) {
  ps_source_t *src = psL_checksource(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && i <= src->count, 2, "index out of range");
  ps_buf_t b;
  ps_buf_init(&b);
  src->get(src, (int64_t)i - 1, &b);
  char err[200];
  int rc = b.failed ? -1 : psL_decode(L, b.data, b.len, err, sizeof err);
  ps_buf_free(&b);
  if (rc != 0) return luaL_error(L, "cannot decode pset #%d", (int)i);
  return 1;
}

static int source_gc(lua_State *L) {
  lsource_t *u = luaL_checkudata(L, 1, SOURCE);
  if (u->src) u->src->free(u->src);
  u->src = NULL;
  return 0;
}

static const luaL_Reg source_methods[] = {
    {"get", source_get}, {"__len", source_len}, {"__gc", source_gc}, {NULL, NULL}};

void psL_open_source(lua_State *L) {
  if (luaL_newmetatable(L, SOURCE)) {
    luaL_setfuncs(L, source_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  psL_open_range(L);
  lua_setfield(L, -2, "range_meta");
  lua_pushcfunction(L, source_range);
  lua_setfield(L, -2, "range");
  lua_pushcfunction(L, source_linspace);
  lua_setfield(L, -2, "linspace");
  lua_pushcfunction(L, source_product);
  lua_setfield(L, -2, "product");
  lua_pushcfunction(L, source_array);
  lua_setfield(L, -2, "array");
  psL_open_space(L);
}
