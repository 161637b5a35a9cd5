/*
 * sqlstage.c: a stage written in SQLite, stage.h's operations over a
 * table of the store's database (memstage.c is the other kind of stage,
 * in memory). A row added is
 * checked and laid out as the parameters of an INSERT at once, so that a
 * row SQLite cannot take fails alone and at once; nothing reaches the
 * database until a commit, which writes every waiting row, attempt and
 * new column in one transaction, and what the psets wrote (their output
 * table, made with the first). Not here: opening the database and
 * beginning a stage (store.c), resume (resume.c), reading (cursor.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celltypes.h"
#include "hash.h"
#include "json.h"
#include "store_private.h"

/* Rows are inserted up to this many at a time (one statement start, one
   cursor, one reset for all): 25% less time in SQLite than one at a time. */
#define MANY_ROWS 32
/* Parameters of an attempt (the columns of <stage>_attempts), and of an
   output (those of <stage>_output). */
#define ATTEMPT_PARAMS PS_ATTEMPT_NCOLS
#define OUTPUT_PARAMS PS_OUTPUT_NCOLS

static void put_int(ps_param_t *v, int64_t i) {
  v->type = SQLITE_INTEGER;
  v->i = i;
}

static void put_float(ps_param_t *v, double d) {
  v->type = SQLITE_FLOAT;
  v->d = d;
}

/* Text or blob (type), copied to b; a NULL s leaves the parameter NULL. */
static void put_bytes(ps_buf_t *b, ps_param_t *v, int type, const char *s, size_t n) {
  if (s == NULL) return;
  v->type = type;
  v->off = b->len;
  v->len = n;
  ps_buf_put(b, s, n);
}

static void bind_param(sqlite3_stmt *st, int p, const ps_param_t *v, const char *bytes) {
  switch (v->type) {
    case SQLITE_INTEGER: sqlite3_bind_int64(st, p, v->i); break;
    case SQLITE_FLOAT: sqlite3_bind_double(st, p, v->d); break;
    case SQLITE_TEXT: sqlite3_bind_text(st, p, bytes + v->off, (int)v->len, SQLITE_STATIC); break;
    case SQLITE_BLOB:
      sqlite3_bind_blob(st, p, v->len ? bytes + v->off : "", (int)v->len, SQLITE_STATIC);
      break;
    default: sqlite3_bind_null(st, p);
  }
}

/* Room for n more parameters in *params, all NULL; NULL when out of memory. */
static ps_param_t *more_params(ps_param_t **params, size_t *len, size_t *cap, size_t n) {
  if (*len + n > *cap) {
    size_t c = *cap ? *cap * 2 : 1024;
    while (c < *len + n) c *= 2;
    ps_param_t *p = realloc(*params, sizeof *p * c);
    if (p == NULL) return NULL;
    *params = p;
    *cap = c;
  }
  ps_param_t *out = *params + *len;
  memset(out, 0, sizeof *out * n);
  *len += n;
  return out;
}

/* Adds one more column slot to g->cols, g->lastmap and g->colstamp. */
static int room_for_column(ps_sqlstage_t *g) {
  if (g->ncols < g->capcols) return 0;
  int cap = g->capcols ? g->capcols * 2 : 16;
  ps_col_t *c = realloc(g->cols, sizeof(ps_col_t) * (size_t)cap);
  if (c) g->cols = c;
  int *m = realloc(g->lastmap, sizeof(int) * (size_t)cap);
  if (m) g->lastmap = m;
  unsigned *stamp = realloc(g->colstamp, sizeof(unsigned) * (size_t)cap);
  if (stamp) {
    memset(stamp + g->capcols, 0, sizeof(unsigned) * (size_t)(cap - g->capcols));
    g->colstamp = stamp;
  }
  if (!c || !m || !stamp) return PS_ENOMEM;
  g->capcols = cap;
  return 0;
}

/* The columns of a table written before, so that rows can be added. */
static int load_columns(ps_sqlstage_t *g, ps_err_t *err) {
  sqlite3_stmt *st;
  sqlite3 *db = g->store->db;
  if (ps__prepare(db, PS_SQL_COLUMNS, NULL, &st) != SQLITE_OK)
    return ps__db_fail(db, err, "reading columns");
  sqlite3_bind_text(st, 1, g->name, -1, SQLITE_STATIC);
  int rc = 0;
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *role = (const char *)sqlite3_column_text(st, 1);
    if (room_for_column(g) != 0) {
      rc = ps_err_set(err, PS_ENOMEM, "out of memory");
      break;
    }
    ps_col_t *c = &g->cols[g->ncols];
    memset(c, 0, sizeof *c);
    c->name = strdup(name ? name : "");
    if (c->name == NULL) {
      rc = ps_err_set(err, PS_ENOMEM, "out of memory");
      break;
    }
    c->len = strlen(c->name);
    c->role = role && strcmp(role, "result") == 0;
    c->mask = sqlite3_column_int(st, 2);
    g->ncols++;
  }
  sqlite3_finalize(st);
  g->ncols_db = g->ncols;
  return rc;
}

/* SQLite's limit on a table's columns, less psurvey's own. */
static int user_columns_max(sqlite3 *db) {
  int n = sqlite3_limit(db, SQLITE_LIMIT_COLUMN, -1) - PS_NMETA;
  return n > 0 ? n : 0;
}

