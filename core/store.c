/*
 * store.c: a results database (store.h): opening it, bringing psurvey's
 * own tables to this psurvey's version (their schema is schema.c),
 * claiming it for one driver, and beginning and ending stages: the
 * store's records of a stage are written here, whatever kind of stage it
 * is. Rows are written by a stage (sqlstage.c in SQLite, memstage.c in
 * memory), matched for resume by resume.c and read by cursor.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "census.h"
#include "store_private.h"

/* The byte of the database file whose lock (an open file description
   lock) says a psurvey driver writes the file. SQLite locks bytes near
   1 GiB and never this one. */
#define DRIVER_LOCK_BYTE ((off_t)1 << 62)

static int is_busy(sqlite3 *db) {
  int code = sqlite3_errcode(db);
  return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

int ps__db_fail(sqlite3 *db, ps_err_t *err, const char *what) {
  return ps_err_set(err, is_busy(db) ? PS_EBUSY : PS_EDB, "%s: %s", what, sqlite3_errmsg(db));
}

int ps__exec(sqlite3 *db, const char *sql, ps_err_t *err) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    ps_err_set(err, is_busy(db) ? PS_EBUSY : PS_EDB, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return err ? err->code : PS_EDB;
  }
  return 0;
}

int ps__busy(const ps_store_t *s, ps_err_t *err) {
  return ps_err_set(err, PS_EBUSY, "database '%s' is locked by another program", s->path);
}

/* Appends name as a quoted SQL identifier. */
void ps__put_ident(ps_buf_t *b, const char *s, size_t n) {
  ps_buf_putc(b, '"');
  for (size_t k = 0; k < n; k++) {
    if (s[k] == '"') ps_buf_putc(b, '"');
    ps_buf_putc(b, s[k]);
  }
  ps_buf_putc(b, '"');
}

const char *ps__sql_of(ps_buf_t *b) {
  ps_buf_putc(b, '\0');
  b->len--;
  return b->failed ? NULL : b->data;
}

/* SQLite folds ASCII letters only when it compares identifiers. */
int ps__same_name(const char *a, size_t an, const char *b, size_t bn) {
  if (an != bn) return 0;
  for (size_t k = 0; k < an; k++) {
    unsigned char x = (unsigned char)a[k], y = (unsigned char)b[k];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
    if (x != y) return 0;
  }
  return 1;
}

int ps__table_name(sqlite3 *db, const char *name, char *out, size_t outsz) {
  sqlite3_stmt *st;
  int found = 0;
  if (ps__prepare(db, PS_SQL_TABLE_NAME, NULL, &st) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
      found = 1;
      if (out) snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
    }
  }
  sqlite3_finalize(st);
  return found;
}

int ps_store_open(ps_store_t **out, const char *path, ps_err_t *err) {
  ps_store_t *s = calloc(1, sizeof *s);
  if (s == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  ps_census_add(PS_CENSUS_STORES, 1);
  s->lock_fd = -1;
  s->memory = path == NULL;
  s->path = strdup(path ? path : ":memory:");
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (s->path == NULL || sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
    int cant = s->db && sqlite3_errcode(s->db) == SQLITE_CANTOPEN;
    ps_err_set(err, cant ? PS_EACCES : PS_EDB, "cannot open database '%s': %s%s",
               path ? path : ":memory:", s->db ? sqlite3_errmsg(s->db) : "out of memory",
               cant ? " (can its directory be written?)" : "");
    ps_store_close(s);
    return err ? err->code : PS_EDB;
  }
  sqlite3_busy_timeout(s->db, PS_BUSY_WAIT_MS);
  /* A double-quoted name that is not a column is an error, not a string. */
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
  int rc = ps__exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err);
  if (rc == 0) rc = ps__schema_migrate(s->db, err);
  if (rc != 0) {
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err ? err->msg : "");
    int code = sqlite3_errcode(s->db);
    if (rc == PS_EVALUE)
      ps_err_set(err, PS_EDB,
                 "cannot use database '%s': %s: use that psurvey, or give this survey another 'db'",
                 s->path, why);
    else if (code == SQLITE_NOTADB)
      ps_err_set(err, PS_EDB, "'%s' is not an SQLite database: give psurvey another 'db' file",
                 s->path);
    else if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN ||
             sqlite3_db_readonly(s->db, "main") == 1)
      ps_err_set(err, PS_EACCES,
                 "database '%s' is read-only: psurvey must write its results there; fix its "
                 "permissions (and its "
                 "directory's) or give another 'db'",
                 s->path);
    else if (rc == PS_EBUSY)
      ps__busy(s, err);
    else
      ps_err_set(err, PS_EDB, "cannot use database '%s': %s", s->path, why);
    ps_store_close(s);
    return err ? err->code : PS_EDB;
  }
  *out = s;
  return 0;
}

