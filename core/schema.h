/*
 * schema.h: the shape of a results database, written once (schema.c):
 * psurvey's own tables and the numbered steps that make them, recorded in
 * the database's user_version; the columns psurvey gives a stage's table
 * and its attempts table; and every statement on psurvey's own tables
 * (_psurvey_tables, _psurvey_columns, _psurvey_runs, _psurvey_heartbeat,
 * the attempts and output tables),
 * by name. The store's files run these statements and spell no SQL of
 * psurvey's tables themselves. Private to the store's files.
 */
#ifndef PS_SCHEMA_H
#define PS_SCHEMA_H

#include <sqlite3.h>

#include "ps.h"
#include "stage.h"

/* The version of psurvey's tables this psurvey writes: the number of the
   last step of the schema (schema.c). */
#define PS_SCHEMA_VERSION 4

/*
 * Brings the database to PS_SCHEMA_VERSION: runs, in one transaction,
 * every step of the schema above the version it records, then records the
 * new version. A database made before versions were recorded (version 0,
 * by an earlier psurvey) may hold some steps already: those are not run
 * again. Such a database that holds them all is read as it is when it
 * cannot be written (read-only, or locked by another program), and its
 * version recorded at a later open. 0; PS_EBUSY; PS_EDB with the SQLite
 * error in the database (the transaction is left for the caller to roll
 * back); PS_EVALUE for a database of a newer psurvey (err says so).
 */
int ps__schema_migrate(sqlite3 *db, ps_err_t *err);

/* The version the database records, or -1 when it cannot be read. */
int ps__schema_version(sqlite3 *db);

/* Bits of _psurvey_columns.types: the kinds of value a column has held,
   and whether its key has had both roles. */
enum {
  PS_M_BOOL = 1,
  PS_M_INT = 2,
  PS_M_FLOAT = 4,
  PS_M_STR = 8,
  PS_M_BIN = 16,
  PS_M_JSON = 32,
  PS_M_CODEC = 64,
  PS_M_NAN = 128,
  PS_M_BOTH_ROLES = 256,
};

/* The SQLite types of psurvey's columns of a stage's table (PS_META_*,
   stage.h); _index is the table's key. */
extern const char *const ps__meta_types[PS_NMETA];

/* An attempts table's columns, in the order an attempt binds them:
   _index, attempt, kind, message, traceback, worker, host, start,
   duration, cpu, memory, limit_timeout, limit_memory, hash. */
#define PS_ATTEMPT_NCOLS 14

/*
 * The statements, by name. In a statement's text, %T stands for the table
 * it is given, and %A for the attempts table of the stage it is given
 * (the stage's name and "_attempts"), and %O for its output table (the
 * stage's name and "_output"), each quoted. Parameters are
 * numbered as each statement's comment in schema.c says.
 */
enum {
  PS_SQL_TABLE_NAME,      /* a table's name as the database spells it */
  PS_SQL_NAME_TAKEN,      /* whether any table, index... has the name */
  PS_SQL_STAGE_NAME,      /* a stage's name as _psurvey_tables spells it */
  PS_SQL_IS_STAGE,        /* whether a table is a stage */
  PS_SQL_STAGE_CREATED,   /* when a stage was made */
  PS_SQL_STAGE_INSERT,    /* records a new stage */
  PS_SQL_STAGE_RESUME,    /* records a stage resumed */
  PS_SQL_STAGE_COUNTS,    /* a stage's counts, at each commit */
  PS_SQL_STAGE_END,       /* how a stage ended */
  PS_SQL_STAGE_RENAME,    /* a stage set aside under another name */
  PS_SQL_STAGE_ASIDE,     /* records the unmatched rows a resume set aside (%T) */
  PS_SQL_COLUMNS,         /* a stage's columns, in order */
  PS_SQL_COLUMN_SAVE,     /* records a column */
  PS_SQL_COLUMNS_RENAME,  /* a stage's columns, for its new name */
  PS_SQL_COLUMNS_COPY,    /* a stage's columns, for the rows set aside */
  PS_SQL_ATTEMPTS_CREATE, /* a stage's attempts table (%A) */
  PS_SQL_ATTEMPT_INSERT,  /* one attempt (%A) */
  PS_SQL_RUN_HOLDER,      /* the pid and host of the run that writes */
  PS_SQL_RUN_BEGIN,       /* records a run that starts */
  PS_SQL_RUN_END,         /* how a run ended */
  PS_SQL_STAGE_INFO,      /* a stage's record, for the bindings */
  PS_SQL_STAGE_WORKER,    /* a stage's worker and user value, for replay */
  PS_SQL_STAGES,          /* every stage, for `psurvey results` */
  PS_SQL_ATTEMPTS,        /* a stage's failed attempts (%A) */
  PS_SQL_LAST_LIMITS,     /* the limits of the last attempt at a pset (%A) */
  PS_SQL_OUTPUT_CREATE,   /* a stage's output table (%O) */
  PS_SQL_OUTPUT_INSERT,   /* what one attempt wrote (%O) */
  PS_SQL_OUTPUT,          /* what one attempt at a pset wrote (%O) */
  PS_SQL_NO_OUTPUT,       /* the same columns, no row: a stage without output table */
  PS_SQL_HAS_COLUMN,      /* whether a table has a column */
  PS_SQL_DROP_TABLE,      /* drops a stage's table (%T) */
  PS_SQL_DROP_ATTEMPTS,   /* drops its attempts table (%A) */
  PS_SQL_DROP_OUTPUT,     /* drops its output table (%O) */
  PS_SQL_STAGE_FORGET,    /* removes a stage's record */
  PS_SQL_COLUMNS_FORGET,  /* removes its columns' records */
  PS_SQL_COMPACT,         /* gives the free pages back to the file system */
  PS_SQL_HEARTBEAT,       /* the driver's heartbeat: its run's row, replaced */
  PS_NSQL
};

/* An output table's columns, in the order an output binds them: _index,
   _attempt, stdout, stderr. */
#define PS_OUTPUT_NCOLS 4

/* Prepares statement `which`, naming `table` where it has %T, %A or %O.
   SQLITE_OK, or SQLite's error (in db; SQLITE_NOMEM without memory). */
int ps__prepare(sqlite3 *db, int which, const char *table, sqlite3_stmt **st);
/* Whether `table` has `column` (names compared as SQLite does). */
int ps__has_column(sqlite3 *db, const char *table, const char *column);
/* Adds to a stage's table the psurvey columns that an older psurvey did
   not make (_run), inside the caller's transaction; 0 or its error. */
int ps__stage_upgrade(sqlite3 *db, const char *table, ps_err_t *err);
/* Runs statement `which` (no parameters) on `table`. */
int ps__exec_on(sqlite3 *db, int which, const char *table, ps_err_t *err);

#endif
