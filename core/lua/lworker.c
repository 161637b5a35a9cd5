/*
 * lworker.c: the worker process (`psurvey worker`). One Lua state, fed over
 * stdin and answering on stdout with frames (frame.h). It loads the shipped
 * worker function once per stage, then runs batches of psets, each in a
 * global environment of its own, and sends results back in batches: at the end
 * of a batch, or sooner when a pset took long, so the driver sees long psets
 * finish as they finish. Blocking I/O: a worker has nothing else to do.
 *
 * Limits are per pset and enforced here: memory by the counting allocator
 * (growth of the Lua heap beyond the pset's start), time by an instruction
 * count hook. Once a pset trips either, the hook fires at every
 * instruction and raises again, so a pcall in the worker cannot swallow
 * it. Code stuck in C or in a child process never runs the hook: the
 * driver kills the whole process group for that (run.c).
 *
 * Named timers (system.record and system.time) are aggregated here per
 * name, in constant memory a name (stats.h), and travel with the results
 * of the psets that recorded them, at the end of their RESULTS frame: a
 * worker that never records sends what it always sent, and a worker that
 * dies takes the samples of its unsent results with it.
 *
 * What a pset writes to stdout and stderr, and the programs it starts
 * with them, lands in two memory files in place of descriptors 1 and 2
 * (capture.h), taken when the pset ends: its last 64 KiB (or all of it)
 * travel with its result, or its lines go to the worker's own stderr,
 * tagged with the pset (the stage's option output, in CODE). A pset that
 * wrote nothing costs two lseek calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "cpus.h"
#include "frame.h"
#include "hash.h"
#include "lcodec.h"
#include "lprogram.h"
#include "lpsurvey.h"
#include "lsandbox.h"
#include "lship.h"
#include "msg.h"
#include "stage.h" /* PS_NAME_MAX: a stage's name, as the driver checks it */
#include "value.h"

/* Results are sent when a batch ends, once FLUSH_AFTER_US has passed, or
   once they hold PS_BATCH_BYTES (ps.h): a frame stays far below
   PS_FRAME_MAX however fast psets with large results come. */
#define FLUSH_AFTER_US 20000
/* An error message or traceback longer than this is cut. */
#define MAX_MESSAGE (1u << 20)
/* Lua instructions between two looks at the clock when a timeout is set. */
#define HOOK_COUNT 1000

typedef struct worker_s {
  lua_State *L;
  int in, out;
  ps_framer_t framer;
  ps_buf_t recs; /* result records not sent yet */
  uint64_t nrecs;
  ps_timers_t timers; /* this stage's timers; their samples since the last flush */
  int64_t last_flush;
  int64_t id;
  int flags;
  int code_failed; /* the last CODE could not be loaded */
  int system_grew; /* the worker added a key to the system table */
  int ran_default; /* this Lua state has run code in the default profile */
  ps_buf_t result; /* scratch: the result being encoded (put_result) */
  int sandbox;     /* PSL_SANDBOX_* */
  uint64_t seed;
  ps_threads_t threads; /* OMP_NUM_THREADS and the like, per pset (cpus.h) */
  char host[256];
  char stage[PS_NAME_MAX + 1];
  size_t mem, peak; /* bytes the Lua state holds, and the most it held */
  /* The pset running now: its limits, and which one it tripped. */
  size_t mem_base, mem_limit;   /* limit: bytes above mem_base, 0: none */
  int64_t deadline;             /* monotonic us, 0: none */
  int tripped;                  /* PS_STATUS_MEMORY or PS_STATUS_TIMEOUT, or 0 */
  int tb_saved;                 /* the trip's traceback is in the registry */
  int64_t wall_base, mono_base; /* the two clocks read together, once a batch */
  int64_t last_done;            /* monotonic time the last pset ended */
  int last_done_is_now;         /* and nothing but the next pset's setup since */
  int64_t cpu_mark;             /* CPU time at the last reading (us), or -1 */
  int64_t cpu_mark_wall;        /* monotonic time of that reading */
  int64_t cpu_guessed;          /* CPU time given to psets since, without a reading */
  int pid;
  char trip_msg[96];
  /* The stage's workdir: each pset runs in <workdir>/<stage>/<index>, its
     own directory, then the worker goes back home. */
  char workdir[PATH_MAX];  /* "" for none */
  char pset_dir[PATH_MAX]; /* the running pset's, absolute, or "" */
  int home;                /* the directory the worker started in (a descriptor), or -1 */
  int home_errno;          /* why it could not be opened */
  ps_capture_t cap;        /* stdout and stderr, caught */
  int output;              /* PS_OUTPUT_*, the stage's */
} worker_t;

static worker_t *the_worker; /* for the hook, which has no user data */

static void hook(lua_State *L, lua_Debug *ar);

/* Marks the running pset as over a limit; the hook raises from now on. */
static void trip(worker_t *W, int status) {
  if (W->tripped) return;
  W->tripped = status;
  if (status == PS_STATUS_MEMORY)
    snprintf(W->trip_msg, sizeof W->trip_msg, "memory limit of %g MiB exceeded",
             (double)W->mem_limit / (1024.0 * 1024.0));
  lua_sethook(W->L, hook, LUA_MASKCOUNT, 1);
}

/* Raises the trip's error in thread L, and makes L raise it again at every
   instruction (a coroutine has its own hook). */
