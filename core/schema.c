/*
 * schema.c: the shape of a results database (schema.h), the one place it
 * is written: the steps that make psurvey's own tables, the layout of a
 * stage's table and of its attempts and output tables, and the statements on
 * psurvey's tables. Not here: when they run (store.c, sqlstage.c,
 * resume.c, cursor.c).
 */
#include "schema.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "store_private.h"

/*
 * The steps of the schema, in order. A database whose user_version is v
 * gets the steps numbered above v. What a step makes (a table, or a
 * column of one) is named, so that a database made before versions were
 * recorded, which may have it already, is not given it twice: the
 * version 0 of every psurvey before this list.
 */
typedef struct step_s {
  int version;
  const char *table, *column; /* what it makes: the table, or this column of it */
  const char *sql;
} step_t;

static const step_t steps[] = {
    /* 1: the stages and their columns. */
    {1, "_psurvey_tables", NULL,
     "CREATE TABLE IF NOT EXISTS _psurvey_tables(name TEXT PRIMARY KEY, created REAL, finished "
     "REAL,"
     " status TEXT, total INTEGER, ok INTEGER, failed INTEGER, options TEXT)"},
    {1, "_psurvey_columns", NULL,
     "CREATE TABLE IF NOT EXISTS _psurvey_columns(tbl TEXT, name TEXT, role TEXT, types INTEGER,"
     " position INTEGER, PRIMARY KEY(tbl, name))"},
    /* 2: the runs, and what replay and resume need of a stage: its run,
       its worker and user value and their hashes, its sandbox, seed and
       limits. */
    {2, "_psurvey_runs", NULL,
     "CREATE TABLE IF NOT EXISTS _psurvey_runs(id INTEGER PRIMARY KEY, started REAL, finished REAL,"
     " status TEXT, script TEXT, script_hash TEXT, host TEXT, pid INTEGER, psurvey TEXT, lua TEXT,"
     " libuv TEXT, sqlite TEXT, options TEXT)"},
    {2, "_psurvey_tables", "run", "ALTER TABLE _psurvey_tables ADD COLUMN run INTEGER"},
    {2, "_psurvey_tables", "code", "ALTER TABLE _psurvey_tables ADD COLUMN code BLOB"},
    {2, "_psurvey_tables", "user", "ALTER TABLE _psurvey_tables ADD COLUMN user BLOB"},
    {2, "_psurvey_tables", "code_hash", "ALTER TABLE _psurvey_tables ADD COLUMN code_hash TEXT"},
    {2, "_psurvey_tables", "user_hash", "ALTER TABLE _psurvey_tables ADD COLUMN user_hash TEXT"},
    {2, "_psurvey_tables", "sandbox", "ALTER TABLE _psurvey_tables ADD COLUMN sandbox TEXT"},
    {2, "_psurvey_tables", "seed", "ALTER TABLE _psurvey_tables ADD COLUMN seed INTEGER"},
    {2, "_psurvey_tables", "timeout", "ALTER TABLE _psurvey_tables ADD COLUMN timeout REAL"},
    {2, "_psurvey_tables", "memory", "ALTER TABLE _psurvey_tables ADD COLUMN memory REAL"},
    /* 3: what a run can be cited by: its command line (a JSON array), its
       working directory, the git commit of its script and whether the work
       tree had changes to tracked files (1, 0; NULL outside git), its note,
       its tags (a JSON object) and its hidden log (relative to cwd). A
       stage's table gains _run when a run resumes it (ps__stage_upgrade). */
    {3, "_psurvey_runs", "argv", "ALTER TABLE _psurvey_runs ADD COLUMN argv TEXT"},
    {3, "_psurvey_runs", "cwd", "ALTER TABLE _psurvey_runs ADD COLUMN cwd TEXT"},
    {3, "_psurvey_runs", "git_commit", "ALTER TABLE _psurvey_runs ADD COLUMN git_commit TEXT"},
    {3, "_psurvey_runs", "git_dirty", "ALTER TABLE _psurvey_runs ADD COLUMN git_dirty INTEGER"},
    {3, "_psurvey_runs", "note", "ALTER TABLE _psurvey_runs ADD COLUMN note TEXT"},
    {3, "_psurvey_runs", "tags", "ALTER TABLE _psurvey_runs ADD COLUMN tags TEXT"},
    {3, "_psurvey_runs", "log", "ALTER TABLE _psurvey_runs ADD COLUMN log TEXT"},
    /* 4: the driver's heartbeat, one row per run, replaced about once a
       second while a stage runs (run.c), for `psurvey status`: the stage,
       when it began and when the row was written (Unix seconds), its
       counts, workers, rate (psets/s over the last seconds), busy workers
       per host (JSON: {"host": {"busy": b, "workers": w}}), run-time
       percentiles (seconds), the time left with its band (seconds, NULL
       when unknown), and the driver's pid and host. */
    {4, "_psurvey_heartbeat", NULL,
     "CREATE TABLE IF NOT EXISTS _psurvey_heartbeat(run INTEGER PRIMARY KEY, stage TEXT, beat REAL,"
     " started REAL, total INTEGER, ok INTEGER, failed INTEGER, active INTEGER, workers INTEGER,"
     " rate REAL, hosts TEXT, p25 REAL, p50 REAL, p75 REAL, p90 REAL, eta REAL, eta_lo REAL,"
     " eta_hi REAL, pid INTEGER, host TEXT)"},
};
#define NSTEPS ((int)(sizeof steps / sizeof steps[0]))

