/* store.c: SQLite storage of stages (store.h). */
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "json.h"
#include "memstage.h"

/* Bits of _psurvey_columns.types: the Lua types a column has held. */
enum { M_BOOL = 1, M_INT = 2, M_FLOAT = 4, M_STR = 8, M_BIN = 16, M_JSON = 32, M_CODEC = 64 };

struct ps_store_s {
  sqlite3 *db;
  char *path;
  int lock_fd; /* the held <path>.lock, or -1 */
  /* A store in memory keeps its stages' rows in memstage.c, not in SQLite
     (which still holds the small tables: stages, runs, attempts). */
  int memory;
  ps_memstage_t **mem;
  int nmem;
};

typedef struct col_s {
  char *name;
  size_t len;
  int role; /* 0 pset key, 1 result key */
  int mask;
} col_t;

/* Bind positions of psurvey's columns in the insert statement. */
static const char *const meta_cols[] = {"_index", "_status", "_exception", "_traceback", "_attempt",
                                        "_worker", "_host",   "_start",     "_end",       "_duration",
                                        "_cpu",    "_memory", "_name",      "_hash"};
static const char *const meta_types[] = {"INTEGER PRIMARY KEY", "TEXT", "TEXT",    "TEXT", "INTEGER",
                                         "INTEGER",             "TEXT", "REAL",    "REAL", "REAL",
                                         "REAL",                "INTEGER", "TEXT", "INTEGER"};
#define NMETA 14

/* Rows are inserted up to this many at a time (one statement start, one
   cursor, one reset for all): 25% less time in SQLite than one at a time. */
#define MANY_ROWS 32

/* One parameter of a row waiting to be inserted. Text and blobs are
   copied, as the row's memory is gone by the time it is inserted. */
typedef struct param_s {
  int type; /* SQLITE_NULL (0 here), SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT or SQLITE_BLOB */
  int64_t i;
  double d;
  size_t off, len; /* text, blob: in the stage's pending bytes */
} param_t;

struct ps_stage_s {
  ps_store_t *store;
  char *name;
  int created; /* the table exists */
  col_t *cols;
  int ncols, capcols;
  int *lastmap; /* column of the k-th key of the last row, for the fast path */
  int nlast;
  sqlite3_stmt *insert;      /* one row */
  sqlite3_stmt *insert_many; /* `many` rows */
  int many;
  /* Rows added and not yet inserted, NMETA + ncols parameters each: they
     are inserted when there are `many`, at a commit and before a column is
     added. */
  param_t *params;
  size_t nparams, capparams;
  int npending;
  ps_buf_t pending_bytes;
  sqlite3_stmt *attempt; /* into <name>_attempts */
  ps_memstage_t *mem;    /* the rows, in a store in memory */
  int in_tx;
  ps_buf_t scratch;
};

static int db_fail(sqlite3 *db, ps_err_t *err, const char *what) {
  return ps_err_set(err, PS_EDB, "%s: %s", what, sqlite3_errmsg(db));
}

static int exec(sqlite3 *db, const char *sql, ps_err_t *err) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    ps_err_set(err, PS_EDB, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return PS_EDB;
  }
  return 0;
}

/* Appends name as a quoted SQL identifier. */
static void put_ident(ps_buf_t *b, const char *s, size_t n) {
  ps_buf_putc(b, '"');
  for (size_t k = 0; k < n; k++) {
    if (s[k] == '"') ps_buf_putc(b, '"');
    ps_buf_putc(b, s[k]);
  }
  ps_buf_putc(b, '"');
}

static const char *sql_of(ps_buf_t *b) {
  ps_buf_putc(b, '\0');
  b->len--;
  return b->failed ? NULL : b->data;
}

int ps_store_open(ps_store_t **out, const char *path, ps_err_t *err) {
  ps_store_t *s = calloc(1, sizeof *s);
  if (s == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  s->lock_fd = -1;
  s->memory = path == NULL;
  s->path = strdup(path ? path : ":memory:");
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
    ps_err_set(err, PS_EDB, "cannot open database '%s': %s", s->path,
               s->db ? sqlite3_errmsg(s->db) : "out of memory");
    ps_store_close(s);
    return PS_EDB;
  }
  sqlite3_busy_timeout(s->db, 5000);
  int rc = exec(s->db,
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                "CREATE TABLE IF NOT EXISTS _psurvey_tables(name TEXT PRIMARY KEY, created REAL,"
                " finished REAL, status TEXT, total INTEGER, ok INTEGER, failed INTEGER, options TEXT);"
                "CREATE TABLE IF NOT EXISTS _psurvey_columns(tbl TEXT, name TEXT, role TEXT,"
                " types INTEGER, position INTEGER, PRIMARY KEY(tbl, name));"
                "CREATE TABLE IF NOT EXISTS _psurvey_runs(id INTEGER PRIMARY KEY, started REAL, finished REAL,"
                " status TEXT, script TEXT, script_hash TEXT, host TEXT, pid INTEGER, psurvey TEXT, lua TEXT,"
                " libuv TEXT, sqlite TEXT, options TEXT);",
                err);
  /* Columns added to _psurvey_tables since version 0.1.0's first files. */
  static const char *const added[] = {"run INTEGER", "code BLOB",    "user BLOB",    "code_hash TEXT",
                                      "user_hash TEXT", "sandbox TEXT", "seed INTEGER", "timeout REAL",
                                      "memory REAL",    NULL};
  for (int k = 0; rc == 0 && added[k]; k++) {
    char q[128], col[32];
    sqlite3_stmt *st;
    snprintf(col, sizeof col, "%s", added[k]);
    *strchr(col, ' ') = '\0';
    snprintf(q, sizeof q, "SELECT %s FROM _psurvey_tables LIMIT 0", col);
    if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) == SQLITE_OK) {
      sqlite3_finalize(st);
      continue;
    }
    snprintf(q, sizeof q, "ALTER TABLE _psurvey_tables ADD COLUMN %s", added[k]);
    rc = exec(s->db, q, err);
  }
  if (rc != 0) {
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%.300s", err ? err->msg : "");
    if (sqlite3_errcode(s->db) == SQLITE_NOTADB)
      ps_err_set(err, PS_EDB, "'%s' is not an SQLite database: give psurvey another 'db' file", s->path);
    else
      ps_err_set(err, PS_EDB, "cannot use database '%s': %s", s->path, why);
    ps_store_close(s);
    return PS_EDB;
  }
  *out = s;
  return 0;
}

