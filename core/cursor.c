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

/* A column the view could show: its name, its role and its position in
   _psurvey_columns (-1: psurvey's, or another table's). */
typedef struct candidate_s {
  char *name;
  int role, pos;
} candidate_t;

static int add_candidate(candidate_t **cs, int *n, int *cap, const char *name, int role, int pos) {
  if (*n == *cap) {
    int more = *cap ? *cap * 2 : 32;
    candidate_t *c = realloc(*cs, sizeof **cs * (size_t)more);
    if (c == NULL) return PS_ENOMEM;
    *cs = c;
    *cap = more;
  }
  if (((*cs)[*n].name = strdup(name)) == NULL) return PS_ENOMEM;
  (*cs)[*n].role = role;
  (*cs)[(*n)++].pos = pos;
  return 0;
}

/* Shows the candidates: all of them, or those q->columns names, in its
   order (an unknown name is an error that lists the columns there are). */
static int show(ps_cursor_t *c, candidate_t *cs, int n, const ps_query_t *q, const char *table,
                ps_err_t *err) {
  if (q == NULL || q->ncolumns == 0) {
    for (int k = 0; k < n; k++) {
      if (cs[k].pos >= 0) c->shown[cs[k].pos] = c->ncols;
      if (add_shown(c, cs[k].name, cs[k].role) != 0)
        return ps_err_set(err, PS_ENOMEM, "out of memory");
    }
    return 0;
  }
  for (int j = 0; j < q->ncolumns; j++) {
    int found = -1;
    for (int k = 0; k < n && found < 0; k++)
      if (strcmp(cs[k].name, q->columns[j]) == 0) found = k;
    if (found < 0) {
      ps_buf_t names;
      ps_buf_init(&names);
      for (int k = 0; k < n; k++) ps_buf_printf(&names, "%s%s", k ? ", " : "", cs[k].name);
      int rc = ps_err_set(err, PS_EVALUE, "no column '%s' in table '%s' (it has %s)", q->columns[j],
                          table, names.failed || names.len == 0 ? "none" : ps__sql_of(&names));
      ps_buf_free(&names);
      return rc;
    }
    if (cs[found].pos >= 0) c->shown[cs[found].pos] = c->ncols;
    if (add_shown(c, cs[found].name, cs[found].role) != 0)
      return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  return 0;
}

static void free_candidates(candidate_t *cs, int n) {
  for (int k = 0; k < n; k++) free(cs[k].name);
  free(cs);
}

/* The user's columns of a stage, in the order they appeared (the missing
   view: those that have held a pset key), then psurvey's for the view. */
static int stage_columns(ps_store_t *s, ps_cursor_t *c, const char *table, int view,
                         const ps_query_t *q, ps_err_t *err) {
  sqlite3_stmt *cols;
  if (ps__prepare(s->db, PS_SQL_COLUMNS, NULL, &cols) != SQLITE_OK)
    return ps__db_fail(s->db, err, "reading columns");
  sqlite3_bind_text(cols, 1, table, -1, SQLITE_STATIC);
  int rc = 0, npos = 0, cappos = 0, n = 0, cap = 0;
  int *shown = NULL;
  candidate_t *cs = NULL;
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
      int more = pos + 64;
      int *grown = realloc(shown, sizeof(int) * (size_t)more);
      if (grown == NULL) {
        rc = ps_err_set(err, PS_ENOMEM, "out of memory");
        break;
      }
      for (int k = cappos; k < more; k++) grown[k] = -1;
      shown = grown;
      cappos = more;
    }
    if (pos >= npos) npos = pos + 1;
    if (view == PS_VIEW_MISSING && is_result && !(types & PS_M_BOTH_ROLES)) continue;
    if (add_candidate(&cs, &n, &cap, name, is_result, pos) != 0)
      rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  sqlite3_finalize(cols);
  c->shown = shown;
  c->npos = npos;
  static const int missing_meta[] = {PS_META_INDEX, PS_META_STATUS, PS_META_EXCEPTION,
                                     PS_META_TRACEBACK};
  /* A table of an older psurvey, never resumed since, has no _run. */
  int has_run = view == PS_VIEW_MISSING && !(q && q->meta)
                    ? 0
                    : ps__has_column(s->db, table, ps_meta_columns[PS_META_RUN]);
  if (view == PS_VIEW_ALL || (q && q->meta)) {
    for (int k = 0; k < PS_NMETA - 1 && rc == 0; k++)
      if (k != PS_META_RUN || has_run)
        rc = add_candidate(&cs, &n, &cap, ps_meta_columns[k], PS_ROLE_META, -1);
  } else if (view == PS_VIEW_MISSING) {
    for (int k = 0; k < 4 && rc == 0; k++)
      rc = add_candidate(&cs, &n, &cap, ps_meta_columns[missing_meta[k]], PS_ROLE_META, -1);
  }
  if (rc == PS_ENOMEM) rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  if (rc == 0) rc = show(c, cs, n, q, table, err);
  free_candidates(cs, n);
  return rc;
}

