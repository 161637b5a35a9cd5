/*
 * lstore.c: the "psurvey.store" userdata (a SQLite database of stages) and
 * the "psurvey.cursor" userdata (rows of one stage, read in pset order).
 * A cursor keeps its store alive through its user value.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "json.h"
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

/* The strings of array field k of the query table at idx, in an array
   pushed as a userdata; the table keeps the strings alive. */
static const char *const *query_names(lua_State *L, int idx, const char *k, int *n) {
  *n = 0;
  int t = lua_getfield(L, idx, k);
  if (t == LUA_TNIL) return NULL; /* the nil stays: one slot pushed either way */
  if (t != LUA_TTABLE) luaL_error(L, "query field '%s': an array of column names expected", k);
  int len = (int)luaL_len(L, -1);
  const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(len > 0 ? len : 1), 0);
  for (int j = 1; j <= len; j++) {
    if (lua_rawgeti(L, -2, j) != LUA_TSTRING)
      luaL_error(L, "query field '%s': #%d is not a column name", k, j);
    names[j - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_remove(L, -2);
  *n = len;
  return names;
}

/* Reads a query (store.h's ps_query_t) from the value at idx: nil, an
   _index, or { only, where, order = {...}, columns = {...}, limit, meta }.
   Pushes two values that must stay on the stack while q is used. */
static void read_query(lua_State *L, int idx, ps_query_t *q) {
  memset(q, 0, sizeof *q);
  if (lua_isinteger(L, idx) || lua_isnoneornil(L, idx)) {
    q->only = (int64_t)luaL_optinteger(L, idx, 0);
    lua_pushnil(L);
    lua_pushnil(L);
    return;
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "only");
  q->only = (int64_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "limit");
  q->limit = (int64_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "meta");
  q->meta = lua_toboolean(L, -1);
  lua_getfield(L, idx, "where");
  q->where = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1); /* the table keeps it */
  lua_pop(L, 4);
  q->order = query_names(L, idx, "order", &q->norder);
  q->columns = query_names(L, idx, "columns", &q->ncolumns);
}

/* store:count(table, view [, query]) -> rows (query as store:cursor's:
   its filter counts) */
static int store_count(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *table = luaL_checkstring(L, 2);
  int view = view_of(L, 3);
  lua_settop(L, 4);
  ps_query_t q;
  read_query(L, 4, &q);
  ps_err_t err;
  int64_t n = ps_cursor_count(u->s, table, view, &q, &err);
  if (n < 0) return luaL_error(L, "%s", err.msg);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* Gives the cursor userdata on top its column names (user value 2). */
static int with_names(lua_State *L, lcursor_t *c) {
  int n = ps_cursor_ncols(c->c);
  lua_createtable(L, n, 0);
  for (int k = 0; k < n; k++) {
    lua_pushstring(L, ps_cursor_colname(c->c, k));
    lua_rawseti(L, -2, k + 1);
  }
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* store:cursor(table, view [, query [, 'psets']]) -> cursor (query: an
   _index for that row alone, 0 for all, or a table as read_query reads;
   'psets': each row as the pset that ran, its pset keys and nothing
   else) */
static int store_cursor(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *table = luaL_checkstring(L, 2);
  int view = view_of(L, 3);
  static const char *const shapes[] = {"rows", "psets", NULL};
  int psets_only = luaL_checkoption(L, 5, "rows", shapes) == 1;
  lua_settop(L, 4);
  ps_query_t q;
  read_query(L, 4, &q);
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
  if (ps_cursor_open(u->s, table, view, &q, &c->c, &err) != 0) return luaL_error(L, "%s", err.msg);
  return with_names(L, c);
}

/* store:query(sql, ...) -> cursor: a statement of psurvey's own that
   reads, its parameters ?1.. the values after it (nil, booleans, numbers,
   strings). Its rows as SQLite has them. */
static int store_query(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  int n = lua_gettop(L) - 2;
  ps_item_t *params = lua_newuserdatauv(L, sizeof(ps_item_t) * (size_t)(n > 0 ? n : 1), 0);
  for (int k = 0; k < n; k++) {
    int i = k + 3;
    ps_item_t *it = &params[k];
    switch (lua_type(L, i)) {
      case LUA_TNIL: it->type = PS_V_NIL; break;
      case LUA_TBOOLEAN:
        it->type = PS_V_BOOL;
        it->i = lua_toboolean(L, i);
        break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, i)) {
          it->type = PS_V_INT;
          it->i = (int64_t)lua_tointeger(L, i);
        } else {
          it->type = PS_V_FLOAT;
          it->d = (double)lua_tonumber(L, i);
        }
        break;
      case LUA_TSTRING:
        it->type = PS_V_STR;
        it->s = lua_tolstring(L, i, &it->len);
        break;
      default: return luaL_typeerror(L, i, "nil, boolean, number or string");
    }
  }
  lcursor_t *c = lua_newuserdatauv(L, sizeof *c, 2);
  c->c = NULL;
  c->psets_only = 0;
  luaL_setmetatable(L, CURSOR);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  ps_err_t err;
  if (ps_store_query(u->s, sql, params, n, &c->c, &err) != 0) return luaL_error(L, "%s", err.msg);
  return with_names(L, c);
}

