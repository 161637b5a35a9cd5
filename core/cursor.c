/*
 * cursor.c: reading the rows of a table back (store.h), every value with
 * its own type: a cell's SQLite value, and its row's _types note when it
 * has one (celltypes.h). A stage of a store in memory is read through
 * memstage.c. Any other table of the database (an attempts table,
 * _psurvey_runs) reads as SQLite has it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "celltypes.h"
#include "census.h"
#include "json.h"
#include "store_private.h"

struct ps_cursor_s {
  ps_memcursor_t *mem; /* a stage of a store in memory; else SQLite: */
  sqlite3_stmt *st;
  int ncols; /* columns shown; the statement has _types after them */
  int cap;
  char **names;
  int *role;  /* of the column shown: 0 pset, 1 result, -1 psurvey's or another table's */
  int *shown; /* column position (in _psurvey_columns) -> column shown, or -1 */
  int npos;   /* positions of the stage's columns */
  int stage;  /* a stage's table: its _types column follows the shown ones */
  /* The notes of the current row, by column shown. */
  unsigned char *ntype, *nrole;
  int *touched;
  int ntouched;
  ps_buf_t scratch;
};

static int add_shown(ps_cursor_t *c, const char *name, int role) {
  if (c->ncols == c->cap) {
    int cap = c->cap ? c->cap * 2 : 32;
    char **n = realloc(c->names, sizeof(char *) * (size_t)cap);
    if (n) c->names = n;
    int *r = realloc(c->role, sizeof(int) * (size_t)cap);
    if (r) c->role = r;
    if (!n || !r) return PS_ENOMEM;
    c->cap = cap;
  }
  if ((c->names[c->ncols] = strdup(name)) == NULL) return PS_ENOMEM;
  c->role[c->ncols++] = role;
  return 0;
}

/* The user's columns of a stage, in the order they appeared (the missing
   view: those that have held a pset key), then psurvey's for the view. */
