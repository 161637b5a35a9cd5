/*
 * lengine.c: the "psurvey.engine" userdata: the libuv loop, the worker
 * pool and the log of one driver. engine:run() runs a whole stage in C and
 * calls no Lua while the loop runs, so no Lua error can unwind through
 * libuv frames.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "lcodec.h"
#include "local.h"
#include "lpsurvey.h"
#include "run.h"
#include "sbatch.h"
#include "slurm.h"
#include "source.h"
#include "ssh.h"
#include "store.h"

#define ENGINE "psurvey.engine"

typedef struct lengine_s {
  ps_engine_t *e; /* owned; NULL once closed */
} lengine_t;

static lengine_t *check_engine(lua_State *L) {
  lengine_t *u = luaL_checkudata(L, 1, ENGINE);
  if (u->e == NULL) luaL_error(L, "attempt to use a closed psurvey engine");
  return u;
}

/* core.engine(exe) -> engine */
static int engine_new(lua_State *L) {
  const char *exe = luaL_checkstring(L, 1);
  lengine_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->e = NULL;
  luaL_setmetatable(L, ENGINE);
  ps_engine_t *e = malloc(sizeof *e);
  ps_err_t err;
  if (e == NULL) return luaL_error(L, "out of memory");
  if (ps_engine_init(e, exe, &err) != 0) {
    free(e);
    return luaL_error(L, "%s", err.msg);
  }
  u->e = e;
  return 1;
}

/* engine:close() (also __gc): stops the workers. */
static int engine_close(lua_State *L) {
  lengine_t *u = luaL_checkudata(L, 1, ENGINE);
  if (u->e) {
    ps_engine_close(u->e);
    free(u->e);
    u->e = NULL;
  }
  return 0;
}

/* engine:log_path() -> the hidden log file's name */
static int engine_log_path(lua_State *L) {
  lengine_t *u = check_engine(L);
  lua_pushstring(L, u->e->log.path);
  return 1;
}

/* engine:log(text): appends text to the hidden log */
static int engine_log(lua_State *L) {
  lengine_t *u = check_engine(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  ps_log_block(&u->e->log, "", s, n);
  return 0;
}

static lua_Integer int_field(lua_State *L, int t, const char *k, lua_Integer dflt) {
  lua_getfield(L, t, k);
  lua_Integer v = lua_isnil(L, -1) ? dflt : luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  return v;
}

static const char *str_field(lua_State *L, int t, const char *k, size_t *len) {
  lua_getfield(L, t, k);
  const char *s = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, len);
  lua_pop(L, 1); /* the table keeps the string alive */
  return s;
}