/* The pid and host of the run that holds the database, for messages. */
static void holder_of(ps_store_t *s, char *out, size_t outsz) {
  sqlite3_stmt *st;
  snprintf(out, outsz, "pid unknown");
  if (ps__prepare(s->db, PS_SQL_RUN_HOLDER, NULL, &st) != SQLITE_OK) return;
  if (sqlite3_step(st) == SQLITE_ROW)
    snprintf(out, outsz, "pid %lld on %s", (long long)sqlite3_column_int64(st, 0),
             sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "?");
  sqlite3_finalize(st);
}

/*
 * The claim is a lock on one byte of the database file itself, so that
 * every name of the file (a symbolic link, a hard link) is the same claim,
 * and no other file is ever created or written for it. It is an open file
 * description lock: SQLite's own connections to the file, opened and
 * closed as they please, cannot release it, as they would a POSIX lock.
 */
int ps_store_lock(ps_store_t *s, ps_err_t *err) {
  if (s->lock_fd >= 0 || s->memory) return 0;
  if (sqlite3_db_readonly(s->db, "main") == 1)
    return ps_err_set(err, PS_EACCES,
                      "database '%s' is read-only: psurvey must write its results there; fix its "
                      "permissions (and "
                      "its directory's) or give another 'db'",
                      s->path);
  int fd = open(s->path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return ps_err_set(err, PS_EDB, "cannot open database '%s': %s", s->path, strerror(errno));
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = DRIVER_LOCK_BYTE;
  fl.l_len = 1;
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    int e = errno;
    close(fd);
    if (e != EAGAIN && e != EACCES)
      return ps_err_set(err, PS_EDB, "cannot lock database '%s': %s", s->path, strerror(e));
    char who[320];
    holder_of(s, who, sizeof who);
    return ps_err_set(
        err, PS_EDB,
        "database '%s' is being written by another psurvey (%s): wait for it to finish, or give "
        "this survey another 'db'",
        s->path, who);
  }
  s->lock_fd = fd;
  return 0;
}

static ps_memstage_t *find_mem(ps_store_t *s, const char *name) {
  for (int k = 0; k < s->nmem; k++)
    if (ps__same_name(ps_memstage_name(s->mem[k]), strlen(ps_memstage_name(s->mem[k])), name,
                      strlen(name)))
      return s->mem[k];
  return NULL;
}

void ps_store_close(ps_store_t *s) {
  if (s == NULL) return;
  ps_census_add(PS_CENSUS_STORES, -1);
  for (int k = 0; k < s->nmem; k++) ps_memstage_free(s->mem[k]);
  free(s->mem);
  sqlite3_close_v2(s->db);
  /* After SQLite's own descriptors: closing ours releases only our lock. */
  if (s->lock_fd >= 0) close(s->lock_fd);
  free(s->path);
  free(s);
}

const char *ps_store_path(const ps_store_t *s) { return s->path; }

ps_memstage_t *ps__store_memstage(ps_store_t *s, const char *name) {
  return s->memory ? find_mem(s, name) : NULL;
}

static int rename_table(ps_store_t *s, const char *from, const char *to, ps_err_t *err) {
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "ALTER TABLE ");
  ps__put_ident(&q, from, strlen(from));
  ps_buf_puts(&q, " RENAME TO ");
  ps__put_ident(&q, to, strlen(to));
  const char *sql = ps__sql_of(&q);
  int rc = sql ? ps__exec(s->db, sql, err) : ps_err_set(err, PS_ENOMEM, "out of memory");
  ps_buf_free(&q);
  return rc;
}

