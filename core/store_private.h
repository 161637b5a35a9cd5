/*
 * store_private.h: what the files of the store share, and nothing outside
 * them includes. store.c opens, locks and closes a database and begins and
 * ends stages; sqlstage.c writes a stage's rows in SQLite (memstage.c in
 * memory); resume.c matches stored rows to psets; cursor.c reads rows
 * back; catalog.c reads and writes the records of runs and stages for
 * the bindings. The schema (psurvey's own tables, the layout of a stage's
 * table and every statement on psurvey's tables) is in schema.c; the
 * _types notes in celltypes.h.
 */
#ifndef PS_STORE_PRIVATE_H
#define PS_STORE_PRIVATE_H

#include <sqlite3.h>

#include "memstage.h"
#include "schema.h"
#include "store.h"

/* How long a statement waits for a lock another connection holds before
   SQLITE_BUSY. Short: the engine must not stop its loop while it waits; it
   keeps what it could not write and tries again (PS_EBUSY). A heartbeat
   waits not at all (catalog.c). */
#define PS_BUSY_WAIT_MS 50

struct ps_store_s {
  sqlite3 *db;
  char *path;
  int lock_fd; /* the database file, open while this process holds its lock; or -1 */
  /* A store in memory keeps its stages' rows in memstage.c, not in SQLite
     (which still holds the small tables: stages, runs, attempts). */
  int memory;
  ps_memstage_t **mem;
  int nmem;
};

/* A user column of a stage: a pset or result key. */
typedef struct ps_col_s {
  char *name;
  size_t len;
  int role;  /* 0: made for a pset key, 1: for a result key */
  int mask;  /* PS_M_* */
  int dirty; /* its _psurvey_columns row is not written yet */
} ps_col_t;

/* A key of the row being added, with its column (sqlstage.c). */
typedef struct ps_rowkey_s {
  const char *s;
  size_t len;
  int col;  /* its column, or -1: a new one */
  int role; /* 0 pset, 1 result */
  int skip; /* a result key repeating a pset key of the row (same value) */
} ps_rowkey_t;

/* One parameter of a row waiting to be inserted. Text and blobs are
   copied into the stage's pending bytes, as the row's memory is gone by
   the time it is inserted. */
typedef struct ps_param_s {
  int type; /* 0 (NULL), SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT or SQLITE_BLOB */
  int64_t i;
  double d;
  size_t off, len;
} ps_param_t;

/* A stage written in SQLite (sqlstage.c): stage.h's operations over a
   table of the store's database. */
typedef struct ps_sqlstage_s {
  ps_stage_t base;
  ps_store_t *store;
  char *name;  /* as the table is spelled; base.name too */
  int created; /* the table exists (committed, or in the commit under way) */
  int64_t run; /* the run whose rows these are, for their _run (0: NULL) */
  ps_col_t *cols;
  int ncols, capcols;
  int ncols_db;       /* the first ncols_db columns are in the table (columns only grow) */
  int max_cols;       /* user columns a table may have (SQLite's limit less psurvey's) */
  int *lastmap;       /* column of the k-th key of the last row, for the fast path */
  unsigned *colstamp; /* the last row (row_serial) that had each column */
  unsigned row_serial;
  int nlast;
  sqlite3_stmt *insert, *insert_many; /* one row, `many` rows, for `prepared` columns */
  int many, prepared;
  sqlite3_stmt *attempt;
  sqlite3_stmt *begin, *commit, *counts; /* made once: a commit a results frame */
  /* Rows and attempts added since the last commit: PS_NMETA + ncols
     parameters a row, 14 an attempt. A commit writes all or none of them,
     so that a database locked by another program loses nothing. */
  ps_param_t *params;
  size_t nparams, capparams;
  int npending;
  ps_param_t *aparams;
  size_t naparams, capaparams;
  ps_param_t *oparams; /* outputs: OUTPUT_PARAMS each */
  size_t noparams, capoparams;
  int output_made; /* the output table exists (committed, or in the commit under way) */
  sqlite3_stmt *output;
  ps_buf_t bytes;
  /* Rows of the table, as committed, and what the pending rows change. */
  int64_t ok, failed, pend_ok, pend_failed;
  /* Resuming: 1 for each pset whose stored failed row a new row replaces. */
  uint8_t *rerun;
  int64_t nrerun;
  ps_rowkey_t *keys; /* scratch: the keys of the row being added */
  int capkeys;
  ps_buf_t notes, scratch;
} ps_sqlstage_t;