/*
 * Columns for every pset key, before any row: a result key that SQLite
 * cannot tell from a pset key (they differ only in case) then fails its
 * own pset, and a pset key never finds a result key in its way. Keys that
 * no table could hold are an error before anything runs.
 */
static int pset_columns(ps_sqlstage_t *g, const ps_source_t *src, ps_err_t *err) {
  if (src->nkeys < 0 || src->nkeys > g->max_cols)
    return ps_err_set(
        err, PS_EVALUE,
        "the psets have more distinct keys than the %d columns a table may have (SQLite's limit, "
        "less psurvey's own)",
        g->max_cols);
  ps_reader_t r;
  ps_reader_init(&r, src->keys, src->keys_len);
  for (int64_t k = 0; k < src->nkeys; k++) {
    ps_item_t key;
    if (ps_read_item(&r, &key) != 0 || key.type != PS_V_STR)
      return ps_err_set(err, PS_EPROTO, "malformed pset keys");
    int found = 0;
    for (int c = 0; c < g->ncols && !found; c++) {
      if (g->cols[c].len == key.len && memcmp(g->cols[c].name, key.s, key.len) == 0) {
        found = 1;
      } else if (ps__same_name(g->cols[c].name, g->cols[c].len, key.s, key.len)) {
        return ps_err_set(err, PS_EVALUE,
                          "pset key '%.*s' and column '%s' of table '%s' differ only in letter "
                          "case, which SQLite "
                          "column names cannot tell apart: rename the key, or run without --resume",
                          (int)(key.len > 200 ? 200 : key.len), key.s, g->cols[c].name, g->name);
      }
    }
    if (found) continue;
    if (key.len == 0 || memchr(key.s, 0, key.len) || key.s[0] == '_')
      return ps_err_set(err, PS_EVALUE, "pset key '%.*s' cannot be a column name",
                        (int)(key.len > 200 ? 200 : key.len), key.s);
    if (room_for_column(g) != 0) return ps_err_set(err, PS_ENOMEM, "out of memory");
    ps_col_t *c = &g->cols[g->ncols++];
    memset(c, 0, sizeof *c);
    if ((c->name = malloc(key.len + 1)) == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
    memcpy(c->name, key.s, key.len);
    c->name[key.len] = '\0';
    c->len = key.len;
    c->dirty = 1;
  }
  if (g->ncols > g->max_cols)
    return ps_err_set(err, PS_EVALUE,
                      "the psets' keys and the stored table's columns are %d, more than the %d a "
                      "table may have",
                      g->ncols, g->max_cols);
  return 0;
}

/* The rows waiting have one parameter per column there was; a new column
   gives each of them one more (NULL) at the end. Columns are added rarely
   (mostly with the first rows), so this moves little. */
static int widen_pending(ps_sqlstage_t *g) {
  if (g->npending == 0) return 0;
  size_t old = (size_t)(PS_NMETA + g->ncols - 1), now = old + 1;
  if (more_params(&g->params, &g->nparams, &g->capparams, (size_t)g->npending) == NULL)
    return PS_ENOMEM;
  for (int r = g->npending - 1; r >= 0; r--) {
    memmove(g->params + (size_t)r * now, g->params + (size_t)r * old, sizeof(ps_param_t) * old);
    memset(g->params + (size_t)r * now + old, 0, sizeof(ps_param_t));
  }
  return 0;
}

/* The column named exactly s, or -1; PS_EVALUE when a column's name
   differs from s only in ASCII case, which SQLite cannot tell apart. */
static int find_column(ps_sqlstage_t *g, int pos, const char *s, size_t n, int role,
                       ps_err_t *err) {
  if (pos < g->nlast) {
    int c = g->lastmap[pos];
    if (c >= 0 && g->cols[c].len == n && memcmp(g->cols[c].name, s, n) == 0) return c;
  }
  for (int k = 0; k < g->ncols; k++) {
    if (g->cols[k].len == n && memcmp(g->cols[k].name, s, n) == 0) return k;
    if (ps__same_name(g->cols[k].name, g->cols[k].len, s, n))
      return ps_err_set(
          err, PS_EVALUE,
          "%s key '%.*s' and key '%s' differ only in letter case, which SQLite column names "
          "cannot tell apart: rename one",
          role ? "result" : "pset", (int)(n > 200 ? 200 : n), s, g->cols[k].name);
  }
  return -1;
}

/* Reads the keys of one encoded table (a pset or a result) into keys. */
static int read_keys(ps_sqlstage_t *g, const char *v, size_t n, int role, int *nkeys,
                     ps_err_t *err) {
  ps_reader_t r;
  ps_item_t it, key;
  const char *what = role ? "result" : "pset";
  if (v == NULL || n == 0) return 0;
  ps_reader_init(&r, v, n);
  if (ps_read_item(&r, &it) != 0 || it.type != PS_V_TABLE || it.narr != 0)
    return ps_err_set(err, PS_EVALUE, "a %s that is not a table of string keys", what);
  for (uint64_t k = 0; k < it.nhash; k++) {
    if (ps_read_item(&r, &key) != 0 || key.type != PS_V_STR || ps_skip_value(&r, 1) != 0)
      return ps_err_set(err, PS_EVALUE, "a %s that is not a table of string keys", what);
    if (*nkeys == g->capkeys) {
      int c = g->capkeys ? g->capkeys * 2 : 64;
      ps_rowkey_t *more = realloc(g->keys, sizeof *more * (size_t)c);
      if (more == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
      g->keys = more;
      g->capkeys = c;
    }
    ps_rowkey_t *rk = &g->keys[(*nkeys)++];
    rk->s = key.s;
    rk->len = key.len;
    rk->role = role;
    rk->skip = 0;
    rk->col = find_column(g, *nkeys - 1, key.s, key.len, role, err);
    if (rk->col < -1) return rk->col;
    /* A key with a column was checked when its column was made. */
    if (rk->col < 0 && (key.len == 0 || memchr(key.s, 0, key.len) ||
                        !ps_utf8_valid(key.s, key.len) || key.s[0] == '_'))
      return ps_err_set(err, PS_EVALUE, "%s key '%.*s' cannot be a column name", what,
                        (int)(key.len > 200 ? 200 : key.len), key.s);
  }
  return 0;
}

/*
 * Checks that every key of the row can be a column, before anything of
 * the row is kept: names SQLite can tell apart from the other columns and
 * from each other, and no more columns than a table may have. Fills
 * keys[] with each key's column (-1: new).
 */
static int check_keys(ps_sqlstage_t *g, ps_rowkey_t *keys, int nkeys, int *nnew, ps_err_t *err) {
  *nnew = 0;
  /* Keys with a column are told apart from the others by their column:
     the table's columns differ from each other in more than case, and a
     new key was compared with every one of them (find_column). A column
     met twice in the row is a result repeating a pset key. Only new keys
     are compared with each other. */
  if (++g->row_serial == 0) {
    memset(g->colstamp, 0, sizeof(unsigned) * (size_t)g->capcols);
    g->row_serial = 1;
  }
  for (int k = 0; k < nkeys; k++) {
    ps_rowkey_t *a = &keys[k];
    if (a->col >= 0) {
      if (g->colstamp[a->col] == g->row_serial) a->skip = 1;
      g->colstamp[a->col] = g->row_serial;
      continue;
    }
    for (int j = 0; j < k; j++) {
      ps_rowkey_t *b = &keys[j];
      if (b->col >= 0) continue;
      if (!ps__same_name(a->s, a->len, b->s, b->len)) continue;
      if (a->len == b->len && memcmp(a->s, b->s, a->len) == 0 && a->role != b->role) {
        a->skip = 1; /* the worker allows a result to repeat a pset key with its value */
        break;
      }
      return ps_err_set(
          err, PS_EVALUE,
          "%s key '%.*s' and %s key '%.*s' differ only in letter case, which SQLite column "
          "names cannot tell apart: rename one",
          a->role ? "result" : "pset", (int)(a->len > 200 ? 200 : a->len), a->s,
          b->role ? "result" : "pset", (int)(b->len > 200 ? 200 : b->len), b->s);
    }
    if (a->col < 0 && !a->skip) ++*nnew;
  }
  if (g->ncols + *nnew > g->max_cols)
    return ps_err_set(
        err, PS_EVALUE,
        "this row needs %d new columns, and the table has %d of the %d a table may have (SQLite's "
        "limit, less psurvey's own): return fewer distinct keys, e.g. one table-valued key",
        *nnew, g->ncols, g->max_cols);
  return 0;
}

/* Adds the column of key k (it has none yet). */
static int add_column(ps_sqlstage_t *g, ps_rowkey_t *k) {
  if (room_for_column(g) != 0) return PS_ENOMEM;
  ps_col_t *c = &g->cols[g->ncols];
  memset(c, 0, sizeof *c);
  if ((c->name = malloc(k->len + 1)) == NULL) return PS_ENOMEM;
  memcpy(c->name, k->s, k->len);
  c->name[k->len] = '\0';
  c->len = k->len;
  c->role = k->role;
  c->dirty = 1;
  g->ncols++;
  if (widen_pending(g) != 0) {
    free(c->name);
    g->ncols--;
    return PS_ENOMEM;
  }
  k->col = g->ncols - 1;
  return 0;
}

/* Puts the value at r into parameter v of column c, and notes what its
   storage class alone does not say (celltypes.h). */
static int put_value(ps_sqlstage_t *g, ps_param_t *v, int col, int role, ps_reader_t *r) {
  ps_col_t *c = &g->cols[col];
  const unsigned char *start = r->p;
  ps_item_t it;
  int type = 0, before = c->mask;
  if (ps_read_item(r, &it) != 0) return PS_EPROTO;
  switch (it.type) {
    case PS_V_NIL: break;
    case PS_V_BOOL:
      put_int(v, it.i);
      type = PS_CELL_BOOL;
      c->mask |= PS_M_BOOL;
      break;
    case PS_V_INT:
      put_int(v, it.i);
      c->mask |= PS_M_INT;
      break;
    case PS_V_FLOAT:
      if (isnan(it.d)) {
        type = PS_CELL_NAN;
        c->mask |= PS_M_NAN;
      } else {
        put_float(v, it.d);
        c->mask |= PS_M_FLOAT;
      }
      break;
    case PS_V_STR:
      if (ps_utf8_valid(it.s, it.len)) {
        put_bytes(&g->bytes, v, SQLITE_TEXT, it.s, it.len);
        c->mask |= PS_M_STR;
      } else {
        put_bytes(&g->bytes, v, SQLITE_BLOB, it.s, it.len);
        c->mask |= PS_M_BIN;
      }
      break;
    default: {
      ps_reader_t sub;
      ps_reader_init(&sub, start, (size_t)(r->end - start));
      if (ps_skip_value(&sub, 0) != 0) return PS_EPROTO;
      size_t n = (size_t)(sub.p - start);
      r->p = sub.p;
      ps_reader_t js;
      ps_reader_init(&js, start, n);
      g->scratch.len = 0;
      if (ps_json_write(&js, &g->scratch, 1) == 0 && !g->scratch.failed) {
        put_bytes(&g->bytes, v, SQLITE_TEXT, g->scratch.data, g->scratch.len);
        type = PS_CELL_JSON;
        c->mask |= PS_M_JSON;
      } else {
        put_bytes(&g->bytes, v, SQLITE_BLOB, (const char *)start, n);
        type = PS_CELL_CODEC;
        c->mask |= PS_M_CODEC;
      }
    }
  }
  int other_role = role != c->role;
  if (other_role) c->mask |= PS_M_BOTH_ROLES;
  ps_cellnote_put(&g->notes, col, type, other_role ? (role ? PS_CELL_RESULT : PS_CELL_PSET) : 0);
  if (c->mask != before) c->dirty = 1;
  return 0;
}

/* Puts the values of one encoded table (pset or result) in the row's
   parameters; keys[*pos...] are its keys, checked. */
static int put_table(ps_sqlstage_t *g, ps_param_t *row, const char *v, size_t n, ps_rowkey_t *keys,
                     int *pos) {
  ps_reader_t r;
  ps_item_t it, key;
  if (v == NULL || n == 0) return 0;
  ps_reader_init(&r, v, n);
  ps_read_item(&r, &it);
  for (uint64_t k = 0; k < it.nhash; k++) {
    ps_rowkey_t *rk = &keys[(*pos)++];
    ps_read_item(&r, &key);
    if (rk->skip) {
      ps_skip_value(&r, 1);
      continue;
    }
    int rc = put_value(g, &row[PS_NMETA + rk->col], rk->col, rk->role, &r);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Remembers the columns of this row's keys, for the next row's fast path. */
static void remember_columns(ps_sqlstage_t *g, const ps_rowkey_t *keys, int nkeys) {
  g->nlast = 0;
  for (int k = 0; k < nkeys && k < g->capcols; k++) g->lastmap[g->nlast++] = keys[k].col;
}

/* Whether key a's name sorts before b's (bytes, then length). */
static int name_before(const ps_rowkey_t *a, const ps_rowkey_t *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  return c < 0 || (c == 0 && a->len < b->len);
}

/* Makes the row's new columns in the order of their names, its pset keys'
   first: a row's keys come in the order of its Lua table, which changes
   from run to run, and a table's columns should not. */
static int add_new_columns(ps_sqlstage_t *g, ps_rowkey_t *keys, int nkeys) {
  for (int role = 0; role <= 1; role++)
    for (;;) {
      ps_rowkey_t *next = NULL;
      for (int k = 0; k < nkeys; k++) {
        ps_rowkey_t *a = &keys[k];
        if (a->col < 0 && !a->skip && a->role == role && (next == NULL || name_before(a, next)))
          next = a;
      }
      if (next == NULL) break;
      if (add_column(g, next) != 0) return PS_ENOMEM;
    }
  return 0;
}

static int sql_add(ps_stage_t *st, const ps_row_t *row, ps_err_t *err) {
  ps_sqlstage_t *g = (ps_sqlstage_t *)st;
  /* The keys, checked: a row SQLite cannot take changes nothing. */
  int nkeys = 0, nnew;
  int rc = read_keys(g, row->pset, row->pset_len, 0, &nkeys, err);
  if (rc == 0) rc = read_keys(g, row->result, row->result_len, 1, &nkeys, err);
  ps_rowkey_t *keys = g->keys;
  if (rc == 0) rc = check_keys(g, keys, nkeys, &nnew, err);
  if (rc != 0) return rc;
  if (nnew > 0 && add_new_columns(g, keys, nkeys) != 0)
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  remember_columns(g, keys, nkeys);

  /* The row's parameters, in the order of the insert: psurvey's, then the user's. */
  size_t mark = g->nparams, mark_bytes = g->bytes.len;
  ps_param_t *v =
      more_params(&g->params, &g->nparams, &g->capparams, (size_t)(PS_NMETA + g->ncols));
  if (v == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  put_int(&v[PS_META_INDEX], row->index + 1);
  put_bytes(&g->bytes, &v[PS_META_STATUS], SQLITE_TEXT, row->status, strlen(row->status));
  put_bytes(&g->bytes, &v[PS_META_EXCEPTION], SQLITE_TEXT, row->exception, row->exception_len);
  if (row->traceback_len)
    put_bytes(&g->bytes, &v[PS_META_TRACEBACK], SQLITE_TEXT, row->traceback, row->traceback_len);
  put_int(&v[PS_META_ATTEMPT], row->attempt);
  put_int(&v[PS_META_WORKER], row->worker);
  if (row->host) put_bytes(&g->bytes, &v[PS_META_HOST], SQLITE_TEXT, row->host, strlen(row->host));
  put_float(&v[PS_META_START], (double)row->start_us / 1e6);
  put_float(&v[PS_META_END], (double)(row->start_us + row->duration_us) / 1e6);
  put_float(&v[PS_META_DURATION], (double)row->duration_us / 1e6);
  put_float(&v[PS_META_CPU], (double)row->cpu_us / 1e6);
  put_int(&v[PS_META_MEMORY], row->peak_bytes);
  if (row->name) put_bytes(&g->bytes, &v[PS_META_NAME], SQLITE_TEXT, row->name, strlen(row->name));
  put_int(&v[PS_META_HASH],
          (int64_t)(row->hash ? row->hash : ps_hash(row->pset, row->pset_len, 0)));
  if (g->run > 0) put_int(&v[PS_META_RUN], g->run);
  g->notes.len = 0;
  int pos = 0;
  rc = put_table(g, v, row->pset, row->pset_len, keys, &pos);
  if (rc == 0) rc = put_table(g, v, row->result, row->result_len, keys, &pos);
  if (rc == 0 && g->notes.len)
    put_bytes(&g->bytes, &v[PS_META_TYPES], SQLITE_TEXT, g->notes.data, g->notes.len);
  if (rc == 0 && (g->bytes.failed || g->notes.failed || g->scratch.failed)) rc = PS_ENOMEM;
  if (rc != 0) {
    g->nparams = mark;
    g->bytes.len = mark_bytes;
    return rc == PS_ENOMEM ? ps_err_set(err, PS_ENOMEM, "out of memory keeping rows to store")
                           : ps_err_set(err, PS_EVALUE, "a malformed value");
  }
  g->npending++;
  int is_ok = strcmp(row->status, "ok") == 0;
  if (is_ok)
    g->pend_ok++;
  else
    g->pend_failed++;
  if (g->rerun && row->index >= 0 && row->index < g->nrerun && g->rerun[row->index] == 1) {
    g->rerun[row->index] = 2; /* its stored failure is replaced */
    g->pend_failed--;
  }
  return 0;
}

/* The parameters of an attempt's row (ATTEMPT_PARAMS of them, all NULL
   before), its text copied to b. */
static void attempt_params(ps_param_t *v, ps_buf_t *b, const ps_attempt_t *a) {
  put_int(&v[0], a->index + 1);
  put_int(&v[1], a->attempt);
  put_bytes(b, &v[2], SQLITE_TEXT, a->kind, strlen(a->kind));
  put_bytes(b, &v[3], SQLITE_TEXT, a->message, a->message_len);
  if (a->traceback_len) put_bytes(b, &v[4], SQLITE_TEXT, a->traceback, a->traceback_len);
  put_int(&v[5], a->worker);
  if (a->host) put_bytes(b, &v[6], SQLITE_TEXT, a->host, strlen(a->host));
  put_float(&v[7], (double)a->start_us / 1e6);
  put_float(&v[8], (double)a->duration_us / 1e6);
  put_float(&v[9], (double)a->cpu_us / 1e6);
  put_int(&v[10], a->peak_bytes);
  put_float(&v[11], a->timeout);
  put_float(&v[12], a->memory);
  put_int(&v[13], (int64_t)a->hash);
}

static int sql_attempt(ps_stage_t *st, const ps_attempt_t *a, ps_err_t *err) {
  ps_sqlstage_t *g = (ps_sqlstage_t *)st;
  ps_param_t *v = more_params(&g->aparams, &g->naparams, &g->capaparams, ATTEMPT_PARAMS);
  if (v == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  attempt_params(v, &g->bytes, a);
  if (g->bytes.failed) return ps_err_set(err, PS_ENOMEM, "out of memory keeping attempts to store");
  return 0;
}

int ps__write_attempt(ps_store_t *s, const char *stage, const ps_attempt_t *a, ps_err_t *err) {
  ps_param_t v[ATTEMPT_PARAMS];
  ps_buf_t bytes;
  sqlite3_stmt *st = NULL;
  memset(v, 0, sizeof v);
  ps_buf_init(&bytes);
  attempt_params(v, &bytes, a);
  int rc = bytes.failed ? ps_err_set(err, PS_ENOMEM, "out of memory") : 0;
  if (rc == 0 && ps__prepare(s->db, PS_SQL_ATTEMPT_INSERT, stage, &st) != SQLITE_OK)
    rc = ps__db_fail(s->db, err, "attempts");
  for (int k = 0; rc == 0 && k < ATTEMPT_PARAMS; k++) bind_param(st, k + 1, &v[k], bytes.data);
  if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
    rc = ps__db_fail(s->db, err, "storing an attempt");
  sqlite3_finalize(st);
  ps_buf_free(&bytes);
  return rc == PS_EBUSY ? ps__busy(s, err) : rc;
}

/* The parameters of an output's row (OUTPUT_PARAMS of them), its bytes
   copied to b. */
static void output_params(ps_param_t *v, ps_buf_t *b, const ps_output_t *o) {
  put_int(&v[0], o->index + 1);
  put_int(&v[1], o->attempt);
  put_bytes(b, &v[2], SQLITE_BLOB, o->out ? o->out : "", o->out_len);
  put_bytes(b, &v[3], SQLITE_BLOB, o->err ? o->err : "", o->err_len);
}

static int sql_output(ps_stage_t *st, const ps_output_t *o, ps_err_t *err) {
  ps_sqlstage_t *g = (ps_sqlstage_t *)st;
  ps_param_t *v = more_params(&g->oparams, &g->noparams, &g->capoparams, OUTPUT_PARAMS);
  if (v == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  output_params(v, &g->bytes, o);
  if (g->bytes.failed) return ps_err_set(err, PS_ENOMEM, "out of memory keeping output to store");
  return 0;
}

/* Runs the insert of an output, st, with the parameters v. */
static int insert_output(sqlite3 *db, sqlite3_stmt *st, const ps_param_t *v, const char *bytes,
                         ps_err_t *err) {
  for (int k = 0; k < OUTPUT_PARAMS; k++) bind_param(st, k + 1, &v[k], bytes);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : ps__db_fail(db, err, "storing output");
}

int ps__write_output(ps_store_t *s, const char *stage, const ps_output_t *o, ps_err_t *err) {
  ps_param_t v[OUTPUT_PARAMS];
  ps_buf_t bytes;
  sqlite3_stmt *st = NULL;
  memset(v, 0, sizeof v);
  ps_buf_init(&bytes);
  output_params(v, &bytes, o);
  int rc = bytes.failed ? ps_err_set(err, PS_ENOMEM, "out of memory") : 0;
  if (rc == 0) rc = ps__exec_on(s->db, PS_SQL_OUTPUT_CREATE, stage, err);
  if (rc == 0 && ps__prepare(s->db, PS_SQL_OUTPUT_INSERT, stage, &st) != SQLITE_OK)
    rc = ps__db_fail(s->db, err, "output");
  if (rc == 0) rc = insert_output(s->db, st, v, bytes.data, err);
  sqlite3_finalize(st);
  ps_buf_free(&bytes);
  return rc == PS_EBUSY ? ps__busy(s, err) : rc;
}

/* Writing: everything below runs inside the commit's transaction. */

static int add_missing_columns(ps_sqlstage_t *g, ps_err_t *err) {
  for (int k = g->ncols_db; k < g->ncols; k++) {
    ps_buf_t q;
    ps_buf_init(&q);
    ps_buf_puts(&q, "ALTER TABLE ");
    ps__put_ident(&q, g->name, strlen(g->name));
    ps_buf_puts(&q, " ADD COLUMN ");
    ps__put_ident(&q, g->cols[k].name, g->cols[k].len);
    const char *sql = ps__sql_of(&q);
    int rc = sql ? ps__exec(g->store->db, sql, err) : ps_err_set(err, PS_ENOMEM, "out of memory");
    ps_buf_free(&q);
    if (rc != 0) return rc;
    g->ncols_db = k + 1;
  }
  return 0;
}

static int save_columns(ps_sqlstage_t *g, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  sqlite3_stmt *st = NULL;
  int rc = 0;
  for (int k = 0; k < g->ncols && rc == 0; k++) {
    if (!g->cols[k].dirty) continue;
    if (st == NULL && ps__prepare(db, PS_SQL_COLUMN_SAVE, NULL, &st) != SQLITE_OK)
      return ps__db_fail(db, err, "columns");
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, g->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, g->cols[k].name, (int)g->cols[k].len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, g->cols[k].role ? "result" : "pset", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, g->cols[k].mask);
    sqlite3_bind_int(st, 5, k);
    if (sqlite3_step(st) != SQLITE_DONE) rc = ps__db_fail(db, err, "columns");
  }
  sqlite3_finalize(st);
  return rc;
}

/* Prepares the insert of `rows` rows into *st. */
static int prepare_insert(ps_sqlstage_t *g, int rows, sqlite3_stmt **st, ps_err_t *err) {
  ps_buf_t q;
  ps_buf_init(&q);
  ps_buf_puts(&q, "INSERT OR REPLACE INTO ");
  ps__put_ident(&q, g->name, strlen(g->name));
  ps_buf_putc(&q, '(');
  for (int k = 0; k < PS_NMETA; k++) ps_buf_printf(&q, "%s%s", k ? "," : "", ps_meta_columns[k]);
  for (int k = 0; k < g->ncols; k++) {
    ps_buf_putc(&q, ',');
    ps__put_ident(&q, g->cols[k].name, g->cols[k].len);
  }
  ps_buf_puts(&q, ") VALUES ");
  for (int r = 0; r < rows; r++) {
    ps_buf_puts(&q, r ? ",(" : "(");
    for (int k = 0; k < PS_NMETA + g->ncols; k++) ps_buf_puts(&q, k ? ",?" : "?");
    ps_buf_putc(&q, ')');
  }
  sqlite3_finalize(*st);
  *st = NULL;
  const char *sql = ps__sql_of(&q);
  int rc = sql ? sqlite3_prepare_v2(g->store->db, sql, -1, st, NULL) : SQLITE_NOMEM;
  ps_buf_free(&q);
  if (rc != SQLITE_OK) return ps__db_fail(g->store->db, err, "insert");
  return 0;
}

/* Both inserts, for the columns there are now. */
static int prepare_inserts(ps_sqlstage_t *g, ps_err_t *err) {
  int per_row = PS_NMETA + g->ncols;
  int max_params = sqlite3_limit(g->store->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
  g->many = max_params / per_row < MANY_ROWS ? max_params / per_row : MANY_ROWS;
  int rc = prepare_insert(g, 1, &g->insert, err);
  if (rc == 0 && g->many > 1) rc = prepare_insert(g, g->many, &g->insert_many, err);
  g->prepared = rc == 0 ? g->ncols : -1;
  return rc;
}

/* Inserts the pending rows: `many` at a time, the rest one by one. */
static int insert_rows(ps_sqlstage_t *g, ps_err_t *err) {
  int per_row = PS_NMETA + g->ncols, rc = 0;
  if (g->npending == 0) return 0;
  if (g->prepared != g->ncols && (rc = prepare_inserts(g, err)) != 0) return rc;
  for (int done = 0; done < g->npending && rc == 0;) {
    int rows = g->many > 1 && g->npending - done >= g->many ? g->many : 1;
    sqlite3_stmt *st = rows > 1 ? g->insert_many : g->insert;
    const ps_param_t *v = g->params + (size_t)done * (size_t)per_row;
    for (int k = 0; k < rows * per_row; k++) bind_param(st, k + 1, &v[k], g->bytes.data);
    if (sqlite3_step(st) != SQLITE_DONE) rc = ps__db_fail(g->store->db, err, "storing rows");
    sqlite3_reset(st);
    done += rows;
  }
  return rc;
}

static int insert_attempts(ps_sqlstage_t *g, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  size_t n = g->naparams / ATTEMPT_PARAMS;
  if (n == 0) return 0;
  if (g->attempt == NULL &&
      ps__prepare(db, PS_SQL_ATTEMPT_INSERT, g->name, &g->attempt) != SQLITE_OK)
    return ps__db_fail(db, err, "attempts");
  for (size_t a = 0; a < n; a++) {
    for (int k = 0; k < ATTEMPT_PARAMS; k++)
      bind_param(g->attempt, k + 1, &g->aparams[a * ATTEMPT_PARAMS + (size_t)k], g->bytes.data);
    int rc = sqlite3_step(g->attempt);
    sqlite3_reset(g->attempt);
    if (rc != SQLITE_DONE) return ps__db_fail(db, err, "storing an attempt");
  }
  return 0;
}

/* The output waiting, into the output table, made with the first. */
static int insert_outputs(ps_sqlstage_t *g, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  size_t n = g->noparams / OUTPUT_PARAMS;
  if (n == 0) return 0;
  if (!g->output_made) {
    int rc = ps__exec_on(db, PS_SQL_OUTPUT_CREATE, g->name, err);
    if (rc != 0) return rc;
    g->output_made = 1;
  }
  if (g->output == NULL && ps__prepare(db, PS_SQL_OUTPUT_INSERT, g->name, &g->output) != SQLITE_OK)
    return ps__db_fail(db, err, "output");
  for (size_t o = 0; o < n; o++) {
    int rc = insert_output(db, g->output, &g->oparams[o * OUTPUT_PARAMS], g->bytes.data, err);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Runs the statement *st, made from sql the first time. */
static int run_cached(ps_sqlstage_t *g, sqlite3_stmt **st, const char *sql, const char *what,
                      ps_err_t *err) {
  sqlite3 *db = g->store->db;
  if (*st == NULL && sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
    return ps__db_fail(db, err, what);
  int rc = sqlite3_step(*st);
  rc = rc == SQLITE_DONE ? 0 : ps__db_fail(db, err, what);
  sqlite3_reset(*st);
  return rc;
}

static int save_counts(ps_sqlstage_t *g, ps_err_t *err) {
  sqlite3 *db = g->store->db;
  if (g->counts == NULL && ps__prepare(db, PS_SQL_STAGE_COUNTS, NULL, &g->counts) != SQLITE_OK)
    return ps__db_fail(db, err, "counting rows");
  sqlite3_bind_int64(g->counts, 1, g->ok + g->pend_ok);
  sqlite3_bind_int64(g->counts, 2, g->failed + g->pend_failed);
  sqlite3_bind_text(g->counts, 3, g->name, -1, SQLITE_STATIC);
  return run_cached(g, &g->counts, NULL, "counting rows", err);
}

static int64_t sql_pending(const ps_stage_t *st, int64_t *ok, int64_t *failed) {
  const ps_sqlstage_t *g = (const ps_sqlstage_t *)st;
  int64_t n_ok = 0, n_failed = 0;
  size_t per_row = (size_t)(PS_NMETA + g->ncols);
  for (int r = 0; r < g->npending; r++) {
    const ps_param_t *status = &g->params[(size_t)r * per_row + PS_META_STATUS];
    if (status->len == 2 && memcmp(g->bytes.data + status->off, "ok", 2) == 0)
      n_ok++;
    else
      n_failed++;
  }
  if (ok) *ok = n_ok;
  if (failed) *failed = n_failed;
  return g->npending;
}

/* Forgets the rows and attempts waiting for a commit. */
static void drop_pending(ps_sqlstage_t *g) {
  g->pend_ok = g->pend_failed = 0;
  g->npending = 0;
  g->nparams = 0;
  g->naparams = 0;
  g->noparams = 0;
  g->bytes.len = 0;
}

static int anything_to_write(const ps_sqlstage_t *g, int make_table) {
  if (g->npending || g->naparams || g->noparams || (g->created && g->ncols_db < g->ncols)) return 1;
  if (make_table && !g->created) return 1;
  for (int k = 0; k < g->ncols; k++)
    if (g->cols[k].dirty) return 1;
  return 0;
}

/*
 * One transaction for everything added since the last commit: the table
 * (or its new columns), the columns' records, the rows, the attempts and
 * the stage's counts, so that the counts always match the rows, and
 * what psets wrote. The table
 * is made with the first rows, or with none when make_table. Any failure
 * rolls all of it back and keeps it waiting: PS_EBUSY (another program
 * holds the write lock) is tried again by the caller later.
 */
static int commit(ps_sqlstage_t *g, int make_table, const ps_beat_t *beat, ps_err_t *err) {
  if (!anything_to_write(g, make_table)) {
    if (beat) ps_store_beat(g->store, beat, NULL); /* alone: skipped when busy */
    return 0;
  }
  sqlite3 *db = g->store->db;
  int created = g->created, ncols_db = g->ncols_db, output_made = g->output_made;
  int rc = run_cached(g, &g->begin, "BEGIN IMMEDIATE", "storing rows", err);
  if (rc == 0 && !g->created && (g->npending || make_table)) rc = ps__create_table(g, err);
  if (rc == 0 && g->created) rc = add_missing_columns(g, err);
  if (rc == 0) rc = save_columns(g, err);
  if (rc == 0) rc = insert_rows(g, err);
  if (rc == 0) rc = insert_attempts(g, err);
  if (rc == 0) rc = insert_outputs(g, err);
  if (rc == 0 && (g->npending || g->pend_ok || g->pend_failed)) rc = save_counts(g, err);
  /* The beat rides on the rows' transaction; its own failure is not
     theirs. */
  if (rc == 0 && beat) ps__write_beat(g->store, beat, NULL);
  if (rc == 0) rc = run_cached(g, &g->commit, "COMMIT", "storing rows", err);
  if (rc != 0) {
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    /* What the rolled back transaction made is made again next time. */
    g->created = created;
    g->ncols_db = ncols_db;
    g->output_made = output_made;
    sqlite3_finalize(g->output); /* its table may be gone with the transaction */
    g->output = NULL;
    g->prepared = -1;
    if (rc == PS_EBUSY) return ps__busy(g->store, err);
    return rc;
  }
  for (int k = 0; k < g->ncols; k++) g->cols[k].dirty = 0;
  g->ok += g->pend_ok;
  g->failed += g->pend_failed;
  drop_pending(g);
  return 0;
}

static int sql_commit(ps_stage_t *st, const ps_beat_t *beat, ps_err_t *err) {
  return commit((ps_sqlstage_t *)st, 0, beat, err);
}

static void sql_count(const ps_stage_t *st, int64_t *ok, int64_t *failed) {
  const ps_sqlstage_t *g = (const ps_sqlstage_t *)st;
  *ok = g->ok;
  *failed = g->failed;
}

static int sql_end(ps_stage_t *st, int done, ps_err_t *err) {
  ps_sqlstage_t *g = (ps_sqlstage_t *)st;
  int rc = commit(g, done, NULL, err);
  if (rc == 0 || rc == PS_EBUSY) return rc;
  /* What cannot be written (a full disk) is dropped; a stage that is done
     still gets its table, so it can be listed and read. */
  drop_pending(g);
  if (done) commit(g, 1, NULL, NULL);
  return rc;
}

static void sql_free(ps_stage_t *st) {
  ps_sqlstage_t *g = (ps_sqlstage_t *)st;
  sqlite3_finalize(g->insert);
  sqlite3_finalize(g->insert_many);
  sqlite3_finalize(g->attempt);
  sqlite3_finalize(g->output);
  sqlite3_finalize(g->begin);
  sqlite3_finalize(g->commit);
  sqlite3_finalize(g->counts);
  free(g->params);
  free(g->aparams);
  free(g->oparams);
  free(g->keys);
  free(g->rerun);
  ps_buf_free(&g->bytes);
  ps_buf_free(&g->notes);
  ps_buf_free(&g->scratch);
  for (int k = 0; k < g->ncols; k++) free(g->cols[k].name);
  free(g->cols);
  free(g->lastmap);
  free(g->colstamp);
  free(g->name);
  free(g);
}

static const ps_stage_ops_t sql_ops = {
    .add = sql_add,
    .attempt = sql_attempt,
    .output = sql_output,
    .resume = ps__sqlstage_resume,
    .commit = sql_commit,
    .pending = sql_pending,
    .count = sql_count,
    .end = sql_end,
    .free = sql_free,
};

int ps__sqlstage_new(ps_store_t *s, const char *name, int resume, const ps_source_t *psets,
                     int64_t run, ps_stage_t **out, ps_err_t *err) {
  ps_sqlstage_t *g = calloc(1, sizeof *g);
  if (g == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  g->base.ops = &sql_ops;
  g->store = s;
  g->run = run;
  g->prepared = -1;
  g->max_cols = user_columns_max(s->db);
  g->name = strdup(name);
  g->base.name = g->name;
  ps_buf_init(&g->bytes);
  ps_buf_init(&g->notes);
  ps_buf_init(&g->scratch);
  if (g->name == NULL) {
    sql_free(&g->base);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  int rc = 0;
  if (resume) {
    g->created = 1;
    rc = load_columns(g, err);
  }
  if (rc == 0 && psets) rc = pset_columns(g, psets, err);
  if (rc != 0) {
    sql_free(&g->base);
    return rc;
  }
  *out = &g->base;
  return 0;
}
