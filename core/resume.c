/*
 * resume.c: matching a stage's stored rows to the psets of a new run
 * (ps_stage_resume in store.h): the resume operation of a stage in
 * SQLite. Psets are matched by the hash of their encoding, not by
 * position, so a product reordered or extended since still resumes
 * exactly. Everything it changes in the database is one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "store_private.h"

/* A stored row, as resume sees it. */
typedef struct stored_s {
  uint64_t hash;
  int64_t index;  /* 1-based, as stored */
  int64_t target; /* its new _index, or 0 when no pset matches */
  int ok;
} stored_t;

static int stored_cmp(const void *a, const void *b) {
  const stored_t *x = a, *y = b;
  if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

static int run_sql_int(sqlite3 *db, sqlite3_stmt *st, int64_t a, int64_t b, ps_err_t *err) {
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, a);
  sqlite3_bind_int64(st, 2, b);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : ps__db_fail(db, err, "resume");
}

/* The stored rows, sorted by hash; *n of them. */
static int read_stored(ps_sqlstage_t *g, stored_t **out, size_t *n, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  ps_buf_t q;
  sqlite3_stmt *st;
  stored_t *rows = NULL;
  size_t cap = 0;
  *n = 0;
  ps_buf_init(&q);
  /* _types is not used here: a table without it (an older psurvey's) is
     refused now, before anything is renumbered. */
  ps_buf_puts(&q, "SELECT _hash, _index, _status = 'ok', _types FROM ");
  ps__put_ident(&q, g->name, strlen(g->name));
  const char *sql = ps__sql_of(&q);
  int rc = sql ? sqlite3_prepare_v2(db, sql, -1, &st, NULL) : SQLITE_NOMEM;
  ps_buf_free(&q);
  if (rc != SQLITE_OK)
    return ps_err_set(
        err, PS_EDB,
        "cannot resume table '%s': it was written by an older psurvey (%s); run without --resume",
        g->name, sqlite3_errmsg(db));
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 1024;
      stored_t *more = realloc(rows, sizeof *rows * cap);
      if (more == NULL) {
        sqlite3_finalize(st);
        free(rows);
        return ps_err_set(err, PS_ENOMEM, "out of memory");
      }
      rows = more;
    }
    stored_t *r = &rows[(*n)++];
    r->hash = (uint64_t)sqlite3_column_int64(st, 0);
    r->index = sqlite3_column_int64(st, 1);
    r->ok = sqlite3_column_int(st, 2);
    r->target = 0;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    free(rows);
    return ps__db_fail(db, err, "resume");
  }
  qsort(rows, *n, sizeof *rows, stored_cmp);
  *out = rows;
  return 0;
}

/* The table of unmatched rows a resume set aside is a stage of its own
   for psurvey.open and `psurvey results`: its columns are the stage's, its
   status "unmatched". */
static int register_aside(ps_sqlstage_t *g, const char *aside, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  static const int sql[] = {PS_SQL_COLUMNS_COPY, PS_SQL_STAGE_ASIDE};
  int rc = 0;
  for (int k = 0; k < 2 && rc == 0; k++) {
    sqlite3_stmt *st;
    if (ps__prepare(db, sql[k], aside, &st) != SQLITE_OK) {
      rc = ps__db_fail(db, err, "resume");
      break;
    }
    sqlite3_bind_text(st, 1, aside, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, g->name, -1, SQLITE_STATIC);
    if (sql[k] == PS_SQL_STAGE_ASIDE) sqlite3_bind_double(st, 3, (double)ps_now_us() / 1e6);
    if (sqlite3_step(st) != SQLITE_DONE) rc = ps__db_fail(db, err, "resume");
    sqlite3_finalize(st);
  }
  return rc;
}

/*
 * Each pset takes the first unmatched stored row with its hash, so a pset
 * listed twice matches two rows. Every pset of the source is looked at,
 * not only the first `total` (a limit), so that rows of psets past the
 * limit are kept for a later run; it stops once every stored row has its
 * pset.
 */
static int match(stored_t *rows, size_t n, ps_source_t *src, ps_err_t *err) {
  ps_buf_t pset;
  ps_buf_init(&pset);
  size_t matched = 0;
  for (int64_t i = 0; i < src->count && matched < n; i++) {
    pset.len = 0;
    src->get(src, i, &pset);
    if (pset.failed) {
      ps_buf_free(&pset);
      return ps_err_set(err, PS_ENOMEM, "out of memory");
    }
    uint64_t h = ps_hash(pset.data, pset.len, 0);
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (rows[mid].hash < h)
        lo = mid + 1;
      else
        hi = mid;
    }
    while (lo < n && rows[lo].hash == h && rows[lo].target) lo++;
    if (lo == n || rows[lo].hash != h) continue;
    rows[lo].target = i + 1;
    matched++;
  }
  ps_buf_free(&pset);
  return 0;
}

/* Renumbers the rows of `table` (the stage's, or its output table) to
   their targets: rows that move go to negative indexes first, so that no
   two rows ever share an _index on the way; rows without a target are
   left negative. In the output table, a row of an attempt whose pset has
   no row (a run stopped between its attempts) gives way. */