/* Both return PS_EBUSY when SQLite's error is a lock held by another
   connection (so the caller can try again), else PS_EDB. */
int ps__exec(sqlite3 *db, const char *sql, ps_err_t *err);
int ps__db_fail(sqlite3 *db, ps_err_t *err, const char *what);
/* The WHERE clause of a view (PS_VIEW_*), with its leading space, or "". */
const char *ps__view_where(int view);
/* PS_EBUSY, with the message that says so. */
int ps__busy(const ps_store_t *s, ps_err_t *err);
void ps__put_ident(ps_buf_t *b, const char *s, size_t n);
const char *ps__sql_of(ps_buf_t *b);
/* The name of a table as the database spells it (names are compared
   without regard to ASCII case, as SQLite does), or 0 when there is none.
   out has room for outsz bytes. */
int ps__table_name(sqlite3 *db, const char *name, char *out, size_t outsz);
int ps__same_name(const char *a, size_t an, const char *b, size_t bn);
/* The rows of stage `name` of a store in memory, or NULL. */
ps_memstage_t *ps__store_memstage(ps_store_t *s, const char *name);
/* An unused name for a table set aside, "<name>_<tag>" or
   "<name>_<tag>_<k>", with no attempts table either; 0 or PS_EDB. */
int ps__free_name(ps_store_t *s, const char *name, const char *tag, char *out, size_t outsz);
/* A stage in SQLite, for table `name` (as the database spells it, when
   resume: its rows are kept and its columns read back). The columns of
   the keys of psets (may be NULL) are made at once, so that keys no table
   can hold are an error before anything is recorded of the stage. Its rows
   get `run` in _run. */
int ps__sqlstage_new(ps_store_t *s, const char *name, int resume, const ps_source_t *psets,
                     int64_t run, ps_stage_t **out, ps_err_t *err);
/* Creates the stage's table with the columns it has (schema.c owns its
   layout); inside the caller's transaction. */
int ps__create_table(ps_sqlstage_t *g, ps_err_t *err);
/* A cursor over the rows of statement st (ready to step), which it owns
   from now on, even when it fails: columns as the statement names them,
   values as SQLite has them. */
int ps__cursor_of(sqlite3_stmt *st, ps_cursor_t **out, ps_err_t *err);
/* query.c: checks the text of a filter (ps_query_t.where): one
   expression that cannot close the parentheses it is put in. */
int ps__where_check(const char *expr, ps_err_t *err);
/* Prepares a statement that filters `table` by the user's expression:
   it may read that table and call functions, nothing else (SQLITE_AUTH). */
int ps__prepare_filtered(ps_store_t *s, const char *sql, const char *table, sqlite3_stmt **st);
/* Writes one failed attempt at a pset of `stage` to its attempts table at
   once (sqlstage.c): the attempts of a stage in memory. PS_EBUSY: try
   again. */
int ps__write_attempt(ps_store_t *s, const char *stage, const ps_attempt_t *a, ps_err_t *err);
/* Writes the heartbeat inside the transaction under way (catalog.c):
   0, or what SQLite said. */
int ps__write_beat(ps_store_t *s, const ps_beat_t *b, ps_err_t *err);
/* Writes what an attempt wrote to the stage's output table at once, made
   if need be (sqlstage.c): the output of a stage in memory. */
int ps__write_output(ps_store_t *s, const char *stage, const ps_output_t *o, ps_err_t *err);
/* The resume operation of a stage in SQLite (resume.c; ps_stage_resume in
   store.h). */
int ps__sqlstage_resume(ps_stage_t *st, ps_source_t *src, int64_t total, int keep_failed,
                        uint8_t *done, int64_t *ok, int64_t *failed, ps_err_t *err);

#endif