static double num_field(lua_State *L, int t, const char *k, double dflt) {
  lua_getfield(L, t, k);
  double v = lua_isnil(L, -1) ? dflt : luaL_checknumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* The retry function of a running stage: called from the loop, so always
   under lua_pcall, and its errors become the stage's error. */
typedef struct retry_ctx_s {
  lua_State *L;
  int fn; /* stack index of the function, inside engine:run's frame */
} retry_ctx_t;

static int retry_msgh(lua_State *L) {
  const char *m = lua_tostring(L, 1);
  luaL_traceback(L, L, m ? m : "(error object is not a string)", 1);
  return 1;
}

static int retry_cb(void *ud, const ps_failure_t *f, ps_limits_t *next, char *msg, size_t msgsz) {
  retry_ctx_t *c = ud;
  lua_State *L = c->L;
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 10)) {
    snprintf(msg, msgsz, "Lua stack overflow");
    return -1;
  }
  lua_pushcfunction(L, retry_msgh);
  lua_pushvalue(L, c->fn);
  if (psL_decode(L, f->pset, f->pset_len, msg, msgsz) != 0) {
    lua_settop(L, top);
    return -1;
  }
  lua_createtable(L, 0, 8);
  lua_pushstring(L, f->kind);
  lua_setfield(L, -2, "kind");
  lua_pushlstring(L, f->message, f->message_len);
  lua_setfield(L, -2, "message");
  lua_pushinteger(L, (lua_Integer)f->attempt);
  lua_setfield(L, -2, "attempt");
  lua_pushinteger(L, (lua_Integer)f->index + 1);
  lua_setfield(L, -2, "index");
  lua_pushnumber(L, f->limits->timeout);
  lua_setfield(L, -2, "timeout");
  lua_pushnumber(L, f->limits->memory);
  lua_setfield(L, -2, "memory");
  lua_pushinteger(L, f->limits->ncores);
  lua_setfield(L, -2, "ncores");
  lua_pushinteger(L, f->limits->gpus);
  lua_setfield(L, -2, "gpus");
  lua_pushinteger(L, (lua_Integer)f->attempt);
  int rc = lua_pcall(L, 3, 1, top + 1);
  if (rc != LUA_OK) {
    snprintf(msg, msgsz, "%s",
             lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)");
    lua_settop(L, top);
    return -1;
  }
  int again = 0;
  switch (lua_type(L, -1)) {
    case LUA_TNIL: break;
    case LUA_TBOOLEAN: again = lua_toboolean(L, -1); break;
    case LUA_TTABLE: {
      char why[300];
      if (psL_check_limits(L, -1, next, why, sizeof why) != 0) {
        snprintf(msg, msgsz, "it returned a bad table: %s", why);
        lua_settop(L, top);
        return -1;
      }
      again = 1;
      break;
    }
    default:
      snprintf(msg, msgsz,
               "it returned a %s; return nil to give up, or a table of per-pset options (may be "
               "empty) to try "
               "again",
               luaL_typename(L, -1));
      lua_settop(L, top);
      return -1;
  }
  lua_settop(L, top);
  return again;
}

/* map()'s on_result: called from the loop for each pset's stored row, as
   results:rows() reads it back (pset and result keys, and psurvey's own
   _index, _status, _attempt, _worker, _host, _duration, _cpu, with
   _exception and _traceback for a failure), and a system table: the
   stage's name and its progress so far. Its errors are the engine's to
   count and show; the stage goes on. */
typedef struct row_ctx_s {
  lua_State *L;
  int fn;     /* stack index of the function, inside engine:run's frame */
  int thread; /* and of the coroutine it runs in */
  const char *name;
} row_ctx_t;

/* Pushes the row table of a stored row; 0, or -1 with msg. */
static int push_row(lua_State *L, const ps_row_t *row, char *msg, size_t msgsz) {
  if (psL_decode(L, row->pset, row->pset_len, msg, msgsz) != 0) return -1;
  if (row->result_len > 0) {
    if (psL_decode(L, row->result, row->result_len, msg, msgsz) != 0) {
      lua_pop(L, 1);
      return -1;
    }
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -5);
      }
    }
    lua_pop(L, 1);
  }
  set_int(L, "_index", (lua_Integer)row->index + 1);
  lua_pushstring(L, row->status);
  lua_setfield(L, -2, "_status");
  if (row->exception) {
    lua_pushlstring(L, row->exception, row->exception_len);
    lua_setfield(L, -2, "_exception");
    lua_pushlstring(L, row->traceback, row->traceback_len);
    lua_setfield(L, -2, "_traceback");
  }
  set_int(L, "_attempt", (lua_Integer)row->attempt);
  set_int(L, "_worker", (lua_Integer)row->worker);
  if (row->host) {
    lua_pushstring(L, row->host);
    lua_setfield(L, -2, "_host");
  }
  set_num(L, "_duration", (double)row->duration_us / 1e6);
  set_num(L, "_cpu", (double)row->cpu_us / 1e6);
  return 0;
}

/* The callback runs in a coroutine of its own, so that its traceback is
   its own (not the engine's and map()'s frames under it); the coroutine
   is used again after a normal return, and replaced after an error. */
/* One call of the callback, with what it needs, and how it went. */
typedef struct row_call_s {
  row_ctx_t *x;
  const ps_row_t *row;
  const ps_counts_t *c;
  char *msg;
  size_t msgsz;
  int rc; /* 0, or -1 with msg */
} row_call_t;

