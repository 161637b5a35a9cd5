/*
 * catalog.c: psurvey's records of a database's runs and stages, as the
 * bindings write and read them (store.h): a run's beginning and end, a
 * stage's record and worker, the list of stages, a stage's failed
 * attempts and the limits of the last one at a pset, what a pset wrote,
 * the driver's heartbeat, and the removal of stages no run needs
 * (`psurvey gc`). Their statements are schema.c's; the records of a stage
 * being written are store.c's.
 */
#include <stdio.h>
#include <time.h>

#include "store_private.h"

static void bind_text(sqlite3_stmt *st, int k, const char *s) {
  if (s)
    sqlite3_bind_text(st, k, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, k);
}

/* Runs a statement that writes; PS_EBUSY when another program holds the
   database's write lock. */
static int run_write(ps_store_t *s, sqlite3_stmt *st, const char *what, ps_err_t *err) {
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ps__db_fail(s->db, err, what);
  sqlite3_finalize(st);
  return rc == PS_EBUSY ? ps__busy(s, err) : rc;
}

int ps_store_begin_run(ps_store_t *s, const ps_run_record_t *run, int64_t *id, ps_err_t *err) {
  sqlite3_stmt *st;
  if (ps__prepare(s->db, PS_SQL_RUN_BEGIN, NULL, &st) != SQLITE_OK)
    return ps__db_fail(s->db, err, "recording the run");
  sqlite3_bind_double(st, 1, (double)time(NULL));
  bind_text(st, 2, run->script);
  bind_text(st, 3, run->script_hash);
  bind_text(st, 4, run->host);
  sqlite3_bind_int64(st, 5, run->pid);
  bind_text(st, 6, run->psurvey);
  bind_text(st, 7, run->lua);
  bind_text(st, 8, run->libuv);
  bind_text(st, 9, run->sqlite);
  bind_text(st, 10, run->options);
  bind_text(st, 11, run->argv);
  bind_text(st, 12, run->cwd);
  bind_text(st, 13, run->git_commit);
  if (run->git_commit && run->git_dirty >= 0) sqlite3_bind_int(st, 14, run->git_dirty != 0);
  bind_text(st, 15, run->note);
  bind_text(st, 16, run->tags);
  bind_text(st, 17, run->log);
  int rc = run_write(s, st, "recording the run", err);
  if (rc == 0) *id = sqlite3_last_insert_rowid(s->db);
  return rc;
}

int ps_store_end_run(ps_store_t *s, int64_t id, const char *status, ps_err_t *err) {
  sqlite3_stmt *st;
  if (ps__prepare(s->db, PS_SQL_RUN_END, NULL, &st) != SQLITE_OK)
    return ps__db_fail(s->db, err, "recording the run's end");
  sqlite3_bind_double(st, 1, (double)time(NULL));
  bind_text(st, 2, status);
  sqlite3_bind_int64(st, 3, id);
  return run_write(s, st, "recording the run's end", err);
}

/* A double that may be unknown (below 0): NULL then. */
static void bind_known(sqlite3_stmt *st, int k, double v) {
  if (v >= 0)
    sqlite3_bind_double(st, k, v);
  else
    sqlite3_bind_null(st, k);
}

int ps__write_beat(ps_store_t *s, const ps_beat_t *b, ps_err_t *err) {
  sqlite3_stmt *st;
  if (ps__prepare(s->db, PS_SQL_HEARTBEAT, NULL, &st) != SQLITE_OK)
    return ps__db_fail(s->db, err, "writing the heartbeat");
  sqlite3_bind_int64(st, 1, b->run);
  bind_text(st, 2, b->stage);
  sqlite3_bind_double(st, 3, b->beat);
  sqlite3_bind_double(st, 4, b->started);
  sqlite3_bind_int64(st, 5, b->total);
  sqlite3_bind_int64(st, 6, b->ok);
  sqlite3_bind_int64(st, 7, b->failed);
  sqlite3_bind_int64(st, 8, b->active);
  sqlite3_bind_int64(st, 9, b->workers);
  bind_known(st, 10, b->rate);
  bind_text(st, 11, b->hosts);
  bind_known(st, 12, b->p25);
  bind_known(st, 13, b->p50);
  bind_known(st, 14, b->p75);
  bind_known(st, 15, b->p90);
  bind_known(st, 16, b->eta);
  bind_known(st, 17, b->eta_lo);
  bind_known(st, 18, b->eta_hi);
  sqlite3_bind_int64(st, 19, b->pid);
  bind_text(st, 20, b->host);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ps__db_fail(s->db, err, "writing the heartbeat");
  sqlite3_finalize(st);
  return rc;
}

/* A beat of its own is one statement, its own transaction, that does not
   wait: a lock another program holds skips it (the next comes a second
   later), so the survey never waits on its heartbeat. */
