/*
 * store.h: results in SQLite. One table per stage (map() call) with one
 * column per pset key and result key, plus psurvey's own columns, which
 * all start with '_'. Columns have no declared type, so SQLite keeps each
 * value's own type: integers stay INTEGER and floats REAL. What SQLite has
 * no type for is recorded per column in _psurvey_columns.types, so values
 * read back as they were written:
 *   booleans      INTEGER 0/1, read back as booleans in a column of booleans
 *   tables        TEXT JSON when JSON holds them exactly, else a BLOB of the
 *                 value encoding (value.h)
 *   binary        strings that are not UTF-8 are BLOBs
 *   NaN           a BLOB of the value encoding (SQLite turns NaN into NULL)
 * A missing key is NULL.
 */
#ifndef PS_STORE_H
#define PS_STORE_H

#include "buf.h"
#include "ps.h"
#include "value.h"

typedef struct ps_store_s ps_store_t;
typedef struct ps_stage_s ps_stage_t;
typedef struct ps_cursor_s ps_cursor_t;

/* Opens (creating) the database at path; NULL keeps it in memory. */
int ps_store_open(ps_store_t **out, const char *path, ps_err_t *err);
void ps_store_close(ps_store_t *s);
const char *ps_store_path(const ps_store_t *s);
struct sqlite3 *ps_store_db(ps_store_t *s);

/* A finished pset, as the scheduler hands it to the store. */
typedef struct ps_row_s {
  int64_t index;      /* 0-based; stored 1-based in _index */
  const char *status; /* "ok", "error", "signal", "exit" */
  const char *exception, *traceback;
  size_t exception_len, traceback_len;
  int64_t attempt, worker;
  const char *host;
  int64_t start_us, duration_us;
  const char *pset, *result; /* value encodings; result may be NULL */
  size_t pset_len, result_len;
} ps_row_t;

/* Starts writing stage `name`. A table of that name from an earlier run is
   kept, renamed with the time it was made (name_YYYYMMDD_HHMMSS). */
int ps_stage_begin(ps_store_t *s, const char *name, const char *options, int64_t total, ps_stage_t **out,
                   ps_err_t *err);
/* Adds a row inside the open transaction. PS_EVALUE: this row cannot be
   stored as it is (err says why; the caller stores it as a failure);
   PS_EDB: the database failed. */
int ps_stage_add(ps_stage_t *st, const ps_row_t *row, ps_err_t *err);
/* Commits the rows added so far, if any. */
int ps_stage_commit(ps_stage_t *st, ps_err_t *err);
/* Commits, records how the stage ended, frees st. */
int ps_stage_end(ps_stage_t *st, const char *status, int64_t ok, int64_t failed, ps_err_t *err);

/* Reading a stage back. */
enum { PS_VIEW_OK, PS_VIEW_MISSING, PS_VIEW_ALL };
int ps_cursor_open(ps_store_t *s, const char *table, int view, ps_cursor_t **out, ps_err_t *err);
int ps_cursor_ncols(const ps_cursor_t *c);
const char *ps_cursor_colname(const ps_cursor_t *c, int i);
/* 1 with a row, 0 at the end, PS_EDB on error. */
int ps_cursor_step(ps_cursor_t *c, ps_err_t *err);
/* The value of column i of the current row. For a table, it->s/len hold
   its value encoding (it->type is PS_V_TABLE). */
int ps_cursor_cell(ps_cursor_t *c, int i, ps_item_t *it);
void ps_cursor_close(ps_cursor_t *c);

/* Rows of a stage in a view. */
int64_t ps_store_count(ps_store_t *s, const char *table, int view, ps_err_t *err);

#endif
