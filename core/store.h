/*
 * store.h: results in SQLite. One table per stage (map() call) with one
 * column per pset key and result key, plus psurvey's own columns, which
 * all start with '_'. Columns have no declared type, so SQLite keeps each
 * value's own: integers stay INTEGER and floats REAL, strings are TEXT
 * (BLOB when not UTF-8), a missing key is NULL. Booleans (0/1), tables
 * (JSON text) and NaN (NULL) have no storage class of their own: the
 * _types column notes them row by row (celltypes.h), so every value reads
 * back as it was written, whatever else its column holds.
 *
 * Writes are batched: rows and attempts added to a stage wait in memory
 * and a commit writes them all in one transaction, or none of them. A
 * database locked by another program (PS_EBUSY) loses nothing: the caller
 * commits again later.
 */
#ifndef PS_STORE_H
#define PS_STORE_H

#include "buf.h"
#include "ps.h"
#include "source.h"
#include "stage.h"
#include "value.h"

typedef struct ps_store_s ps_store_t;
typedef struct ps_cursor_s ps_cursor_t;

/* Opens (creating) the database at path; NULL keeps it in memory. A file
   that is not an SQLite database, or cannot be written, is an error here,
   naming the file. */
int ps_store_open(ps_store_t **out, const char *path, ps_err_t *err);
/* Claims the database for this process until it closes it: a second
   psurvey writing the same file gets an error naming the first (its pid),
   never a mixed table. Readers (the sqlite3 shell, `psurvey results`) are
   not affected. */
int ps_store_lock(ps_store_t *s, ps_err_t *err);
void ps_store_close(ps_store_t *s);
const char *ps_store_path(const ps_store_t *s);

/* What a stage is, as recorded in _psurvey_tables (replay and resume read
   it back). */
typedef struct ps_stage_info_s {
  const char *name, *options;
  int64_t total;
  int64_t run;             /* its row in _psurvey_runs, or 0 */
  const char *code, *user; /* shipped worker and user value encodings */
  size_t code_len, user_len;
  const char *code_hash, *user_hash; /* hex */
  const char *sandbox;
  uint64_t seed;
  double timeout, memory;   /* the map's limits (0: none) */
  int resume;               /* keep the table and its rows */
  const ps_source_t *psets; /* its psets: their keys get columns at once; may be NULL */
} ps_stage_info_t;

/* Starts writing a stage. Without resume, a table of that name from an
   earlier run is kept, renamed with the time it was made
   (name_YYYYMMDD_HHMMSS), with its attempts table. With resume, rows are
   added to the existing table. Names are compared as SQLite compares
   them, without regard to ASCII case. A store in memory keeps the rows in
   memory (memstage.h), another in its table; the calls below are the same
   for both (stage.h's operations). PS_EBUSY: nothing was done, try
   again. */
int ps_stage_begin(ps_store_t *s, const ps_stage_info_t *info, ps_stage_t **out, ps_err_t *err);
/* Resuming: matches the stored rows to the psets of src by hash (so
   reordered or extended psets still match), renumbers their _index to the
   new positions, moves rows that match no pset of src to a table of their
   own, and sets done[i] for every pset i < total that needs no new run:
   stored ok, or failed and keep_failed. *ok and *failed count those. Rows
   of psets past `total` (a limit) stay, for a later run. All of it or
   nothing: PS_EBUSY or an error leave the table as it was. */
int ps_stage_resume(ps_stage_t *st, ps_source_t *src, int64_t total, int keep_failed, uint8_t *done,
                    int64_t *ok, int64_t *failed, ps_err_t *err);
/* Adds a failed attempt, written at the next commit. */
int ps_stage_attempt(ps_stage_t *st, const ps_attempt_t *a, ps_err_t *err);
/* Adds what an attempt at a pset wrote, written at the next commit (with
   the rows, in one transaction) to the stage's output table, made with
   its first row: "<stage>_output"(_index, _attempt, stdout, stderr). */
int ps_stage_output(ps_stage_t *st, const ps_output_t *o, ps_err_t *err);
/* Adds a row, written at the next commit. PS_EVALUE: this row cannot be
   stored as it is (err says why, and nothing of it was kept: the caller
   stores it as a failure). */