int ps_store_lock(ps_store_t *s, ps_err_t *err) {
  if (s->lock_fd >= 0 || strcmp(s->path, ":memory:") == 0) return 0;
  if (sqlite3_db_readonly(s->db, "main") == 1)
    return ps_err_set(err, PS_EDB,
                      "database '%s' is read-only: psurvey must write its results there; fix its permissions or "
                      "give another 'db'",
                      s->path);
  char lockpath[PATH_MAX];
  snprintf(lockpath, sizeof lockpath, "%s.lock", s->path);
  int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ps_err_set(err, PS_EDB, "cannot create '%s': %s", lockpath, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    close(fd);
    return ps_err_set(err, PS_EDB,
                      "database '%s' is being written by another psurvey (pid %s): wait for it to finish, "
                      "or give this survey another 'db'",
                      s->path, pid[0] ? pid : "?");
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    /* The lock holds without the pid in it; the pid only helps messages. */
  }
  s->lock_fd = fd;
  return 0;
}

static ps_memstage_t *find_mem(ps_store_t *s, const char *name) {
  for (int k = 0; k < s->nmem; k++)
    if (strcmp(ps_memstage_name(s->mem[k]), name) == 0) return s->mem[k];
  return NULL;
}

void ps_store_close(ps_store_t *s) {
  if (s == NULL) return;
  for (int k = 0; k < s->nmem; k++) ps_memstage_free(s->mem[k]);
  free(s->mem);
  if (s->lock_fd >= 0) close(s->lock_fd);
  sqlite3_close_v2(s->db);
  free(s->path);
  free(s);
}

const char *ps_store_path(const ps_store_t *s) { return s->path; }
sqlite3 *ps_store_db(ps_store_t *s) { return s->db; }

static int table_exists(sqlite3 *db, const char *name) {
  sqlite3_stmt *st;
  int found = 0;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1, &st, NULL) ==
      SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

static int rename_table(ps_store_t *s, const char *from, const char *to, ps_err_t *err) {
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "ALTER TABLE ");
  put_ident(&q, from, strlen(from));
  ps_buf_puts(&q, " RENAME TO ");
  put_ident(&q, to, strlen(to));
  int rc = exec(s->db, sql_of(&q), err);
  ps_buf_free(&q);
  return rc;
}

/* Moves an earlier run's table aside: name_YYYYMMDD_HHMMSS (of its
   creation), and its attempts table with it. */
static int archive_table(ps_store_t *s, const char *name, ps_err_t *err) {
  sqlite3_stmt *st;
  double created = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT created FROM _psurvey_tables WHERE name=?", -1, &st, NULL) ==
      SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) created = sqlite3_column_double(st, 0);
  }
  sqlite3_finalize(st);
  time_t t = (time_t)created;
  struct tm tm;
  localtime_r(&t, &tm);
  char stamp[32], newname[600];
  strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &tm);
  snprintf(newname, sizeof newname, "%s_%s", name, stamp);
  for (int k = 2; table_exists(s->db, newname) && k < 1000; k++)
    snprintf(newname, sizeof newname, "%s_%s_%d", name, stamp, k);
  int rc = rename_table(s, name, newname, err);
  if (rc != 0) return rc;
  char from[600], to[620];
  snprintf(from, sizeof from, "%s_attempts", name);
  snprintf(to, sizeof to, "%s_attempts", newname);
  if (table_exists(s->db, from) && (rc = rename_table(s, from, to, err)) != 0) return rc;
  const char *upd[] = {"UPDATE _psurvey_tables SET name=?2 WHERE name=?1",
                       "UPDATE _psurvey_columns SET tbl=?2 WHERE tbl=?1"};
  for (int k = 0; k < 2; k++) {
    if (sqlite3_prepare_v2(s->db, upd[k], -1, &st, NULL) != SQLITE_OK) return db_fail(s->db, err, "archive");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, newname, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s->db, err, "archive");
  }
  return 0;
}

static int create_attempts(ps_store_t *s, const char *name, ps_err_t *err) {
  ps_buf_t q;
  ps_buf_init(&q);
  char table[600];
  snprintf(table, sizeof table, "%s_attempts", name);
  ps_buf_puts(&q, "CREATE TABLE IF NOT EXISTS ");
  put_ident(&q, table, strlen(table));
  ps_buf_puts(&q,
              "(_index INTEGER, attempt INTEGER, kind TEXT, message TEXT, traceback TEXT, worker INTEGER,"
              " host TEXT, start REAL, duration REAL, cpu REAL, memory INTEGER, limit_timeout REAL,"
              " limit_memory REAL, hash INTEGER)");
  int rc = exec(s->db, sql_of(&q), err);
  ps_buf_free(&q);
  return rc;
}

static void bind_blob_or_null(sqlite3_stmt *st, int k, const char *p, size_t n) {
  if (p)
    sqlite3_bind_blob(st, k, n ? p : "", (int)n, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, k);
}

/* Room for one more column in g->cols and g->lastmap. */
static int room_for_column(ps_stage_t *g) {
  if (g->ncols < g->capcols) return 0;
  int cap = g->capcols ? g->capcols * 2 : 16;
  col_t *c = realloc(g->cols, sizeof(col_t) * (size_t)cap);
  int *m = realloc(g->lastmap, sizeof(int) * (size_t)cap);
  if (c) g->cols = c;
  if (m) g->lastmap = m;
  if (!c || !m) return PS_ENOMEM;
  g->capcols = cap;
  return 0;
}

/* The columns of a table written before, so that rows can be added. */
static int load_columns(ps_stage_t *g, ps_err_t *err) {
  sqlite3_stmt *st;
  sqlite3 *db = g->store->db;
  if (sqlite3_prepare_v2(db, "SELECT name, role, types FROM _psurvey_columns WHERE tbl=? ORDER BY position", -1,
                         &st, NULL) != SQLITE_OK)
    return db_fail(db, err, "reading columns");
  sqlite3_bind_text(st, 1, g->name, -1, SQLITE_STATIC);
  int rc = 0;
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *role = (const char *)sqlite3_column_text(st, 1);
    if (room_for_column(g) != 0) {
      rc = ps_err_set(err, PS_ENOMEM, "out of memory");
      break;
    }
    col_t *c = &g->cols[g->ncols];
    c->name = strdup(name ? name : "");
    c->len = strlen(c->name);
    c->role = role && strcmp(role, "result") == 0;
    c->mask = sqlite3_column_int(st, 2);
    g->ncols++;
  }
  sqlite3_finalize(st);
  return rc;
}

