/*
 * stage.h: a stage as it is written, whatever keeps it: the rows and the
 * failed attempts of one map() call as the scheduler hands them over, and
 * the small table of operations that every kind of stage implements,
 * sqlstage.c in SQLite and memstage.c in memory (db = false). store.c
 * chooses one when the stage begins (ps_stage_begin in store.h); the
 * scheduler calls them through store.h and never knows which it has.
 * Nothing here knows SQLite: both kinds of stage sit above this file, and
 * the store above both.
 */
#ifndef PS_STAGE_H
#define PS_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "ps.h"
#include "source.h"

/* The longest table name a stage may have, in bytes: room is left for
   the suffixes of the tables psurvey makes beside it (_attempts,
   _output, the date of an earlier run). */
#define PS_NAME_MAX 200

/* A finished pset, as the scheduler hands it to the store. */
typedef struct ps_row_s {
  int64_t index;      /* 0-based; stored 1-based in _index */
  const char *status; /* "ok", "error", "memory", "timeout", "signal", "exit" */
  const char *exception, *traceback;
  size_t exception_len, traceback_len;
  int64_t attempt, worker;
  const char *host;
  int64_t start_us, duration_us;
  const char *pset, *result; /* value encodings; result may be NULL */
  size_t pset_len, result_len;
  int64_t cpu_us, peak_bytes; /* CPU time (with child processes), peak Lua heap */
  const char *name;           /* the pset's label, or NULL */
  uint64_t hash;              /* of the pset's encoding (hash.h); 0: the store computes it */
} ps_row_t;

/* One failed attempt at a pset, for the stage's attempts. */
typedef struct ps_attempt_s {
  int64_t index, attempt, worker;
  const char *kind; /* error, memory, timeout, signal, exit, host_lost, preempted, walltime */
  const char *message, *traceback;
  size_t message_len, traceback_len;
  const char *host;
  int64_t start_us, duration_us, cpu_us, peak_bytes;
  double timeout, memory; /* the limits it ran with (0: none) */
  uint64_t hash;
} ps_attempt_t;

/* What one attempt at a pset wrote to stdout and stderr (as the worker
   kept it), for the stage's output table: psets that wrote nothing have
   none. */
typedef struct ps_output_s {
  int64_t index, attempt;
  const char *out, *err;
  size_t out_len, err_len;
} ps_output_t;

/* The rows of a stage read back: those that are ok, those that failed
   (the missing view), or all of them. */
enum { PS_VIEW_OK, PS_VIEW_MISSING, PS_VIEW_ALL };
/* What the key of a column read back is in its row: psurvey's own
   column, a pset key or a result key. */
enum { PS_ROLE_META = -1, PS_ROLE_PSET = 0, PS_ROLE_RESULT = 1 };

/* psurvey's columns of a stage's rows, in the order a row binds them; the
   names (ps_meta_columns, stage.c) all start with '_'. A stage in memory
   reads back those up to _name: it has no _hash (nothing resumes it), no
   _run (one run writes it) and no _types (its values keep their
   encoding). _run, the row's run in _psurvey_runs, came later: a table of
   an older psurvey has it once a run resumes the table. */
enum {
  PS_META_INDEX,
  PS_META_STATUS,
  PS_META_EXCEPTION,
  PS_META_TRACEBACK,
  PS_META_ATTEMPT,
  PS_META_WORKER,
  PS_META_HOST,
  PS_META_START,
  PS_META_END,
  PS_META_DURATION,
  PS_META_CPU,
  PS_META_MEMORY,
  PS_META_NAME,
  PS_META_HASH,
  PS_META_RUN,
  PS_META_TYPES,
  PS_NMETA
};
extern const char *const ps_meta_columns[PS_NMETA];

typedef struct ps_stage_s ps_stage_t;

struct ps_beat_s; /* the driver's heartbeat (store.h) */

/* What a kind of stage does; store.h's ps_stage_* say the contracts. */
typedef struct ps_stage_ops_s {
  int (*add)(ps_stage_t *st, const ps_row_t *row, ps_err_t *err);
  int (*attempt)(ps_stage_t *st, const ps_attempt_t *a, ps_err_t *err);
  int (*output)(ps_stage_t *st, const ps_output_t *o, ps_err_t *err);
  int (*resume)(ps_stage_t *st, ps_source_t *src, int64_t total, int keep_failed, uint8_t *done,
                int64_t *ok, int64_t *failed, ps_err_t *err);
  /* beat: a heartbeat to write with the rows (store.h), or NULL. */
  int (*commit)(ps_stage_t *st, const struct ps_beat_s *beat, ps_err_t *err);
  int64_t (*pending)(const ps_stage_t *st, int64_t *ok, int64_t *failed);
  /* The stage's rows as written so far, ok and failed. */
  void (*count)(const ps_stage_t *st, int64_t *ok, int64_t *failed);
  /* The last write, before the store records how the stage ended: what
     waits, and for a stage that is done, its (maybe empty) table. PS_EBUSY:
     nothing changed, call again. Another failure drops what waits (the
     store still records the end, with the rows written). */
  int (*end)(ps_stage_t *st, int done, ps_err_t *err);
  void (*free)(ps_stage_t *st);
} ps_stage_ops_t;

/* Every kind of stage starts with this (its first member). */
struct ps_stage_s {
  const ps_stage_ops_t *ops;
  /* The store that began the stage and the stage's name as the store
     records it, for the store's records of the stage (store.c); the
     stage owns the name's bytes. */
  struct ps_store_s *store;
  const char *name;
};

#endif