/* Parameters: ?1, ?2... as each comment says. */
static const char *const statements[PS_NSQL] = {
    /* ?1 name */
    [PS_SQL_TABLE_NAME] =
        "SELECT name FROM sqlite_master WHERE type='table' AND name=?1 COLLATE NOCASE",
    /* ?1 name: tables, views, indexes and triggers share one namespace */
    [PS_SQL_NAME_TAKEN] = "SELECT 1 FROM sqlite_master WHERE name=?1 COLLATE NOCASE",
    /* ?1 name */
    [PS_SQL_STAGE_NAME] = "SELECT name FROM _psurvey_tables WHERE name=?1 COLLATE NOCASE",
    /* ?1 name, as stored */
    [PS_SQL_IS_STAGE] = "SELECT 1 FROM _psurvey_tables WHERE name=?1",
    /* ?1 name, as stored */
    [PS_SQL_STAGE_CREATED] = "SELECT created FROM _psurvey_tables WHERE name=?1",
    /* ?1 name, ?2 created, ?3 total, ?4 options, ?5 run, ?6 code, ?7 user,
       ?8 code_hash, ?9 user_hash, ?10 sandbox, ?11 seed, ?12 timeout,
       ?13 memory */
    [PS_SQL_STAGE_INSERT] =
        "INSERT OR REPLACE INTO _psurvey_tables(name, created, status, total, ok, failed, options, "
        "run,"
        " code, user, code_hash, user_hash, sandbox, seed, timeout, memory)"
        " VALUES (?1, ?2, 'running', ?3, 0, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    /* as PS_SQL_STAGE_INSERT, ?2 unused */
    [PS_SQL_STAGE_RESUME] =
        "UPDATE _psurvey_tables SET status='running', total=?3, options=?4, run=?5, code=?6, "
        "user=?7,"
        " code_hash=?8, user_hash=?9, sandbox=?10, seed=?11, timeout=?12, memory=?13, finished=NULL"
        " WHERE name=?1",
    /* ?1 ok, ?2 failed, ?3 name */
    [PS_SQL_STAGE_COUNTS] = "UPDATE _psurvey_tables SET ok=?1, failed=?2 WHERE name=?3",
    /* ?1 finished, ?2 status, ?3 ok, ?4 failed, ?5 name */
    [PS_SQL_STAGE_END] =
        "UPDATE _psurvey_tables SET finished=?1, status=?2, ok=?3, failed=?4 WHERE name=?5",
    /* ?1 name, ?2 new name */
    [PS_SQL_STAGE_RENAME] = "UPDATE _psurvey_tables SET name=?2 WHERE name=?1",
    /* ?1 name of the rows set aside (%T), ?2 their stage, ?3 finished */
    [PS_SQL_STAGE_ASIDE] =
        "INSERT OR REPLACE INTO _psurvey_tables(name, created, finished, status, total, ok, "
        "failed, run)"
        " SELECT ?1, t.created, ?3, 'unmatched', a.n, a.ok, a.n - a.ok, t.run"
        " FROM _psurvey_tables t, (SELECT count(*) n, coalesce(sum(_status = 'ok'), 0) ok FROM %T) "
        "a"
        " WHERE t.name = ?2",
    /* ?1 stage */
    [PS_SQL_COLUMNS] =
        "SELECT name, role, types, position FROM _psurvey_columns WHERE tbl=?1 ORDER BY position",
    /* ?1 stage, ?2 name, ?3 role ('pset' or 'result'), ?4 types (PS_M_*), ?5 position */
    [PS_SQL_COLUMN_SAVE] =
        "INSERT OR REPLACE INTO _psurvey_columns(tbl, name, role, types, position)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
    /* ?1 stage, ?2 its new name */
    [PS_SQL_COLUMNS_RENAME] = "UPDATE _psurvey_columns SET tbl=?2 WHERE tbl=?1",
    /* ?1 the rows set aside, ?2 their stage */
    [PS_SQL_COLUMNS_COPY] =
        "INSERT OR REPLACE INTO _psurvey_columns(tbl, name, role, types, position)"
        " SELECT ?1, name, role, types, position FROM _psurvey_columns WHERE tbl = ?2",
    /* no parameters; the columns of PS_ATTEMPT_NCOLS, in order */
    [PS_SQL_ATTEMPTS_CREATE] =
        "CREATE TABLE IF NOT EXISTS %A(_index INTEGER, attempt INTEGER, kind TEXT, message TEXT, "
        "traceback "
        "TEXT,"
        " worker INTEGER, host TEXT, start REAL, duration REAL, cpu REAL, memory INTEGER, "
        "limit_timeout REAL,"
        " limit_memory REAL, hash INTEGER)",
    /* ?1 .. ?14: the columns of PS_SQL_ATTEMPTS_CREATE */
    [PS_SQL_ATTEMPT_INSERT] = "INSERT INTO %A VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    /* no parameters */
    [PS_SQL_RUN_HOLDER] =
        "SELECT pid, host FROM _psurvey_runs WHERE status = 'running' ORDER BY id DESC LIMIT 1",
    /* ?1 started, ?2 script, ?3 script_hash, ?4 host, ?5 pid, ?6 psurvey, ?7 lua, ?8 libuv, ?9
       sqlite, ?10 options, ?11 argv, ?12 cwd, ?13 git_commit, ?14 git_dirty, ?15 note, ?16 tags,
       ?17 log */
    [PS_SQL_RUN_BEGIN] =
        "INSERT INTO _psurvey_runs(started, status, script, script_hash, host, pid, psurvey, lua,"
        " libuv, sqlite, options, argv, cwd, git_commit, git_dirty, note, tags, log)"
        " VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
        " ?16, ?17)",
    /* ?1 finished, ?2 status, ?3 id */
    [PS_SQL_RUN_END] = "UPDATE _psurvey_runs SET finished = ?1, status = ?2 WHERE id = ?3",
    /* ?1 name */
    [PS_SQL_STAGE_INFO] =
        "SELECT name, status, total, ok, failed, created, finished, run, code_hash, user_hash,"
        " sandbox, seed, timeout, memory FROM _psurvey_tables WHERE name = ?1 COLLATE NOCASE",
    /* ?1 name */
    [PS_SQL_STAGE_WORKER] = "SELECT code, user FROM _psurvey_tables WHERE name = ?1 COLLATE NOCASE",
    /* no parameters */
    [PS_SQL_STAGES] =
        "SELECT name, status, total, ok, failed, created, finished FROM _psurvey_tables"
        " ORDER BY created",
    /* no parameters */
    [PS_SQL_ATTEMPTS] = "SELECT * FROM %A ORDER BY rowid",
    /* ?1 _index */
    [PS_SQL_LAST_LIMITS] =
        "SELECT limit_timeout, limit_memory FROM %A WHERE _index = ?1 ORDER BY attempt DESC LIMIT "
        "1",
    /* no parameters; the columns of PS_OUTPUT_NCOLS, in order. One row
       for each attempt at a pset that wrote anything: what it wrote to
       stdout and to stderr, as the worker kept it (output 'tail': the
       last 64 KiB of each, after a line that says how much was cut). */
    [PS_SQL_OUTPUT_CREATE] =
        "CREATE TABLE IF NOT EXISTS %O(_index INTEGER, _attempt INTEGER,"
        " stdout BLOB, stderr BLOB, PRIMARY KEY(_index, _attempt))",
    /* ?1 .. ?4: the columns of PS_SQL_OUTPUT_CREATE; a pset run again
       (--resume) replaces what its attempt of that number wrote */
    [PS_SQL_OUTPUT_INSERT] = "INSERT OR REPLACE INTO %O VALUES (?1, ?2, ?3, ?4)",
    /* ?1 _index, ?2 _attempt */
    [PS_SQL_OUTPUT] = "SELECT stdout, stderr FROM %O WHERE _index = ?1 AND _attempt = ?2",
    /* no parameters */
    [PS_SQL_NO_OUTPUT] = "SELECT NULL AS stdout, NULL AS stderr WHERE 0",
    /* ?1 table, ?2 column */
    [PS_SQL_HAS_COLUMN] = "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2 COLLATE NOCASE",
    /* no parameters; a stage's table, its attempts and its output table */
    [PS_SQL_DROP_TABLE] = "DROP TABLE IF EXISTS %T",
    [PS_SQL_DROP_ATTEMPTS] = "DROP TABLE IF EXISTS %A",
    [PS_SQL_DROP_OUTPUT] = "DROP TABLE IF EXISTS %O",
    /* ?1 name, as stored */
    [PS_SQL_STAGE_FORGET] = "DELETE FROM _psurvey_tables WHERE name = ?1",
    /* ?1 stage, as stored */
    [PS_SQL_COLUMNS_FORGET] = "DELETE FROM _psurvey_columns WHERE tbl = ?1",
    /* no parameters: the space stages dropped left, given back to the
       file system (the WAL folded into the file, and emptied) */
    [PS_SQL_COMPACT] = "VACUUM; PRAGMA wal_checkpoint(TRUNCATE)",
    /* ?1 .. ?20: the columns of _psurvey_heartbeat, in order */
    [PS_SQL_HEARTBEAT] =
        "INSERT OR REPLACE INTO _psurvey_heartbeat(run, stage, beat, started, total, ok, failed,"
        " active, workers, rate, hosts, p25, p50, p75, p90, eta, eta_lo, eta_hi, pid, host)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
        " ?19, ?20)",
};