int ps_stage_begin(ps_store_t *s, const ps_stage_info_t *info, ps_stage_t **out, ps_err_t *err) {
  const char *name = info->name;
  int resume = info->resume && table_exists(s->db, name);
  if (exec(s->db, "BEGIN IMMEDIATE", err) != 0) return PS_EDB;
  if (!resume && table_exists(s->db, name) && archive_table(s, name, err) != 0) goto fail;
  if (create_attempts(s, name, err) != 0) goto fail;
  sqlite3_stmt *st;
  const char *sql =
      resume ? "UPDATE _psurvey_tables SET status='running', total=?3, options=?4, run=?5, code=?6, user=?7,"
               " code_hash=?8, user_hash=?9, sandbox=?10, seed=?11, timeout=?12, memory=?13, finished=NULL"
               " WHERE name=?1"
             : "INSERT OR REPLACE INTO _psurvey_tables(name, created, status, total, ok, failed, options, run,"
               " code, user, code_hash, user_hash, sandbox, seed, timeout, memory)"
               " VALUES (?1, ?2, 'running', ?3, 0, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    db_fail(s->db, err, "stage");
    goto fail;
  }
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
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    db_fail(s->db, err, "stage");
    goto fail;
  }
  if (exec(s->db, "COMMIT", err) != 0) goto fail;
  ps_stage_t *g = calloc(1, sizeof *g);
  if (g == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  g->store = s;
  g->name = strdup(name);
  ps_buf_init(&g->scratch);
  ps_buf_init(&g->pending_bytes);
  if (s->memory) {
    ps_memstage_t *m = ps_memstage_new(name, info->total);
    ps_memstage_t **list = m ? realloc(s->mem, sizeof *list * (size_t)(s->nmem + 1)) : NULL;
    if (list == NULL) {
      ps_memstage_free(m);
      ps_stage_end(g, NULL, 0, 0, NULL);
      return ps_err_set(err, PS_ENOMEM, "out of memory");
    }
    s->mem = list;
    /* A table of the same name made earlier in this run is replaced. */
    ps_memstage_t *old = find_mem(s, name);
    if (old) {
      for (int k = 0; k < s->nmem; k++)
        if (s->mem[k] == old) s->mem[k] = m;
      ps_memstage_free(old);
    } else {
      s->mem[s->nmem++] = m;
    }
    g->mem = m;
  }
  if (resume) {
    g->created = 1;
    if (load_columns(g, err) != 0) {
      ps_stage_end(g, NULL, 0, 0, NULL);
      return PS_EDB;
    }
  }
  *out = g;
  return 0;
fail:
  exec(s->db, "ROLLBACK", NULL);
  return PS_EDB;
}

/* Prepares the insert of `rows` rows into *st. */
static int prepare_insert(ps_stage_t *g, int rows, sqlite3_stmt **st, ps_err_t *err) {
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "INSERT OR REPLACE INTO ");
  put_ident(&q, g->name, strlen(g->name));
  ps_buf_putc(&q, '(');
  for (int k = 0; k < NMETA; k++) ps_buf_printf(&q, "%s%s", k ? "," : "", meta_cols[k]);
  for (int k = 0; k < g->ncols; k++) {
    ps_buf_putc(&q, ',');
    put_ident(&q, g->cols[k].name, g->cols[k].len);
  }
  ps_buf_puts(&q, ") VALUES ");
  for (int r = 0; r < rows; r++) {
    ps_buf_puts(&q, r ? ",(" : "(");
    for (int k = 0; k < NMETA + g->ncols; k++) ps_buf_puts(&q, k ? ",?" : "?");
    ps_buf_putc(&q, ')');
  }
  sqlite3_finalize(*st);
  *st = NULL;
  const char *sql = sql_of(&q);
  int rc = sql ? sqlite3_prepare_v2(g->store->db, sql, -1, st, NULL) : SQLITE_NOMEM;
  ps_buf_free(&q);
  if (rc != SQLITE_OK) return db_fail(g->store->db, err, "insert");
  return 0;
}

/* Both inserts, for the columns there are now. */
static int prepare_inserts(ps_stage_t *g, ps_err_t *err) {
  int per_row = NMETA + g->ncols;
  int max_params = sqlite3_limit(g->store->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
  g->many = max_params / per_row < MANY_ROWS ? max_params / per_row : MANY_ROWS;
  int rc = prepare_insert(g, 1, &g->insert, err);
  if (rc == 0 && g->many > 1) rc = prepare_insert(g, g->many, &g->insert_many, err);
  return rc;
}

static void bind_param(sqlite3_stmt *st, int p, const param_t *v, const char *bytes) {
  switch (v->type) {
    case SQLITE_INTEGER: sqlite3_bind_int64(st, p, v->i); break;
    case SQLITE_FLOAT: sqlite3_bind_double(st, p, v->d); break;
    case SQLITE_TEXT: sqlite3_bind_text(st, p, bytes + v->off, (int)v->len, SQLITE_STATIC); break;
    case SQLITE_BLOB: sqlite3_bind_blob(st, p, bytes + v->off, (int)v->len, SQLITE_STATIC); break;
    default: sqlite3_bind_null(st, p);
  }
}

/* Inserts the pending rows: `many` at a time, the rest one by one. */
static int flush_rows(ps_stage_t *g, ps_err_t *err) {
  int per_row = NMETA + g->ncols, rc = 0;
  if (g->npending == 0) return 0;
  if (g->insert == NULL && (rc = prepare_inserts(g, err)) != 0) return rc;
  for (int done = 0; done < g->npending && rc == 0;) {
    int rows = g->many > 1 && g->npending - done >= g->many ? g->many : 1;
    sqlite3_stmt *st = rows > 1 ? g->insert_many : g->insert;
    const param_t *v = g->params + (size_t)done * (size_t)per_row;
    for (int k = 0; k < rows * per_row; k++) bind_param(st, k + 1, &v[k], g->pending_bytes.data);
    if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(g->store->db, err, "storing rows");
    sqlite3_reset(st);
    done += rows;
  }
  g->npending = 0;
  g->nparams = 0;
  g->pending_bytes.len = 0;
  return rc;
}

/* Room for one more pending row's parameters, all NULL. */
static param_t *add_row_params(ps_stage_t *g) {
  size_t per_row = (size_t)(NMETA + g->ncols);
  if (g->nparams + per_row > g->capparams) {
    size_t cap = g->capparams ? g->capparams * 2 : 1024;
    while (cap < g->nparams + per_row) cap *= 2;
    param_t *more = realloc(g->params, sizeof *more * cap);
    if (more == NULL) return NULL;
    g->params = more;
    g->capparams = cap;
  }
  param_t *row = g->params + g->nparams;
  memset(row, 0, sizeof *row * per_row);
  g->nparams += per_row;
  return row;
}

static void put_int(param_t *v, int64_t i) {
  v->type = SQLITE_INTEGER;
  v->i = i;
}

static void put_float(param_t *v, double d) {
  v->type = SQLITE_FLOAT;
  v->d = d;
}

/* Text or blob (type), copied; a NULL s leaves the parameter NULL. */
static void put_bytes(ps_stage_t *g, param_t *v, int type, const char *s, size_t n) {
  if (s == NULL) return;
  v->type = type;
  v->off = g->pending_bytes.len;
  v->len = n;
  ps_buf_put(&g->pending_bytes, s, n);
}

static int begin_tx(ps_stage_t *g, ps_err_t *err) {
  if (g->in_tx) return 0;
  if (exec(g->store->db, "BEGIN", err) != 0) return PS_EDB;
  g->in_tx = 1;
  return 0;
}

static int save_column(ps_stage_t *g, int k, ps_err_t *err) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(g->store->db,
                         "INSERT OR REPLACE INTO _psurvey_columns(tbl, name, role, types, position)"
                         " VALUES (?, ?, ?, ?, ?)",
                         -1, &st, NULL) != SQLITE_OK)
    return db_fail(g->store->db, err, "columns");
  sqlite3_bind_text(st, 1, g->name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, g->cols[k].name, (int)g->cols[k].len, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, g->cols[k].role ? "result" : "pset", -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, g->cols[k].mask);
  sqlite3_bind_int(st, 5, k);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : db_fail(g->store->db, err, "columns");
}

