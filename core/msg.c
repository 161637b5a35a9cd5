/* msg.c: the writers and readers of every message kind (msg.h). */
#include "msg.h"

#include <math.h>
#include <string.h>

static void put_bytes(ps_buf_t *b, ps_bytes_t s) { ps_put_bytes(b, s.p, s.n); }

/* A varint in its shortest form, as every writer writes it: a longer one
   is malformed, so that a message has one encoding only. */
static int get_varint(ps_reader_t *r, uint64_t *v) {
  const unsigned char *start = r->p;
  if (ps_read_varint(r, v) != 0) return PS_EPROTO;
  size_t used = (size_t)(r->p - start), need = 1;
  for (uint64_t x = *v; x >= 0x80; x >>= 7) need++;
  return used == need ? 0 : PS_EPROTO;
}

static int get_bytes(ps_reader_t *r, ps_bytes_t *s) {
  uint64_t n;
  if (get_varint(r, &n) != 0 || n > ps_reader_left(r)) return PS_EPROTO;
  s->p = (const char *)r->p;
  s->n = (size_t)n;
  r->p += n;
  return 0;
}

/* 0 when the whole payload was read, PS_EPROTO when a read failed or
   bytes are left over. */
static int done(ps_reader_t *r, int rc) {
  return rc == 0 && ps_reader_left(r) == 0 ? 0 : PS_EPROTO;
}

void ps_msg_put_hello(ps_buf_t *b, const ps_msg_hello_t *m) {
  size_t s = ps_frame_begin(b, PS_MSG_HELLO);
  ps_buf_put_varint(b, m->protocol);
  ps_buf_put_varint(b, m->pid);
  put_bytes(b, m->host);
  ps_buf_put_varint(b, m->cores);
  put_bytes(b, m->version);
  ps_frame_end(b, s);
}

int ps_msg_get_hello(const char *p, size_t n, ps_msg_hello_t *m) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  int rc = get_varint(&r, &m->protocol) || get_varint(&r, &m->pid) || get_bytes(&r, &m->host) ||
           get_varint(&r, &m->cores) || get_bytes(&r, &m->version);
  return done(&r, rc);
}

void ps_msg_put_code(ps_buf_t *b, const ps_msg_code_t *m) {
  size_t s = ps_frame_begin(b, PS_MSG_CODE);
  ps_buf_put_varint(b, m->worker);
  ps_buf_put_varint(b, m->flags);
  put_bytes(b, m->stage);
  put_bytes(b, m->function);
  put_bytes(b, m->user);
  ps_buf_put_varint(b, m->sandbox);
  ps_buf_put_varint(b, m->seed);
  put_bytes(b, m->workdir);
  ps_buf_put_varint(b, m->output);
  ps_frame_end(b, s);
}

int ps_msg_get_code(const char *p, size_t n, ps_msg_code_t *m) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  int rc = get_varint(&r, &m->worker) || get_varint(&r, &m->flags) || get_bytes(&r, &m->stage) ||
           get_bytes(&r, &m->function) || get_bytes(&r, &m->user) || get_varint(&r, &m->sandbox) ||
           get_varint(&r, &m->seed) || get_bytes(&r, &m->workdir) || get_varint(&r, &m->output);
  return done(&r, rc);
}

void ps_msg_put_code_ok(ps_buf_t *b, const ps_msg_code_ok_t *m) {
  size_t s = ps_frame_begin(b, PS_MSG_CODE_OK);
  ps_buf_put_varint(b, m->ok);
  put_bytes(b, m->message);
  ps_frame_end(b, s);
}

int ps_msg_get_code_ok(const char *p, size_t n, ps_msg_code_ok_t *m) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  int rc = get_varint(&r, &m->ok) || get_bytes(&r, &m->message);
  return done(&r, rc);
}

size_t ps_msg_tasks_begin(ps_buf_t *b) {
  size_t start = ps_frame_begin(b, PS_MSG_TASKS);
  ps_buf_putc(b, 0); /* the count, patched by ps_msg_tasks_end */
  return start;
}