/* psurvey's columns of a stage's table that came after such tables were
   first made: a table of an older psurvey gains them when a run writes
   to it again (ps__stage_upgrade). */
static const int later_meta[] = {PS_META_RUN};

const char *const ps__meta_types[PS_NMETA] = {
    [PS_META_INDEX] = "INTEGER PRIMARY KEY",
    [PS_META_STATUS] = "TEXT",
    [PS_META_EXCEPTION] = "TEXT",
    [PS_META_TRACEBACK] = "TEXT",
    [PS_META_ATTEMPT] = "INTEGER",
    [PS_META_WORKER] = "INTEGER",
    [PS_META_HOST] = "TEXT",
    [PS_META_START] = "REAL",
    [PS_META_END] = "REAL",
    [PS_META_DURATION] = "REAL",
    [PS_META_CPU] = "REAL",
    [PS_META_MEMORY] = "INTEGER",
    [PS_META_NAME] = "TEXT",
    [PS_META_HASH] = "INTEGER",
    [PS_META_RUN] = "INTEGER",
    [PS_META_TYPES] = "TEXT",
};

/*
 * A stage's table: _index, then _types, then the user's columns, then the
 * rest of psurvey's. Reading a row decodes its record up to the last
 * column asked for: _types is read with every row, so it comes first.
 * Columns added later (ALTER TABLE) go at the end.
 */