static int renumber(ps_sqlstage_t *g, const char *table, stored_t *rows, size_t n,
                    int64_t *unmatched, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  ps_buf_t q;
  sqlite3_stmt *st;
  ps_buf_init(&q);
  ps_buf_puts(&q, table == g->name ? "UPDATE " : "UPDATE OR REPLACE ");
  ps__put_ident(&q, table, strlen(table));
  ps_buf_puts(&q, " SET _index = ?2 WHERE _index = ?1");
  const char *sql = ps__sql_of(&q);
  int rc = sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK
               ? 0
               : ps__db_fail(db, err, "resume");
  ps_buf_free(&q);
  if (rc != 0) return rc;
  *unmatched = 0;
  for (size_t k = 0; rc == 0 && k < n; k++) {
    if (rows[k].target == rows[k].index) continue;
    if (rows[k].target == 0) ++*unmatched;
    rc = run_sql_int(db, st, rows[k].index, -(int64_t)k - 1, err);
  }
  for (size_t k = 0; rc == 0 && k < n; k++) {
    if (rows[k].target == rows[k].index || rows[k].target == 0) continue;
    rc = run_sql_int(db, st, -(int64_t)k - 1, rows[k].target, err);
  }
  sqlite3_finalize(st);
  return rc;
}

/* Moves the rows left at negative indexes to a table of their own. */
static int set_aside(ps_sqlstage_t *g, ps_err_t *err) {
  char aside[PS_NAME_MAX + 80], tag[48];
  snprintf(tag, sizeof tag, "unmatched_%lld", (long long)(ps_now_us() / 1000000));
  if (ps__free_name(g->store, g->name, tag, aside, sizeof aside) != 0)
    return ps_err_set(err, PS_EDB, "no free name to set aside the unmatched rows of '%s'", g->name);
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "CREATE TABLE ");
  ps__put_ident(&q, aside, strlen(aside));
  ps_buf_puts(&q, " AS SELECT * FROM ");
  ps__put_ident(&q, g->name, strlen(g->name));
  ps_buf_puts(&q, " WHERE _index < 0; DELETE FROM ");
  ps__put_ident(&q, g->name, strlen(g->name));
  ps_buf_puts(&q, " WHERE _index < 0");
  const char *sql = ps__sql_of(&q);
  int rc = sql ? ps__exec(g->store->db, sql, err) : ps_err_set(err, PS_ENOMEM, "out of memory");
  ps_buf_free(&q);
  if (rc == 0) rc = register_aside(g, aside, err);
  return rc;
}

int ps__sqlstage_resume(ps_stage_t *st, ps_source_t *src, int64_t total, int keep_failed,
                        uint8_t *done, int64_t *ok, int64_t *failed, ps_err_t *err) {
  ps_sqlstage_t *g = (ps_sqlstage_t *)st;
  sqlite3 *db = g->store->db;
  stored_t *rows = NULL;
  size_t n = 0;
  *ok = *failed = 0;
  memset(done, 0, (size_t)total);
  if (!g->created) return 0; /* a new table: nothing was done before */
  int rc = read_stored(g, &rows, &n, err);
  if (rc == 0) rc = match(rows, n, src, err);
  /* Stored failures of psets that run again: their new rows replace them. */
  if (rc == 0 && total > 0 && (g->rerun = calloc((size_t)total, 1)) == NULL)
    rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  g->nrerun = total;
  int64_t kept_ok = 0, kept_failed = 0, unmatched = 0;
  for (size_t k = 0; rc == 0 && k < n; k++) {
    int64_t i = rows[k].target - 1;
    if (i < 0) continue;
    if (rows[k].ok)
      kept_ok++;
    else
      kept_failed++;
    if (i >= total) continue; /* past a limit: kept for a later run */
    if (rows[k].ok || keep_failed) {
      done[i] = 1;
      if (rows[k].ok)
        ++*ok;
      else
        ++*failed;
    } else {
      g->rerun[i] = 1;
    }
  }
  if (rc == 0) rc = ps__exec(db, "BEGIN IMMEDIATE", err);
  if (rc == 0) rc = renumber(g, g->name, rows, n, &unmatched, err);
  if (rc == 0 && unmatched > 0) rc = set_aside(g, err);
  /* What the psets wrote follows their rows; that of rows set aside goes. */
  char output[PS_NAME_MAX + 80];
  int64_t ignored;
  snprintf(output, sizeof output, "%s_output", g->name);
  if (rc == 0 && ps__table_name(db, output, NULL, 0)) {
    rc = renumber(g, output, rows, n, &ignored, err);
    ps_buf_t q;
    ps_buf_init(&q);
    ps_buf_puts(&q, "DELETE FROM ");
    ps__put_ident(&q, output, strlen(output));
    ps_buf_puts(&q, " WHERE _index < 0");
    const char *sql = ps__sql_of(&q);
    if (rc == 0) rc = sql ? ps__exec(db, sql, err) : ps_err_set(err, PS_ENOMEM, "out of memory");
    ps_buf_free(&q);
  }
  if (rc == 0) rc = ps__exec(db, "COMMIT", err);
  free(rows);
  if (rc != 0) {
    /* All or nothing: no row is left renumbered or half moved. */
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    free(g->rerun);
    g->rerun = NULL;
    g->nrerun = 0;
    memset(done, 0, (size_t)total);
    *ok = *failed = 0;
    return rc == PS_EBUSY ? ps__busy(g->store, err) : rc;
  }
  g->ok = kept_ok;
  g->failed = kept_failed;
  return 0;
}