/* The body of on_row_cb, under lua_pcall: a Lua error while the row is made
   (out of memory) never unwinds through libuv's frames. Its arguments are
   the call's record, the coroutine and the function (this frame cannot
   reach engine:run's); it returns a new coroutine when the one it was
   given is done with, else nothing. */
static int row_call(lua_State *L) {
  row_call_t *a = lua_touserdata(L, 1);
  row_ctx_t *x = a->x;
  lua_State *co = lua_tothread(L, 2);
  a->rc = -1;
  if (!lua_checkstack(co, 20)) {
    snprintf(a->msg, a->msgsz, "Lua stack overflow");
    return 0;
  }
  lua_settop(co, 0);
  lua_pushvalue(L, 3);
  lua_xmove(L, co, 1);
  if (push_row(co, a->row, a->msg, a->msgsz) != 0) {
    lua_settop(co, 0);
    return 0;
  }
  const ps_counts_t *c = a->c;
  lua_createtable(co, 0, 2);
  lua_pushstring(co, x->name);
  lua_setfield(co, -2, "name");
  lua_createtable(co, 0, 6);
  set_int(co, "total", c->total);
  set_int(co, "active", c->active);
  set_int(co, "finished", c->ok);
  set_int(co, "failures", c->failed);
  set_int(co, "exceptions", c->exceptions + c->on_row_errors); /* as results.progress counts */
  set_int(co, "on_result_errors", c->on_row_errors);
  lua_setfield(co, -2, "progress");
  int nres = 0;
  int rc = lua_resume(co, L, 2, &nres);
  if (rc == LUA_OK) {
    lua_settop(co, 0);
    a->rc = 0;
    return 0;
  }
  if (rc == LUA_YIELD) {
    snprintf(a->msg, a->msgsz,
             "on_result yielded (a coroutine.yield outside a coroutine of its own)");
  } else {
    const char *m = lua_tostring(co, -1);
    luaL_traceback(L, co, m ? m : "(error object is not a string)", 0);
    snprintf(a->msg, a->msgsz, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  /* A coroutine that failed or yielded is done: the next call gets a new one. */
  lua_newthread(L);
  return 1;
}

static int on_row_cb(void *ud, const ps_row_t *row, const ps_counts_t *c, char *msg, size_t msgsz) {
  row_ctx_t *x = ud;
  lua_State *L = x->L;
  row_call_t a = {x, row, c, msg, msgsz, -1};
  if (!lua_checkstack(L, 4)) {
    snprintf(msg, msgsz, "Lua stack overflow");
    return -1;
  }
  lua_pushcfunction(L, row_call);
  lua_pushlightuserdata(L, &a);
  lua_pushvalue(L, x->thread);
  lua_pushvalue(L, x->fn);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
    snprintf(msg, msgsz, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "out of memory");
    lua_pop(L, 1);
    return -1;
  }
  if (lua_isthread(L, -1))
    lua_replace(L, x->thread);
  else
    lua_pop(L, 1);
  return a.rc;
}

/* Pushes { count, mean, min, max, p25 .. p99 } of one named timer. */
static void push_timing(lua_State *L, const ps_timing_t *t) {
  static const struct {
    const char *name;
    double q;
  } quantiles[] = {{"p25", 0.25}, {"p50", 0.50}, {"p75", 0.75},
                   {"p90", 0.90}, {"p95", 0.95}, {"p99", 0.99}};
  lua_createtable(L, 0, 10);
  set_int(L, "count", t->hist.count);
  set_num(L, "mean", t->sum / (double)t->hist.count);
  set_num(L, "min", t->min);
  set_num(L, "max", t->max);
  for (int k = 0; k < 6; k++) set_num(L, quantiles[k].name, ps_timing_quantile(t, quantiles[k].q));
}

/* Pushes { total, ok, failed, exceptions, seconds, interrupted, stats = {
   ..., timers = { name = {...} } } }, and frees r's timers (only a memory
   error in Lua, which leaves the state unusable, leaks them). */
static void push_result(lua_State *L, ps_run_result_t *r) {
  lua_createtable(L, 0, 8);
  set_int(L, "total", r->counts.total);
  set_int(L, "ok", r->counts.ok);
  set_int(L, "failed", r->counts.failed);
  set_int(L, "exceptions", r->counts.exceptions);
  set_int(L, "on_result_errors", r->counts.on_row_errors);
  set_int(L, "resumed", r->counts.resumed);
  set_int(L, "retried", r->counts.retried);
  set_num(L, "seconds", r->seconds);
  set_int(L, "interrupted", r->interrupted);
  set_int(L, "halted", r->halted);
  const ps_hist_t *h = &r->hist;
  lua_createtable(L, 0, 10);
  set_int(L, "count", h->count);
  if (h->count > 0) {
    set_num(L, "mean", h->sum_us / (double)h->count / 1e6);
    set_num(L, "min", (double)h->min_us / 1e6);
    set_num(L, "max", (double)h->max_us / 1e6);
    set_num(L, "p25", ps_hist_quantile(h, 0.25) / 1e6);
    set_num(L, "p50", ps_hist_quantile(h, 0.50) / 1e6);
    set_num(L, "p75", ps_hist_quantile(h, 0.75) / 1e6);
    set_num(L, "p90", ps_hist_quantile(h, 0.90) / 1e6);
    set_num(L, "p95", ps_hist_quantile(h, 0.95) / 1e6);
    set_num(L, "p99", ps_hist_quantile(h, 0.99) / 1e6);
  }
  lua_createtable(L, 0, r->timers.n);
  for (int k = 0; k < r->timers.n; k++) {
    push_timing(L, &r->timers.v[k]->t);
    lua_setfield(L, -2, r->timers.v[k]->name);
  }
  lua_setfield(L, -2, "timers");
  lua_setfield(L, -2, "stats");
  ps_timers_free(&r->timers);
}

/* engine:run(source, store|nil, opts) -> result | nil, message, result */
static int engine_run(lua_State *L) {
  lengine_t *u = check_engine(L);
  ps_source_t *src = psL_checksource(L, 2);
  ps_store_t *store = lua_isnil(L, 3) ? NULL : psL_checkstore(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  if (u->e->run) return luaL_error(L, "map() cannot be called while a map() runs");
  ps_run_opts_t o;
  memset(&o, 0, sizeof o);
  size_t n;
  o.name = str_field(L, 4, "name", &n);
  if (o.name == NULL) return luaL_error(L, "engine:run needs a name");
  o.limit = int_field(L, 4, "limit", 0);
  o.ncores = (int)int_field(L, 4, "ncores", 1);
  o.group_size = int_field(L, 4, "group_size", 0);
  o.max_tasks_per_child = int_field(L, 4, "max_tasks_per_child", 0);
  o.verbose = (int)int_field(L, 4, "verbose", 0);
  o.vstats = (int)int_field(L, 4, "vstats", 0);
  o.code = str_field(L, 4, "code", &o.code_len);
  o.user = str_field(L, 4, "user", &o.user_len);
  o.options_text = str_field(L, 4, "options_text", &n);
  o.workdir = str_field(L, 4, "workdir", &n);
  o.output = (int)int_field(L, 4, "output", PS_OUTPUT_TAIL);
  if (o.output < PS_OUTPUT_TAIL || o.output > PS_OUTPUT_NONE)
    return luaL_error(L, "engine:run: bad output mode %d", o.output);
  /* carbon = { host =, port =, protocol = 'pickle' | 'plaintext', prefix =,
     script = }: its points go under prefix.script.stage, each of the last
     two made a path part (carbon.h). */
  char carbon_path[PS_CARBON_PATH_MAX];
  if (lua_getfield(L, 4, "carbon") == LUA_TTABLE) {
    int t = lua_gettop(L);
    o.carbon_host = str_field(L, t, "host", &n);
    const char *prefix = str_field(L, t, "prefix", &n);
    const char *script = str_field(L, t, "script", &n);
    if (prefix && script) {
      char s[PS_CARBON_PATH_MAX], stage[PS_CARBON_PATH_MAX];
      ps_carbon_component(s, sizeof s, script);
      ps_carbon_component(stage, sizeof stage, o.name);
      ps_textf(carbon_path, sizeof carbon_path, "%s.%s.%s", prefix, s, stage);
      o.carbon_path = carbon_path;
    }
    o.carbon_port = (int)int_field(L, t, "port", 2004);
    const char *proto = str_field(L, t, "protocol", &n);
    o.carbon_protocol =
        proto && strcmp(proto, "plaintext") == 0 ? PS_CARBON_PLAINTEXT : PS_CARBON_PICKLE;
    if (o.carbon_host == NULL || o.carbon_path == NULL)
      return luaL_error(L, "engine:run: carbon needs host, prefix and script");
  }
  lua_pop(L, 1); /* the strings stay alive in opts, which stays on the stack */
  if (o.code == NULL || o.user == NULL) return luaL_error(L, "engine:run needs code and user");
  if (o.ncores < 1) o.ncores = 1;
  ps_limits_unset(&o.limits);
  o.limits.timeout = num_field(L, 4, "timeout", 0);
  o.limits.memory = num_field(L, 4, "memory", 0);
  o.limits.ncores = 1;
  o.limits.gpus = 0;
  o.limits.retries = 1;
  o.sandbox = (int)int_field(L, 4, "sandbox", 0);
  o.seed = (uint64_t)int_field(L, 4, "seed", 0);
  o.resume = (int)int_field(L, 4, "resume", 0);
  o.resume_keep_failed = (int)int_field(L, 4, "resume_keep_failed", 0);
  o.halt = (int)int_field(L, 4, "halt", PS_HALT_NEVER);
  if (o.halt != PS_HALT_NEVER && o.halt != PS_HALT_SOON && o.halt != PS_HALT_NOW)
    return luaL_error(L, "engine:run: bad halt mode %d", o.halt);
  o.halt_fail = int_field(L, 4, "halt_fail", 0);
  o.halt_pct = num_field(L, 4, "halt_pct", 0);
  o.halt_text = str_field(L, 4, "halt_text", &n);
  retry_ctx_t rctx = {L, 0};
  lua_getfield(L, 4, "retries");
  if (lua_isfunction(L, -1)) {
    rctx.fn = lua_gettop(L); /* stays on the stack while the stage runs */
    o.retry = retry_cb;
    o.retry_ud = &rctx;
  } else {
    if (!lua_isnil(L, -1)) o.limits.retries = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  row_ctx_t xctx = {L, 0, 0, o.name};
  lua_getfield(L, 4, "on_result");
  if (lua_isfunction(L, -1)) {
    xctx.fn = lua_gettop(L); /* both stay on the stack while the stage runs */
    lua_newthread(L);
    xctx.thread = lua_gettop(L);
    o.on_row = on_row_cb;
    o.on_row_ud = &xctx;
  } else {
    lua_pop(L, 1);
  }
  o.stage.run = int_field(L, 4, "run", 0);
  o.stage.code = o.code;
  o.stage.code_len = o.code_len;
  o.stage.user = o.user;
  o.stage.user_len = o.user_len;
  o.stage.code_hash = str_field(L, 4, "code_hash", &n);
  o.stage.user_hash = str_field(L, 4, "user_hash", &n);
  o.stage.sandbox = o.sandbox ? "strict" : "default";
  o.stage.seed = o.seed;
  o.stage.timeout = o.limits.timeout;
  o.stage.memory = o.limits.memory;
  ps_run_result_t res;
  ps_err_t err;
  memset(&res, 0, sizeof res);
  int rc = ps_engine_run(u->e, src, store, &o, &res, &err);
  if (rc == 0) {
    push_result(L, &res);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, err.msg);
  push_result(L, &res);
  /* What kind of failure, for the caller to tell the user's from others. */
  lua_pushstring(L, rc == PS_EHALT    ? "halted"
                    : rc == PS_EHOSTS ? "hosts"
                    : rc == PS_EDB    ? "db"
                    : rc == PS_EBUSY  ? "busy"
                    : rc == PS_EINTR  ? "interrupted"
                                      : "other");
  lua_setfield(L, -2, "error");
  return 3;
}

/* The process backend: this machine, whose slots follow each map's
   ncores, with opts = { gpus = 'id,id' }. */
static int backend_process(lua_State *L, ps_pool_t *p, ps_err_t *err) {
  ps_node_t *n;
  size_t len;
  const char *gpus = str_field(L, 3, "gpus", &len);
  int rc = ps_local_setup(p, &n, err);
  if (rc == 0 && gpus) rc = ps_node_set_gpus(n, gpus, err);
  return rc;
}

/* The strings of array field `field` of the table at idx, in an array
   pushed on the stack (both stay there while they are used; the table
   keeps the strings alive). *n is their count, 0 without the field. */
static const char **string_list(lua_State *L, int idx, const char *field, int *n) {
  lua_getfield(L, idx, field);
  int list = lua_gettop(L);
  *n = lua_istable(L, list) ? (int)lua_rawlen(L, list) : 0;
  const char **out = lua_newuserdatauv(L, sizeof *out * (size_t)(*n ? *n : 1), 0);
  for (int k = 0; k < *n; k++) {
    /* A string the table keeps: a number converted here would be kept by
       nothing once popped. */
    if (lua_rawgeti(L, list, k + 1) != LUA_TSTRING)
      luaL_error(L, "engine:backend: %s[%d] is not a string", field, k + 1);
    out[k] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  return out;
}

/* The ssh backend, with opts = { hosts = { {target=, port=, slots=,
   psurvey=, gpus = 'id,id'}, ... }, ssh_args = {...}, heartbeat = s, reconnect = 0|1,
   ssh = program }. */
static int backend_ssh(lua_State *L, ps_pool_t *p, ps_err_t *err) {
  lua_getfield(L, 3, "hosts");
  luaL_checktype(L, -1, LUA_TTABLE);
  int list = lua_gettop(L);
  int n = (int)lua_rawlen(L, list);
  ps_ssh_spec_t *specs = lua_newuserdatauv(L, sizeof *specs * (size_t)(n ? n : 1), 0);
  for (int k = 0; k < n; k++) {
    lua_rawgeti(L, list, k + 1);
    int t = lua_gettop(L);
    size_t len;
    specs[k].target = str_field(L, t, "target", &len);
    specs[k].psurvey = str_field(L, t, "psurvey", &len);
    specs[k].gpus = str_field(L, t, "gpus", &len);
    specs[k].port = (int)int_field(L, t, "port", 0);
    specs[k].slots = (int)int_field(L, t, "slots", 0);
    if (specs[k].target == NULL)
      return luaL_error(L, "engine:backend: host #%d has no target", k + 1);
    lua_pop(L, 1); /* the list keeps the strings alive */
  }
  ps_ssh_opts_t o;
  memset(&o, 0, sizeof o);
  o.ssh_args = string_list(L, 3, "ssh_args", &o.nssh_args);
  o.heartbeat = num_field(L, 3, "heartbeat", 30);
  o.reconnect = (int)int_field(L, 3, "reconnect", 1);
  size_t len;
  o.ssh = str_field(L, 3, "ssh", &len);
  return ps_ssh_setup(p, specs, n, &o, err);
}

/* The Slurm backend: inside an allocation, opts = { listen = address,
   port = n, srun = program, heartbeat = s }; from a login node, also
   nodes = N, max_jobs = n, per_minute = n, poll = s, args = { sbatch
   options }, log_dir = the agents' logs. */
static int backend_slurm(lua_State *L, ps_pool_t *p, ps_err_t *err) {
  size_t len;
  const char *listen = str_field(L, 3, "listen", &len);
  int port = (int)int_field(L, 3, "port", 0);
  double heartbeat = num_field(L, 3, "heartbeat", 30);
  int nodes = (int)int_field(L, 3, "nodes", 0);
  if (nodes == 0) {
    ps_slurm_opts_t o;
    memset(&o, 0, sizeof o);
    o.listen = listen;
    o.port = port;
    o.heartbeat = heartbeat;
    o.srun = str_field(L, 3, "srun", &len);
    return ps_slurm_setup(p, &o, err);
  }
  ps_sbatch_opts_t o;
  memset(&o, 0, sizeof o);
  o.listen = listen;
  o.port = port;
  o.heartbeat = heartbeat;
  int max_jobs = (int)int_field(L, 3, "max_jobs", 0);
  o.jobs = max_jobs > 0 && max_jobs < nodes ? max_jobs : nodes;
  o.per_minute = (int)int_field(L, 3, "per_minute", 30);
  o.poll = num_field(L, 3, "poll", 5);
  o.log_dir = str_field(L, 3, "log_dir", &len);
  o.args = string_list(L, 3, "args", &o.nargs);
  return ps_sbatch_setup(p, &o, err);
}

/* The backends, by name: adding one is a file in core/ and a line here. */
static const struct {
  const char *name;
  int (*setup)(lua_State *L, ps_pool_t *p, ps_err_t *err);
} backends[] = {{"process", backend_process}, {"ssh", backend_ssh}, {"slurm", backend_slurm}};

/* engine:backend(name, opts): adds the nodes of a backend to the pool
   ('process': this machine; 'ssh': opts as backend_ssh reads them). */
static int engine_backend(lua_State *L) {
  lengine_t *u = check_engine(L);
  const char *name = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  for (size_t k = 0; k < sizeof backends / sizeof backends[0]; k++) {
    if (strcmp(name, backends[k].name) != 0) continue;
    ps_err_t err;
    if (backends[k].setup(L, &u->e->pool, &err) != 0) return luaL_error(L, "%s", err.msg);
    return 0;
  }
  return luaL_argerror(L, 2, lua_pushfstring(L, "unknown backend '%s'", name));
}

/* engine:nodes() -> { { backend, name, host, state, cores, memory_mb,
   slots, gpus = 'id,id', ever_up }, ... }: where workers run, as known now */
static int engine_nodes(lua_State *L) {
  lengine_t *u = check_engine(L);
  static const char *const states[] = {"down", "connecting", "up"};
  ps_pool_t *p = &u->e->pool;
  lua_createtable(L, p->nnodes, 0);
  for (int k = 0; k < p->nnodes; k++) {
    const ps_node_t *n = p->nodes[k];
    lua_createtable(L, 0, 9);
    lua_pushstring(L, n->ops->name);
    lua_setfield(L, -2, "backend");
    lua_pushstring(L, n->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, n->host);
    lua_setfield(L, -2, "host");
    lua_pushstring(L, n->state >= 0 && n->state <= PS_NODE_UP ? states[n->state] : "?");
    lua_setfield(L, -2, "state");
    set_int(L, "cores", n->cores);
    set_int(L, "memory_mb", n->mem_mb);
    set_int(L, "slots", n->slots);
    lua_pushstring(L, n->gpus);
    lua_setfield(L, -2, "gpus");
    lua_pushboolean(L, n->ever_up);
    lua_setfield(L, -2, "ever_up");
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

static const luaL_Reg engine_methods[] = {
    {"nodes", engine_nodes}, {"backend", engine_backend},   {"run", engine_run},
    {"close", engine_close}, {"log_path", engine_log_path}, {"log", engine_log},
    {"__gc", engine_close},  {"__close", engine_close},     {NULL, NULL}};

void psL_open_engine(lua_State *L) {
  if (luaL_newmetatable(L, ENGINE)) {
    luaL_setfuncs(L, engine_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, engine_new);
  lua_setfield(L, -2, "engine");
}