static int raise_trip(lua_State *L) {
  worker_t *W = the_worker;
  lua_sethook(L, hook, LUA_MASKCOUNT, 1);
  if (!W->tb_saved) {
    W->tb_saved = 1;
    luaL_traceback(L, L, NULL, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.trip_traceback");
  }
  return luaL_error(L, "%s", W->trip_msg);
}

static void hook(lua_State *L, lua_Debug *ar) {
  worker_t *W = the_worker;
  (void)ar;
  if (!W->tripped && W->deadline && ps_mono_us() >= W->deadline) trip(W, PS_STATUS_TIMEOUT);
  if (W->tripped) raise_trip(L);
}

/*
 * pcall, xpcall, coroutine.resume and coroutine.close as the standard
 * library has them, except that a pset over a limit cannot catch its own
 * end. A memory trip happens in the allocator, which does not know the
 * running thread: trip() hooks the main thread only, and a coroutine
 * without a hook that caught the allocation's error would run on. Every
 * function that catches errors checks for a trip when the call returns,
 * and raises it again in its own thread.
 */
static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
  if (the_worker->tripped) return raise_trip(L);
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

static int checked_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
  return finish_pcall(L, status, 0);
}

static int checked_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
  return finish_pcall(L, status, 2);
}

/* coroutine.resume and coroutine.close: the standard one (upvalue 1). */
static int checked_coroutine_call(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  if (the_worker->tripped) return raise_trip(L);
  return lua_gettop(L);
}

static void install_checked(lua_State *L) {
  lua_pushcfunction(L, checked_pcall);
  lua_setglobal(L, "pcall");
  lua_pushcfunction(L, checked_xpcall);
  lua_setglobal(L, "xpcall");
  lua_getglobal(L, LUA_COLIBNAME);
  const char *names[] = {"resume", "close"};
  for (int k = 0; k < 2; k++) {
    lua_getfield(L, -1, names[k]);
    lua_pushcclosure(L, checked_coroutine_call, 1);
    lua_setfield(L, -2, names[k]);
  }
  lua_pop(L, 1);
}

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  worker_t *W = ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    W->mem -= osize;
    return NULL;
  }
  if (W->mem_limit && nsize > osize && W->mem - osize + nsize > W->mem_base + W->mem_limit) {
    trip(W, PS_STATUS_MEMORY);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p == NULL) return NULL;
  W->mem = W->mem - osize + nsize;
  if (W->mem > W->peak) W->peak = W->mem;
  return p;
}

static void write_all(worker_t *W, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(W->out, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) _exit(0); /* the driver is gone */
    p += k;
    n -= (size_t)k;
  }
}

static void send_frame(worker_t *W, ps_buf_t *b) {
  if (b->failed) {
    ps_capture_say(&W->cap, "psurvey worker: out of memory building a frame\n");
    _exit(70);
  }
  write_all(W, b->data, b->len);
  b->len = 0;
}

static void flush_results(worker_t *W) {
  if (W->nrecs == 0) return;
  ps_buf_t f;
  ps_buf_init(&f);
  ps_msg_put_results(&f, W->nrecs, W->recs.data, W->recs.len, &W->timers);
  send_frame(W, &f);
  ps_buf_free(&f);
  W->recs.len = 0;
  W->nrecs = 0;
  for (int k = 0; k < W->timers.n; k++)
    if (W->timers.v[k]->t.hist.count) ps_timing_init(&W->timers.v[k]->t);
  W->last_flush = ps_mono_us();
  W->last_done_is_now = 0;
}

static void fatal(worker_t *W, const char *msg) __attribute__((noreturn));
static void fatal(worker_t *W, const char *msg) {
  ps_buf_t f;
  ps_buf_init(&f);
  ps_msg_put_fatal(&f, msg, strlen(msg));
  send_frame(W, &f);
  ps_buf_free(&f);
  char line[600];
  snprintf(line, sizeof line, "psurvey worker: %s\n", msg);
  ps_capture_say(&W->cap, line);
  _exit(2);
}

/* Reads until a whole frame is there. Returns 0 at end of input. */
static int read_frame(worker_t *W, int *kind, const char **p, size_t *n) {
  ps_err_t err;
  for (;;) {
    int rc = ps_framer_next(&W->framer, kind, p, n, &err);
    if (rc == 1) return 1;
    if (rc < 0) fatal(W, err.msg);
    char *dst;
    size_t room;
    if (ps_framer_space(&W->framer, 65536, &dst, &room) != 0) fatal(W, "out of memory");
    ssize_t k = read(W->in, dst, room);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    W->framer.in.len += (size_t)k;
  }
}

/* Message handler: keeps the traceback in the registry, returns the message. */
static int msgh(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      lua_replace(L, 1);
    else
      lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1)), lua_replace(L, 1);
  }
  luaL_traceback(L, L, NULL, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.traceback");
  lua_settop(L, 1);
  return 1;
}

/* s in two parts: cut to MAX_MESSAGE bytes, then a note of what was cut
   (written to note) or nothing. */
static void cut(const char *s, size_t n, ps_bytes_t part[2], char *note, size_t notesz) {
  part[0].p = s;
  part[0].n = n;
  part[1].p = "";
  part[1].n = 0;
  if (n <= MAX_MESSAGE) return;
  int k = snprintf(note, notesz, "... (%zu more bytes cut)", n - MAX_MESSAGE);
  part[0].n = MAX_MESSAGE;
  part[1].p = note;
  part[1].n = (size_t)k;
}

/* Writes a failure after the record's head; returns where its status is. */
static size_t put_failure(worker_t *W, int status, const char *msg, size_t msglen, const char *tb,
                          size_t tblen) {
  ps_bytes_t m[2], t[2];
  char mnote[80], tnote[80];
  cut(msg, msglen, m, mnote, sizeof mnote);
  cut(tb, tblen, t, tnote, sizeof tnote);
  return ps_msg_result_failure(&W->recs, status, m, t);
}