static int same_ci(const char *a, size_t an, const char *b, size_t bn) {
  if (an != bn) return 0;
  for (size_t k = 0; k < an; k++)
    if (tolower((unsigned char)a[k]) != tolower((unsigned char)b[k])) return 0;
  return 1;
}

/* The column for key s (adding it), or PS_EVALUE when SQLite cannot tell
   it from an existing column (names equal but for ASCII case). */
static int find_column(ps_stage_t *g, int pos, const char *s, size_t n, int role, ps_err_t *err) {
  if (pos < g->nlast) {
    int c = g->lastmap[pos];
    if (c >= 0 && g->cols[c].len == n && memcmp(g->cols[c].name, s, n) == 0) return c;
  }
  int found = -1;
  for (int k = 0; k < g->ncols; k++) {
    if (g->cols[k].len == n && memcmp(g->cols[k].name, s, n) == 0) {
      found = k;
      break;
    }
    if (same_ci(g->cols[k].name, g->cols[k].len, s, n))
      return ps_err_set(err, PS_EVALUE,
                        "%s key '%.*s' and key '%s' differ only in letter case, which SQLite column names "
                        "cannot tell apart: rename one",
                        role ? "result" : "pset", (int)n, s, g->cols[k].name);
  }
  if (found < 0) {
    if (room_for_column(g) != 0) return ps_err_set(err, PS_ENOMEM, "out of memory");
    col_t *c = &g->cols[g->ncols];
    c->name = malloc(n + 1);
    if (c->name == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
    memcpy(c->name, s, n);
    c->name[n] = '\0';
    c->len = n;
    c->role = role;
    c->mask = 0;
    if (g->created) {
      /* Rows waiting for the insert have the columns there were. */
      int rc = flush_rows(g, err);
      if (rc != 0) return rc;
    }
    found = g->ncols++;
    if (g->created) {
      ps_buf_t q;
      ps_buf_init(&q);
      ps_buf_puts(&q, "ALTER TABLE ");
      put_ident(&q, g->name, strlen(g->name));
      ps_buf_puts(&q, " ADD COLUMN ");
      put_ident(&q, s, n);
      int rc = exec(g->store->db, sql_of(&q), err);
      ps_buf_free(&q);
      if (rc != 0) return rc;
    }
    if (save_column(g, found, err) != 0) return PS_EDB;
    sqlite3_finalize(g->insert);
    sqlite3_finalize(g->insert_many);
    g->insert = g->insert_many = NULL;
  }
  if (pos < g->capcols) {
    while (g->nlast <= pos) g->lastmap[g->nlast++] = -1;
    g->lastmap[pos] = found;
  }
  return found;
}

static int create_table(ps_stage_t *g, ps_err_t *err) {
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "CREATE TABLE ");
  put_ident(&q, g->name, strlen(g->name));
  ps_buf_printf(&q, "(%s %s", meta_cols[0], meta_types[0]);
  for (int k = 0; k < g->ncols; k++) {
    ps_buf_putc(&q, ',');
    put_ident(&q, g->cols[k].name, g->cols[k].len);
  }
  for (int k = 1; k < NMETA; k++) ps_buf_printf(&q, ",%s %s", meta_cols[k], meta_types[k]);
  ps_buf_putc(&q, ')');
  int rc = exec(g->store->db, sql_of(&q), err);
  ps_buf_free(&q);
  if (rc == 0) g->created = 1;
  return rc;
}

/* Puts the value at r (whose encoding spans [start, r->p) once read) in
   parameter v, following the column's representation. */