/* Runs statement `which` with two text parameters. */
static int run2(ps_store_t *s, int which, const char *a, const char *b, ps_err_t *err) {
  sqlite3_stmt *st;
  if (ps__prepare(s->db, which, NULL, &st) != SQLITE_OK) return ps__db_fail(s->db, err, "archive");
  sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ps__db_fail(s->db, err, "archive");
  sqlite3_finalize(st);
  return rc;
}

static int name_taken(sqlite3 *db, const char *name) {
  sqlite3_stmt *st;
  int found = 1;
  if (ps__prepare(db, PS_SQL_NAME_TAKEN, NULL, &st) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

/* A name for a table set aside, "<name>_<tag>", unused in the database:
   "_2", "_3"... are added when it is taken. */
int ps__free_name(ps_store_t *s, const char *name, const char *tag, char *out, size_t outsz) {
  snprintf(out, outsz, "%s_%s", name, tag);
  char attempts[PS_NAME_MAX + 64], output[PS_NAME_MAX + 64];
  for (int k = 2; k < 10000; k++) {
    snprintf(attempts, sizeof attempts, "%s_attempts", out);
    snprintf(output, sizeof output, "%s_output", out);
    if (!name_taken(s->db, out) && !name_taken(s->db, attempts) && !name_taken(s->db, output))
      return 0;
    snprintf(out, outsz, "%s_%s_%d", name, tag, k);
  }
  return PS_EDB;
}

/* Moves an earlier run's stage aside, under name_YYYYMMDD_HHMMSS (of its
   creation): its table, its attempts and output tables and its records. `name` is its
   name as stored. */
static int archive_stage(ps_store_t *s, const char *name, ps_err_t *err) {
  sqlite3_stmt *st;
  double created = 0;
  if (ps__prepare(s->db, PS_SQL_STAGE_CREATED, NULL, &st) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) created = sqlite3_column_double(st, 0);
  }
  sqlite3_finalize(st);
  time_t t = (time_t)created;
  struct tm tm;
  localtime_r(&t, &tm);
  char stamp[32], newname[PS_NAME_MAX + 64];
  strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &tm);
  if (ps__free_name(s, name, stamp, newname, sizeof newname) != 0)
    return ps_err_set(err, PS_EDB, "no free name to keep table '%s' under", name);
  int rc = 0;
  if (ps__table_name(s->db, name, NULL, 0)) rc = rename_table(s, name, newname, err);
  char from[PS_NAME_MAX + 120], to[PS_NAME_MAX + 120];
  snprintf(from, sizeof from, "%s_attempts", name);
  snprintf(to, sizeof to, "%s_attempts", newname);
  if (rc == 0 && ps__table_name(s->db, from, NULL, 0)) rc = rename_table(s, from, to, err);
  snprintf(from, sizeof from, "%s_output", name);
  snprintf(to, sizeof to, "%s_output", newname);
  if (rc == 0 && ps__table_name(s->db, from, NULL, 0)) rc = rename_table(s, from, to, err);
  if (rc == 0) rc = run2(s, PS_SQL_STAGE_RENAME, name, newname, err);
  if (rc == 0) rc = run2(s, PS_SQL_COLUMNS_RENAME, name, newname, err);
  return rc;
}

static void bind_blob_or_null(sqlite3_stmt *st, int k, const char *p, size_t n) {
  if (p)
    sqlite3_bind_blob(st, k, n ? p : "", (int)n, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, k);
}

/* Records the stage in _psurvey_tables: a new row, or, resuming, the
   existing one updated. */