static int valid_key(const char *s, size_t n) {
  return n > 0 && ps_utf8_valid(s, n) && !memchr(s, 0, n);
}

/*
 * Encodes the result at the top of the stack (the pset table is at `pset`)
 * into W->recs after the record header. On a bad result writes an error
 * record instead: the pset fails, the survey goes on. Returns where the
 * record's status is.
 */
static size_t put_result(worker_t *W, int pset) {
  lua_State *L = W->L;
  int res = lua_gettop(L);
  char msg[600];
  int t = lua_type(L, res);
  if (t == LUA_TNIL) return ps_msg_result_value(&W->recs, "", 0, "", 0);
  if (t != LUA_TTABLE) {
    snprintf(msg, sizeof msg, "the worker returned a %s, expected a table of results (or nil)",
             luaL_typename(L, res));
    return put_failure(W, PS_STATUS_ERROR, msg, strlen(msg), "", 0);
  }
  /* The pairs go to a scratch buffer first: the table's header, which
     precedes them, holds their count. */
  ps_buf_t *v = &W->result;
  v->len = 0;
  uint64_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, res) != 0) {
    int kv = lua_gettop(L);
    size_t klen;
    const char *k;
    if (lua_type(L, kv - 1) != LUA_TSTRING) {
      char kp[96];
      psL_keypath(L, kv - 1, kp, sizeof kp);
      snprintf(msg, sizeof msg,
               "the worker returned a table with key %s: result keys must be strings",
               kp + (kp[0] == '.'));
      goto bad;
    }
    k = lua_tolstring(L, kv - 1, &klen);
    if (!valid_key(k, klen)) {
      snprintf(msg, sizeof msg,
               "result key '%.60s' is not a valid column name (it must be non-empty UTF-8)", k);
      goto bad;
    }
    if (k[0] == '_') {
      snprintf(msg, sizeof msg,
               "result key '%.60s' is reserved: keys starting with '_' are psurvey's columns", k);
      goto bad;
    }
    lua_pushvalue(L, kv - 1);
    if (lua_rawget(L, pset) != LUA_TNIL) {
      int same = lua_rawequal(L, -1, kv);
      lua_pop(L, 1);
      if (!same) {
        snprintf(
            msg, sizeof msg,
            "result key '%.60s' repeats pset key '%.60s' with a different value: rename the result",
            k, k);
        goto bad;
      }
      lua_pop(L, 1);
      continue; /* the same value: stored once, as the pset's */
    }
    lua_pop(L, 1);
    ps_put_str(v, k, klen);
    psL_encerr_t e;
    /* Canonical: a nested table's keys in order, so that equal tables are
       stored as the same text whatever order the worker's hash gave. */
    if (psL_encode(L, kv, v, 1, &e) != 0) {
      snprintf(msg, sizeof msg,
               "result key '%.60s%s' holds %s, which cannot be stored: return plain data "
               "(nil, booleans, numbers, strings and tables of them)",
               k, e.path, e.what);
      goto bad;
    }
    n++;
    lua_pop(L, 1);
  }
  /* The header, made last, goes first: status byte, length, header,
     pairs. */
  size_t pairs = v->len;
  ps_put_table(v, 0, n);
  if (v->failed) {
    snprintf(msg, sizeof msg, "the result is too large: out of memory");
    goto bad2;
  }
  if (v->len > PS_VALUE_MAX) {
    snprintf(msg, sizeof msg, "the result is %.1f MiB encoded, over the %u MiB one pset may return",
             (double)v->len / (1 << 20), PS_VALUE_MAX >> 20);
    goto bad2;
  }
  return ps_msg_result_value(&W->recs, v->data + pairs, v->len - pairs, v->data, pairs);
bad:
  lua_settop(L, res);
bad2:
  ps_buf_free(v); /* forgets a failed allocation too */
  ps_buf_init(v);
  return put_failure(W, PS_STATUS_ERROR, msg, strlen(msg), "", 0);
}

/*
 * The system table. Its keys, host and stage values are made once per
 * stage: a Lua string from a C string costs a lookup, and this runs for
 * every pset. The table itself is reused from pset to pset with fresh
 * values, a third of a no-op pset's cost saved; a worker that adds a key
 * to it (seen by __newindex, and by rawset: psL_sandbox_watch) gets a new
 * one next time, so nothing it put there reaches another pset. Its
 * metatable is protected: none can be set.
 */
enum {
  SYS_SEED = 1,
  SYS_INDEX,
  SYS_ATTEMPT,
  SYS_WORKER,
  SYS_HOST,
  SYS_PID,
  SYS_STAGE,
  SYS_SLEEP,
  SYS_WORKDIR,
  SYS_NKEYS = SYS_WORKDIR
};
static const char *const sys_keys[] = {"seed", "index", "attempt", "worker", "host",
                                       "pid",  "stage", "sleep",   "workdir"};

/*
 * The bottom of the worker's Lua stack holds what every pset needs, below
 * anything a pset pushes: a slot is read with lua_pushvalue, cheaper than
 * a registry or table lookup, and a pset makes some twenty such reads.
 */
enum {
  ST_MSGH = 1,    /* msgh, the message handler of every pset's call */
  ST_HOLDER,      /* the function whose upvalue 1 is the psets' _ENV */
  ST_FN,          /* the worker function, nil before CODE */
  ST_USER,        /* the user value */
  ST_ENV,         /* the last pset's _ENV, or nil */
  ST_SYSTEM,      /* the system table the next pset gets, or nil */
  ST_SYSTEM_MT,   /* its metatable */
  ST_HOST,        /* system.host */
  ST_STAGE,       /* system.stage */
  ST_SYSTEM_KEYS, /* SYS_NKEYS slots: the system table's keys */
  ST_TOP = ST_SYSTEM_KEYS + SYS_NKEYS - 1
};