/* The failure of a write: fail, message, 'busy' when another program
   holds the database's write lock (try again); raises for any other. */
static int write_failed(lua_State *L, const ps_err_t *err) {
  if (err->code == PS_EBUSY) return push_failure(L, err);
  return luaL_error(L, "%s", err->msg);
}

/* Optional string field k of the table at idx (NULL when absent); it
   lives as long as the table does. */
static const char *opt_field(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s;
}

/* The __gc of begin_run's buffers of JSON text. */
static int free_texts(lua_State *L) {
  ps_buf_t *texts = lua_touserdata(L, 1);
  ps_buf_free(&texts[0]);
  ps_buf_free(&texts[1]);
  return 0;
}

/* Field k of the table at idx, an array of strings, as a JSON array in
   b (NULL when absent). */
static const char *json_array(lua_State *L, int idx, const char *k, ps_buf_t *b) {
  if (lua_getfield(L, idx, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "begin_run: field '%s' must be an array of strings", k);
  ps_buf_putc(b, '[');
  for (lua_Integer j = 1, n = luaL_len(L, -1); j <= n; j++) {
    size_t len;
    lua_rawgeti(L, -1, j);
    const char *s = lua_tolstring(L, -1, &len);
    if (s == NULL) luaL_error(L, "begin_run: %s[%d] must be a string", k, (int)j);
    if (j > 1) ps_buf_putc(b, ',');
    ps_json_string(b, s, len);
    lua_pop(L, 1);
  }
  ps_buf_putc(b, ']');
  lua_pop(L, 1);
  ps_buf_putc(b, '\0');
  return b->failed ? NULL : b->data;
}

/* A tag: its key and value, borrowed from the tags table. */
typedef struct tag_s {
  const char *k, *v;
  size_t klen, vlen;
} tag_t;

static int tag_cmp(const void *a, const void *b) {
  const tag_t *x = a, *y = b;
  size_t n = x->klen < y->klen ? x->klen : y->klen;
  int c = memcmp(x->k, y->k, n);
  return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Field k of the table at idx, a table of strings by string key, as a
   JSON object in b with its keys sorted, so that the same tags are the
   same text (NULL when absent). Leaves the stack as it was. */
static const char *json_object(lua_State *L, int idx, const char *k, ps_buf_t *b) {
  if (lua_getfield(L, idx, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "begin_run: field '%s' must be a table", k);
  int t = lua_gettop(L), n = 0;
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) n++;
  tag_t *tags = lua_newuserdatauv(L, sizeof(tag_t) * (size_t)(n > 0 ? n : 1), 0);
  n = 0;
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "begin_run: field '%s' must map strings to strings", k);
    tag_t *g = &tags[n++];
    g->k = lua_tolstring(L, -2, &g->klen); /* the table keeps both alive */
    g->v = lua_tolstring(L, -1, &g->vlen);
  }
  qsort(tags, (size_t)n, sizeof *tags, tag_cmp);
  ps_buf_putc(b, '{');
  for (int j = 0; j < n; j++) {
    if (j) ps_buf_putc(b, ',');
    ps_json_string(b, tags[j].k, tags[j].klen);
    ps_buf_putc(b, ':');
    ps_json_string(b, tags[j].v, tags[j].vlen);
  }
  ps_buf_putc(b, '}');
  ps_buf_putc(b, '\0');
  lua_settop(L, t - 1);
  return b->failed ? NULL : b->data;
}

/* store:begin_run({ script, script_hash, host, pid, psurvey, lua, libuv,
   sqlite, options, argv = {...}, cwd, git_commit, git_dirty, note,
   tags = { key = value }, log }) -> id | fail, message, 'busy': records a run
   that starts now (argv and tags as JSON text) */