static int record_stage(ps_store_t *s, const char *name, const ps_stage_info_t *info, int resume,
                        ps_err_t *err) {
  sqlite3_stmt *st;
  if (ps__prepare(s->db, resume ? PS_SQL_STAGE_RESUME : PS_SQL_STAGE_INSERT, NULL, &st) !=
      SQLITE_OK)
    return ps__db_fail(s->db, err, "stage");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 2, (double)ps_now_us() / 1e6);
  sqlite3_bind_int64(st, 3, info->total);
  sqlite3_bind_text(st, 4, info->options ? info->options : "", -1, SQLITE_STATIC);
  if (info->run > 0) sqlite3_bind_int64(st, 5, info->run);
  bind_blob_or_null(st, 6, info->code, info->code_len);
  bind_blob_or_null(st, 7, info->user, info->user_len);
  if (info->code_hash) sqlite3_bind_text(st, 8, info->code_hash, -1, SQLITE_STATIC);
  if (info->user_hash) sqlite3_bind_text(st, 9, info->user_hash, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 10, info->sandbox ? info->sandbox : "default", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 11, (int64_t)info->seed);
  sqlite3_bind_double(st, 12, info->timeout);
  sqlite3_bind_double(st, 13, info->memory);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ps__db_fail(s->db, err, "stage");
  sqlite3_finalize(st);
  return rc;
}

/* The name of a stage as _psurvey_tables spells it, or 0. */
static int stage_name(ps_store_t *s, const char *name, char *out, size_t outsz) {
  sqlite3_stmt *st;
  int found = 0;
  if (ps__prepare(s->db, PS_SQL_STAGE_NAME, NULL, &st) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
      found = 1;
      snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
    }
  }
  sqlite3_finalize(st);
  return found;
}

/* The failed attempts of a stage in memory go to its attempts table, in
   the store's own database in memory, at once. */
static int attempt_in_memory(ps_stage_t *st, const ps_attempt_t *a, ps_err_t *err) {
  return ps__write_attempt(st->store, st->name, a, err);
}

/* Their output too, in a table beside it. */
static int output_in_memory(ps_stage_t *st, const ps_output_t *o, ps_err_t *err) {
  return ps__write_output(st->store, st->name, o, err);
}

/* The stage of a store in memory: its rows, which the store keeps until
   it closes (a stage of the same name made earlier in this run is
   replaced), and their writer. */
static int begin_in_memory(ps_store_t *s, const char *name, int64_t total, ps_stage_t **out,
                           ps_err_t *err) {
  ps_memstage_t *m = ps_memstage_new(name, total);
  ps_stage_t *w = m ? ps_memstage_writer(m, attempt_in_memory, output_in_memory) : NULL;
  ps_memstage_t **list = w ? realloc(s->mem, sizeof *list * (size_t)(s->nmem + 1)) : NULL;
  if (list == NULL) {
    if (w) w->ops->free(w);
    ps_memstage_free(m);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  s->mem = list;
  ps_memstage_t *old = find_mem(s, name);
  if (old) {
    for (int k = 0; k < s->nmem; k++)
      if (s->mem[k] == old) s->mem[k] = m;
    ps_memstage_free(old);
  } else {
    s->mem[s->nmem++] = m;
  }
  *out = w;
  return 0;
}

int ps_stage_begin(ps_store_t *s, const ps_stage_info_t *info, ps_stage_t **out, ps_err_t *err) {
  const char *name = info->name;
  size_t len = strlen(name);
  if (len == 0 || len > PS_NAME_MAX)
    return ps_err_set(err, PS_EVALUE, "a table name of %zu bytes (1 to %d)", len, PS_NAME_MAX);
  char stored[PS_NAME_MAX + 80];
  int has_table = ps__table_name(s->db, name, stored, sizeof stored);
  int has_stage = has_table || stage_name(s, name, stored, sizeof stored);
  int resume = info->resume && has_table;
  const char *recorded = resume ? stored : name;
  ps_stage_t *st = NULL;
  /* The columns first: keys no table can hold stop the stage before the
     database records anything of it. */
  int rc = s->memory ? 0 : ps__sqlstage_new(s, recorded, resume, info->psets, info->run, &st, err);
  if (rc == 0) rc = ps__exec(s->db, "BEGIN IMMEDIATE", err);
  /* A table an older psurvey made gets the columns it lacks (_run): the
     rows it holds keep NULL there, the rows of this run say so. */
  if (rc == 0 && resume) rc = ps__stage_upgrade(s->db, recorded, err);
  if (rc == 0 && !resume && has_stage) rc = archive_stage(s, stored, err);
  if (rc == 0) rc = ps__exec_on(s->db, PS_SQL_ATTEMPTS_CREATE, recorded, err);
  if (rc == 0) rc = record_stage(s, recorded, info, resume, err);
  if (rc == 0) rc = ps__exec(s->db, "COMMIT", err);
  if (rc != 0) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (st) st->ops->free(st);
    return rc == PS_EBUSY ? ps__busy(s, err) : rc;
  }
  if (s->memory && (rc = begin_in_memory(s, name, info->total, &st, err)) != 0) return rc;
  st->store = s;
  ps_census_add(PS_CENSUS_STAGES, 1);
  *out = st;
  return 0;
}