void ps_msg_tasks_add(ps_buf_t *b, const ps_msg_task_t *t) {
  ps_buf_put_varint(b, t->index);
  ps_buf_put_varint(b, t->attempt);
  ps_buf_put_varint(b, t->timeout_ms);
  ps_buf_put_varint(b, t->memory);
  ps_buf_put_varint(b, t->threads);
  put_bytes(b, t->pset);
}

void ps_msg_tasks_end(ps_buf_t *b, size_t start, uint64_t count) {
  ps_buf_patch_varint(b, start + PS_FRAME_HEADER, count);
  ps_frame_end(b, start);
}

void ps_msg_result_head(ps_buf_t *recs, uint64_t index, uint64_t start_us, uint64_t duration_us,
                        uint64_t cpu_us, uint64_t peak) {
  ps_buf_put_varint(recs, index);
  ps_buf_put_varint(recs, start_us);
  ps_buf_put_varint(recs, duration_us);
  ps_buf_put_varint(recs, cpu_us);
  ps_buf_put_varint(recs, peak);
}

size_t ps_msg_result_value(ps_buf_t *recs, const char *a, size_t an, const char *b, size_t bn) {
  size_t at = recs->len;
  ps_buf_putc(recs, PS_STATUS_OK);
  ps_buf_put_varint(recs, an + bn);
  ps_buf_put(recs, a, an);
  ps_buf_put(recs, b, bn);
  return at;
}

size_t ps_msg_result_failure(ps_buf_t *recs, int status, const ps_bytes_t message[2],
                             const ps_bytes_t traceback[2]) {
  size_t at = recs->len;
  ps_buf_putc(recs, (char)status);
  const ps_bytes_t *parts[] = {message, traceback};
  for (int k = 0; k < 2; k++) {
    ps_buf_put_varint(recs, parts[k][0].n + parts[k][1].n);
    ps_buf_put(recs, parts[k][0].p, parts[k][0].n);
    ps_buf_put(recs, parts[k][1].p, parts[k][1].n);
  }
  return at;
}

void ps_msg_result_output(ps_buf_t *recs, size_t status_at, const ps_bytes_t out[2],
                          const ps_bytes_t err[2]) {
  if (out[0].n + out[1].n + err[0].n + err[1].n == 0) return; /* the record as it was */
  if (status_at < recs->len) recs->data[status_at] |= PS_STATUS_OUTPUT;
  const ps_bytes_t *parts[] = {out, err};
  for (int k = 0; k < 2; k++) {
    ps_buf_put_varint(recs, parts[k][0].n + parts[k][1].n);
    ps_buf_put(recs, parts[k][0].p, parts[k][0].n);
    ps_buf_put(recs, parts[k][1].p, parts[k][1].n);
  }
}

/* Doubles of the timers section: 8 bytes, little endian. */
static void put_double(ps_buf_t *b, double v) {
  uint64_t u;
  unsigned char d[8];
  memcpy(&u, &v, 8);
  for (int k = 0; k < 8; k++) d[k] = (unsigned char)(u >> (8 * k));
  ps_buf_put(b, d, 8);
}

/* A double as a timer's sum, min or max: finite, >= 0 and not -0, so
   that a number has one encoding. */
static int get_seconds(ps_reader_t *r, double *v) {
  uint64_t u = 0;
  if (ps_reader_left(r) < 8) return PS_EPROTO;
  for (int k = 0; k < 8; k++) u |= (uint64_t)r->p[k] << (8 * k);
  r->p += 8;
  memcpy(v, &u, 8);
  return isfinite(*v) && *v >= 0 && !signbit(*v) ? 0 : PS_EPROTO;
}

/* One timer of the section: its histogram as (gap, samples) pairs over
   the buckets that have any, between min's and max's. */
