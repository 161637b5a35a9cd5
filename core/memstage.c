/* memstage.c: a stage in memory (memstage.h). */
#include "memstage.h"

#include <stdlib.h>
#include <string.h>

#include "value.h"

/* A column: a pset or result key, in the order keys first appeared. */
typedef struct memcol_s {
  char *name;
  size_t len;
  int role;  /* 0 pset, 1 result: the role of its key where it first appeared */
  int roles; /* 1: it has been a pset key, 2: a result key */
} memcol_t;

struct ps_memstage_s {
  char *name;
  int64_t total;
  int64_t *at; /* record offset of pset i, or -1 */
  ps_buf_t rows;
  int64_t ok, failed;
  memcol_t *cols;
  int ncols, cap;
  ps_buf_t lastkeys; /* the keys of the last row added (same_keys) */
};

/*
 * A record: varint index, bytes status, bytes pset, bytes result, bytes
 * exception, bytes traceback, varint attempt, varint worker, bytes host,
 * varint start (us), varint duration, varint cpu, varint memory, bytes name.
 */
typedef struct rec_s {
  uint64_t index, attempt, worker, start, duration, cpu, memory;
  const char *status, *pset, *result, *exception, *traceback, *host, *name;
  size_t status_len, pset_len, result_len, exception_len, traceback_len, host_len, name_len;
} rec_t;

static int read_rec(const ps_memstage_t *m, int64_t off, rec_t *r) {
  ps_reader_t rd;
  ps_reader_init(&rd, m->rows.data + off, m->rows.len - (size_t)off);
  if (ps_read_varint(&rd, &r->index) != 0 || ps_read_bytes(&rd, &r->status, &r->status_len) != 0 ||
      ps_read_bytes(&rd, &r->pset, &r->pset_len) != 0 ||
      ps_read_bytes(&rd, &r->result, &r->result_len) != 0 ||
      ps_read_bytes(&rd, &r->exception, &r->exception_len) != 0 ||
      ps_read_bytes(&rd, &r->traceback, &r->traceback_len) != 0 ||
      ps_read_varint(&rd, &r->attempt) != 0 || ps_read_varint(&rd, &r->worker) != 0 ||
      ps_read_bytes(&rd, &r->host, &r->host_len) != 0 || ps_read_varint(&rd, &r->start) != 0 ||
      ps_read_varint(&rd, &r->duration) != 0 || ps_read_varint(&rd, &r->cpu) != 0 ||
      ps_read_varint(&rd, &r->memory) != 0 || ps_read_bytes(&rd, &r->name, &r->name_len) != 0)
    return PS_EPROTO;
  return 0;
}

ps_memstage_t *ps_memstage_new(const char *name, int64_t total) {
  ps_memstage_t *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->name = strdup(name);
  m->total = total;
  m->at = malloc(sizeof(int64_t) * (size_t)(total > 0 ? total : 1));
  if (m->name == NULL || m->at == NULL) {
    ps_memstage_free(m);
    return NULL;
  }
  for (int64_t i = 0; i < total; i++) m->at[i] = -1;
  ps_buf_init(&m->rows);
  ps_buf_init(&m->lastkeys);
  return m;
}

void ps_memstage_free(ps_memstage_t *m) {
  if (m == NULL) return;
  for (int k = 0; k < m->ncols; k++) free(m->cols[k].name);
  free(m->cols);
  free(m->name);
  free(m->at);
  ps_buf_free(&m->rows);
  ps_buf_free(&m->lastkeys);
  free(m);
}

const char *ps_memstage_name(const ps_memstage_t *m) { return m->name; }

static int find_col(const ps_memstage_t *m, const char *s, size_t n) {
  for (int k = 0; k < m->ncols; k++)
    if (m->cols[k].len == n && memcmp(m->cols[k].name, s, n) == 0) return k;
  return -1;
}

/* Adds the columns of one encoded table's keys. */
/* Whether column a's name sorts before b's (bytes, then length). */
static int col_before(const memcol_t *a, const memcol_t *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->name, b->name, n);
  return c < 0 || (c == 0 && a->len < b->len);
}

/* Adds the columns of the keys of v not seen before, in the order of their
   names (as sqlstage.c does: a Lua table's order changes from run to run). */