/*
 * system.sleep(seconds): waits without using the CPU, in the worker
 * itself: no process to start, so a pset that waits 10 ms takes 10 ms.
 * A sleep past the pset's timeout ends at the deadline, and the pset ends
 * there with its timeout, as if it had computed all along.
 */
static int system_sleep(lua_State *L) {
  worker_t *W = the_worker;
  lua_Number seconds = luaL_checknumber(L, 1);
  if (!(seconds >= 0 && seconds <= 1e9))
    return luaL_error(L, "system.sleep: seconds must be a number from 0 to 1e9, got %s",
                      luaL_tolstring(L, 1, NULL));
  int64_t until = ps_mono_us() + (int64_t)(seconds * 1e6 + 0.5);
  int timed_out = W->deadline && until >= W->deadline;
  if (timed_out) until = W->deadline;
  struct timespec ts = {.tv_sec = (time_t)(until / 1000000),
                        .tv_nsec = (long)(until % 1000000) * 1000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
  /* The hook raises the timeout at the caller's next instruction. */
  if (timed_out) trip(W, PS_STATUS_TIMEOUT);
  return 0;
}

/* The monotonic clock in nanoseconds. */
static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* system.run(argv [, opts]): a program without a shell (lprogram.c); not
   in the strict sandbox, which starts no program. */
static int system_run(lua_State *L) {
  if (the_worker->sandbox == PSL_SANDBOX_STRICT) return psL_system_run_refused(L);
  return psL_system_run(L);
}

/* system.clock() -> seconds of the monotonic clock: to the nanosecond in
   the first 104 days of uptime (2^53 ns), finer than a microsecond long
   after */
static int system_clock(lua_State *L) {
  lua_pushnumber(L, (lua_Number)mono_ns() / 1e9);
  return 1;
}

/*
 * The timer named by argument `arg` of the running function (record,
 * time), made when it is new. A name is a non-empty UTF-8 string of at
 * most PS_TIMER_NAME_MAX bytes, without control characters; a worker
 * keeps at most PS_TIMERS_MAX names a stage, and a new one past them
 * raises: the memory of a worker's timers is bounded (some 8 KiB a name,
 * whatever the count of samples). check_timer_name checks the name alone,
 * so that a call with a bad argument after it makes no timer.
 */
static const char *check_timer_name(lua_State *L, int arg, size_t *len) {
  const char *name = luaL_checklstring(L, arg, len);
  luaL_argcheck(L, *len > 0, arg, "timer name must not be empty");
  if (!ps_msg_timer_name_valid(name, *len))
    luaL_argerror(L, arg,
                  lua_pushfstring(L,
                                  "timer name must be UTF-8 without control characters, of at "
                                  "most %d bytes",
                                  PS_TIMER_NAME_MAX));
  return name;
}

static ps_timer_t *check_timer(lua_State *L, int arg) {
  size_t len;
  const char *name = check_timer_name(L, arg, &len);
  int full;
  ps_timer_t *t = ps_timers_get(&the_worker->timers, name, len, &full);
  if (t == NULL && full)
    luaL_argerror(L, arg, lua_pushfstring(L, "more than %d timer names in one map", PS_TIMERS_MAX));
  if (t == NULL) luaL_error(L, "not enough memory for timer '%s'", name);
  return t;
}

/* system.record(name, seconds): one sample of the named timer */
static int system_record(lua_State *L) {
  size_t len;
  check_timer_name(L, 1, &len);
  lua_Number seconds = luaL_checknumber(L, 2);
  luaL_argcheck(L, seconds >= 0 && isfinite(seconds), 2, "seconds must be a finite number >= 0");
  ps_timer_t *t = check_timer(L, 1);
  ps_timing_add(&t->t, seconds + 0.0); /* + 0.0: -0 is 0 */
  return 0;
}

/* Records the time since the start (slot 1, ns) under the name (slot 2),
   then ends system.time with fn's results, or its error. */
static int finish_time(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  int64_t elapsed = mono_ns() - (int64_t)lua_tointeger(L, 1);
  ps_timer_t *t = check_timer(L, 2);
  ps_timing_add(&t->t, (double)(elapsed > 0 ? elapsed : 0) / 1e9);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L) - 2;
}

/* system.time(name, fn, ...) -> fn(...): records how long fn took under
   name, when it raises too (the error value goes on unchanged, its
   traceback taken where it leaves system.time, as after any pcall and
   error); fn may yield. */
static int system_time(lua_State *L) {
  size_t len;
  check_timer_name(L, 1, &len); /* every argument checked before a name is taken */
  luaL_checktype(L, 2, LUA_TFUNCTION);
  check_timer(L, 1);
  lua_pushinteger(L, (lua_Integer)mono_ns());
  lua_insert(L, 1);
  int status = lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 0, 0, finish_time);
  return finish_time(L, status, 0);
}

static int system_newindex(lua_State *L) {
  worker_t *W = lua_touserdata(L, lua_upvalueindex(1));
  W->system_grew = 1;
  lua_rawset(L, 1);
  return 0;
}