static int store_begin_run(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  ps_run_record_t run = {
      .script = opt_field(L, 2, "script"),
      .script_hash = opt_field(L, 2, "script_hash"),
      .host = opt_field(L, 2, "host"),
      .psurvey = opt_field(L, 2, "psurvey"),
      .lua = opt_field(L, 2, "lua"),
      .libuv = opt_field(L, 2, "libuv"),
      .sqlite = opt_field(L, 2, "sqlite"),
      .options = opt_field(L, 2, "options"),
  };
  lua_getfield(L, 2, "pid");
  run.pid = (int64_t)lua_tointeger(L, -1);
  lua_getfield(L, 2, "git_dirty");
  run.git_dirty = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
  lua_pop(L, 2);
  run.cwd = opt_field(L, 2, "cwd");
  run.git_commit = opt_field(L, 2, "git_commit");
  run.note = opt_field(L, 2, "note");
  run.log = opt_field(L, 2, "log");
  /* The JSON texts live in buffers held by a userdata, freed by its
     __gc should anything below raise: two buffers, one userdata. */
  ps_buf_t *texts = lua_newuserdatauv(L, sizeof(ps_buf_t) * 2, 0);
  ps_buf_init(&texts[0]);
  ps_buf_init(&texts[1]);
  lua_newtable(L);
  lua_pushcfunction(L, free_texts);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  run.argv = json_array(L, 2, "argv", &texts[0]);
  run.tags = json_object(L, 2, "tags", &texts[1]);
  if (texts[0].failed || texts[1].failed) return luaL_error(L, "out of memory");
  int64_t id;
  ps_err_t err;
  if (ps_store_begin_run(u->s, &run, &id, &err) != 0) return write_failed(L, &err);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

/* store:end_run(id, status) -> true | fail, message, 'busy' */
static int store_end_run(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  lua_Integer id = luaL_checkinteger(L, 2);
  const char *status = luaL_checkstring(L, 3);
  ps_err_t err;
  if (ps_store_end_run(u->s, (int64_t)id, status, &err) != 0) return write_failed(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* store:drop_stages({ name, ... }) -> true | fail, message, 'busy': removes
   those stages (names as stored), their tables and records, all or none;
   raises for a name that is not a stage's */
static int store_drop_stages(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2);
  const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n > 0 ? n : 1), 0);
  for (int k = 0; k < n; k++) {
    lua_rawgeti(L, 2, k + 1);
    names[k] = lua_tostring(L, -1); /* the table keeps it alive */
    if (names[k] == NULL) return luaL_argerror(L, 2, "an array of table names expected");
    lua_pop(L, 1);
  }
  ps_err_t err;
  if (ps_store_drop_stages(u->s, names, n, &err) != 0) return write_failed(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* store:compact() -> true | fail, message, 'busy': gives free pages back
   to the file system */
static int store_compact(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  ps_err_t err;
  if (ps_store_compact(u->s, &err) != 0) return write_failed(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* A cursor userdata, empty: whatever raises before the cursor it will
   hold is read and closed, its __gc closes it. */
static lcursor_t *new_cursor(lua_State *L) {
  lcursor_t *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->c = NULL;
  c->psets_only = 0;
  luaL_setmetatable(L, CURSOR);
  return c;
}

/* Replaces the cursor userdata on top (its cursor opened by open, with
   rc) with the rows it reads, each a table of its columns that are not
   NULL: all of them in an array, or the first alone (nil when none). */
static int push_records(lua_State *L, lcursor_t *lc, int rc, const ps_err_t *err, int first_only) {
  if (rc != 0) return luaL_error(L, "%s", err->msg);
  ps_err_t step_err;
  int n = ps_cursor_ncols(lc->c), count = 0;
  if (!first_only) lua_newtable(L);
  while ((rc = ps_cursor_step(lc->c, &step_err)) == 1) {
    lua_createtable(L, 0, n);
    for (int k = 0; k < n; k++) {
      ps_item_t it;
      if (ps_cursor_cell(lc->c, k, &it) != 0)
        return luaL_error(L, "malformed value in column '%s'", ps_cursor_colname(lc->c, k));
      if (it.type == PS_V_NIL) continue;
      psL_push_item(L, &it);
      lua_setfield(L, -2, ps_cursor_colname(lc->c, k));
    }
    if (first_only) break;
    lua_rawseti(L, -2, ++count);
  }
  if (rc < 0) return luaL_error(L, "%s", step_err.msg);
  if (first_only && rc == 0) lua_pushnil(L);
  ps_cursor_close(lc->c);
  lc->c = NULL;
  return 1;
}

/* store:stage_info(name) -> { name, status, total, ok, failed, created,
   finished, run, code_hash, user_hash, sandbox, seed, timeout, memory }
   (fields stored as NULL are nil) | nil: the stage whatever the case of
   its name */
static int store_stage_info(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *name = luaL_checkstring(L, 2);
  lcursor_t *c = new_cursor(L);
  ps_err_t err;
  return push_records(L, c, ps_store_stage(u->s, name, &c->c, &err), &err, 1);
}

/* store:stage_worker(name) -> code, user (encodings) | nil: what a stage
   shipped to its workers (nil when an older psurvey did not keep it) */
static int store_stage_worker(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *name = luaL_checkstring(L, 2);
  lcursor_t *c = new_cursor(L);
  ps_err_t err;
  push_records(L, c, ps_store_stage_worker(u->s, name, &c->c, &err), &err, 1);
  if (lua_isnil(L, -1)) return 1;
  lua_getfield(L, -1, "code");
  lua_getfield(L, -2, "user");
  return 2;
}

/* store:stages() -> array of { name, status, total, ok, failed, created,
   finished }, in the order the stages were made */
static int store_stages(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  lcursor_t *c = new_cursor(L);
  ps_err_t err;
  return push_records(L, c, ps_store_stages(u->s, &c->c, &err), &err, 0);
}

/* store:attempts(name) -> array of the rows of the stage's attempts table,
   in the order they were stored */
static int store_attempts(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *name = luaL_checkstring(L, 2);
  lcursor_t *c = new_cursor(L);
  ps_err_t err;
  return push_records(L, c, ps_store_attempts(u->s, name, &c->c, &err), &err, 0);
}

/* store:last_limits(name, index) -> { limit_timeout, limit_memory } | nil:
   the limits of the last failed attempt at pset `index` */
static int store_last_limits(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *name = luaL_checkstring(L, 2);
  lua_Integer index = luaL_checkinteger(L, 3);
  lcursor_t *c = new_cursor(L);
  ps_err_t err;
  return push_records(L, c, ps_store_last_limits(u->s, name, (int64_t)index, &c->c, &err), &err, 1);
}

/* store:output(name, index, attempt) -> stdout, stderr (strings) | nil:
   what attempt `attempt` at pset `index` of the stage wrote, nil when it
   wrote nothing */
static int store_output(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *name = luaL_checkstring(L, 2);
  lua_Integer index = luaL_checkinteger(L, 3);
  lua_Integer attempt = luaL_checkinteger(L, 4);
  lcursor_t *c = new_cursor(L);
  ps_err_t err;
  push_records(L, c, ps_store_output(u->s, name, (int64_t)index, (int64_t)attempt, &c->c, &err),
               &err, 1);
  if (lua_isnil(L, -1)) return 1;
  lua_getfield(L, -1, "stdout");
  lua_getfield(L, -2, "stderr");
  return 2;
}

/* store:export(table, 'csv' | 'jsonl' [, path [, query]]) writes to path
   (nil: stdout), the rows and columns the query (as store:cursor's) picks;
   raises naming what failed, a write included */
static int store_export(lua_State *L) {
  lstore_t *u = check_store(L, 1);
  const char *table = luaL_checkstring(L, 2);
  static const char *const formats[] = {"csv", "jsonl", NULL};
  int format = luaL_checkoption(L, 3, NULL, formats) == 0 ? PS_EXPORT_CSV : PS_EXPORT_JSONL;
  const char *path = luaL_optstring(L, 4, NULL);
  lua_settop(L, 5);
  ps_query_t q;
  read_query(L, 5, &q);
  FILE *f = path ? fopen(path, "w") : stdout;
  if (f == NULL) return luaL_fileresult(L, 0, path);
  ps_err_t err;
  int rc = ps_export(u->s, table, &q, format, f, &err);
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
                                         {"begin_run", store_begin_run},
                                         {"end_run", store_end_run},
                                         {"drop_stages", store_drop_stages},
                                         {"compact", store_compact},
                                         {"stage_info", store_stage_info},
                                         {"stage_worker", store_stage_worker},
                                         {"stages", store_stages},
                                         {"attempts", store_attempts},
                                         {"last_limits", store_last_limits},
                                         {"output", store_output},
                                         {"export", store_export},
                                         {"query", store_query},
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
