/*
 * run.h: the engine: a libuv loop, the worker pool, the hidden log, and
 * the scheduler that runs one stage (one map() call) at a time.
 *
 * Scheduling is pull-based: each worker holds at most two batches (the one
 * it runs and the next, so it never waits for the driver). Batches adapt to
 * the measured run time of psets (about 20 ms of work each, 1 to 1024
 * psets, smaller near the end so the tail spreads over all workers);
 * group_size fixes them. When a worker dies with one pset in flight, that
 * pset failed; with several, nobody knows which one killed it, so each is
 * run again alone, and the one that kills its worker alone is recorded.
 */
#ifndef PS_RUN_H
#define PS_RUN_H

#include <uv.h>

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
} ps_engine_t;

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
} ps_run_opts_t;

typedef struct ps_run_result_s {
  ps_counts_t counts;
  ps_hist_t hist;
  double seconds;
  int interrupted; /* by SIGINT or SIGTERM: the signal number */
} ps_run_result_t;

int ps_engine_init(ps_engine_t *e, const char *exe, ps_err_t *err);
void ps_engine_close(ps_engine_t *e);

/* Runs one stage to the end. Results go to store (which may be NULL).
   Returns 0, PS_EINTR (out->interrupted says which signal), or an error
   that stopped the stage (err says why). Everything finished before an
   error or an interrupt is in the store. */
int ps_engine_run(ps_engine_t *e, ps_source_t *src, ps_store_t *store, const ps_run_opts_t *o,
                  ps_run_result_t *out, ps_err_t *err);

#endif