/* Another table: its columns as SQLite has them. */
static int plain_columns(ps_store_t *s, ps_cursor_t *c, const char *table, const ps_query_t *q,
                         ps_err_t *err) {
  ps_buf_t b;
  sqlite3_stmt *st;
  ps_buf_init(&b);
  ps_buf_puts(&b, "SELECT * FROM ");
  ps__put_ident(&b, table, strlen(table));
  const char *sql = ps__sql_of(&b);
  int rc = sql && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK
               ? 0
               : ps__db_fail(s->db, err, "reading");
  ps_buf_free(&b);
  if (rc != 0) return rc;
  int n = 0, cap = 0;
  candidate_t *cs = NULL;
  for (int k = 0; k < sqlite3_column_count(st) && rc == 0; k++)
    if (add_candidate(&cs, &n, &cap, sqlite3_column_name(st, k), PS_ROLE_META, -1) != 0)
      rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  sqlite3_finalize(st);
  if (rc == 0) rc = show(c, cs, n, q, table, err);
  free_candidates(cs, n);
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

/* The rest of a reading's statement: its filter, then (unless counting)
   its order and limit. */
static int put_shape(ps_buf_t *b, int stage, int view, const ps_query_t *q, int counting,
                     ps_err_t *err) {
  const char *where = stage ? ps__view_where(view) : "";
  ps_buf_puts(b, where);
  const char *and = where[0] ? " AND" : " WHERE";
  if (q && q->only > 0) {
    ps_buf_printf(b, "%s _index = %lld", and, (long long)q->only);
    and = " AND";
  }
  if (q && q->where) {
    int rc = ps__where_check(q->where, err);
    if (rc != 0) return rc;
    /* On lines of its own, inside parentheses it cannot close. */
    ps_buf_printf(b, "%s (\n%s\n)", and, q->where);
  }
  if (counting) return 0;
  ps_buf_puts(b, " ORDER BY ");
  for (int k = 0; q && k < q->norder; k++) {
    const char *col = q->order[k];
    int desc = col[0] == '-';
    ps__put_ident(b, col + desc, strlen(col + desc));
    ps_buf_puts(b, desc ? " DESC, " : ", ");
  }
  ps_buf_puts(b, stage ? "_index" : "rowid");
  if (q && q->limit > 0) ps_buf_printf(b, " LIMIT %lld", (long long)q->limit);
  return 0;
}

int ps_cursor_open(ps_store_t *s, const char *table, int view, const ps_query_t *q,
                   ps_cursor_t **out, ps_err_t *err) {
  ps_memstage_t *m = ps__store_memstage(s, table);
  ps_cursor_t *c = cursor_new();
  if (c == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  if (m) {
    if (q && (q->where || q->norder || q->ncolumns || q->limit || q->meta)) {
      ps_cursor_close(c);
      return ps_err_set(err, PS_EVALUE,
                        "table '%s' is kept in memory: filtering, sorting and choosing columns "
                        "need a database file (option db)",
                        table);
    }
    if (ps_memcursor_open(m, view, q ? q->only : 0, &c->mem, err) != 0) {
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
  int rc = c->stage ? stage_columns(s, c, name, view, q, err) : plain_columns(s, c, name, q, err);
  if (rc == 0 && c->ncols > 0) {
    c->ntype = calloc((size_t)c->ncols, 1);
    c->nrole = calloc((size_t)c->ncols, 1);
    c->touched = malloc(sizeof(int) * (size_t)c->ncols);
    if (!c->ntype || !c->nrole || !c->touched) rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  ps_buf_t b;
  ps_buf_init(&b);
  ps_buf_puts(&b, "SELECT ");
  for (int k = 0; k < c->ncols; k++) {
    if (k) ps_buf_putc(&b, ',');
    ps__put_ident(&b, c->names[k], strlen(c->names[k]));
  }
  if (c->stage) ps_buf_printf(&b, "%s_types", c->ncols ? "," : "");
  if (c->ncols == 0 && !c->stage) ps_buf_puts(&b, "NULL");
  ps_buf_puts(&b, " FROM ");
  ps__put_ident(&b, name, strlen(name));
  if (rc == 0) rc = put_shape(&b, c->stage, view, q, 0, err);
  const char *sql = ps__sql_of(&b);
  int filtered = q && q->where;
  if (rc == 0 && sql == NULL) rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  if (rc == 0) {
    int prc = filtered ? ps__prepare_filtered(s, sql, name, &c->st)
                       : sqlite3_prepare_v2(s->db, sql, -1, &c->st, NULL);
    if (prc == SQLITE_AUTH)
      rc = ps_err_set(err, PS_EVALUE,
                      "the expression may read the columns of '%s' and call functions, nothing "
                      "else",
                      name);
    else if (prc != SQLITE_OK && (filtered || (q && (q->norder || q->ncolumns))))
      rc = ps_err_set(err, PS_EVALUE, "%s", sqlite3_errmsg(s->db));
    else if (prc != SQLITE_OK)
      rc = c->stage ? ps_err_set(err, PS_EDB,
                                 "cannot read table '%s': %s (was it written by an older psurvey?)",
                                 name, sqlite3_errmsg(s->db))
                    : ps__db_fail(s->db, err, "reading results");
  }
  ps_buf_free(&b);
  if (rc != 0) {
    ps_cursor_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

int64_t ps_cursor_count(ps_store_t *s, const char *table, int view, const ps_query_t *q,
                        ps_err_t *err) {
  if (ps__store_memstage(s, table) || q == NULL || q->where == NULL)
    return ps_store_count(s, table, view, err);
  char name[PS_NAME_MAX + 200];
  if (!ps__table_name(s->db, table, name, sizeof name))
    return ps_err_set(err, PS_EDB, "no table '%s' in '%s'", table, s->path);
  ps_buf_t b;
  ps_buf_init(&b);
  ps_buf_puts(&b, "SELECT count(*) FROM ");
  ps__put_ident(&b, name, strlen(name));
  int rc = put_shape(&b, is_stage(s, name), view, q, 1, err);
  const char *sql = rc == 0 ? ps__sql_of(&b) : NULL;
  sqlite3_stmt *st = NULL;
  int64_t n = -1;
  if (rc == 0 && sql == NULL) rc = ps_err_set(err, PS_ENOMEM, "out of memory");
  if (rc == 0 && ps__prepare_filtered(s, sql, name, &st) != SQLITE_OK)
    rc = ps_err_set(err, PS_EVALUE, "%s", sqlite3_errmsg(s->db));
  if (rc == 0 && sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  if (rc == 0 && n < 0) rc = ps__db_fail(s->db, err, "counting rows");
  sqlite3_finalize(st);
  ps_buf_free(&b);
  return rc != 0 ? rc : n;
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
