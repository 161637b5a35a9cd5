/*
 * lrange.c: the "psurvey.range" type: what psurvey.range, linspace and
 * logspace return. A range is a plain Lua table (n, first, last, step,
 * and _axis, the numbers its values are computed from) with a metatable
 * of C functions that computes r[i] through the engine (source.h), as a
 * product does. Being plain data, with a metatable known by name (the
 * registry's "psurvey.range", in the driver and in every worker), a range
 * travels to workers as an upvalue and still works there.
 */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "lpsurvey.h"
#include "source.h"

#define RANGE "psurvey.range"

static const char *const kinds[] = {"list", "int", "float", "linspace", "logspace", NULL};

void psL_push_axis(lua_State *L, const ps_axis_t *a) {
  lua_createtable(L, 0, 9);
  lua_pushstring(L, kinds[a->kind]);
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, (lua_Integer)a->n);
  lua_setfield(L, -2, "n");
  if (a->kind == PS_AXIS_INT) {
    lua_pushinteger(L, (lua_Integer)a->ifirst);
    lua_setfield(L, -2, "ifirst");
    lua_pushinteger(L, (lua_Integer)a->istep);
    lua_setfield(L, -2, "istep");
    return;
  }
  lua_pushnumber(L, a->first);
  lua_setfield(L, -2, "first");
  lua_pushnumber(L, a->step);
  lua_setfield(L, -2, "step");
  lua_pushnumber(L, a->last);
  lua_setfield(L, -2, "last");
  lua_pushnumber(L, a->span);
  lua_setfield(L, -2, "span");
  lua_pushinteger(L, a->decimals);
  lua_setfield(L, -2, "decimals");
}

static int int_field(lua_State *L, int t, const char *k, lua_Integer *out) {
  int ok = lua_getfield(L, t, k) == LUA_TNUMBER && lua_isinteger(L, -1);
  *out = ok ? lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  return ok;
}

static int num_field(lua_State *L, int t, const char *k, double *out) {
  int ok = lua_getfield(L, t, k) == LUA_TNUMBER;
  *out = ok ? (double)lua_tonumber(L, -1) : 0;
  lua_pop(L, 1);
  return ok && isfinite(*out);
}

int psL_to_axis(lua_State *L, int idx, ps_axis_t *a) {
  idx = lua_absindex(L, idx);
  memset(a, 0, sizeof *a);
  if (lua_type(L, idx) != LUA_TTABLE) return -1;
  lua_getfield(L, idx, "kind");
  const char *kind = lua_tostring(L, -1);
  a->kind = -1;
  for (int k = 1; kind && kinds[k]; k++)
    if (strcmp(kind, kinds[k]) == 0) a->kind = k;
  lua_pop(L, 1);
  lua_Integer n, decimals;
  if (a->kind < 0 || !int_field(L, idx, "n", &n) || n < 0) return -1;
  a->n = (int64_t)n;
  if (a->kind == PS_AXIS_INT) {
    lua_Integer first, step;
    if (!int_field(L, idx, "ifirst", &first) || !int_field(L, idx, "istep", &step)) return -1;
    a->ifirst = (int64_t)first;
    a->istep = (int64_t)step;
    return 0;
  }
  if (!num_field(L, idx, "first", &a->first) || !num_field(L, idx, "step", &a->step) ||
      !num_field(L, idx, "last", &a->last) || !num_field(L, idx, "span", &a->span) ||
      !int_field(L, idx, "decimals", &decimals) || decimals < -1 || decimals > 15)
    return -1;
  a->decimals = (int)decimals;
  return 0;
}

/* The axis of the range at idx; raises on a table that only looks like one. */
static void check_range(lua_State *L, int idx, ps_axis_t *a) {
  lua_getfield(L, idx, "_axis");
  if (psL_to_axis(L, -1, a) != 0) luaL_error(L, "a psurvey.range whose numbers were changed");
  lua_pop(L, 1);
}

/* r[i] -> value i (from 1), or nil beyond the range or for another key */
static int range_index(lua_State *L) {
  if (!lua_isinteger(L, 2)) return 0;
  ps_axis_t a;
  check_range(L, 1, &a);
  lua_Integer i = lua_tointeger(L, 2);
  if (i < 1 || i > a.n) return 0;
  if (a.kind == PS_AXIS_INT)
    lua_pushinteger(L, (lua_Integer)ps_axis_int(&a, (int64_t)i - 1));
  else
    lua_pushnumber(L, (lua_Number)ps_axis_float(&a, (int64_t)i - 1));
  return 1;
}

/* #r -> number of values */
static int range_len(lua_State *L) {
  ps_axis_t a;
  check_range(L, 1, &a);
  lua_pushinteger(L, (lua_Integer)a.n);
  return 1;
}

/* tostring(r) -> "psurvey.range(1, 10, 1): 10 values" */
static int range_tostring(lua_State *L) {
  ps_axis_t a;
  check_range(L, 1, &a);
  lua_getfield(L, 1, "_name");
  lua_getfield(L, 1, "_args");
  lua_pushfstring(L, "psurvey.%s(%s): %I values", luaL_optstring(L, -2, "range"),
                  luaL_optstring(L, -1, ""), (lua_Integer)a.n);
  return 1;
}

static const luaL_Reg range_methods[] = {
    {"__index", range_index}, {"__len", range_len}, {"__tostring", range_tostring}, {NULL, NULL}};

void psL_open_range(lua_State *L) {
  if (luaL_newmetatable(L, RANGE)) {
    luaL_setfuncs(L, range_methods, 0);
    /* getmetatable(r) gives its name: a pset cannot change it for others. */
    lua_pushliteral(L, RANGE);
    lua_setfield(L, -2, "__metatable");
  }
}