int ps_store_beat(ps_store_t *s, const ps_beat_t *b, ps_err_t *err) {
  if (s->memory) return 0;
  sqlite3_busy_timeout(s->db, 0);
  int rc = ps__write_beat(s, b, err);
  sqlite3_busy_timeout(s->db, PS_BUSY_WAIT_MS);
  return rc;
}

/* A cursor over statement `which` (on the stage `table` for %A), with
   text parameter 1 when text is given, or integer parameter 1 when not. */
static int open_on(ps_store_t *s, int which, const char *table, const char *text, int64_t i,
                   ps_cursor_t **out, ps_err_t *err) {
  sqlite3_stmt *st;
  if (ps__prepare(s->db, which, table, &st) != SQLITE_OK)
    return ps__db_fail(s->db, err, "reading the records");
  if (text)
    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
  else if (sqlite3_bind_parameter_count(st) > 0)
    sqlite3_bind_int64(st, 1, i);
  return ps__cursor_of(st, out, err);
}

int ps_store_stage(ps_store_t *s, const char *name, ps_cursor_t **out, ps_err_t *err) {
  return open_on(s, PS_SQL_STAGE_INFO, NULL, name, 0, out, err);
}

int ps_store_stage_worker(ps_store_t *s, const char *name, ps_cursor_t **out, ps_err_t *err) {
  return open_on(s, PS_SQL_STAGE_WORKER, NULL, name, 0, out, err);
}

int ps_store_stages(ps_store_t *s, ps_cursor_t **out, ps_err_t *err) {
  return open_on(s, PS_SQL_STAGES, NULL, NULL, 0, out, err);
}

int ps_store_attempts(ps_store_t *s, const char *name, ps_cursor_t **out, ps_err_t *err) {
  return open_on(s, PS_SQL_ATTEMPTS, name, NULL, 0, out, err);
}

int ps_store_last_limits(ps_store_t *s, const char *name, int64_t index, ps_cursor_t **out,
                         ps_err_t *err) {
  return open_on(s, PS_SQL_LAST_LIMITS, name, NULL, index, out, err);
}

int ps_store_output(ps_store_t *s, const char *name, int64_t index, int64_t attempt,
                    ps_cursor_t **out, ps_err_t *err) {
  sqlite3_stmt *st;
  char table[PS_NAME_MAX + 80];
  snprintf(table, sizeof table, "%s_output", name);
  /* A stage whose psets wrote nothing has no output table: no rows. */
  if (!ps__table_name(s->db, table, NULL, 0)) {
    return open_on(s, PS_SQL_NO_OUTPUT, NULL, NULL, 0, out, err);
  }
  if (ps__prepare(s->db, PS_SQL_OUTPUT, name, &st) != SQLITE_OK)
    return ps__db_fail(s->db, err, "reading the output");
  sqlite3_bind_int64(st, 1, index);
  sqlite3_bind_int64(st, 2, attempt);
  return ps__cursor_of(st, out, err);
}

/* Runs statement `which` with the text parameter a; 0 or the error. */
static int run_named(ps_store_t *s, int which, const char *a, ps_err_t *err) {
  sqlite3_stmt *st;
  if (ps__prepare(s->db, which, NULL, &st) != SQLITE_OK)
    return ps__db_fail(s->db, err, "removing a table");
  sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ps__db_fail(s->db, err, "removing a table");
  sqlite3_finalize(st);
  return rc;
}

/* Drops stage `name` (as stored): its tables and its records. */
static int drop_stage(ps_store_t *s, const char *name, ps_err_t *err) {
  sqlite3_stmt *st;
  int found = 0;
  if (ps__prepare(s->db, PS_SQL_IS_STAGE, NULL, &st) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  if (!found) return ps_err_set(err, PS_EVALUE, "no table '%s' in '%s'", name, s->path);
  static const int drops[] = {PS_SQL_DROP_TABLE, PS_SQL_DROP_ATTEMPTS, PS_SQL_DROP_OUTPUT};
  int rc = 0;
  for (int k = 0; k < 3 && rc == 0; k++) rc = ps__exec_on(s->db, drops[k], name, err);
  if (rc == 0) rc = run_named(s, PS_SQL_STAGE_FORGET, name, err);
  if (rc == 0) rc = run_named(s, PS_SQL_COLUMNS_FORGET, name, err);
  return rc;
}

int ps_store_drop_stages(ps_store_t *s, const char *const *names, int n, ps_err_t *err) {
  int rc = ps__exec(s->db, "BEGIN IMMEDIATE", err);
  for (int k = 0; k < n && rc == 0; k++) rc = drop_stage(s, names[k], err);
  if (rc == 0) rc = ps__exec(s->db, "COMMIT", err);
  if (rc != 0 && !sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return rc == PS_EBUSY ? ps__busy(s, err) : rc;
}

int ps_store_compact(ps_store_t *s, ps_err_t *err) {
  int rc = ps__exec_on(s->db, PS_SQL_COMPACT, NULL, err);
  return rc == PS_EBUSY ? ps__busy(s, err) : rc;
}
