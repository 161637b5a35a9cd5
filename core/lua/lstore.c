/*
 * lstore.c: the "psurvey.store" userdata (a SQLite database of stages) and
 * the "psurvey.cursor" userdata (rows of one stage, read in pset order).
 * A cursor keeps its store alive through its user value.
 */
#include <lauxlib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "export.h"
#include "lcodec.h"
#include "lpsurvey.h"
#include "store.h"

#define STORE "psurvey.store"
#define CURSOR "psurvey.cursor"

typedef struct lstore_s {
  ps_store_t *s; /* owned; NULL once closed */
} lstore_t;

typedef struct lcursor_s {
  ps_cursor_t *c; /* owned */
  int psets_only; /* rows hold the pset keys of the row only */
} lcursor_t;

static lstore_t *check_store(lua_State *L, int idx) {
  lstore_t *u = luaL_checkudata(L, idx, STORE);
  if (u->s == NULL) luaL_error(L, "attempt to use a closed results database");
  return u;
}

ps_store_t *psL_checkstore(lua_State *L, int idx) { return check_store(L, idx)->s; }

/* The failure of the world: fail, message and 'busy' when another program
   holds the database's write lock (try again), else 'error'. */
static int push_failure(lua_State *L, const ps_err_t *err) {
  luaL_pushfail(L);
  lua_pushstring(L, err->msg);
  lua_pushstring(L, err->code == PS_EBUSY ? "busy" : err->code == PS_EACCES ? "readonly" : "error");
  return 3;
}

/* core.store(path | nil) -> store | fail, message, 'busy' | 'error' */
static int store_open(lua_State *L) {
  const char *path = luaL_optstring(L, 1, NULL);
  lstore_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  luaL_setmetatable(L, STORE);
  ps_err_t err;
  if (ps_store_open(&u->s, path, &err) != 0) return push_failure(L, &err);
  return 1;
}

static int store_close(lua_State *L) {
  lstore_t *u = luaL_checkudata(L, 1, STORE);
  ps_store_close(u->s);
  u->s = NULL;
  return 0;
}

static int store_path(lua_State *L) {
  lua_pushstring(L, ps_store_path(check_store(L, 1)->s));
  return 1;
}

static int view_of(lua_State *L, int idx) {
  static const char *const names[] = {"ok", "missing", "all", NULL};
  static const int views[] = {PS_VIEW_OK, PS_VIEW_MISSING, PS_VIEW_ALL};
  return views[luaL_checkoption(L, idx, "ok", names)];
}

