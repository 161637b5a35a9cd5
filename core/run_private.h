/*
 * run_private.h: what the files of a running stage share: run.c (its
 * life, its workers and their events), finish.c (what becomes of an
 * attempt: a row, a record, a retry) and refusals.c (why a pset can run
 * nowhere). Not for any other file.
 */
#ifndef PS_RUN_PRIVATE_H
#define PS_RUN_PRIVATE_H

#include <signal.h>

#include "outcome.h"
#include "run.h"
#include "scheduler.h"
#include "tally.h"

/* The signals that stop a stage: SIGINT, SIGTERM, SIGHUP (run.c). */
#define PS_RUN_NSTOP 3

typedef struct ps_run_s ps_run_t;

/* A pset that failed and runs again: its limits from now on, and the
   causes of its earlier attempts for the final row's _exception. */
typedef struct override_s {
  ps_limits_t limits;
  ps_buf_t causes;
} override_t;

/* What a stage keeps of one worker (ps_worker_t.data): the scheduler's
   slot, and what carrying out its work needs. */
typedef struct worker_state_s {
  ps_slot_t slot;
  ps_buf_t enc;  /* the encodings of the psets in flight, so finish() need not make them again */
  int timed_out; /* killed by the driver for the timeout of its head pset */
  char kill_msg[128];
  /* The worker answered the stage's CODE: until then it is starting (a
     slow module to load), and the clock of its first pset does not run. */
  int code_loaded;
  int64_t code_sent; /* mono us */
  int startup_stuck; /* killed for never loading it */
} worker_state_t;

struct ps_run_s {
  ps_engine_t *e;
  ps_source_t *src;
  ps_stage_t *stage;
  const ps_run_opts_t *o;
  int64_t total;
  ps_sched_t sched;
  ps_counts_t c;
  ps_hist_t hist;
  int done, interrupted, fatal;
  int halted; /* PS_HALT_* once the halt option tripped */
  ps_err_t err;
  int startup_failures;
  ps_progress_t progress;
  ps_tally_t failures; /* what failed, grouped, for the end of the stage */
  uv_timer_t timer, watch;
  uv_check_t check;
  uv_signal_t sig[PS_RUN_NSTOP];
  struct sigaction saved[PS_RUN_NSTOP]; /* their handling before the stage */
  int open_handles;
  ps_buf_t scratch;
  int64_t start_us;
  int64_t carbon_last; /* when progress last went to carbon (mono us) */
  uint8_t *skip;       /* resuming: skip[i] when pset i needs no new run */
  override_t *over;
  size_t nover, capover;
  int64_t
      db_waiting;   /* since when (mono us) another program holds the database's write lock, or 0 */
  int stuck_starts; /* workers killed in a row for not loading the code */
  ps_store_t *store;   /* where the stage's rows go, or NULL */
  int64_t second_last; /* when the last second's work was done (mono us) */
  int beat_due;        /* the next commit carries a heartbeat */
  double started;      /* when the stage began (Unix seconds), for the heartbeat */
  ps_buf_t beat_hosts; /* the heartbeat's busy workers per host, JSON */
  char hostname[256];  /* this machine's name, for the heartbeat */
  ps_timers_t timers;  /* the samples of the workers' timers (system.record) */
  int timers_dropped;  /* RESULTS timers left out: past PS_TIMERS_MAX names */
};

static inline worker_state_t *ps__state_of(ps_worker_t *w) { return w->data; }

/* run.c. Stops the stage (the first reason wins) and says why in the log. */
void ps__run_fail(ps_run_t *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The limits task t runs with: the map's, the pset's own, and what a retry
   changed. Every field is set. */
void ps__run_limits(const ps_run_t *r, const ps_task_t *t, ps_limits_t *l);
/* Marks the stage done once every pset is finished. */
void ps__run_check_done(ps_run_t *r);

/* finish.c. Stores the outcome of pset t as its row and counts it (w is
   NULL for a pset that never reached a worker). */
void ps__run_finish(ps_run_t *r, ps_worker_t *w, const ps_task_t *t, const ps_outcome_t *out);
/* Finishes t as failed in the driver, with msg (a pset too large to send,
   too wide to run). */
void ps__run_fail_here(ps_run_t *r, const ps_task_t *t, const char *msg);
/* Records a failed attempt in the stage's attempts table; r->scratch
   holds the pset's encoding afterwards. */
int ps__run_record_attempt(ps_run_t *r, ps_worker_t *w, const ps_task_t *t,
                           const ps_outcome_t *out);
/* An attempt at t failed: it is recorded, then t runs again (retries left,
   or the retry callback says so) or is finished as failed. */
void ps__run_attempt_failed(ps_run_t *r, ps_worker_t *w, ps_task_t t, const ps_outcome_t *out);
/* "#137 (r=3.6, x0=0.5)": pset `index` named by its values, for the lines
   people read (brief.h). The encoding comes from the source. */
void ps__run_pset_name(ps_run_t *r, int64_t index, char *out, size_t n);
/* Frees the limits and causes of the psets that were retried. */
void ps__run_free_overrides(ps_run_t *r);

/* refusals.c. A pset that can run nowhere fails before it runs, saying
   what it asked for and the most a node has: more slots (ncores) than the
   largest node (most), more GPUs, more memory. */
void ps__run_too_wide(ps_run_t *r, const ps_task_t *t, const ps_node_t *most);
void ps__run_too_many_gpus(ps_run_t *r, const ps_task_t *t);
void ps__run_too_much_memory(ps_run_t *r, const ps_task_t *t);

#endif