int ps_stage_add(ps_stage_t *st, const ps_row_t *row, ps_err_t *err);
/* Writes the rows and attempts added so far, and the stage's counts, in
   one transaction. PS_EBUSY: another program holds the database's write
   lock; everything is kept for the next commit. */
int ps_stage_commit(ps_stage_t *st, ps_err_t *err);

/* The driver's heartbeat (_psurvey_heartbeat: one row per run, replaced
   at each beat), for `psurvey status`. Times are Unix seconds; a double
   below 0 is unknown (NULL). Strings are borrowed for the call. */
typedef struct ps_beat_s {
  int64_t run; /* its row in _psurvey_runs */
  const char *stage;
  double beat, started;
  int64_t total, ok, failed, active, workers;
  double rate;                /* psets/s over the last seconds */
  const char *hosts;          /* JSON: {"host": {"busy": b, "workers": w}, ...} */
  double p25, p50, p75, p90;  /* run time, seconds */
  double eta, eta_lo, eta_hi; /* seconds left, and the band around it */
  int64_t pid;
  const char *host;
} ps_beat_t;

/* As ps_stage_commit, with a heartbeat (may be NULL): in the same
   transaction when there is anything to write (a beat costs no commit
   of its own), else alone. A beat never waits: when another program
   holds the write lock it is skipped (the rows wait as ever), and a beat
   that cannot be written is not an error of the stage's. */
int ps_stage_commit_beat(ps_stage_t *st, const ps_beat_t *beat, ps_err_t *err);
/* Writes a heartbeat alone, at once, without waiting for a lock another
   program holds: 0, PS_EBUSY (skipped), PS_EDB. A store in memory keeps
   none: 0. */
int ps_store_beat(ps_store_t *s, const ps_beat_t *b, ps_err_t *err);
/* Rows waiting for a commit, and how many of them are ok and failed. */
int64_t ps_stage_pending(const ps_stage_t *st, int64_t *ok, int64_t *failed);
/* Commits and records how the stage ended ("done", "failed",
   "interrupted"), with its rows counted as committed. PS_EBUSY: call
   again later. */
int ps_stage_end(ps_stage_t *st, const char *status, ps_err_t *err);
/* Frees st; what was not committed is dropped. */
void ps_stage_free(ps_stage_t *st);

/* Reading a stage back: its user columns (pset keys as they first
   appeared, then result keys) and psurvey's. The missing view has the
   columns that hold pset keys and _index, _status, _exception and
   _traceback. Any other table of the database (an attempts table,
   _psurvey_runs) reads as its columns are. Views: PS_VIEW_* (stage.h). */
/* How a reading is shaped; all zero: every row and column of the view. */
typedef struct ps_query_s {
  int64_t only; /* > 0: just the row whose _index is `only` */
  /* The user's SQL expression over the table's columns: rows where it is
     true. Checked (query.c): it reads this table alone and writes
     nothing; an error says what is wrong with it. */
  const char *where;
  const char *const *order; /* column names, '-' before one for descending; then _index */
  int norder;
  const char *const *columns; /* these columns alone, in this order */
  int ncolumns;
  int64_t limit; /* > 0: at most this many rows */
  int meta;      /* a stage's table: psurvey's columns too (_index, _duration...), in any view */
} ps_query_t;

/* q may be NULL. A stage kept in memory takes q->only alone. */
int ps_cursor_open(ps_store_t *s, const char *table, int view, const ps_query_t *q,
                   ps_cursor_t **out, ps_err_t *err);
int ps_cursor_ncols(const ps_cursor_t *c);
const char *ps_cursor_colname(const ps_cursor_t *c, int i);
/* 1 with a row, 0 at the end, PS_EDB on error. */
int ps_cursor_step(ps_cursor_t *c, ps_err_t *err);
/* The value of column i of the current row. For a table, it->s/len hold
   its value encoding (it->type is PS_V_TABLE). */
int ps_cursor_cell(ps_cursor_t *c, int i, ps_item_t *it);
/* What the key of column i is in the current row (PS_ROLE_*, stage.h). */
int ps_cursor_role(const ps_cursor_t *c, int i);
void ps_cursor_close(ps_cursor_t *c);