static void put_timer(ps_buf_t *b, const ps_timer_t *t) {
  const ps_hist_t *h = &t->t.hist;
  int first = ps_hist_bucket(h->min_us), last = ps_hist_bucket(h->max_us);
  uint64_t nb = 0;
  for (int k = first; k <= last; k++) nb += h->bucket[k] != 0;
  ps_put_bytes(b, t->name, t->len);
  ps_buf_put_varint(b, (uint64_t)h->count);
  put_double(b, t->t.sum);
  put_double(b, t->t.min);
  put_double(b, t->t.max);
  ps_buf_put_varint(b, nb);
  for (int k = first, prev = -1; k <= last; k++) {
    if (h->bucket[k] == 0) continue;
    ps_buf_put_varint(b, (uint64_t)(k - prev - 1));
    ps_buf_put_varint(b, h->bucket[k]);
    prev = k;
  }
}

void ps_msg_put_results(ps_buf_t *b, uint64_t count, const char *recs, size_t len,
                        const ps_timers_t *timers) {
  size_t s = ps_frame_begin(b, PS_MSG_RESULTS);
  ps_buf_put_varint(b, count);
  ps_buf_put(b, recs, len);
  uint64_t m = 0;
  for (int k = 0; timers && k < timers->n; k++) m += timers->v[k]->t.hist.count > 0;
  if (m > 0) {
    ps_buf_put_varint(b, m);
    for (int k = 0; k < timers->n; k++)
      if (timers->v[k]->t.hist.count > 0) put_timer(b, timers->v[k]);
  }
  ps_frame_end(b, s);
}

int ps_msg_batch_open(ps_msg_batch_t *it, const char *p, size_t n) {
  ps_reader_init(&it->r, p, n);
  it->timers = 0;
  it->last.p = "";
  it->last.n = 0;
  return get_varint(&it->r, &it->left) == 0 ? 0 : PS_EPROTO;
}

int ps_msg_next_task(ps_msg_batch_t *it, ps_msg_task_t *t) {
  ps_reader_t *r = &it->r;
  if (it->left == 0) return ps_reader_left(r) == 0 ? 0 : PS_EPROTO;
  it->left--;
  if (get_varint(r, &t->index) || get_varint(r, &t->attempt) || get_varint(r, &t->timeout_ms) ||
      get_varint(r, &t->memory) || get_varint(r, &t->threads) || get_bytes(r, &t->pset))
    return PS_EPROTO;
  return 1;
}

int ps_msg_next_result(ps_msg_batch_t *it, ps_msg_result_t *m) {
  ps_reader_t *r = &it->r;
  if (it->left == 0 || it->timers) return 0;
  it->left--;
  if (get_varint(r, &m->index) || get_varint(r, &m->start_us) || get_varint(r, &m->duration_us) ||
      get_varint(r, &m->cpu_us) || get_varint(r, &m->peak) || ps_read_byte(r, &m->status))
    return PS_EPROTO;
  int output = m->status & PS_STATUS_OUTPUT;
  m->status &= ~PS_STATUS_OUTPUT;
  if (m->status > PS_STATUS_TIMEOUT) return PS_EPROTO;
  m->value.n = m->message.n = m->traceback.n = m->out.n = m->err.n = 0;
  m->value.p = m->message.p = m->traceback.p = m->out.p = m->err.p = "";
  int rc = m->status == PS_STATUS_OK ? get_bytes(r, &m->value)
                                     : get_bytes(r, &m->message) || get_bytes(r, &m->traceback);
  /* The flag says output follows; without any, the record has one
     encoding only: the one without the flag. */
  if (rc == 0 && output)
    rc = get_bytes(r, &m->out) || get_bytes(r, &m->err) || m->out.n + m->err.n == 0;
  return rc ? PS_EPROTO : 1;
}

int ps_msg_timer_name_valid(const char *p, size_t n) {
  if (n == 0 || n > PS_TIMER_NAME_MAX || !ps_utf8_valid(p, n)) return 0;
  for (size_t k = 0; k < n; k++)
    if ((unsigned char)p[k] < 0x20 || p[k] == 0x7f) return 0;
  return 1;
}