int ps__create_table(ps_sqlstage_t *g, ps_err_t *err) {
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "CREATE TABLE ");
  ps__put_ident(&q, g->name, strlen(g->name));
  ps_buf_printf(&q, "(%s %s,%s %s", ps_meta_columns[PS_META_INDEX], ps__meta_types[PS_META_INDEX],
                ps_meta_columns[PS_META_TYPES], ps__meta_types[PS_META_TYPES]);
  for (int k = 0; k < g->ncols; k++) {
    ps_buf_putc(&q, ',');
    ps__put_ident(&q, g->cols[k].name, g->cols[k].len);
  }
  for (int k = PS_META_INDEX + 1; k < PS_NMETA; k++)
    if (k != PS_META_TYPES) ps_buf_printf(&q, ",%s %s", ps_meta_columns[k], ps__meta_types[k]);
  ps_buf_putc(&q, ')');
  const char *sql = ps__sql_of(&q);
  int rc = sql ? ps__exec(g->store->db, sql, err) : ps_err_set(err, PS_ENOMEM, "out of memory");
  ps_buf_free(&q);
  if (rc != 0) return rc;
  g->created = 1;
  g->ncols_db = g->ncols;
  return 0;
}

int ps__has_column(sqlite3 *db, const char *table, const char *column) {
  sqlite3_stmt *st;
  int found = 0;
  if (ps__prepare(db, PS_SQL_HAS_COLUMN, NULL, &st) != SQLITE_OK) return 0;
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
  found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

int ps__stage_upgrade(sqlite3 *db, const char *table, ps_err_t *err) {
  for (size_t k = 0; k < sizeof later_meta / sizeof later_meta[0]; k++) {
    int m = later_meta[k];
    if (ps__has_column(db, table, ps_meta_columns[m])) continue;
    ps_buf_t q;
    ps_buf_init(&q);
    ps_buf_puts(&q, "ALTER TABLE ");
    ps__put_ident(&q, table, strlen(table));
    ps_buf_printf(&q, " ADD COLUMN %s %s", ps_meta_columns[m], ps__meta_types[m]);
    const char *sql = ps__sql_of(&q);
    int rc = sql ? ps__exec(db, sql, err) : ps_err_set(err, PS_ENOMEM, "out of memory");
    ps_buf_free(&q);
    if (rc != 0) return rc;
  }
  return 0;
}

/* The text of statement `which` with its %T, %A or %O spelled out, in q. */
static const char *statement_on(ps_buf_t *q, int which, const char *table) {
  for (const char *p = statements[which]; *p; p++) {
    if (p[0] == '%' && (p[1] == 'T' || p[1] == 'A' || p[1] == 'O') && table) {
      if (p[1] == 'T') {
        ps__put_ident(q, table, strlen(table));
      } else {
        ps_buf_t name;
        ps_buf_init(&name);
        ps_buf_puts(&name, table);
        ps_buf_puts(&name, p[1] == 'A' ? "_attempts" : "_output");
        ps__put_ident(q, name.data ? name.data : "", name.len);
        q->failed |= name.failed;
        ps_buf_free(&name);
      }
      p++;
    } else {
      ps_buf_putc(q, *p);
    }
  }
  return ps__sql_of(q);
}

int ps__prepare(sqlite3 *db, int which, const char *table, sqlite3_stmt **st) {
  assert(which >= 0 && which < PS_NSQL && statements[which] != NULL);
  *st = NULL;
  if (table == NULL) return sqlite3_prepare_v2(db, statements[which], -1, st, NULL);
  ps_buf_t q;
  ps_buf_init(&q);
  const char *sql = statement_on(&q, which, table);
  int rc = sql ? sqlite3_prepare_v2(db, sql, -1, st, NULL) : SQLITE_NOMEM;
  ps_buf_free(&q);
  return rc;
}

int ps__exec_on(sqlite3 *db, int which, const char *table, ps_err_t *err) {
  ps_buf_t q;
  ps_buf_init(&q);
  const char *sql = statement_on(&q, which, table);
  int rc = sql ? ps__exec(db, sql, err) : ps_err_set(err, PS_ENOMEM, "out of memory");
  ps_buf_free(&q);
  return rc;
}

int ps__schema_version(sqlite3 *db) {
  sqlite3_stmt *st;
  int version = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return version;
}

/* Whether the database has what step s makes. */
static int has(sqlite3 *db, const step_t *s) {
  sqlite3_stmt *st;
  int found = 0;
  const char *sql =
      s->column ? "SELECT 1 FROM pragma_table_info(?1) WHERE name=?2 COLLATE NOCASE"
                : "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1 COLLATE NOCASE";
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
  sqlite3_bind_text(st, 1, s->table, -1, SQLITE_STATIC);
  if (s->column) sqlite3_bind_text(st, 2, s->column, -1, SQLITE_STATIC);
  found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

/* The steps above `version` that the database does not have yet. */
static int missing_steps(sqlite3 *db, int version) {
  int n = 0;
  for (int k = 0; k < NSTEPS; k++)
    if (steps[k].version > version && !has(db, &steps[k])) n++;
  return n;
}

static int newer(int version, ps_err_t *err) {
  return ps_err_set(err, PS_EVALUE,
                    "a newer psurvey wrote it (its tables are of version %d, this psurvey's of %d)",
                    version, PS_SCHEMA_VERSION);
}

int ps__schema_migrate(sqlite3 *db, ps_err_t *err) {
  int version = ps__schema_version(db);
  if (version < 0) return ps__db_fail(db, err, "reading the schema version");
  if (version == PS_SCHEMA_VERSION) return 0;
  if (version > PS_SCHEMA_VERSION) return newer(version, err);
  /* Only a database made before versions were recorded can have every
     step already; then writing its version can wait, if it must. */
  int stamp_only = missing_steps(db, version) == 0;
  int rc = ps__exec(db, "BEGIN IMMEDIATE", err);
  /* Under the write lock, again: another driver may have done it since. */
  if (rc == 0) version = ps__schema_version(db);
  if (rc == 0 && version > PS_SCHEMA_VERSION) rc = newer(version, err);
  for (int k = 0; rc == 0 && k < NSTEPS; k++)
    if (steps[k].version > version && !has(db, &steps[k])) rc = ps__exec(db, steps[k].sql, err);
  if (rc == 0) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", PS_SCHEMA_VERSION);
    rc = ps__exec(db, sql, err);
  }
  if (rc == 0) rc = ps__exec(db, "COMMIT", err);
  if (rc != 0 && stamp_only && rc != PS_EVALUE) {
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return 0;
  }
  return rc;
}