int ps_stage_end(ps_stage_t *st, const char *status, ps_err_t *err) {
  ps_store_t *s = st->store;
  ps_err_t later;
  int first = st->ops->end(st, strcmp(status, "done") == 0, err);
  if (first == PS_EBUSY) return first;
  /* The last rows cannot be written (a full disk): the stage still says
     how it ended, with the rows it has. */
  if (first != 0) err = &later;
  int64_t ok, failed;
  st->ops->count(st, &ok, &failed);
  sqlite3_stmt *q = NULL;
  int rc = ps__exec(s->db, "BEGIN IMMEDIATE", err);
  if (rc == 0 && ps__prepare(s->db, PS_SQL_STAGE_END, NULL, &q) != SQLITE_OK)
    rc = ps__db_fail(s->db, err, "finishing the stage");
  if (rc == 0) {
    sqlite3_bind_double(q, 1, (double)ps_now_us() / 1e6);
    sqlite3_bind_text(q, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, ok);
    sqlite3_bind_int64(q, 4, failed);
    sqlite3_bind_text(q, 5, st->name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) rc = ps__db_fail(s->db, err, "finishing the stage");
  }
  sqlite3_finalize(q);
  if (rc == 0) rc = ps__exec(s->db, "COMMIT", err);
  if (rc != 0 && !sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  if (first) return first;
  return rc == PS_EBUSY ? ps__busy(s, err) : rc;
}

/* The rest of a stage's calls are its own operations (stage.h). */

int ps_stage_resume(ps_stage_t *st, ps_source_t *src, int64_t total, int keep_failed, uint8_t *done,
                    int64_t *ok, int64_t *failed, ps_err_t *err) {
  return st->ops->resume(st, src, total, keep_failed, done, ok, failed, err);
}

int ps_stage_attempt(ps_stage_t *st, const ps_attempt_t *a, ps_err_t *err) {
  return st->ops->attempt(st, a, err);
}
int ps_stage_output(ps_stage_t *st, const ps_output_t *o, ps_err_t *err) {
  return st->ops->output(st, o, err);
}

int ps_stage_add(ps_stage_t *st, const ps_row_t *row, ps_err_t *err) {
  return st->ops->add(st, row, err);
}
int ps_stage_commit(ps_stage_t *st, ps_err_t *err) { return st->ops->commit(st, NULL, err); }
int ps_stage_commit_beat(ps_stage_t *st, const ps_beat_t *beat, ps_err_t *err) {
  return st->ops->commit(st, beat, err);
}

int64_t ps_stage_pending(const ps_stage_t *st, int64_t *ok, int64_t *failed) {
  return st->ops->pending(st, ok, failed);
}

void ps_stage_free(ps_stage_t *st) {
  if (st == NULL) return;
  ps_census_add(PS_CENSUS_STAGES, -1);
  st->ops->free(st);
}

const char *ps__view_where(int view) {
  return view == PS_VIEW_OK        ? " WHERE _status = 'ok'"
         : view == PS_VIEW_MISSING ? " WHERE _status <> 'ok'"
                                   : "";
}

int64_t ps_store_count(ps_store_t *s, const char *table, int view, ps_err_t *err) {
  ps_memstage_t *m = s->memory ? find_mem(s, table) : NULL;
  if (m) return ps_memstage_count(m, view);
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "SELECT count(*) FROM ");
  ps__put_ident(&q, table, strlen(table));
  ps_buf_puts(&q, ps__view_where(view));
  sqlite3_stmt *st;
  const char *sql = ps__sql_of(&q);
  int64_t n = -1;
  if (sql && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  ps_buf_free(&q);
  if (n < 0) return ps__db_fail(s->db, err, "counting rows");
  return n;
}