static int put_value(ps_stage_t *g, param_t *v, col_t *c, ps_reader_t *r, int *changed, ps_err_t *err) {
  const unsigned char *start = r->p;
  ps_item_t it;
  int before = c->mask;
  if (ps_read_item(r, &it) != 0) return ps_err_set(err, PS_EPROTO, "malformed value");
  switch (it.type) {
    case PS_V_NIL: break;
    case PS_V_BOOL:
      put_int(v, it.i);
      c->mask |= M_BOOL;
      break;
    case PS_V_INT:
      put_int(v, it.i);
      c->mask |= M_INT;
      break;
    case PS_V_FLOAT:
      if (isnan(it.d)) {
        put_bytes(g, v, SQLITE_BLOB, (const char *)start, 9);
        c->mask |= M_CODEC;
      } else {
        put_float(v, it.d);
        c->mask |= M_FLOAT;
      }
      break;
    case PS_V_STR:
      if (ps_utf8_valid(it.s, it.len)) {
        put_bytes(g, v, SQLITE_TEXT, it.s, it.len);
        c->mask |= M_STR;
      } else {
        put_bytes(g, v, SQLITE_BLOB, it.s, it.len);
        c->mask |= M_BIN;
      }
      break;
    default: {
      ps_reader_t sub;
      ps_reader_init(&sub, start, ps_reader_left(r) + (size_t)(r->p - start));
      if (ps_skip_value(&sub, 0) != 0) return ps_err_set(err, PS_EPROTO, "malformed value");
      size_t n = (size_t)(sub.p - start);
      r->p = sub.p;
      ps_reader_t js;
      ps_reader_init(&js, start, n);
      g->scratch.len = 0;
      if (ps_json_write(&js, &g->scratch, 1) == 0 && !g->scratch.failed) {
        put_bytes(g, v, SQLITE_TEXT, g->scratch.data, g->scratch.len);
        c->mask |= M_JSON;
      } else {
        put_bytes(g, v, SQLITE_BLOB, (const char *)start, n);
        c->mask |= M_CODEC;
      }
    }
  }
  if (c->mask != before) *changed = 1;
  return 0;
}

/* Walks the keys of one encoded table (pset or result), creating columns. */
static int scan_keys(ps_stage_t *g, const char *v, size_t n, int role, int *pos, ps_err_t *err) {
  ps_reader_t r;
  ps_item_t it, key;
  if (v == NULL || n == 0) return 0;
  ps_reader_init(&r, v, n);
  if (ps_read_item(&r, &it) != 0 || it.type != PS_V_TABLE || it.narr != 0)
    return ps_err_set(err, PS_EPROTO, "a %s that is not a table of string keys", role ? "result" : "pset");
  for (uint64_t k = 0; k < it.nhash; k++) {
    if (ps_read_item(&r, &key) != 0 || key.type != PS_V_STR)
      return ps_err_set(err, PS_EPROTO, "a %s key that is not a string", role ? "result" : "pset");
    int c = find_column(g, (*pos)++, key.s, key.len, role, err);
    if (c < 0) return c;
    if (ps_skip_value(&r, 1) != 0) return ps_err_set(err, PS_EPROTO, "malformed value");
  }
  return 0;
}

/* Puts the values of one encoded table (pset or result) in the row's
   parameters, at their columns (scan_keys found them). */
static int put_table(ps_stage_t *g, param_t *row, const char *v, size_t n, int *pos, int *changed,
                     ps_err_t *err) {
  ps_reader_t r;
  ps_item_t it, key;
  if (v == NULL || n == 0) return 0;
  ps_reader_init(&r, v, n);
  ps_read_item(&r, &it);
  for (uint64_t k = 0; k < it.nhash; k++) {
    ps_read_item(&r, &key);
    int c = g->lastmap[(*pos)++];
    int rc = put_value(g, &row[NMETA + c], &g->cols[c], &r, changed, err);
    if (rc != 0) return rc;
  }
  return 0;
}

typedef struct keyref_s {
  const char *s;
  size_t len;
} keyref_t;