/* store:count(table, view) -> rows */
static int store_count(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  ps_err_t err;
  int64_t n = ps_store_count(u->s, luaL_checkstring(L, 2), view_of(L, 3), &err);
  if (n < 0) return luaL_error(L, "%s", err.msg);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* store:cursor(table, view [, index [, 'psets']]) -> cursor (index: that
   row alone, 0 for all; 'psets': each row as the pset that ran, its pset
   keys and nothing else) */
static int store_cursor(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *table = luaL_checkstring(L, 2);
  int view = view_of(L, 3);
  lua_Integer only = luaL_optinteger(L, 4, 0);
  static const char *const shapes[] = {"rows", "psets", NULL};
  int psets_only = luaL_checkoption(L, 5, "rows", shapes) == 1;
  lua_settop(L, 4);
  /* User values: the store (kept open while the cursor is), and the
     column names as Lua strings, made once: cursor_next stores every cell
     with one, where a C string would be looked up in Lua's string table
     for every cell (a fifth of the time of reading a million rows). */
  lcursor_t *c = lua_newuserdatauv(L, sizeof *c, 2);
  c->c = NULL;
  c->psets_only = psets_only;
  luaL_setmetatable(L, CURSOR);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  ps_err_t err;
  if (ps_cursor_open(u->s, table, view, (int64_t)only, &c->c, &err) != 0) return luaL_error(L, "%s", err.msg);
  int n = ps_cursor_ncols(c->c);
  lua_createtable(L, n, 0);
  for (int k = 0; k < n; k++) {
    lua_pushstring(L, ps_cursor_colname(c->c, k));
    lua_rawseti(L, -2, k + 1);
  }
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* Runs sql with the arguments from index 3 on, pushing its rows as an
   array of tables (scalars only). 0, or -1 and the statement's error
   left in db. */
static int run_query(lua_State *L, sqlite3 *db) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, luaL_checkstring(L, 2), -1, &st, NULL) != SQLITE_OK) return -1;
  int nargs = lua_gettop(L) - 2;
  for (int k = 1; k <= nargs; k++) {
    int a = k + 2;
    if (lua_isinteger(L, a))
      sqlite3_bind_int64(st, k, lua_tointeger(L, a));
    else if (lua_type(L, a) == LUA_TNUMBER)
      sqlite3_bind_double(st, k, lua_tonumber(L, a));
    else if (lua_type(L, a) == LUA_TSTRING)
      sqlite3_bind_text(st, k, lua_tostring(L, a), -1, SQLITE_TRANSIENT);
  }
  lua_newtable(L);
  int row = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int n = sqlite3_column_count(st);
    lua_createtable(L, 0, n);
    for (int k = 0; k < n; k++) {
      switch (sqlite3_column_type(st, k)) {
        case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(st, k)); break;
        case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, k)); break;
        case SQLITE_NULL: continue;
        default:
          lua_pushlstring(L, (const char *)sqlite3_column_blob(st, k), (size_t)sqlite3_column_bytes(st, k));
      }
      lua_setfield(L, -2, sqlite3_column_name(st, k));
    }
    lua_rawseti(L, -2, ++row);
  }
  if (rc != SQLITE_DONE) {
    sqlite3_reset(st); /* the statement's error, in db */
    lua_pop(L, 1);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* store:query(sql, ...) -> array of row tables (scalars only) */
static int store_query(lua_State *L) {
  sqlite3 *db = ps_store_db(check_store(L, 1)->s);
  if (run_query(L, db) != 0) return luaL_error(L, "%s", sqlite3_errmsg(db));
  return 1;
}

/* store:write(sql, ...) -> true | fail, message, 'busy': a statement that
   writes, and may find the database locked by another program */
static int store_write(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  sqlite3 *db = ps_store_db(u->s);
  if (run_query(L, db) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (!ps_store_busy(u->s)) return luaL_error(L, "%s", sqlite3_errmsg(db));
  ps_err_t err;
  ps_err_set(&err, PS_EBUSY, "database '%s' is locked by another program", ps_store_path(u->s));
  return push_failure(L, &err);
}

/* store:export(table, 'csv' | 'jsonl' [, path]) writes to path or stdout;
   raises naming what failed, a write included */
static int store_export(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *table = luaL_checkstring(L, 2);
  static const char *const formats[] = {"csv", "jsonl", NULL};
  int format = luaL_checkoption(L, 3, NULL, formats) == 0 ? PS_EXPORT_CSV : PS_EXPORT_JSONL;
  const char *path = luaL_optstring(L, 4, NULL);
  FILE *f = path ? fopen(path, "w") : stdout;
  if (f == NULL) return luaL_fileresult(L, 0, path);
  ps_err_t err;
  int rc = ps_export(u->s, table, format, f, &err);
  if (path && fclose(f) != 0 && rc == 0) {
    luaL_fileresult(L, 0, NULL); /* nil, strerror(errno), errno */
    return luaL_error(L, "%s: cannot write the export: %s", path, lua_tostring(L, -2));
  }
  if (rc != 0 && path) return luaL_error(L, "%s: %s", path, err.msg);
  if (rc != 0) return luaL_error(L, "%s", err.msg);
  lua_pushboolean(L, 1);
  return 1;
}

/* cursor:columns() -> array of column names */
static int cursor_columns(lua_State *L) {
  lcursor_t *c = luaL_checkudata(L, 1, CURSOR);
  int n = c->c ? ps_cursor_ncols(c->c) : 0;
  lua_createtable(L, n, 0);
  for (int k = 0; k < n; k++) {
    lua_pushstring(L, ps_cursor_colname(c->c, k));
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

/* cursor:next() -> row table, or nil at the end */
static int cursor_next(lua_State *L) {
  lcursor_t *c = luaL_checkudata(L, 1, CURSOR);
  if (c->c == NULL) return 0;
  ps_err_t err;
  int rc = ps_cursor_step(c->c, &err);
  if (rc < 0) return luaL_error(L, "%s", err.msg);
  if (rc == 0) {
    ps_cursor_close(c->c);
    c->c = NULL;
    return 0;
  }
  int n = ps_cursor_ncols(c->c);
  lua_getiuservalue(L, 1, 2);
  int names = lua_gettop(L);
  lua_createtable(L, 0, n);
  for (int k = 0; k < n; k++) {
    ps_item_t it;
    if (ps_cursor_cell(c->c, k, &it) != 0)
      return luaL_error(L, "malformed value in column '%s'", ps_cursor_colname(c->c, k));
    if (it.type == PS_V_NIL) continue;
    if (c->psets_only && ps_cursor_role(c->c, k) != PS_ROLE_PSET) continue;
    lua_rawgeti(L, names, k + 1);
    psL_push_item(L, &it);
    lua_rawset(L, -3);
  }
  return 1;
}

static int cursor_close(lua_State *L) {
  lcursor_t *c = luaL_checkudata(L, 1, CURSOR);
  ps_cursor_close(c->c);
  c->c = NULL;
  return 0;
}

/* store:lock() -> true | fail, message: claims the database for writing */
static int store_lock(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  ps_err_t err;
  if (ps_store_lock(u->s, &err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg store_methods[] = {{"lock", store_lock},
                                         {"close", store_close},
                                         {"path", store_path},
                                         {"count", store_count},
                                         {"cursor", store_cursor},
                                         {"query", store_query},
                                         {"write", store_write},
                                         {"export", store_export},
                                         {"__gc", store_close},
                                         {"__close", store_close},
                                         {NULL, NULL}};

static const luaL_Reg cursor_methods[] = {{"next", cursor_next},     {"columns", cursor_columns},
                                          {"close", cursor_close},   {"__gc", cursor_close},
                                          {"__close", cursor_close}, {NULL, NULL}};

void psL_open_store(lua_State *L) {
  if (luaL_newmetatable(L, STORE)) {
    luaL_setfuncs(L, store_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, CURSOR)) {
    luaL_setfuncs(L, cursor_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, store_open);
  lua_setfield(L, -2, "store");
}