/* Fills the stack slots, once, when the worker starts. */
static void init_slots(worker_t *W) {
  lua_State *L = W->L;
  lua_settop(L, 0);
  lua_checkstack(L, ST_TOP + LUA_MINSTACK);
  lua_pushcfunction(L, msgh);
  /* A main chunk has exactly one upvalue, _ENV: the holder every shipped
     function's _ENV is joined to. */
  luaL_loadstring(L, "return");
  lua_pushnil(L); /* ST_FN */
  lua_pushnil(L); /* ST_USER */
  lua_pushnil(L); /* ST_ENV */
  lua_pushnil(L); /* ST_SYSTEM */
  lua_createtable(L, 0, 3);
  lua_pushlightuserdata(L, W);
  lua_pushcclosure(L, system_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  /* The timer functions are found through __index: nothing to set again
     for every pset. */
  static const luaL_Reg timer_fns[] = {{"clock", system_clock},
                                       {"record", system_record},
                                       {"time", system_time},
                                       {"run", system_run},
                                       {NULL, NULL}};
  luaL_newlib(L, timer_fns);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushstring(L, W->host);
  lua_pushnil(L); /* ST_STAGE */
  for (int k = 0; k < SYS_NKEYS; k++) lua_pushstring(L, sys_keys[k]);
}

/* A new stage: its name, and a system table made for it. */
static void set_stage(worker_t *W) {
  lua_State *L = W->L;
  lua_pushstring(L, W->stage);
  lua_replace(L, ST_STAGE);
  lua_pushnil(L);
  lua_replace(L, ST_SYSTEM);
}

static void push_system(worker_t *W, int64_t index, int64_t attempt, const char *pset,
                        size_t psetlen) {
  lua_State *L = W->L;
  if (W->system_grew || lua_type(L, ST_SYSTEM) != LUA_TTABLE) {
    lua_createtable(L, 0, SYS_NKEYS);
    lua_pushvalue(L, ST_SYSTEM_MT);
    lua_setmetatable(L, -2);
    psL_sandbox_watch(L, -1, &W->system_grew);
    lua_replace(L, ST_SYSTEM);
    W->system_grew = 0;
  }
  lua_pushvalue(L, ST_SYSTEM);
  lua_Integer ints[SYS_NKEYS + 1] = {0};
  ints[SYS_SEED] = (lua_Integer)ps_pset_seed(W->seed, ps_hash(pset, psetlen, 0));
  ints[SYS_INDEX] = (lua_Integer)index + 1;
  ints[SYS_ATTEMPT] = (lua_Integer)attempt;
  ints[SYS_WORKER] = (lua_Integer)W->id;
  ints[SYS_PID] = (lua_Integer)W->pid;
  /* Every value, not only those that change: the last pset may have
     assigned to a key. */
  for (int k = 1; k <= SYS_NKEYS; k++) {
    lua_pushvalue(L, ST_SYSTEM_KEYS + k - 1);
    if (k == SYS_HOST)
      lua_pushvalue(L, ST_HOST);
    else if (k == SYS_STAGE)
      lua_pushvalue(L, ST_STAGE);
    else if (k == SYS_SLEEP)
      lua_pushcfunction(L, system_sleep);
    else if (k == SYS_WORKDIR && W->pset_dir[0])
      lua_pushstring(L, W->pset_dir);
    else if (k == SYS_WORKDIR)
      lua_pushnil(L);
    else
      lua_pushinteger(L, ints[k]);
    lua_rawset(L, -3);
  }
}

/* mkdir -p: path and the directories above it. 0, or -1 with errno. */
static int make_dirs(char *path) {
  for (char *s = path + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    int rc = mkdir(path, 0777);
    *s = '/';
    if (rc != 0 && errno != EEXIST) return -1;
  }
  return mkdir(path, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* Enters the pset's own directory, made for it: 0, or -1 with why in err. */
static int enter_pset_dir(worker_t *W, int64_t index, char *err, size_t errsz) {
  if (W->home < 0) {
    ps_textf(err, errsz, "workdir: the worker cannot keep its own directory to come back to: %s",
             strerror(W->home_errno));
    return -1;
  }
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s/%lld", W->workdir, W->stage, (long long)index + 1);
  if (n < 0 || (size_t)n >= sizeof path) {
    snprintf(err, errsz, "workdir: the path of pset #%lld is too long", (long long)index + 1);
    return -1;
  }
  if (make_dirs(path) != 0 || chdir(path) != 0 || getcwd(W->pset_dir, sizeof W->pset_dir) == NULL) {
    ps_textf(err, errsz, "workdir: cannot make or enter '%s': %s", path, strerror(errno));
    W->pset_dir[0] = '\0';
    return -1;
  }
  return 0;
}

/* The pset's global environment: the last pset's if it left it empty and
   as it was made (the usual case, one table less per pset), else a new
   one. */
static void push_env(worker_t *W) {
  lua_State *L = W->L;
  if (lua_type(L, ST_ENV) != LUA_TTABLE || !psL_sandbox_env_unused(L, ST_ENV, W->sandbox)) {
    psL_sandbox_push_env(L, W->sandbox);
    lua_replace(L, ST_ENV);
  }
  lua_pushvalue(L, ST_ENV);
}

/* CPU time of this process and of its waited-for children, in us. */
static int64_t cpu_us(void) {
  struct timespec ts;
  struct rusage ru;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  int64_t t = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
  if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
    t += (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
  return t;
}

/*
 * The CPU time of a pset that ran for `wall` us and ended at `now`. CPU
 * clocks cost system calls, a large part of a pset of a few microseconds:
 * they are read at most once a millisecond. A pset that ends sooner after
 * the last reading is given its wall time (tiny psets compute, they do not
 * wait); the next reading corrects for what was given since, so a pset of
 * a millisecond or more gets its measured time, to within those guesses.
 */
static int64_t pset_cpu(worker_t *W, int64_t wall, int64_t now) {
  if (now - W->cpu_mark_wall < 1000) {
    W->cpu_guessed += wall;
    return wall;
  }
  int64_t cpu = cpu_us();
  int64_t spent = cpu - W->cpu_mark - W->cpu_guessed;
  W->cpu_mark = cpu;
  W->cpu_mark_wall = now;
  W->cpu_guessed = 0;
  return spent > 0 ? spent : 0;
}

/*
 * What pset `index` wrote, once it ended: after its record (whose status
 * is at `at`), or passed through to the worker's own stderr, each line
 * tagged "[#index] ". All of it (output full) is as much as keeps the
 * record within PS_VALUE_MAX, so that its frame stays within PS_FRAME_MAX;
 * more is cut as the tail is, with a note.
 */
static void put_output(worker_t *W, int64_t index, size_t at) {
  if (W->output == PS_OUTPUT_NONE) {
    char tag[32];
    snprintf(tag, sizeof tag, "[#%lld] ", (long long)index + 1);
    ps_capture_pass(&W->cap, tag);
    return;
  }
  size_t limit = PS_OUTPUT_TAIL_BYTES;
  if (W->output == PS_OUTPUT_FULL) {
    size_t used = W->recs.len - at;
    limit = used < PS_VALUE_MAX ? (PS_VALUE_MAX - used) / 2 : 0;
  }
  if (ps_capture_take(&W->cap, limit) == 0) return;
  ps_capture_t *c = &W->cap;
  ps_bytes_t out[2] = {{c->note[0], strlen(c->note[0])}, {ps_capture_bytes(c, 0), c->len[0]}};
  ps_bytes_t err[2] = {{c->note[1], strlen(c->note[1])}, {ps_capture_bytes(c, 1), c->len[1]}};
  ps_msg_result_output(&W->recs, at, out, err);
}

static void run_pset(worker_t *W, int64_t index, int64_t attempt, uint64_t timeout_ms,
                     uint64_t mem_limit, const char *pset, size_t psetlen) {
  lua_State *L = W->L;
  int base = lua_gettop(L);
  char err[256];
  /* With a timeout, the driver must know which pset runs: it takes the
     arrival of the previous results as this one's start. */
  if (timeout_ms > 0) flush_results(W);
  /* One clock read a pset, at its end: back to back in a batch, a pset
     starts when the last one ended (its time includes setting it up),
     and the wall clock time of its start follows from the batch's pair of
     readings. */
  int64_t t0 = W->last_done_is_now ? W->last_done : ps_mono_us();
  int64_t start = W->wall_base + (t0 - W->mono_base);
  if (W->flags & PS_CODE_REPORT_STARTS) {
    flush_results(W);
    ps_buf_t f;
    ps_buf_init(&f);
    ps_msg_started_t m = {(uint64_t)index, (uint64_t)start};
    ps_msg_put_started(&f, &m);
    send_frame(W, &f);
    ps_buf_free(&f);
  }
  push_env(W);
  lua_setupvalue(L, ST_HOLDER, 1);
  if (W->workdir[0] && enter_pset_dir(W, index, err, sizeof err) != 0) {
    ps_msg_result_head(&W->recs, (uint64_t)index, (uint64_t)start, 0, 0, 0);
    put_output(W, index, put_failure(W, PS_STATUS_ERROR, err, strlen(err), "", 0));
    W->nrecs++;
    return;
  }

  /* The pset table stays below the call, for put_result. */
  if (psL_decode(L, pset, psetlen, err, sizeof err) != 0) fatal(W, err);
  int psetidx = lua_gettop(L);
  lua_pushvalue(L, ST_FN);
  lua_pushvalue(L, psetidx);
  push_system(W, index, attempt, pset, psetlen);
  lua_pushvalue(L, ST_USER);

  W->tripped = W->tb_saved = 0;
  W->mem_base = W->peak = W->mem;
  W->mem_limit = (size_t)mem_limit;
  W->deadline = 0;
  if (timeout_ms > 0) {
    W->deadline = t0 + (int64_t)timeout_ms * 1000;
    snprintf(W->trip_msg, sizeof W->trip_msg, "timeout after %g s", (double)timeout_ms / 1000.0);
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
  }
  if (W->cpu_mark < 0) {
    W->cpu_mark = cpu_us();
    W->cpu_mark_wall = t0;
    W->cpu_guessed = 0;
  }
  int rc = lua_pcall(L, 3, 1, ST_MSGH);
  int64_t t1 = ps_mono_us();
  int64_t cpu = pset_cpu(W, t1 - t0, t1);
  int64_t end = start + (t1 - t0);
  W->last_done = t1;
  W->last_done_is_now = 1;
  lua_sethook(L, NULL, 0, 0);
  W->mem_limit = 0;
  W->deadline = 0;
  ps_msg_result_head(&W->recs, (uint64_t)index, (uint64_t)start, (uint64_t)(end - start),
                     (uint64_t)(cpu > 0 ? cpu : 0), (uint64_t)(W->peak - W->mem_base));
  size_t at;
  if (W->tripped) {
    /* Whatever the worker did with the error, the pset is over its limit. */
    size_t tl = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "psurvey.trip_traceback");
    const char *tb = lua_tolstring(L, -1, &tl);
    if (tb == NULL) {
      lua_getfield(L, LUA_REGISTRYINDEX, "psurvey.traceback");
      tb = lua_tolstring(L, -1, &tl);
    }
    at = put_failure(W, W->tripped, W->trip_msg, strlen(W->trip_msg), tb ? tb : "", tb ? tl : 0);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "psurvey.trip_traceback");
    W->tripped = 0;
  } else if (rc == LUA_OK) {
    at = put_result(W, psetidx);
  } else {
    size_t ml, tl = 0;
    const char *m = lua_tolstring(L, -1, &ml);
    if (m == NULL) m = "(error object is not a string)", ml = strlen(m);
    lua_getfield(L, LUA_REGISTRYINDEX, "psurvey.traceback");
    const char *tb = lua_tolstring(L, -1, &tl);
    if (rc == LUA_ERRMEM) m = "not enough memory", ml = strlen(m);
    at = put_failure(W, PS_STATUS_ERROR, m, ml, tb ? tb : "", tb ? tl : 0);
  }
  put_output(W, index, at);
  W->nrecs++;
  lua_settop(L, base);
  if (W->pset_dir[0]) {
    /* Home again, whatever directory the pset changed to. */
    if (fchdir(W->home) != 0) {
      char msg[300];
      ps_textf(msg, sizeof msg, "cannot go back to the worker's directory: %s", strerror(errno));
      fatal(W, msg);
    }
    W->pset_dir[0] = '\0';
  }
}

static void on_tasks(worker_t *W, const char *p, size_t n) {
  ps_msg_batch_t it;
  ps_msg_task_t t;
  int rc;
  if (lua_type(W->L, ST_FN) != LUA_TFUNCTION) {
    /* The code failed to load and the driver, told so, stops the stage:
       these tasks were sent before it knew. */
    if (W->code_failed) return;
    fatal(W, "tasks before code");
  }
  if (ps_msg_batch_open(&it, p, n) != 0) fatal(W, "malformed tasks frame");
  W->wall_base = ps_now_us();
  W->mono_base = ps_mono_us();
  W->last_done = W->mono_base;
  W->last_done_is_now = 1;
  while ((rc = ps_msg_next_task(&it, &t)) == 1) {
    ps_threads_set(&W->threads, t.threads > 1024 ? 1024 : (int)t.threads);
    run_pset(W, (int64_t)t.index, (int64_t)t.attempt, t.timeout_ms, t.memory, t.pset.p, t.pset.n);
    if (W->last_done - W->last_flush >= FLUSH_AFTER_US || W->recs.len >= PS_BATCH_BYTES)
      flush_results(W);
  }
  if (rc != 0) fatal(W, "malformed tasks frame");
  ps_threads_set(&W->threads, 0);
  flush_results(W);
  W->last_done_is_now = 0;
  W->cpu_mark = -1; /* waiting for the next batch is nobody's CPU time */
}

typedef struct load_args_s {
  worker_t *W;
  ps_reader_t *code;
  const char *user;
  size_t userlen;
  int malformed; /* the bytes are broken: the worker ends */
  char err[600];
} load_args_t;

static int load_code(lua_State *L) {
  load_args_t *a = lua_touserdata(L, 1);
  worker_t *W = a->W;
  lua_pushvalue(L, 2); /* the holder */
  int rc = psL_unship(L, a->code, -1, W->sandbox == PSL_SANDBOX_STRICT, a->err, sizeof a->err);
  a->malformed = rc == PSL_UNSHIP_MALFORMED;
  if (rc != 0) return luaL_error(L, "%s", a->err);
  if (psL_decode(L, a->user, a->userlen, a->err, sizeof a->err) != 0) {
    a->malformed = 1;
    return luaL_error(L, "the user value: %s", a->err);
  }
  return 2;
}

/* A Lua state with the standard libraries, pcall and its kin checked for
   trips, the sandbox profiles and the stack slots. */
static void open_state(worker_t *W) {
  lua_State *L = lua_newstate(count_alloc, W);
  if (L == NULL) fatal(W, "out of memory opening a Lua state");
  W->L = L;
  W->ran_default = 0;
  /* Each pset leaves young garbage (its environment, pset, system and
     result tables): the generational collector frees it cheaply. */
  lua_gc(L, LUA_GCGEN, 0, 0);
  luaL_openlibs(L);
  install_checked(L);
  psL_sandbox_open(L);
  psL_open_range(L); /* a range shipped as an upvalue works here */
  lua_pop(L, 1);
  init_slots(W);
}

static void on_code(worker_t *W, const char *p, size_t n) {
  ps_reader_t code;
  ps_msg_code_t m;
  if (ps_msg_get_code(p, n, &m) != 0 || m.sandbox > PSL_SANDBOX_STRICT || m.output > PS_OUTPUT_NONE)
    fatal(W, "malformed code frame");
  W->output = (int)m.output;
  W->id = (int64_t)m.worker;
  W->flags = (int)m.flags;
  W->sandbox = (int)m.sandbox;
  W->seed = m.seed;
  /* A default stage could reach anything in its state through `debug`
     (the registry, the metatables of strings and numbers, the strict
     profile's tables): a strict stage after it gets a state of its own. */
  if (W->sandbox == PSL_SANDBOX_STRICT && W->ran_default) {
    lua_close(W->L);
    open_state(W);
  }
  if (W->sandbox == PSL_SANDBOX_DEFAULT) W->ran_default = 1;
  lua_State *L = W->L;
  psL_sandbox_select(L, W->sandbox);
  snprintf(W->stage, sizeof W->stage, "%.*s", (int)m.stage.n, m.stage.p);
  if (m.workdir.n >= sizeof W->workdir || memchr(m.workdir.p, '\0', m.workdir.n))
    fatal(W, "malformed code frame: a bad workdir");
  memcpy(W->workdir, m.workdir.p, m.workdir.n);
  W->workdir[m.workdir.n] = '\0';
  ps_timers_free(&W->timers); /* a stage's names are its own */
  set_stage(W);
  ps_reader_init(&code, m.function.p, m.function.n);
  load_args_t a;
  a.W = W;
  a.code = &code;
  a.user = m.user.p;
  a.userlen = m.user.n;
  a.malformed = 0;
  a.err[0] = '\0';
  lua_pushnil(L);
  lua_replace(L, ST_FN);
  lua_pushnil(L);
  lua_replace(L, ST_USER);
  lua_pushcfunction(L, load_code);
  lua_pushlightuserdata(L, &a);
  lua_pushvalue(L, ST_HOLDER);
  int rc = lua_pcall(L, 2, 2, 0);
  if (rc != LUA_OK && a.malformed) fatal(W, a.err);
  /* CODE_OK goes out once the function, its upvalues and the modules they
     require are loaded: the driver starts the first pset's clock then. */
  ps_buf_t f;
  ps_buf_init(&f);
  W->code_failed = rc != LUA_OK;
  ps_msg_code_ok_t ok = {1, {"", 0}};
  if (rc == LUA_OK) {
    lua_replace(L, ST_USER);
    lua_replace(L, ST_FN);
  } else {
    size_t ml;
    const char *msg = lua_tolstring(L, -1, &ml);
    ok.ok = 0;
    ok.message.p = msg ? msg : "?";
    ok.message.n = msg ? ml : 1;
  }
  ps_msg_put_code_ok(&f, &ok);
  if (rc != LUA_OK) lua_pop(L, 1);
  /* What loading printed (a module's top level) is no pset's: it goes
     through, tagged with the worker. */
  char tag[48];
  snprintf(tag, sizeof tag, "[worker %lld] ", (long long)W->id);
  ps_capture_pass(&W->cap, tag);
  send_frame(W, &f);
  ps_buf_free(&f);
}

static void send_hello(worker_t *W) {
  ps_buf_t f;
  ps_buf_init(&f);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  ps_msg_hello_t m = {PS_PROTOCOL,
                      (uint64_t)getpid(),
                      (uint64_t)(cores > 0 ? cores : 1),
                      {W->host, strlen(W->host)},
                      {PSURVEY_VERSION, strlen(PSURVEY_VERSION)}};
  ps_msg_put_hello(&f, &m);
  send_frame(W, &f);
  ps_buf_free(&f);
}

/* The driver (or the agent) is gone: so is everything this worker runs.
   The worker leads its process group; kill(0) reaches it all, itself too. */
static void on_parent_death(int sig) {
  (void)sig;
  kill(0, SIGKILL);
  _exit(1);
}

int psL_worker_main(int argc, char **argv) {
  static worker_t W;
  memset(&W, 0, sizeof W);
  W.cap.err = -1;
  for (int i = 2; i < argc; i++)
    if (strncmp(argv[i], "--gpus=", 7) == 0) {
      /* The GPUs it is bound to for life, set before any library can read
         them: a worker without GPUs sees none. */
      setenv("CUDA_VISIBLE_DEVICES", argv[i] + 7, 1);
    } else if (strcmp(argv[i], "--die-with-parent") == 0) {
      pid_t parent = getppid();
      /* Not SIGKILL: the handler takes the processes this worker started
         (a simulator in its process group) down with it. */
      signal(SIGTERM, on_parent_death);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) return 0;
    }
  signal(SIGPIPE, SIG_IGN);
  /* Sleeps (system.sleep, and those of the commands it starts) end on
     time, not up to the default 50 us late: psets of milliseconds are
     measured and scheduled by them. */
  prctl(PR_SET_TIMERSLACK, 1UL);
  /* The protocol gets private descriptors, and children never inherit the
     protocol pipes. stdout and stderr are caught, for each pset; without
     memory files, print() and io.write go to stderr as they are. */
  W.in = fcntl(0, F_DUPFD_CLOEXEC, 3);
  W.out = fcntl(1, F_DUPFD_CLOEXEC, 3);
  if (W.in < 0 || W.out < 0) {
    perror("psurvey worker");
    return 2;
  }
  if (ps_capture_start(&W.cap) != 0) dup2(W.cap.err >= 0 ? W.cap.err : 2, 1);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    dup2(devnull, 0);
    close(devnull);
  }
  if (gethostname(W.host, sizeof W.host - 1) != 0) strcpy(W.host, "localhost");
  ps_framer_init(&W.framer, PS_FRAME_MAX);
  ps_buf_init(&W.recs);
  ps_buf_init(&W.result);
  W.last_flush = ps_mono_us();
  W.cpu_mark = -1;
  W.pid = (int)getpid();
  /* O_PATH: a directory it may enter but not list (mode 711) will do. */
  W.home = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (W.home < 0) W.home_errno = errno;
  if (ps_threads_init(&W.threads) != 0) {
    ps_capture_say(&W.cap, "psurvey worker: out of memory\n");
    return 2;
  }

  the_worker = &W;
  open_state(&W);

  send_hello(&W);
  int kind;
  const char *p;
  size_t n;
  while (read_frame(&W, &kind, &p, &n)) {
    switch (kind) {
      case PS_MSG_CODE: on_code(&W, p, n); break;
      case PS_MSG_TASKS: on_tasks(&W, p, n); break;
      case PS_MSG_BYE: goto done;
      default: fatal(&W, "unexpected frame from the driver");
    }
  }
done:
  flush_results(&W);
  lua_close(W.L);
  ps_framer_free(&W.framer);
  ps_buf_free(&W.recs);
  ps_buf_free(&W.result);
  ps_threads_free(&W.threads);
  ps_timers_free(&W.timers);
  ps_capture_free(&W.cap);
  return 0;
}