static int keyref_cmp(const void *a, const void *b) {
  const keyref_t *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Before the table exists: the first row's result keys become columns in
   sorted order (Lua tables have no order of their own), so every run of a
   survey gets the same layout. */
static int add_sorted_columns(ps_stage_t *g, const char *v, size_t n, ps_err_t *err) {
  ps_reader_t r;
  ps_item_t it;
  if (v == NULL || n == 0) return 0;
  ps_reader_init(&r, v, n);
  if (ps_read_item(&r, &it) != 0 || it.type != PS_V_TABLE || it.nhash > 4096) return 0;
  keyref_t keys[4096];
  size_t nk = 0;
  for (uint64_t k = 0; k < it.nhash; k++) {
    ps_item_t key;
    if (ps_read_item(&r, &key) != 0 || key.type != PS_V_STR || ps_skip_value(&r, 1) != 0) return 0;
    keys[nk].s = key.s;
    keys[nk++].len = key.len;
  }
  qsort(keys, nk, sizeof *keys, keyref_cmp);
  for (size_t k = 0; k < nk; k++) {
    int c = find_column(g, INT_MAX, keys[k].s, keys[k].len, 1, err);
    if (c < 0) return c;
  }
  return 0;
}

int ps_stage_add(ps_stage_t *g, const ps_row_t *row, ps_err_t *err) {
  if (g->mem) return ps_memstage_add(g->mem, row, err);
  int rc, pos = 0, changed = 0;
  if ((rc = begin_tx(g, err)) != 0) return rc;
  if (!g->created) {
    if ((rc = scan_keys(g, row->pset, row->pset_len, 0, &pos, err)) != 0) return rc;
    if ((rc = add_sorted_columns(g, row->result, row->result_len, err)) != 0) return rc;
    pos = 0;
  }
  /* First pass: every key has a column, and the table exists. */
  if ((rc = scan_keys(g, row->pset, row->pset_len, 0, &pos, err)) != 0) return rc;
  if ((rc = scan_keys(g, row->result, row->result_len, 1, &pos, err)) != 0) return rc;
  if (!g->created && (rc = create_table(g, err)) != 0) return rc;
  /* The row's parameters, in the order of prepare_insert. */
  size_t mark = g->nparams, mark_bytes = g->pending_bytes.len;
  param_t *v = add_row_params(g);
  if (v == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  put_int(&v[0], row->index + 1);
  put_bytes(g, &v[1], SQLITE_TEXT, row->status, strlen(row->status));
  put_bytes(g, &v[2], SQLITE_TEXT, row->exception, row->exception_len);
  if (row->traceback_len) put_bytes(g, &v[3], SQLITE_TEXT, row->traceback, row->traceback_len);
  put_int(&v[4], row->attempt);
  put_int(&v[5], row->worker);
  if (row->host) put_bytes(g, &v[6], SQLITE_TEXT, row->host, strlen(row->host));
  put_float(&v[7], (double)row->start_us / 1e6);
  put_float(&v[8], (double)(row->start_us + row->duration_us) / 1e6);
  put_float(&v[9], (double)row->duration_us / 1e6);
  put_float(&v[10], (double)row->cpu_us / 1e6);
  put_int(&v[11], row->peak_bytes);
  if (row->name) put_bytes(g, &v[12], SQLITE_TEXT, row->name, strlen(row->name));
  put_int(&v[13], (int64_t)(row->hash ? row->hash : ps_hash(row->pset, row->pset_len, 0)));
  pos = 0;
  if ((rc = put_table(g, v, row->pset, row->pset_len, &pos, &changed, err)) != 0 ||
      (rc = put_table(g, v, row->result, row->result_len, &pos, &changed, err)) != 0) {
    g->nparams = mark;
    g->pending_bytes.len = mark_bytes;
    return rc;
  }
  if (g->pending_bytes.failed) return ps_err_set(err, PS_ENOMEM, "out of memory keeping rows to store");
  g->npending++;
  if (changed) {
    for (int k = 0; k < g->ncols; k++)
      if ((rc = save_column(g, k, err)) != 0) return rc;
  }
  if (g->npending >= (g->many > 1 ? g->many : 1)) return flush_rows(g, err);
  return 0;
}

int ps_stage_attempt(ps_stage_t *g, const ps_attempt_t *a, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  int rc;
  if ((rc = begin_tx(g, err)) != 0) return rc;
  if (g->attempt == NULL) {
    ps_buf_t q;
    char table[600];
    snprintf(table, sizeof table, "%s_attempts", g->name);
    ps_buf_init(&q);
    ps_buf_puts(&q, "INSERT INTO ");
    put_ident(&q, table, strlen(table));
    ps_buf_puts(&q, " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    const char *sql = sql_of(&q);
    rc = sql ? sqlite3_prepare_v2(db, sql, -1, &g->attempt, NULL) : SQLITE_NOMEM;
    ps_buf_free(&q);
    if (rc != SQLITE_OK) return db_fail(db, err, "attempts");
  }
  sqlite3_stmt *st = g->attempt;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  sqlite3_bind_int64(st, 1, a->index + 1);
  sqlite3_bind_int64(st, 2, a->attempt);
  sqlite3_bind_text(st, 3, a->kind, -1, SQLITE_STATIC);
  if (a->message) sqlite3_bind_text(st, 4, a->message, (int)a->message_len, SQLITE_STATIC);
  if (a->traceback && a->traceback_len)
    sqlite3_bind_text(st, 5, a->traceback, (int)a->traceback_len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, a->worker);
  if (a->host) sqlite3_bind_text(st, 7, a->host, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 8, (double)a->start_us / 1e6);
  sqlite3_bind_double(st, 9, (double)a->duration_us / 1e6);
  sqlite3_bind_double(st, 10, (double)a->cpu_us / 1e6);
  sqlite3_bind_int64(st, 11, a->peak_bytes);
  sqlite3_bind_double(st, 12, a->timeout);
  sqlite3_bind_double(st, 13, a->memory);
  sqlite3_bind_int64(st, 14, (int64_t)a->hash);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : db_fail(db, err, "storing an attempt");
}

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

static int run_sql_int(sqlite3 *db, const char *sql, int64_t a, int64_t b, ps_err_t *err) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return db_fail(db, err, "resume");
  sqlite3_bind_int64(st, 1, a);
  sqlite3_bind_int64(st, 2, b);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : db_fail(db, err, "resume");
}

/* The table of unmatched rows a resume set aside is a stage of its own
   for psurvey.open and `psurvey results`: its columns are the stage's, its
   status "unmatched". */
static int register_aside(ps_stage_t *g, const char *aside, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  ps_buf_t counts;
  ps_buf_init(&counts);
  ps_buf_puts(
      &counts,
      "INSERT OR REPLACE INTO _psurvey_tables(name, created, finished, status, total, ok, failed, run)"
      " SELECT ?1, t.created, ?3, 'unmatched', a.n, a.ok, a.n - a.ok, t.run"
      " FROM _psurvey_tables t, (SELECT count(*) n, coalesce(sum(_status = 'ok'), 0) ok FROM ");
  put_ident(&counts, aside, strlen(aside));
  ps_buf_puts(&counts, ") a WHERE t.name = ?2");
  const char *sql[] = {
      "INSERT OR REPLACE INTO _psurvey_columns(tbl, name, role, types, position)"
      " SELECT ?1, name, role, types, position FROM _psurvey_columns WHERE tbl = ?2",
      sql_of(&counts)};
  int rc = sql[1] ? 0 : ps_err_set(err, PS_ENOMEM, "out of memory");
  for (int k = 0; k < 2 && rc == 0; k++) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql[k], -1, &st, NULL) != SQLITE_OK) {
      rc = db_fail(db, err, "resume");
      break;
    }
    sqlite3_bind_text(st, 1, aside, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, g->name, -1, SQLITE_STATIC);
    if (k == 1) sqlite3_bind_double(st, 3, (double)ps_now_us() / 1e6);
    if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(db, err, "resume");
    sqlite3_finalize(st);
  }
  ps_buf_free(&counts);
  return rc;
}

