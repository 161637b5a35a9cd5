/*
 * run.h: the engine: a libuv loop, the worker pool, the hidden log, and
 * the running of one stage (one map() call) at a time. How psets are
 * handed out (batches, placement, psets that run alone, deaths) is the
 * scheduler's (scheduler.h); how an attempt ended is an outcome
 * (outcome.h), stored as its row or recorded and retried.
 *
 * Per-pset limits (resources.h): a pset past its timeout that the
 * worker's hook cannot stop (stuck in C or in a child process) has its
 * worker's process group killed. A failed attempt is recorded in the
 * attempts table and, when the pset has retries left or the retry
 * callback says so, the pset is queued again with the next attempt
 * number. A worker lost without fault of the pset (a suspect that turns
 * out innocent, a lost host) costs no attempt.
 */
#ifndef PS_RUN_H
#define PS_RUN_H

#include <uv.h>

#include "carbon.h"
#include "log.h"
#include "pool.h"
#include "progress.h"
#include "source.h"
#include "stats.h"
#include "store.h"

typedef struct ps_engine_s {
  uv_loop_t loop;
  ps_pool_t pool;
  ps_log_t log;
  struct ps_run_s *run; /* the stage running now, or NULL */
  ps_carbon_t *carbon;  /* the carbon the last stage sent its progress to, or NULL */
} ps_engine_t;

/* A failed attempt, as the retry callback sees it. */
typedef struct ps_failure_s {
  int64_t index, attempt;
  const char *kind; /* an outcome's name (outcome.h): error, memory, timeout, signal, exit */
  const char *message;
  size_t message_len;
  const char *pset; /* its encoding */
  size_t pset_len;
  const ps_limits_t *limits; /* what it ran with */
} ps_failure_t;

/* Decides whether a failed pset runs again: 1 and *next (the limits to
   change; fields left unset keep theirs) to retry, 0 to give up, -1 and
   msg when the callback itself failed (the stage stops). */
typedef int (*ps_retry_cb)(void *ud, const ps_failure_t *f, ps_limits_t *next, char *msg,
                           size_t msgsz);

/* A pset's final row, just stored, for the driver's callback (map()'s
   on_result), with the stage's counts so far. Returns 0, or -1 with msg
   (the callback's error and its traceback): the error is counted, logged
   and shown, and the stage goes on. */
typedef int (*ps_row_cb)(void *ud, const ps_row_t *row, const ps_counts_t *c, char *msg,
                         size_t msgsz);

/* When a stage stops early for its failures (GNU parallel's --halt): not,
   soon (no new psets; those running finish) or now (running psets are
   killed and not stored). */
enum { PS_HALT_NEVER, PS_HALT_SOON, PS_HALT_NOW };

typedef struct ps_run_opts_s {
  const char *name;
  int64_t limit;               /* 0: all */
  int ncores;                  /* workers */
  int64_t group_size;          /* 0: automatic */
  int64_t max_tasks_per_child; /* 0: no limit */
  int verbose, vstats;
  const char *code, *user; /* shipped function and user value encodings */
  size_t code_len, user_len;
  const char *options_text; /* for the log and the database */
  const char *workdir;      /* each pset runs in <workdir>/<name>/<index>; NULL: none */
  int output;               /* PS_OUTPUT_* (frame.h): what becomes of what psets write */
  /* Progress to carbon (carbon.h) every PS_CARBON_EVERY_S and at the end,
     under carbon_path (prefix.script.stage); carbon_host NULL: none. */
  const char *carbon_host, *carbon_path;
  int carbon_port, carbon_protocol;
  ps_limits_t limits; /* the map's per-pset options, every field set */
  int sandbox;        /* 0 default, 1 strict */
  uint64_t seed;
  ps_retry_cb retry; /* NULL: the numeric retries decide */
  void *retry_ud;
  int halt;              /* PS_HALT_* */
  int64_t halt_fail;     /* halt after this many failed psets (0: by halt_pct) */
  double halt_pct;       /* or when this percentage of finished psets failed (from 10 on) */
  const char *halt_text; /* as the user wrote it, for messages */
  ps_row_cb on_row;      /* NULL: none */
  void *on_row_ud;
  int resume;             /* 0, or 1 with the stage's table kept */
  int resume_keep_failed; /* failed rows count as done */
  ps_stage_info_t stage;  /* what the store records about the stage */
} ps_run_opts_t;

typedef struct ps_run_result_s {
  ps_counts_t counts;
  ps_hist_t hist;
  ps_timers_t timers; /* the workers' named timers: the caller frees them (ps_timers_free) */
  double seconds;
  int interrupted; /* by SIGINT, SIGTERM or SIGHUP: the signal number */
  int halted;      /* PS_HALT_SOON or PS_HALT_NOW when the halt option stopped it */
} ps_run_result_t;

/* How often a running stage sends its progress to carbon. */
#define PS_CARBON_EVERY_S 10

int ps_engine_init(ps_engine_t *e, const char *exe, ps_err_t *err);
void ps_engine_close(ps_engine_t *e);

/* Runs one stage to the end. Results go to store (which may be NULL).
   Returns 0, PS_EINTR (out->interrupted says which signal), or an error
   that stopped the stage (err says why). Everything finished before an
   error or an interrupt is in the store. */
int ps_engine_run(ps_engine_t *e, ps_source_t *src, ps_store_t *store, const ps_run_opts_t *o,
                  ps_run_result_t *out, ps_err_t *err);

#endif