/* Rows of a stage in a view. */
int64_t ps_store_count(ps_store_t *s, const char *table, int view, ps_err_t *err);
/* Rows of a table in a view that q's filter keeps (its order, columns and
   limit play no part); q may be NULL. A negative error code on failure. */
int64_t ps_cursor_count(ps_store_t *s, const char *table, int view, const ps_query_t *q,
                        ps_err_t *err);

/*
 * The records psurvey keeps of a database's runs and stages (catalog.c).
 * Writing one may find the database locked by another program: PS_EBUSY,
 * nothing was written, try again. Each reading is a cursor over the
 * rows of a record, as SQLite has them (its columns are those listed);
 * stage names are compared without regard to ASCII case.
 */

/* A run of psurvey, for _psurvey_runs. What can cite it: argv (its
   command line, a JSON array), cwd, the git commit of its script (NULL
   outside a git work tree) and git_dirty (1: tracked files changed, 0:
   not, -1: unknown), its note, its tags (a JSON object) and its hidden
   log (a path relative to cwd). NULL fields are stored as NULL. */
typedef struct ps_run_record_s {
  const char *script, *script_hash, *host, *psurvey, *lua, *libuv, *sqlite, *options;
  int64_t pid;
  const char *argv, *cwd, *git_commit, *note, *tags, *log;
  int git_dirty;
} ps_run_record_t;

/* Records a run starting now (status 'running'); *id is its record's. */
int ps_store_begin_run(ps_store_t *s, const ps_run_record_t *run, int64_t *id, ps_err_t *err);
/* Records that run `id` ended now, and how ("done", "failed", ...). */
int ps_store_end_run(ps_store_t *s, int64_t id, const char *status, ps_err_t *err);
/* Stage `name`, at most one row: name (as stored), status, total, ok,
   failed, created, finished, run, code_hash, user_hash, sandbox, seed,
   timeout, memory. */
int ps_store_stage(ps_store_t *s, const char *name, ps_cursor_t **out, ps_err_t *err);
/* Its shipped worker and user value, at most one row: code, user. */
int ps_store_stage_worker(ps_store_t *s, const char *name, ps_cursor_t **out, ps_err_t *err);
/* Every stage, in the order they were made: name, status, total, ok,
   failed, created, finished. */
int ps_store_stages(ps_store_t *s, ps_cursor_t **out, ps_err_t *err);
/* The failed attempts at psets of stage `name`, in the order they were
   stored: the columns of its attempts table. */
int ps_store_attempts(ps_store_t *s, const char *name, ps_cursor_t **out, ps_err_t *err);
/* The limits the last attempt at pset `index` (1-based) of stage `name`
   ran with, at most one row: limit_timeout, limit_memory. */
int ps_store_last_limits(ps_store_t *s, const char *name, int64_t index, ps_cursor_t **out,
                         ps_err_t *err);
/* What attempt `attempt` at pset `index` (1-based) of stage `name` wrote,
   at most one row: stdout, stderr (none when it wrote nothing). */
int ps_store_output(ps_store_t *s, const char *name, int64_t index, int64_t attempt,
                    ps_cursor_t **out, ps_err_t *err);

/* Removes stages (names as stored) in one transaction, all or none:
   their tables, attempts and output tables, and their records in
   _psurvey_tables and _psurvey_columns. PS_EVALUE: a name is not a
   stage's; PS_EBUSY: the database is locked, nothing was removed. */
int ps_store_drop_stages(ps_store_t *s, const char *const *names, int n, ps_err_t *err);
/* Gives the pages free in the database back to the file system (VACUUM,
   then the WAL folded in and emptied). PS_EBUSY: try later. */
int ps_store_compact(ps_store_t *s, ps_err_t *err);

/* A statement of psurvey's own that reads (a summary's, a report's
   aggregates): one SELECT, refused when it would write. Parameters ?1..
   are bound from params (nil, booleans, integers, floats, strings). */
int ps_store_query(ps_store_t *s, const char *sql, const ps_item_t *params, int nparams,
                   ps_cursor_t **out, ps_err_t *err);

#endif