int ps_stage_resume(ps_stage_t *g, ps_source_t *src, int64_t total, int keep_failed, uint8_t *done,
                    int64_t *ok, int64_t *failed, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  ps_buf_t q;
  sqlite3_stmt *st;
  stored_t *rows = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  *ok = *failed = 0;
  memset(done, 0, (size_t)total);
  if (!g->created) return 0; /* a new table: nothing was done before */
  ps_buf_init(&q);
  ps_buf_puts(&q, "SELECT _hash, _index, _status = 'ok' FROM ");
  put_ident(&q, g->name, strlen(g->name));
  const char *sql = sql_of(&q);
  if (sql == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    rc = ps_err_set(err, PS_EDB,
                    "cannot resume table '%s': it has no pset hashes (written by an older psurvey); run "
                    "without --resume",
                    g->name);
    ps_buf_free(&q);
    return rc;
  }
  ps_buf_free(&q);
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (n == cap) {
      cap = cap ? cap * 2 : 1024;
      stored_t *more = realloc(rows, sizeof *rows * cap);
      if (more == NULL) {
        sqlite3_finalize(st);
        free(rows);
        return ps_err_set(err, PS_ENOMEM, "out of memory");
      }
      rows = more;
    }
    rows[n].hash = (uint64_t)sqlite3_column_int64(st, 0);
    rows[n].index = sqlite3_column_int64(st, 1);
    rows[n].ok = sqlite3_column_int(st, 2);
    rows[n].target = 0;
    n++;
  }
  sqlite3_finalize(st);
  qsort(rows, n, sizeof *rows, stored_cmp);
  /* Each pset takes the first unmatched stored row with its hash, so a pset
     listed twice matches two rows. */
  ps_buf_t pset;
  ps_buf_init(&pset);
  for (int64_t i = 0; i < total && n > 0; i++) {
    pset.len = 0;
    src->get(src, i, &pset);
    if (pset.failed) {
      rc = ps_err_set(err, PS_ENOMEM, "out of memory");
      break;
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
    if (rows[lo].ok || keep_failed) {
      done[i] = 1;
      if (rows[lo].ok)
        ++*ok;
      else
        ++*failed;
    }
  }
  ps_buf_free(&pset);
  /* Renumber: rows that move go to negative indexes first, so that no two
     rows ever share an _index on the way. */
  ps_buf_init(&q);
  ps_buf_puts(&q, "UPDATE ");
  put_ident(&q, g->name, strlen(g->name));
  ps_buf_puts(&q, " SET _index = ?2 WHERE _index = ?1");
  char *update = rc == 0 && sql_of(&q) ? strdup(q.data) : NULL;
  ps_buf_free(&q);
  int64_t unmatched = 0;
  if (rc == 0 && update == NULL) rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  if (rc == 0) rc = begin_tx(g, err);
  for (size_t k = 0; rc == 0 && k < n; k++) {
    if (rows[k].target == rows[k].index) continue;
    if (rows[k].target == 0) unmatched++;
    rc = run_sql_int(db, update, rows[k].index, -(int64_t)k - 1, err);
  }
  for (size_t k = 0; rc == 0 && k < n; k++) {
    if (rows[k].target == rows[k].index || rows[k].target == 0) continue;
    rc = run_sql_int(db, update, -(int64_t)k - 1, rows[k].target, err);
  }
  free(update);
  free(rows);
  if (rc == 0 && unmatched > 0) {
    /* Rows of psets this map no longer has: kept, in a table of their own. */
    char aside[600];
    snprintf(aside, sizeof aside, "%s_unmatched_%lld", g->name, (long long)(ps_now_us() / 1000000));
    ps_buf_init(&q);
    ps_buf_puts(&q, "CREATE TABLE ");
    put_ident(&q, aside, strlen(aside));
    ps_buf_puts(&q, " AS SELECT * FROM ");
    put_ident(&q, g->name, strlen(g->name));
    ps_buf_puts(&q, " WHERE _index < 0; DELETE FROM ");
    put_ident(&q, g->name, strlen(g->name));
    ps_buf_puts(&q, " WHERE _index < 0");
    rc = sql_of(&q) ? exec(db, q.data, err) : ps_err_set(err, PS_ENOMEM, "out of memory");
    ps_buf_free(&q);
    if (rc == 0) rc = register_aside(g, aside, err);
  }
  if (rc == 0) rc = ps_stage_commit(g, err);
  return rc;
}

int ps_stage_commit(ps_stage_t *g, ps_err_t *err) {
  if (!g->in_tx) return 0;
  int rc = flush_rows(g, err);
  if (rc != 0) return rc;
  g->in_tx = 0;
  return exec(g->store->db, "COMMIT", err);
}

int ps_stage_end(ps_stage_t *g, const char *status, int64_t ok, int64_t failed, ps_err_t *err) {
  int rc = 0;
  if (!g->created && !g->mem && status && strcmp(status, "done") == 0) {
    /* An empty stage still gets its (empty) table, so it can be listed and read. */
    if (begin_tx(g, err) == 0) rc = create_table(g, err);
  }
  if (rc == 0) rc = ps_stage_commit(g, err);
  sqlite3_stmt *st = NULL;
  if (status && sqlite3_prepare_v2(g->store->db,
                                   "UPDATE _psurvey_tables SET finished=?, status=?, ok=?, failed=? WHERE name=?",
                                   -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_double(st, 1, (double)ps_now_us() / 1e6);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ok);
    sqlite3_bind_int64(st, 4, failed);
    sqlite3_bind_text(st, 5, g->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE && rc == 0) rc = db_fail(g->store->db, err, "finishing the stage");
  }
  sqlite3_finalize(st);
  sqlite3_finalize(g->insert);
  sqlite3_finalize(g->insert_many);
  sqlite3_finalize(g->attempt);
  free(g->params);
  ps_buf_free(&g->pending_bytes);
  for (int k = 0; k < g->ncols; k++) free(g->cols[k].name);
  free(g->cols);
  free(g->lastmap);
  free(g->name);
  ps_buf_free(&g->scratch);
  free(g);
  return rc;
}

/* Reading. */

struct ps_cursor_s {
  ps_memcursor_t *mem; /* a stage of a store in memory; else SQLite: */
  sqlite3_stmt *st;
  int ncols;
  char **names;
  int *masks; /* -1 for psurvey's own columns */
  ps_buf_t scratch;
};

static const char *view_where(int view) {
  return view == PS_VIEW_OK        ? " WHERE _status = 'ok'"
         : view == PS_VIEW_MISSING ? " WHERE _status <> 'ok'"
                                   : "";
}