/* The histogram of a timer read, checked as it is filled: buckets in
   order, each with samples, from min's to max's, adding up to count. */
static int get_hist(ps_reader_t *r, ps_timing_t *t, uint64_t count) {
  ps_hist_t *h = &t->hist;
  uint64_t nb, gap, n, seen = 0;
  int64_t prev = -1;
  h->min_us = ps_timing_ns(t->min);
  h->max_us = ps_timing_ns(t->max);
  if (get_varint(r, &nb) || nb == 0 || nb > PS_HIST_BUCKETS) return PS_EPROTO;
  for (uint64_t k = 0; k < nb; k++) {
    if (get_varint(r, &gap) || gap >= PS_HIST_BUCKETS || get_varint(r, &n) || n == 0 ||
        n > UINT32_MAX || n > count - seen)
      return PS_EPROTO;
    int64_t at = prev + 1 + (int64_t)gap;
    if (at >= PS_HIST_BUCKETS || (k == 0 && at != ps_hist_bucket(h->min_us))) return PS_EPROTO;
    h->bucket[at] = (uint32_t)n;
    seen += n;
    prev = at;
  }
  if (prev != ps_hist_bucket(h->max_us) || seen != count) return PS_EPROTO;
  h->count = (int64_t)count;
  h->sum_us = t->sum * 1e9;
  return 0;
}

int ps_msg_next_timer(ps_msg_batch_t *it, ps_msg_timer_t *m) {
  ps_reader_t *r = &it->r;
  if (!it->timers) {
    /* After the last record, opens the section when there is one. */
    if (it->left != 0) return PS_EPROTO;
    if (ps_reader_left(r) == 0) return 0;
    if (get_varint(r, &it->left) || it->left == 0 || it->left > PS_TIMERS_MAX) return PS_EPROTO;
    it->timers = 1;
  }
  if (it->left == 0) return ps_reader_left(r) == 0 ? 0 : PS_EPROTO;
  it->left--;
  uint64_t count;
  ps_timing_init(&m->t);
  if (get_bytes(r, &m->name) || !ps_msg_timer_name_valid(m->name.p, m->name.n) ||
      ps_timers_cmp(m->name.p, m->name.n, it->last.p, it->last.n) <= 0)
    return PS_EPROTO;
  it->last = m->name;
  if (get_varint(r, &count) || count == 0 || count > INT64_MAX || get_seconds(r, &m->t.sum) ||
      get_seconds(r, &m->t.min) || get_seconds(r, &m->t.max) || m->t.min > m->t.max ||
      get_hist(r, &m->t, count))
    return PS_EPROTO;
  return 1;
}

void ps_msg_put_started(ps_buf_t *b, const ps_msg_started_t *m) {
  size_t s = ps_frame_begin(b, PS_MSG_STARTED);
  ps_buf_put_varint(b, m->index);
  ps_buf_put_varint(b, m->start_us);
  ps_frame_end(b, s);
}

int ps_msg_get_started(const char *p, size_t n, ps_msg_started_t *m) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  int rc = get_varint(&r, &m->index) || get_varint(&r, &m->start_us);
  return done(&r, rc);
}

void ps_msg_put_fatal(ps_buf_t *b, const char *message, size_t n) {
  size_t s = ps_frame_begin(b, PS_MSG_FATAL);
  ps_put_bytes(b, message, n);
  ps_frame_end(b, s);
}

int ps_msg_get_fatal(const char *p, size_t n, ps_bytes_t *message) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  return done(&r, get_bytes(&r, message));
}

void ps_msg_put_agent(ps_buf_t *b, const ps_msg_agent_t *m) {
  size_t s = ps_frame_begin(b, PS_MSG_AGENT);
  ps_buf_put_varint(b, m->protocol);
  put_bytes(b, m->host);
  ps_buf_put_varint(b, m->cores);
  ps_buf_put_varint(b, m->memory_mb);
  put_bytes(b, m->version);
  put_bytes(b, m->gpus);
  put_bytes(b, m->job);
  ps_buf_put_varint(b, m->ends);
  ps_frame_end(b, s);
}