static int add_cols(ps_memstage_t *m, const char *v, size_t n, int role) {
  ps_reader_t r;
  ps_item_t it, key;
  int first = m->ncols;
  if (n == 0) return 0;
  ps_reader_init(&r, v, n);
  if (ps_read_item(&r, &it) != 0 || it.type != PS_V_TABLE) return PS_EPROTO;
  for (uint64_t k = 0; k < it.nhash; k++) {
    if (ps_read_item(&r, &key) != 0 || key.type != PS_V_STR || ps_skip_value(&r, 1) != 0)
      return PS_EPROTO;
    int found = find_col(m, key.s, key.len);
    if (found >= 0) {
      m->cols[found].roles |= 1 << role;
      continue;
    }
    if (m->ncols == m->cap) {
      int cap = m->cap ? m->cap * 2 : 16;
      memcol_t *c = realloc(m->cols, sizeof *c * (size_t)cap);
      if (c == NULL) return PS_ENOMEM;
      m->cols = c;
      m->cap = cap;
    }
    memcol_t *c = &m->cols[m->ncols];
    if ((c->name = malloc(key.len + 1)) == NULL) return PS_ENOMEM;
    memcpy(c->name, key.s, key.len);
    c->name[key.len] = '\0';
    c->len = key.len;
    c->role = role;
    c->roles = 1 << role;
    m->ncols++;
  }
  for (int k = first + 1; k < m->ncols; k++)
    for (int j = k; j > first && col_before(&m->cols[j], &m->cols[j - 1]); j--) {
      memcol_t t = m->cols[j];
      m->cols[j] = m->cols[j - 1];
      m->cols[j - 1] = t;
    }
  return 0;
}

/*
 * Nearly every row has the same keys as the one before: then the columns
 * are known already. The last row's keys are kept back to back (per part,
 * the pset's and the result's: their count, then each key's bytes) and a
 * row is compared with them in place; only a row with other keys is
 * written down.
 */
static void remember_keys(ps_memstage_t *m, const char *const parts[2], const size_t lens[2]) {
  ps_buf_t *b = &m->lastkeys;
  b->len = 0;
  for (int p = 0; p < 2; p++) {
    ps_reader_t r;
    ps_item_t it, key;
    uint64_t n = 0;
    ps_reader_init(&r, parts[p], lens[p]);
    if (lens[p] > 0 && ps_read_item(&r, &it) == 0 && it.type == PS_V_TABLE && it.narr == 0)
      n = it.nhash;
    ps_buf_put_varint(b, n);
    for (uint64_t k = 0; k < n; k++) {
      if (ps_read_item(&r, &key) != 0 || key.type != PS_V_STR || ps_skip_value(&r, 1) != 0) {
        b->len = 0; /* malformed: match nothing, add_cols says what is wrong */
        return;
      }
      ps_put_bytes(b, key.s, key.len);
    }
  }
}

static int same_keys(ps_memstage_t *m, const ps_row_t *row) {
  const char *const parts[2] = {row->pset, row->result};
  const size_t lens[2] = {row->pset_len, row->result ? row->result_len : 0};
  ps_reader_t last;
  ps_reader_init(&last, m->lastkeys.data, m->lastkeys.len);
  for (int p = 0; p < 2; p++) {
    ps_reader_t r;
    ps_item_t it, key;
    uint64_t n = 0, count;
    ps_reader_init(&r, parts[p], lens[p]);
    if (lens[p] > 0) {
      if (ps_read_item(&r, &it) != 0 || it.type != PS_V_TABLE || it.narr != 0) goto differ;
      n = it.nhash;
    }
    if (ps_read_varint(&last, &count) != 0 || count != n) goto differ;
    for (uint64_t k = 0; k < n; k++) {
      const char *s;
      size_t len;
      if (ps_read_item(&r, &key) != 0 || key.type != PS_V_STR ||
          ps_read_bytes(&last, &s, &len) != 0 || len != key.len || memcmp(s, key.s, len) != 0 ||
          ps_skip_value(&r, 1) != 0)
        goto differ;
    }
  }
  return 1;
differ:
  remember_keys(m, parts, lens);
  return 0;
}