int ps_cursor_open(ps_store_t *s, const char *table, int view, int64_t only, ps_cursor_t **out,
                   ps_err_t *err) {
  ps_memstage_t *m = s->memory ? find_mem(s, table) : NULL;
  if (m) {
    ps_cursor_t *c = calloc(1, sizeof *c);
    if (c == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
    ps_buf_init(&c->scratch);
    if (ps_memcursor_open(m, view, only, &c->mem, err) != 0) {
      free(c);
      return PS_ENOMEM;
    }
    *out = c;
    return 0;
  }
  if (!table_exists(s->db, table)) return ps_err_set(err, PS_EDB, "no table '%s' in '%s'", table, s->path);
  ps_cursor_t *c = calloc(1, sizeof *c);
  if (c == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  ps_buf_init(&c->scratch);
  /* The user's columns, in the order they appeared, with their types. */
  sqlite3_stmt *cols;
  int cap = 16;
  c->names = malloc(sizeof(char *) * (size_t)cap);
  c->masks = malloc(sizeof(int) * (size_t)cap);
  if (sqlite3_prepare_v2(s->db,
                         "SELECT name, role, types FROM _psurvey_columns WHERE tbl=? ORDER BY position", -1,
                         &cols, NULL) != SQLITE_OK) {
    ps_cursor_close(c);
    return db_fail(s->db, err, "reading columns");
  }
  sqlite3_bind_text(cols, 1, table, -1, SQLITE_STATIC);
  const char *extra_missing[] = {"_index", "_status", "_exception", "_traceback"};
  while (sqlite3_step(cols) == SQLITE_ROW) {
    const char *role = (const char *)sqlite3_column_text(cols, 1);
    if (view == PS_VIEW_MISSING && strcmp(role, "result") == 0) continue;
    if (c->ncols + NMETA >= cap) {
      cap *= 2;
      char **n = realloc(c->names, sizeof(char *) * (size_t)cap);
      int *m = realloc(c->masks, sizeof(int) * (size_t)cap);
      if (n) c->names = n;
      if (m) c->masks = m;
      if (!n || !m) break;
    }
    c->names[c->ncols] = strdup((const char *)sqlite3_column_text(cols, 0));
    c->masks[c->ncols++] = sqlite3_column_int(cols, 2);
  }
  sqlite3_finalize(cols);
  if (view == PS_VIEW_MISSING)
    for (int k = 0; k < 4; k++) c->names[c->ncols] = strdup(extra_missing[k]), c->masks[c->ncols++] = -1;
  if (view == PS_VIEW_ALL)
    for (int k = 0; k < NMETA; k++) c->names[c->ncols] = strdup(meta_cols[k]), c->masks[c->ncols++] = -1;
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "SELECT ");
  for (int k = 0; k < c->ncols; k++) {
    if (k) ps_buf_putc(&q, ',');
    put_ident(&q, c->names[k], strlen(c->names[k]));
  }
  if (c->ncols == 0) ps_buf_puts(&q, "NULL");
  ps_buf_puts(&q, " FROM ");
  put_ident(&q, table, strlen(table));
  ps_buf_puts(&q, view_where(view));
  if (only > 0) ps_buf_printf(&q, "%s _index = %lld", view == PS_VIEW_ALL ? " WHERE" : " AND", (long long)only);
  ps_buf_puts(&q, " ORDER BY _index");
  const char *sql = sql_of(&q);
  int rc = sql ? sqlite3_prepare_v2(s->db, sql, -1, &c->st, NULL) : SQLITE_NOMEM;
  ps_buf_free(&q);
  if (rc != SQLITE_OK) {
    db_fail(s->db, err, "reading results");
    ps_cursor_close(c);
    return PS_EDB;
  }
  *out = c;
  return 0;
}

int ps_cursor_ncols(const ps_cursor_t *c) { return c->mem ? ps_memcursor_ncols(c->mem) : c->ncols; }
const char *ps_cursor_colname(const ps_cursor_t *c, int i) {
  return c->mem ? ps_memcursor_colname(c->mem, i) : c->names[i];
}

int ps_cursor_step(ps_cursor_t *c, ps_err_t *err) {
  if (c->mem) {
    int rc = ps_memcursor_step(c->mem);
    return rc >= 0 ? rc : ps_err_set(err, PS_EPROTO, "malformed row in memory");
  }
  int rc = sqlite3_step(c->st);
  if (rc == SQLITE_ROW) return 1;
  if (rc == SQLITE_DONE) return 0;
  return db_fail(sqlite3_db_handle(c->st), err, "reading results");
}

int ps_cursor_cell(ps_cursor_t *c, int i, ps_item_t *it) {
  if (c->mem) return ps_memcursor_cell(c->mem, i, it);
  int mask = c->masks[i];
  switch (sqlite3_column_type(c->st, i)) {
    case SQLITE_NULL: it->type = PS_V_NIL; return 0;
    case SQLITE_INTEGER:
      it->i = sqlite3_column_int64(c->st, i);
      it->type = mask > 0 && (mask & M_BOOL) && !(mask & M_INT) ? PS_V_BOOL : PS_V_INT;
      return 0;
    case SQLITE_FLOAT:
      it->type = PS_V_FLOAT;
      it->d = sqlite3_column_double(c->st, i);
      return 0;
    case SQLITE_TEXT:
      it->s = (const char *)sqlite3_column_text(c->st, i);
      it->len = (size_t)sqlite3_column_bytes(c->st, i);
      it->type = PS_V_STR;
      if (mask > 0 && (mask & M_JSON) && !(mask & M_STR)) {
        c->scratch.len = 0;
        if (ps_json_read(it->s, it->len, &c->scratch) != 0) return PS_EPROTO;
        it->type = PS_V_TABLE;
        it->s = c->scratch.data;
        it->len = c->scratch.len;
      }
      return 0;
    default:
      it->s = sqlite3_column_blob(c->st, i);
      it->len = (size_t)sqlite3_column_bytes(c->st, i);
      if (it->s == NULL) it->s = "";
      it->type = PS_V_STR;
      if (mask > 0 && (mask & M_CODEC) && !(mask & M_BIN)) {
        /* A value encoding: a table or a NaN. */
        ps_reader_t r;
        ps_reader_init(&r, it->s, it->len);
        ps_item_t inner;
        const char *bytes = it->s;
        size_t n = it->len;
        if (ps_read_item(&r, &inner) != 0) return PS_EPROTO;
        if (inner.type == PS_V_TABLE) {
          it->type = PS_V_TABLE;
          it->s = bytes;
          it->len = n;
        } else {
          *it = inner;
        }
      }
      return 0;
  }
}

void ps_cursor_close(ps_cursor_t *c) {
  if (c == NULL) return;
  ps_memcursor_close(c->mem);
  sqlite3_finalize(c->st);
  for (int k = 0; k < c->ncols; k++) free(c->names[k]);
  free(c->names);
  free(c->masks);
  ps_buf_free(&c->scratch);
  free(c);
}

int64_t ps_store_count(ps_store_t *s, const char *table, int view, ps_err_t *err) {
  ps_memstage_t *m = s->memory ? find_mem(s, table) : NULL;
  if (m) return ps_memstage_count(m, view);
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "SELECT count(*) FROM ");
  put_ident(&q, table, strlen(table));
  ps_buf_puts(&q, view_where(view));
  sqlite3_stmt *st;
  const char *sql = sql_of(&q);
  int64_t n = -1;
  if (sql && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  ps_buf_free(&q);
  if (n < 0) return db_fail(s->db, err, "counting rows");
  return n;
}