static int stage_columns(ps_store_t *s, ps_cursor_t *c, const char *table, int view,
                         ps_err_t *err) {
  sqlite3_stmt *cols;
  if (ps__prepare(s->db, PS_SQL_COLUMNS, NULL, &cols) != SQLITE_OK)
    return ps__db_fail(s->db, err, "reading columns");
  sqlite3_bind_text(cols, 1, table, -1, SQLITE_STATIC);
  int rc = 0, npos = 0, cappos = 0;
  int *shown = NULL;
  while (rc == 0 && sqlite3_step(cols) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(cols, 0);
    const char *role = (const char *)sqlite3_column_text(cols, 1);
    int types = sqlite3_column_int(cols, 2), pos = sqlite3_column_int(cols, 3);
    int is_result = role && strcmp(role, "result") == 0;
    if (pos < 0 || pos > 100000 || name == NULL) {
      rc = ps_err_set(err, PS_EPROTO, "malformed columns of table '%s' in _psurvey_columns", table);
      break;
    }
    if (pos >= cappos) {
      int cap = pos + 64;
      int *more = realloc(shown, sizeof(int) * (size_t)cap);
      if (more == NULL) {
        rc = ps_err_set(err, PS_ENOMEM, "out of memory");
        break;
      }
      for (int k = cappos; k < cap; k++) more[k] = -1;
      shown = more;
      cappos = cap;
    }
    if (pos >= npos) npos = pos + 1;
    if (view == PS_VIEW_MISSING && is_result && !(types & PS_M_BOTH_ROLES)) continue;
    shown[pos] = c->ncols;
    if (add_shown(c, name, is_result) != 0) rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  sqlite3_finalize(cols);
  c->shown = shown;
  c->npos = npos;
  if (rc != 0) return rc;
  static const int missing_meta[] = {PS_META_INDEX, PS_META_STATUS, PS_META_EXCEPTION,
                                     PS_META_TRACEBACK};
  if (view == PS_VIEW_MISSING)
    for (int k = 0; k < 4 && rc == 0; k++)
      rc = add_shown(c, ps_meta_columns[missing_meta[k]], PS_ROLE_META);
  if (view == PS_VIEW_ALL)
    for (int k = 0; k < PS_NMETA - 1 && rc == 0; k++)
      rc = add_shown(c, ps_meta_columns[k], PS_ROLE_META);
  return rc ? ps_err_set(err, PS_ENOMEM, "out of memory") : 0;
}

/* Another table: its columns as SQLite has them. */
static int plain_columns(ps_store_t *s, ps_cursor_t *c, const char *table, ps_err_t *err) {
  ps_buf_t q;
  sqlite3_stmt *st;
  ps_buf_init(&q);
  ps_buf_puts(&q, "SELECT * FROM ");
  ps__put_ident(&q, table, strlen(table));
  const char *sql = ps__sql_of(&q);
  int rc = sql && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK
               ? 0
               : ps__db_fail(s->db, err, "reading");
  ps_buf_free(&q);
  if (rc != 0) return rc;
  for (int k = 0; k < sqlite3_column_count(st) && rc == 0; k++)
    if (add_shown(c, sqlite3_column_name(st, k), PS_ROLE_META) != 0)
      rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  sqlite3_finalize(st);
  return rc;
}

/* A cursor with nothing yet, counted (census.h) until ps_cursor_close. */
static ps_cursor_t *cursor_new(void) {
  ps_cursor_t *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  ps_buf_init(&c->scratch);
  ps_census_add(PS_CENSUS_CURSORS, 1);
  return c;
}

int ps__cursor_of(sqlite3_stmt *st, ps_cursor_t **out, ps_err_t *err) {
  ps_cursor_t *c = cursor_new();
  if (c == NULL) {
    sqlite3_finalize(st);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  c->st = st;
  for (int k = 0; k < sqlite3_column_count(st); k++)
    if (add_shown(c, sqlite3_column_name(st, k), PS_ROLE_META) != 0) {
      ps_cursor_close(c);
      return ps_err_set(err, PS_ENOMEM, "out of memory");
    }
  *out = c;
  return 0;
}

static int is_stage(ps_store_t *s, const char *table) {
  sqlite3_stmt *st;
  int found = 0;
  if (ps__prepare(s->db, PS_SQL_IS_STAGE, NULL, &st) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

int ps_cursor_open(ps_store_t *s, const char *table, int view, int64_t only, ps_cursor_t **out,
                   ps_err_t *err) {
  ps_memstage_t *m = ps__store_memstage(s, table);
  ps_cursor_t *c = cursor_new();
  if (c == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  if (m) {
    if (ps_memcursor_open(m, view, only, &c->mem, err) != 0) {
      ps_cursor_close(c);
      return PS_ENOMEM;
    }
    *out = c;
    return 0;
  }
  char name[PS_NAME_MAX + 200];
  if (!ps__table_name(s->db, table, name, sizeof name)) {
    ps_cursor_close(c);
    return ps_err_set(err, PS_EDB, "no table '%s' in '%s'", table, s->path);
  }
  c->stage = is_stage(s, name);
  int rc = c->stage ? stage_columns(s, c, name, view, err) : plain_columns(s, c, name, err);
  if (rc == 0 && c->ncols > 0) {
    c->ntype = calloc((size_t)c->ncols, 1);
    c->nrole = calloc((size_t)c->ncols, 1);
    c->touched = malloc(sizeof(int) * (size_t)c->ncols);
    if (!c->ntype || !c->nrole || !c->touched) rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "SELECT ");
  for (int k = 0; k < c->ncols; k++) {
    if (k) ps_buf_putc(&q, ',');
    ps__put_ident(&q, c->names[k], strlen(c->names[k]));
  }
  if (c->stage) ps_buf_printf(&q, "%s_types", c->ncols ? "," : "");
  if (c->ncols == 0 && !c->stage) ps_buf_puts(&q, "NULL");
  ps_buf_puts(&q, " FROM ");
  ps__put_ident(&q, name, strlen(name));
  if (c->stage) {
    ps_buf_puts(&q, ps__view_where(view));
    if (only > 0)
      ps_buf_printf(&q, "%s _index = %lld", view == PS_VIEW_ALL ? " WHERE" : " AND",
                    (long long)only);
    ps_buf_puts(&q, " ORDER BY _index");
  }
  const char *sql = ps__sql_of(&q);
  if (rc == 0 && (sql == NULL || sqlite3_prepare_v2(s->db, sql, -1, &c->st, NULL) != SQLITE_OK))
    rc = c->stage ? ps_err_set(err, PS_EDB,
                               "cannot read table '%s': %s (was it written by an older psurvey?)",
                               name, sqlite3_errmsg(s->db))
                  : ps__db_fail(s->db, err, "reading results");
  ps_buf_free(&q);
  if (rc != 0) {
    ps_cursor_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

int ps_cursor_ncols(const ps_cursor_t *c) { return c->mem ? ps_memcursor_ncols(c->mem) : c->ncols; }

const char *ps_cursor_colname(const ps_cursor_t *c, int i) {
  return c->mem ? ps_memcursor_colname(c->mem, i) : c->names[i];
}

/* Reads the current row's _types notes into ntype and nrole. */
static int read_notes(ps_cursor_t *c) {
  for (int k = 0; k < c->ntouched; k++) c->ntype[c->touched[k]] = c->nrole[c->touched[k]] = 0;
  c->ntouched = 0;
  if (!c->stage || sqlite3_column_type(c->st, c->ncols) == SQLITE_NULL) return 0;
  const char *text = (const char *)sqlite3_column_text(c->st, c->ncols);
  size_t n = (size_t)sqlite3_column_bytes(c->st, c->ncols), pos = 0;
  ps_cellnote_t note;
  int rc;
  while ((rc = ps_cellnote_next(text, n, &pos, c->npos, &note)) == 1) {
    int i = c->shown[note.col];
    if (i < 0) continue; /* a column this view does not show */
    if (!c->ntype[i] && !c->nrole[i]) c->touched[c->ntouched++] = i;
    c->ntype[i] = (unsigned char)note.type;
    c->nrole[i] = (unsigned char)note.role;
  }
  return rc;
}

int ps_cursor_step(ps_cursor_t *c, ps_err_t *err) {
  if (c->mem) {
    int rc = ps_memcursor_step(c->mem);
    return rc >= 0 ? rc : ps_err_set(err, PS_EPROTO, "malformed row in memory");
  }
  int rc = sqlite3_step(c->st);
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) return ps__db_fail(sqlite3_db_handle(c->st), err, "reading results");
  if (read_notes(c) != 0) return ps_err_set(err, PS_EPROTO, "a row with a malformed _types note");
  return 1;
}

/* A table kept as a value encoding: checked whole, so that what it hands
   out is well formed. */
static int codec_table(ps_item_t *it) {
  ps_reader_t r;
  ps_item_t head;
  ps_reader_init(&r, it->s, it->len);
  if (ps_read_item(&r, &head) != 0 || head.type != PS_V_TABLE) return PS_EPROTO;
  ps_reader_init(&r, it->s, it->len);
  if (ps_skip_value(&r, 0) != 0 || ps_reader_left(&r) != 0) return PS_EPROTO;
  it->type = PS_V_TABLE;
  return 0;
}

int ps_cursor_cell(ps_cursor_t *c, int i, ps_item_t *it) {
  if (c->mem) return ps_memcursor_cell(c->mem, i, it);
  int type = c->ntype ? c->ntype[i] : 0;
  switch (sqlite3_column_type(c->st, i)) {
    case SQLITE_NULL:
      if (type == PS_CELL_NAN) {
        it->type = PS_V_FLOAT;
        it->d = NAN;
        return 0;
      }
      it->type = PS_V_NIL;
      return type ? PS_EPROTO : 0;
    case SQLITE_INTEGER:
      it->i = sqlite3_column_int64(c->st, i);
      it->type = PS_V_INT;
      if (type == PS_CELL_BOOL) {
        if (it->i != 0 && it->i != 1) return PS_EPROTO;
        it->type = PS_V_BOOL;
      }
      return type && type != PS_CELL_BOOL ? PS_EPROTO : 0;
    case SQLITE_FLOAT:
      it->type = PS_V_FLOAT;
      it->d = sqlite3_column_double(c->st, i);
      return type ? PS_EPROTO : 0;
    case SQLITE_TEXT:
      it->s = (const char *)sqlite3_column_text(c->st, i);
      it->len = (size_t)sqlite3_column_bytes(c->st, i);
      it->type = PS_V_STR;
      if (type == PS_CELL_JSON) {
        c->scratch.len = 0;
        if (ps_json_read(it->s, it->len, &c->scratch) != 0 || c->scratch.failed) return PS_EPROTO;
        it->s = c->scratch.data;
        it->len = c->scratch.len;
        return codec_table(it);
      }
      return type ? PS_EPROTO : 0;
    default:
      it->s = sqlite3_column_blob(c->st, i);
      it->len = (size_t)sqlite3_column_bytes(c->st, i);
      if (it->s == NULL) it->s = "";
      it->type = PS_V_STR;
      if (type == PS_CELL_CODEC) return codec_table(it);
      return type ? PS_EPROTO : 0;
  }
}

int ps_cursor_role(const ps_cursor_t *c, int i) {
  if (c->mem) return ps_memcursor_role(c->mem, i);
  int role = c->role[i];
  if (role == PS_ROLE_META || !c->nrole || !c->nrole[i]) return role;
  return c->nrole[i] == PS_CELL_PSET ? PS_ROLE_PSET : PS_ROLE_RESULT;
}

void ps_cursor_close(ps_cursor_t *c) {
  if (c == NULL) return;
  ps_census_add(PS_CENSUS_CURSORS, -1);
  ps_memcursor_close(c->mem);
  sqlite3_finalize(c->st);
  for (int k = 0; k < c->ncols; k++) free(c->names[k]);
  free(c->names);
  free(c->role);
  free(c->shown);
  free(c->ntype);
  free(c->nrole);
  free(c->touched);
  ps_buf_free(&c->scratch);
  free(c);
}