static int add_row(ps_memstage_t *m, const ps_row_t *row, ps_err_t *err) {
  if (row->index < 0 || row->index >= m->total)
    return ps_err_set(err, PS_EPROTO, "pset index out of range");
  if (!same_keys(m, row)) {
    int rc = add_cols(m, row->pset, row->pset_len, 0);
    if (rc == 0 && row->result) rc = add_cols(m, row->result, row->result_len, 1);
    if (rc == PS_EPROTO)
      return ps_err_set(err, PS_EPROTO, "a pset or result that is not a table of string keys");
    if (rc != 0) return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  int is_ok = strcmp(row->status, "ok") == 0;
  if (m->at[row->index] >= 0) {
    /* Stored again (a retried pset): the new record replaces the old. */
    rec_t old;
    if (read_rec(m, m->at[row->index], &old) == 0) {
      if (old.status_len == 2 && memcmp(old.status, "ok", 2) == 0)
        m->ok--;
      else
        m->failed--;
    }
  }
  ps_buf_t *b = &m->rows;
  int64_t off = (int64_t)b->len;
  ps_buf_put_varint(b, (uint64_t)row->index);
  ps_put_bytes(b, row->status, strlen(row->status));
  ps_put_bytes(b, row->pset, row->pset_len);
  ps_put_bytes(b, row->result ? row->result : "", row->result ? row->result_len : 0);
  ps_put_bytes(b, row->exception ? row->exception : "", row->exception ? row->exception_len : 0);
  ps_put_bytes(b, row->traceback ? row->traceback : "", row->traceback ? row->traceback_len : 0);
  ps_buf_put_varint(b, (uint64_t)row->attempt);
  ps_buf_put_varint(b, (uint64_t)row->worker);
  ps_put_bytes(b, row->host ? row->host : "", row->host ? strlen(row->host) : 0);
  ps_buf_put_varint(b, (uint64_t)row->start_us);
  ps_buf_put_varint(b, (uint64_t)(row->duration_us > 0 ? row->duration_us : 0));
  ps_buf_put_varint(b, (uint64_t)(row->cpu_us > 0 ? row->cpu_us : 0));
  ps_buf_put_varint(b, (uint64_t)(row->peak_bytes > 0 ? row->peak_bytes : 0));
  ps_put_bytes(b, row->name ? row->name : "", row->name ? strlen(row->name) : 0);
  if (b->failed) return ps_err_set(err, PS_ENOMEM, "out of memory keeping results in memory");
  m->at[row->index] = off;
  if (is_ok)
    m->ok++;
  else
    m->failed++;
  return 0;
}

int64_t ps_memstage_count(const ps_memstage_t *m, int view) {
  return view == PS_VIEW_OK ? m->ok : view == PS_VIEW_MISSING ? m->failed : m->ok + m->failed;
}

/* The writer: stage.h's operations over a stage's rows. Nothing waits
   for a commit, so there is nothing to commit, and nothing was stored
   before this run, so there is nothing to resume. */
typedef struct memwriter_s {
  ps_stage_t base;
  ps_memstage_t *m; /* not owned */
  ps_attempt_sink_t attempts;
  ps_output_sink_t outputs;
} memwriter_t;

static int mem_add(ps_stage_t *st, const ps_row_t *row, ps_err_t *err) {
  return add_row(((memwriter_t *)st)->m, row, err);
}

static int mem_attempt(ps_stage_t *st, const ps_attempt_t *a, ps_err_t *err) {
  return ((memwriter_t *)st)->attempts(st, a, err);
}

static int mem_output(ps_stage_t *st, const ps_output_t *o, ps_err_t *err) {
  return ((memwriter_t *)st)->outputs(st, o, err);
}

static int mem_resume(ps_stage_t *st, ps_source_t *src, int64_t total, int keep_failed,
                      uint8_t *done, int64_t *ok, int64_t *failed, ps_err_t *err) {
  (void)st, (void)src, (void)keep_failed, (void)err;
  memset(done, 0, (size_t)total);
  *ok = *failed = 0;
  return 0;
}

static int mem_commit(ps_stage_t *st, const struct ps_beat_s *beat, ps_err_t *err) {
  (void)st, (void)beat, (void)err; /* nobody reads a heartbeat in memory */
  return 0;
}

static int64_t mem_pending(const ps_stage_t *st, int64_t *ok, int64_t *failed) {
  (void)st;
  if (ok) *ok = 0;
  if (failed) *failed = 0;
  return 0;
}

static void mem_count(const ps_stage_t *st, int64_t *ok, int64_t *failed) {
  const ps_memstage_t *m = ((const memwriter_t *)st)->m;
  *ok = m->ok;
  *failed = m->failed;
}

static int mem_end(ps_stage_t *st, int done, ps_err_t *err) {
  (void)st, (void)done, (void)err;
  return 0;
}

static void mem_free(ps_stage_t *st) { free(st); }

static const ps_stage_ops_t mem_ops = {
    .add = mem_add,
    .attempt = mem_attempt,
    .output = mem_output,
    .resume = mem_resume,
    .commit = mem_commit,
    .pending = mem_pending,
    .count = mem_count,
    .end = mem_end,
    .free = mem_free,
};

ps_stage_t *ps_memstage_writer(ps_memstage_t *m, ps_attempt_sink_t attempts,
                               ps_output_sink_t outputs) {
  memwriter_t *w = calloc(1, sizeof *w);
  if (w == NULL) return NULL;
  w->base.ops = &mem_ops;
  w->base.name = m->name;
  w->m = m;
  w->attempts = attempts;
  w->outputs = outputs;
  return &w->base;
}

/* Reading. */

/* The columns of psurvey's it reads back (stage.h): up to _name. */
#define NMETA (PS_META_NAME + 1)

struct ps_memcursor_s {
  ps_memstage_t *m;
  int view;
  int64_t next, only;
  int ncols;
  int *col;  /* cursor column -> stage column, or -1 - meta index */
  rec_t rec; /* the current row */
  ps_item_t *cells;
  const char **cellpos; /* the encoding of a table cell, or NULL */
  size_t *celllen;
  int *cellrole; /* the cell's key in this row: 0 a pset key, 1 a result key */
};

static int col_cmp_name(const void *a, const void *b) {
  const memcol_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

int ps_memcursor_open(ps_memstage_t *m, int view, int64_t only, ps_memcursor_t **out,
                      ps_err_t *err) {
  ps_memcursor_t *c = calloc(1, sizeof *c);
  int max = m->ncols + NMETA;
  if (c) c->col = malloc(sizeof(int) * (size_t)max);
  if (c && c->col) c->cells = malloc(sizeof(ps_item_t) * (size_t)max);
  if (c && c->cells) c->cellpos = calloc((size_t)max, sizeof(const char *));
  if (c && c->cellpos) c->celllen = calloc((size_t)max, sizeof(size_t));
  if (c && c->celllen) c->cellrole = calloc((size_t)max, sizeof(int));
  if (c == NULL || c->cellrole == NULL) {
    ps_memcursor_close(c);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  c->m = m;
  c->view = view;
  c->only = only;
  c->next = only > 0 ? only - 1 : 0;
  /* Pset keys as they appeared, then result keys by name (a stored stage
     sorts its first row's result keys the same way). The missing view
     shows the columns that have held a pset key. */
  for (int k = 0; k < m->ncols; k++)
    if (m->cols[k].role == 0 || (view == PS_VIEW_MISSING && (m->cols[k].roles & 1)))
      c->col[c->ncols++] = k;
  memcol_t *results = malloc(sizeof(memcol_t) * (size_t)(m->ncols ? m->ncols : 1));
  int nres = 0;
  if (results == NULL) {
    ps_memcursor_close(c);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  if (view != PS_VIEW_MISSING)
    for (int k = 0; k < m->ncols; k++)
      if (m->cols[k].role == 1) results[nres++] = m->cols[k];
  qsort(results, (size_t)nres, sizeof *results, col_cmp_name);
  for (int k = 0; k < nres; k++) c->col[c->ncols++] = find_col(m, results[k].name, results[k].len);
  free(results);
  if (view == PS_VIEW_MISSING)
    for (int k = PS_META_INDEX; k <= PS_META_TRACEBACK; k++) c->col[c->ncols++] = -1 - k;
  if (view == PS_VIEW_ALL)
    for (int k = 0; k < NMETA; k++) c->col[c->ncols++] = -1 - k;
  *out = c;
  return 0;
}

int ps_memcursor_ncols(const ps_memcursor_t *c) { return c->ncols; }

const char *ps_memcursor_colname(const ps_memcursor_t *c, int i) {
  int k = c->col[i];
  return k >= 0 ? c->m->cols[k].name : ps_meta_columns[-1 - k];
}

/* Fills the cells of the user's columns from the row's encodings. */
static int fill_cells(ps_memcursor_t *c) {
  ps_memstage_t *m = c->m;
  for (int i = 0; i < c->ncols; i++) {
    c->cells[i].type = PS_V_NIL;
    c->cellpos[i] = NULL;
  }
  const char *parts[2] = {c->rec.pset, c->rec.result};
  size_t lens[2] = {c->rec.pset_len, c->rec.result_len};
  for (int p = 0; p < 2; p++) {
    ps_reader_t r;
    ps_item_t it, key;
    if (lens[p] == 0) continue;
    ps_reader_init(&r, parts[p], lens[p]);
    if (ps_read_item(&r, &it) != 0 || it.type != PS_V_TABLE) return PS_EPROTO;
    for (uint64_t k = 0; k < it.nhash; k++) {
      if (ps_read_item(&r, &key) != 0) return PS_EPROTO;
      int col = find_col(m, key.s, key.len), i = -1;
      for (int j = 0; j < c->ncols && col >= 0; j++)
        if (c->col[j] == col) i = j;
      const unsigned char *start = r.p;
      if (i < 0) {
        if (ps_skip_value(&r, 1) != 0) return PS_EPROTO;
        continue;
      }
      if (ps_read_item(&r, &c->cells[i]) != 0) return PS_EPROTO;
      c->cellrole[i] = p;
      if (c->cells[i].type == PS_V_TABLE) {
        ps_reader_t sub;
        ps_reader_init(&sub, start, (size_t)(r.end - start));
        if (ps_skip_value(&sub, 1) != 0) return PS_EPROTO;
        c->cellpos[i] = (const char *)start;
        c->celllen[i] = (size_t)(sub.p - start);
        r.p = sub.p;
      }
    }
  }
  return 0;
}

int ps_memcursor_step(ps_memcursor_t *c) {
  ps_memstage_t *m = c->m;
  while (c->next < m->total) {
    int64_t i = c->next++;
    if (c->only > 0 && i != c->only - 1) return 0;
    if (m->at[i] < 0) continue;
    if (read_rec(m, m->at[i], &c->rec) != 0) return PS_EPROTO;
    int is_ok = c->rec.status_len == 2 && memcmp(c->rec.status, "ok", 2) == 0;
    if ((c->view == PS_VIEW_OK && !is_ok) || (c->view == PS_VIEW_MISSING && is_ok)) continue;
    return fill_cells(c) == 0 ? 1 : PS_EPROTO;
  }
  return 0;
}

static void set_str(ps_item_t *it, const char *s, size_t n) {
  if (n == 0) {
    it->type = PS_V_NIL;
    return;
  }
  it->type = PS_V_STR;
  it->s = s;
  it->len = n;
}

static void set_int(ps_item_t *it, int64_t v) {
  it->type = PS_V_INT;
  it->i = v;
}

static void set_num(ps_item_t *it, double v) {
  it->type = PS_V_FLOAT;
  it->d = v;
}

int ps_memcursor_cell(ps_memcursor_t *c, int i, ps_item_t *it) {
  int k = c->col[i];
  const rec_t *r = &c->rec;
  if (k >= 0) {
    *it = c->cells[i];
    if (it->type == PS_V_TABLE) {
      it->s = c->cellpos[i];
      it->len = c->celllen[i];
    }
    return 0;
  }
  switch (-1 - k) {
    case PS_META_INDEX: set_int(it, (int64_t)r->index + 1); break;
    case PS_META_STATUS: set_str(it, r->status, r->status_len); break;
    case PS_META_EXCEPTION: set_str(it, r->exception, r->exception_len); break;
    case PS_META_TRACEBACK: set_str(it, r->traceback, r->traceback_len); break;
    case PS_META_ATTEMPT: set_int(it, (int64_t)r->attempt); break;
    case PS_META_WORKER: set_int(it, (int64_t)r->worker); break;
    case PS_META_HOST: set_str(it, r->host, r->host_len); break;
    case PS_META_START: set_num(it, (double)r->start / 1e6); break;
    case PS_META_END: set_num(it, (double)(r->start + r->duration) / 1e6); break;
    case PS_META_DURATION: set_num(it, (double)r->duration / 1e6); break;
    case PS_META_CPU: set_num(it, (double)r->cpu / 1e6); break;
    case PS_META_MEMORY: set_int(it, (int64_t)r->memory); break;
    default: set_str(it, r->name, r->name_len); break;
  }
  return 0;
}

int ps_memcursor_role(const ps_memcursor_t *c, int i) {
  if (c->col[i] < 0) return PS_ROLE_META;
  return c->cells[i].type == PS_V_NIL ? c->m->cols[c->col[i]].role : c->cellrole[i];
}

void ps_memcursor_close(ps_memcursor_t *c) {
  if (c == NULL) return;
  free(c->cellrole);
  free(c->col);
  free(c->cells);
  free(c->cellpos);
  free(c->celllen);
  free(c);
}