int ps_msg_get_agent(const char *p, size_t n, ps_msg_agent_t *m) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  int rc = get_varint(&r, &m->protocol) || get_bytes(&r, &m->host) || get_varint(&r, &m->cores) ||
           get_varint(&r, &m->memory_mb) || get_bytes(&r, &m->version) || get_bytes(&r, &m->gpus) ||
           get_bytes(&r, &m->job) || get_varint(&r, &m->ends);
  return done(&r, rc);
}

void ps_msg_put_spawn(ps_buf_t *b, uint64_t worker, const char *gpus, size_t n) {
  size_t s = ps_frame_begin(b, PS_MSG_SPAWN);
  ps_buf_put_varint(b, worker);
  ps_put_bytes(b, gpus, n);
  ps_frame_end(b, s);
}

void ps_msg_put_kill(ps_buf_t *b, uint64_t worker, uint64_t sig) {
  size_t s = ps_frame_begin(b, PS_MSG_KILL);
  ps_buf_put_varint(b, worker);
  ps_buf_put_varint(b, sig);
  ps_frame_end(b, s);
}

void ps_msg_put_to(ps_buf_t *b, uint64_t worker, const char *frame, size_t n) {
  size_t s = ps_frame_begin(b, PS_MSG_TO);
  ps_buf_put_varint(b, worker);
  ps_buf_put(b, frame, n);
  ps_frame_end(b, s);
}

void ps_msg_put_from(ps_buf_t *b, uint64_t worker, int kind, const char *payload, size_t n) {
  size_t s = ps_frame_begin(b, PS_MSG_FROM);
  ps_buf_put_varint(b, worker);
  ps_buf_putc(b, (char)kind);
  ps_buf_put(b, payload, n);
  ps_frame_end(b, s);
}

void ps_msg_put_gone(ps_buf_t *b, uint64_t worker, uint64_t status, uint64_t sig, const char *why,
                     size_t n) {
  size_t s = ps_frame_begin(b, PS_MSG_GONE);
  ps_buf_put_varint(b, worker);
  ps_buf_put_varint(b, status);
  ps_buf_put_varint(b, sig);
  ps_put_bytes(b, why, n);
  ps_frame_end(b, s);
}

int ps_msg_get_relay(int kind, const char *p, size_t n, ps_msg_relay_t *m) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  m->arg1 = m->arg2 = 0;
  m->kind = 0;
  m->bytes.p = "";
  m->bytes.n = 0;
  if (get_varint(&r, &m->worker) != 0) return PS_EPROTO;
  switch (kind) {
    case PS_MSG_SPAWN: return done(&r, get_bytes(&r, &m->bytes));
    case PS_MSG_KILL: return done(&r, get_varint(&r, &m->arg1));
    case PS_MSG_TO:
    case PS_MSG_FROM:
      if (kind == PS_MSG_FROM &&
          (ps_read_byte(&r, &m->kind) != 0 || m->kind < 1 || m->kind > PS_MSG_LAST))
        return PS_EPROTO;
      m->bytes.p = (const char *)r.p;
      m->bytes.n = ps_reader_left(&r);
      return 0;
    case PS_MSG_GONE:
      return done(&r,
                  get_varint(&r, &m->arg1) || get_varint(&r, &m->arg2) || get_bytes(&r, &m->bytes));
    default: return PS_EPROTO;
  }
}

void ps_msg_put_empty(ps_buf_t *b, int kind) {
  size_t s = ps_frame_begin(b, kind);
  ps_frame_end(b, s);
}

int ps_msg_get_empty(const char *p, size_t n) {
  (void)p;
  return n == 0 ? 0 : PS_EPROTO;
}
