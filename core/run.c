/* run.c: the engine and the scheduler of one stage (run.h). */
#include "run.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "json.h"
#include "msg.h"
#include "node.h"
#include "value.h"

/* Batches a worker holds at once: the one it runs and the next. */
#define DEPTH 2
/* Automatic batches aim at this much work (us), within [1, MAX_BATCH]. */
#define BATCH_US 20000.0
#define MAX_BATCH 1024
/* Workers that die before saying hello, in a row, before we give up. */
#define MAX_STARTUP_FAILURES 3
/* How often running psets are checked against their timeout (ms). */
#define WATCH_MS 100
/* Attempts at one pset, whatever a retry function says. */
#define MAX_ATTEMPTS 100
/* With a timeout, a worker that has not loaded the stage's code after this
   long (plus the timeout) is killed: a start-up that never ends. */
#define STARTUP_LIMIT_S 60.0
/* After a signal, how long the last rows wait for a database locked by
   another program before they are given up. */
#define END_WAIT_S 5.0
/* A stage that stops kills its workers; those on hosts that have not
   answered after STOP_GRACE_MS have their ssh killed, and at STOP_LIMIT_MS
   what is left is given up (ps_pool_drain). */
#define STOP_GRACE_MS 1000
#define STOP_LIMIT_MS 2000
/* The signals that interrupt a stage. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSTOP (int)(sizeof stop_signals / sizeof *stop_signals)

typedef struct task_s {
  int64_t index;
  int64_t attempt;
  int suspect; /* its worker died with others in flight: it runs alone */
  int ov;      /* its entry in ps_run_t.over (retried psets), or -1 */
  int64_t eoff; /* its encoding in its worker's slot_t.enc, or -1 */
  size_t elen;
} task_t;

/* A pset that failed and runs again: its limits from now on, and the
   causes of its earlier attempts for the final row's _exception. */
typedef struct override_s {
  ps_limits_t limits;
  ps_buf_t causes;
} override_t;

/* The scheduler's state of one worker (ps_worker_t.data). */
typedef struct slot_s {
  task_t *fifo; /* in flight, in the order sent */
  size_t head, len, cap;
  int batch[DEPTH + 1]; /* psets left in each batch sent, oldest first */
  int nbatches;
  int64_t assigned;   /* psets given in its life, for max_tasks_per_child */
  int retiring;       /* BYE sent */
  int alone;          /* running a suspect or a multi-slot pset alone */
  int weight;         /* slots it occupies while busy: 1, or a pset's ncores */
  int64_t head_since; /* when the first pset in flight started, at the latest (mono us) */
  ps_buf_t enc;       /* the encodings of the psets sent, so finish() need not make them again */
  int timed_out;      /* killed by the driver for the timeout of its head pset */
  char kill_msg[128];
  /* The worker answered the stage's CODE: until then it is starting (a
     slow module to load), and the clock of its first pset does not run. */
  int code_loaded;
  int64_t code_sent; /* mono us */
  int startup_stuck; /* killed for never loading it */
} slot_t;

typedef struct ps_run_s {
  ps_engine_t *e;
  ps_source_t *src;
  ps_stage_t *stage;
  const ps_run_opts_t *o;
  int64_t total, next;
  task_t *requeue;
  size_t nreq, capreq;
  ps_counts_t c;
  ps_hist_t hist;
  double est_us;
  int have_est;
  int done, interrupted, fatal;
  ps_err_t err;
  int startup_failures;
  ps_progress_t progress;
  uv_timer_t timer, watch;
  uv_check_t check;
  uv_signal_t sig[NSTOP];
  struct sigaction saved[NSTOP]; /* their handling before the stage */
  int open_handles;
  ps_buf_t scratch;
  int64_t start_us;
  uint8_t *skip; /* resuming: skip[i] when pset i needs no new run */
  override_t *over;
  size_t nover, capover;
  int64_t db_waiting; /* since when (mono us) another program holds the database's write lock, or 0 */
  int stuck_starts;   /* workers killed in a row for not loading the code */
} ps_run_t;

static void fail_run(ps_run_t *r, int code, const char *fmt, const char *a, const char *b) {
  if (r->fatal) return;
  r->fatal = 1;
  ps_err_set(&r->err, code, fmt, a, b);
  ps_log_printf(&r->e->log, "stage %s: stopped: %s", r->o->name, r->err.msg);
}

static slot_t *slot_of(ps_worker_t *w) { return w->data; }

static int slot_push(slot_t *s, task_t t) {
  if (s->head + s->len == s->cap) {
    if (s->head > 0) {
      memmove(s->fifo, s->fifo + s->head, sizeof(task_t) * s->len);
      s->head = 0;
    } else {
      size_t cap = s->cap ? s->cap * 2 : 64;
      task_t *f = realloc(s->fifo, sizeof(task_t) * cap);
      if (f == NULL) return PS_ENOMEM;
      s->fifo = f;
      s->cap = cap;
    }
  }
  s->fifo[s->head + s->len++] = t;
  return 0;
}

static int requeue_push(ps_run_t *r, task_t t) {
  t.eoff = -1; /* it leaves its worker's encodings behind */
  if (r->nreq == r->capreq) {
    size_t cap = r->capreq ? r->capreq * 2 : 16;
    task_t *q = realloc(r->requeue, sizeof(task_t) * cap);
    if (q == NULL) return PS_ENOMEM;
    r->requeue = q;
    r->capreq = cap;
  }
  r->requeue[r->nreq++] = t;
  return 0;
}

/* Retried and alone-running psets go first. */
static int requeue_push_front(ps_run_t *r, task_t t) {
  if (requeue_push(r, t) != 0) return PS_ENOMEM;
  memmove(r->requeue + 1, r->requeue, sizeof(task_t) * (r->nreq - 1));
  r->requeue[0] = t;
  return 0;
}

static task_t requeue_pop(ps_run_t *r) {
  task_t t = r->requeue[0];
  memmove(r->requeue, r->requeue + 1, sizeof(task_t) * --r->nreq);
  return t;
}

static int work_left(const ps_run_t *r) { return r->next < r->total || r->nreq > 0; }

/* Moves r->next past psets an earlier run finished (resume). */
static void skip_done(ps_run_t *r) {
  if (r->skip)
    while (r->next < r->total && r->skip[r->next]) r->next++;
}

/* Copies the fields set in `over` onto l, without allocating (names are
   borrowed). */
static void overlay(ps_limits_t *l, const ps_limits_t *over) {
  if (over == NULL) return;
  if (over->timeout >= 0) l->timeout = over->timeout;
  if (over->memory >= 0) l->memory = over->memory;
  if (over->ncores > 0) l->ncores = over->ncores;
  if (over->retries >= 0) l->retries = over->retries;
  if (over->name) l->name = over->name;
}

/* The limits task t runs with: the map's, the pset's own, and what a retry
   changed. Every field is set. */
static void limits_of(const ps_run_t *r, task_t t, ps_limits_t *l) {
  *l = r->o->limits;
  if (t.ov >= 0) {
    overlay(l, &r->over[t.ov].limits);
    return;
  }
  if (r->src->limits) overlay(l, r->src->limits(r->src, t.index));
}

/* The node with the most slots of those ever up (NULL: none yet). */
static const ps_node_t *largest_node(const ps_run_t *r) {
  const ps_pool_t *p = &r->e->pool;
  const ps_node_t *m = NULL;
  for (int k = 0; k < p->nnodes; k++)
    if (p->nodes[k]->ever_up && (m == NULL || p->nodes[k]->slots > m->slots)) m = p->nodes[k];
  return m;
}

/* Slots of node n not taken by its busy workers. */
static int free_slots(const ps_run_t *r, const ps_node_t *n) {
  const ps_pool_t *p = &r->e->pool;
  int used = 0;
  for (int k = 0; k < p->n; k++) {
    const slot_t *s = p->workers[k]->data;
    if (s && s->len > 0 && p->workers[k]->node == n) used += s->weight;
  }
  return n->slots - used;
}

static void check_done(ps_run_t *r) {
  if (r->c.ok + r->c.failed >= r->total) r->done = 1;
}

/* Says once that the database is locked by another program, and again
   when it is free; the rows wait in memory meanwhile. */
static void note_db_wait(ps_run_t *r, int waiting, const char *why) {
  if (waiting && !r->db_waiting) {
    r->db_waiting = ps_mono_us();
    ps_log_printf(&r->e->log, "stage %s: %s: waiting for it; finished rows are kept in memory until then",
                  r->o->name, why);
    if (r->o->verbose >= 1)
      ps_progress_event(&r->progress, "%s: waiting for it (finished rows are kept until then)", why);
  } else if (!waiting && r->db_waiting) {
    char took[32];
    ps_format_seconds(took, sizeof took, (double)(ps_mono_us() - r->db_waiting) / 1e6);
    r->db_waiting = 0;
    ps_log_printf(&r->e->log, "stage %s: the database is free again after %s", r->o->name, took);
    if (r->o->verbose >= 1) ps_progress_event(&r->progress, "the database is free again after %s", took);
  }
}

/* Writes the rows stored since the last commit. Another program holding
   the database's write lock is waited for, not a failure. */
static void commit_rows(ps_run_t *r) {
  ps_err_t err;
  if (r->stage == NULL) return;
  int rc = ps_stage_commit(r->stage, &err);
  if (rc == PS_EBUSY) {
    note_db_wait(r, 1, err.msg);
  } else if (rc != 0) {
    fail_run(r, rc, "cannot store results: %s%s", err.msg, "");
  } else {
    note_db_wait(r, 0, NULL);
  }
}

static void send_code(ps_run_t *r, ps_worker_t *w) {
  const ps_run_opts_t *o = r->o;
  slot_t *slot = slot_of(w);
  if (slot) {
    slot->code_loaded = 0;
    slot->code_sent = ps_mono_us();
  }
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_code_t m = {(uint64_t)w->id,
                     o->verbose >= 3 ? PS_CODE_REPORT_STARTS : 0,
                     (uint64_t)o->sandbox,
                     o->seed,
                     {o->name, strlen(o->name)},
                     {o->code, o->code_len},
                     {o->user, o->user_len}};
  ps_msg_put_code(&b, &m);
  if (b.failed)
    fail_run(r, PS_ENOMEM, "out of memory sending the worker code%s%s", "", "");
  else
    ps_worker_send(w, &b);
  ps_buf_free(&b);
}

static int64_t batch_size(ps_run_t *r, slot_t *s) {
  const ps_run_opts_t *o = r->o;
  int64_t k;
  if (o->group_size > 0) {
    k = o->group_size;
  } else {
    k = 1;
    if (r->have_est) {
      /* The larger of the recent and the overall mean run time: with a
         heavy tail (most psets tiny, a few long), the recent mean forgets
         the long ones and would pack several into one batch, where they
         keep each other (and the psets queued behind) waiting. */
      double mean = r->hist.count ? r->hist.sum_us / (double)r->hist.count : 0;
      double est = r->est_us > mean ? r->est_us : mean;
      double want = BATCH_US / (est > 0.5 ? est : 0.5);
      k = want < 1 ? 1 : want > MAX_BATCH ? MAX_BATCH : (int64_t)want;
    }
    /* Near the end, smaller batches spread the tail over every worker. */
    int nw = r->e->pool.n > 0 ? r->e->pool.n : 1;
    int64_t share = (r->total - r->next) / (2 * nw);
    if (k > share) k = share > 0 ? share : 1;
  }
  if (o->max_tasks_per_child > 0 && k > o->max_tasks_per_child - s->assigned)
    k = o->max_tasks_per_child - s->assigned;
  return k;
}

static void finish(ps_run_t *r, ps_worker_t *w, task_t t, const char *status, int64_t start_us, int64_t dur_us,
                   int64_t cpu_us, int64_t peak, const char *result, size_t result_len, const char *msg,
                   size_t msg_len, const char *tb, size_t tb_len);

/* Appends task t to a TASKS frame being built in b. A pset too large to
   send (over PS_VALUE_MAX) fails here: -1. */
static int put_task(ps_run_t *r, ps_buf_t *b, task_t t) {
  ps_limits_t l;
  limits_of(r, t, &l);
  r->scratch.len = 0;
  r->src->get(r->src, t.index, &r->scratch);
  if (r->scratch.len > PS_VALUE_MAX) {
    char msg[160];
    snprintf(msg, sizeof msg, "the pset is %.1f MiB encoded, over the %u MiB one pset may take",
             (double)r->scratch.len / (1 << 20), PS_VALUE_MAX >> 20);
    finish(r, NULL, t, "error", ps_now_us(), 0, 0, 0, NULL, 0, msg, strlen(msg), "", 0);
    return -1;
  }
  ps_msg_task_t m = {(uint64_t)t.index,
                     (uint64_t)t.attempt,
                     (uint64_t)(l.timeout * 1000.0 + 0.5),
                     (uint64_t)(l.memory * 1024.0 * 1024.0),
                     {r->scratch.data, r->scratch.len}};
  ps_msg_tasks_add(b, &m);
  return 0;
}

/* The next pset from the source, or 0 when there is none. A pset that
   needs several slots goes to the front of the requeue (it runs alone),
   one that needs more slots than there are fails here. */
static int pull_task(ps_run_t *r, task_t *t) {
  while (r->next < r->total) {
    t->index = r->next++;
    t->attempt = 1;
    t->suspect = 0;
    t->ov = -1;
    t->eoff = -1;
    skip_done(r);
    if (r->src->limits == NULL) return 1;
    ps_limits_t l;
    limits_of(r, *t, &l);
    if (l.ncores <= 1) return 1;
    const ps_node_t *most = largest_node(r);
    if (most && l.ncores > most->slots) {
      char msg[200];
      if (most->ops->slots_per_map)
        snprintf(msg, sizeof msg, "the pset needs %d slots (ncores) but this map has %d (option 'ncores')",
                 l.ncores, most->slots);
      else
        snprintf(msg, sizeof msg, "the pset needs %d slots (ncores) but the largest %s has %d", l.ncores,
                 most->ops->noun, most->slots);
      finish(r, NULL, *t, "error", ps_now_us(), 0, 0, 0, NULL, 0, msg, strlen(msg), "", 0);
      continue;
    }
    requeue_push_front(r, *t);
    return 0;
  }
  return 0;
}

/* How many slots a task at the head of the requeue needs to run alone, or
   0 when it can share a batch. */
static int alone_slots(const ps_run_t *r, task_t t) {
  ps_limits_t l;
  limits_of(r, t, &l);
  if (l.ncores > 1) return l.ncores;
  return t.suspect ? 1 : 0;
}

/* After put_task: t is in flight on s, its encoding (r->scratch) kept. */
static void sent_task(ps_run_t *r, slot_t *s, task_t t) {
  if (s->len == 0) {
    s->head_since = ps_mono_us();
    s->enc.len = 0; /* nothing in flight needs what is there */
  } else if (s->fifo[s->head].eoff > (1 << 20)) {
    /* Drop the encodings of psets already finished. */
    int64_t drop = s->fifo[s->head].eoff;
    memmove(s->enc.data, s->enc.data + drop, s->enc.len - (size_t)drop);
    s->enc.len -= (size_t)drop;
    for (size_t k = 0; k < s->len; k++) s->fifo[s->head + k].eoff -= drop;
  }
  t.eoff = (int64_t)s->enc.len;
  t.elen = r->scratch.len;
  ps_buf_put(&s->enc, r->scratch.data, r->scratch.len);
  if (s->enc.failed) {
    fail_run(r, PS_ENOMEM, "out of memory%s%s", "", "");
    return;
  }
  if (slot_push(s, t) != 0) fail_run(r, PS_ENOMEM, "out of memory%s%s", "", "");
}

/* Gives the worker batches until it holds `depth` of them. */
static void dispatch(ps_run_t *r, ps_worker_t *w, int depth) {
  slot_t *s = slot_of(w);
  const ps_run_opts_t *o = r->o;
  if (r->done || r->fatal || r->interrupted || w->closing || w->why[0] || s->retiring) return;
  while (s->nbatches < depth && !s->alone && work_left(r) && !r->fatal) {
    if (o->max_tasks_per_child > 0 && s->assigned >= o->max_tasks_per_child) break;
    ps_buf_t b;
    ps_buf_init(&b);
    size_t start = ps_msg_tasks_begin(&b);
    int64_t n = 0;
    int k = r->nreq > 0 ? alone_slots(r, r->requeue[0]) : 0;
    if (k > 0) {
      /* It waits for an idle worker and enough free slots; meanwhile nobody
         gets more work, so slots do free up. */
      if (s->nbatches > 0 || free_slots(r, w->node) < k) {
        ps_buf_free(&b);
        break;
      }
      task_t t = requeue_pop(r);
      if (put_task(r, &b, t) != 0) {
        ps_buf_free(&b);
        continue;
      }
      s->alone = 1;
      s->weight = k;
      sent_task(r, s, t);
      n = 1;
    } else {
      if (s->len == 0 && free_slots(r, w->node) < 1) {
        ps_buf_free(&b);
        break;
      }
      int64_t want = batch_size(r, s);
      while (n < want && work_left(r)) {
        task_t t;
        if (r->nreq > 0) {
          if (alone_slots(r, r->requeue[0]) > 0) break;
          t = requeue_pop(r);
        } else if (!pull_task(r, &t)) {
          break;
        }
        if (put_task(r, &b, t) != 0) continue;
        sent_task(r, s, t);
        n++;
        if (b.len >= PS_BATCH_BYTES) break;
      }
    }
    if (n == 0) {
      ps_buf_free(&b);
      break;
    }
    ps_msg_tasks_end(&b, start, (uint64_t)n);
    if (b.failed || r->scratch.failed) {
      ps_buf_free(&b);
      fail_run(r, PS_ENOMEM, "out of memory building a batch%s%s", "", "");
      return;
    }
    ps_worker_send(w, &b);
    ps_buf_free(&b);
    s->batch[s->nbatches++] = (int)n;
    s->assigned += n;
    r->c.active += n;
  }
}

/* Breadth first: every worker gets its first batch before any gets a
   second, so a small stage spreads over all of them. */
static void dispatch_all(ps_run_t *r) {
  ps_pool_t *p = &r->e->pool;
  for (int depth = 1; depth <= DEPTH; depth++)
    for (int k = 0; k < p->n; k++)
      if (p->workers[k]->data) dispatch(r, p->workers[k], depth);
}

/* Stores one finished pset and counts it. w is NULL for a pset that never
   reached a worker. */
static void finish(ps_run_t *r, ps_worker_t *w, task_t t, const char *status, int64_t start_us, int64_t dur_us,
                   int64_t cpu_us, int64_t peak, const char *result, size_t result_len, const char *msg,
                   size_t msg_len, const char *tb, size_t tb_len) {
  ps_row_t row;
  ps_limits_t lim;
  memset(&row, 0, sizeof row);
  limits_of(r, t, &lim);
  /* The encoding sent (still in the worker's slot when the result comes
     back), else made again. */
  slot_t *s = w ? w->data : NULL;
  if (s && t.eoff >= 0 && (size_t)t.eoff + t.elen <= s->enc.len) {
    row.pset = s->enc.data + t.eoff;
    row.pset_len = t.elen;
  } else {
    r->scratch.len = 0;
    r->src->get(r->src, t.index, &r->scratch);
    row.pset = r->scratch.data;
    row.pset_len = r->scratch.len;
  }
  row.index = t.index;
  row.status = status;
  row.attempt = t.attempt;
  row.worker = w ? w->id : 0;
  row.host = w && w->host[0] ? w->host : NULL;
  row.start_us = start_us;
  row.duration_us = dur_us;
  row.cpu_us = cpu_us;
  row.peak_bytes = peak;
  row.name = lim.name;
  row.result = result;
  row.result_len = result_len;
  row.exception = msg;
  row.exception_len = msg_len;
  row.traceback = tb;
  row.traceback_len = tb_len;
  /* A pset tried before: its row says what happened each time. */
  ps_buf_t why;
  ps_buf_init(&why);
  if (t.ov >= 0 && r->over[t.ov].causes.len > 0 && msg) {
    ps_buf_put(&why, msg, msg_len);
    ps_buf_puts(&why, " (attempt ");
    ps_buf_printf(&why, "%lld; earlier: ", (long long)t.attempt);
    ps_buf_put(&why, r->over[t.ov].causes.data, r->over[t.ov].causes.len);
    ps_buf_putc(&why, ')');
    if (!why.failed) {
      row.exception = msg = why.data;
      row.exception_len = msg_len = why.len;
    }
  }
  char bad[600];
  if (r->stage) {
    ps_err_t err;
    int rc = ps_stage_add(r->stage, &row, &err);
    if (rc == PS_EVALUE) {
      /* This row cannot be stored as it is: it becomes a failure. */
      snprintf(bad, sizeof bad, "%s", err.msg);
      row.status = status = "error";
      row.result = NULL;
      row.result_len = 0;
      row.exception = msg = bad;
      row.exception_len = msg_len = strlen(bad);
      row.traceback = tb = "";
      row.traceback_len = tb_len = 0;
      rc = ps_stage_add(r->stage, &row, &err);
    }
    if (rc != 0) {
      ps_buf_free(&why);
      fail_run(r, rc, "cannot store results: %s%s", err.msg, "");
      return;
    }
  }
  if (w && w->node) w->node->done++;
  ps_hist_add(&r->hist, dur_us);
  r->est_us = r->have_est ? 0.8 * r->est_us + 0.2 * (double)dur_us : (double)dur_us;
  r->have_est = 1;
  if (strcmp(status, "ok") == 0) {
    r->c.ok++;
    if (r->o->verbose >= 3) {
      char took[32];
      ps_format_seconds(took, sizeof took, (double)dur_us / 1e6);
      ps_progress_event(&r->progress, "pset #%lld finished in %s on worker %lld", (long long)t.index + 1, took,
                        (long long)row.worker);
    }
  } else {
    r->c.failed++;
    if (strcmp(status, "error") == 0) r->c.exceptions++;
    ps_log_t *log = &r->e->log;
    ps_buf_t js;
    ps_buf_init(&js);
    ps_reader_t pr;
    ps_reader_init(&pr, row.pset, row.pset_len);
    /* A log line holds 1 KiB: the pset gets 300 bytes of it, so that the
       message after it shows, and a large pset is not written out in full
       to be cut. */
    if (row.pset_len <= 4096)
      ps_json_write(&pr, &js, 0);
    else
      ps_buf_printf(&js, "(%.1f KiB, not shown)", (double)row.pset_len / 1024);
    if (js.len > 300) {
      js.len = 297;
      while (js.len > 0 && ((unsigned char)js.data[js.len] & 0xC0) == 0x80) js.len--; /* a whole character */
      ps_buf_puts(&js, "...");
    }
    ps_buf_putc(&js, 0);
    ps_log_printf(log, "stage %s: pset #%lld %s (attempt %lld, worker %lld): %s: %.*s", r->o->name,
                  (long long)t.index + 1, js.failed ? "?" : js.data, (long long)t.attempt, (long long)row.worker,
                  status, (int)msg_len, msg);
    ps_log_block(log, "    ", tb, tb_len);
    ps_buf_free(&js);
    ps_progress_failure(&r->progress, t.index, msg, msg_len, log->path);
  }
  ps_buf_free(&why);
  check_done(r);
}

/* The override entry of a pset being retried, made on its first retry. */
static int override_of(ps_run_t *r, task_t *t, const ps_limits_t *current) {
  if (t->ov >= 0) return 0;
  if (r->nover == r->capover) {
    size_t cap = r->capover ? r->capover * 2 : 8;
    override_t *o = realloc(r->over, sizeof *o * cap);
    if (o == NULL) return PS_ENOMEM;
    r->over = o;
    r->capover = cap;
  }
  override_t *o = &r->over[r->nover];
  ps_limits_unset(&o->limits);
  ps_limits_t copy = *current;
  copy.name = NULL;
  ps_limits_merge(&o->limits, &copy);
  if (current->name && (o->limits.name = strdup(current->name)) == NULL) return PS_ENOMEM;
  ps_buf_init(&o->causes);
  t->ov = (int)r->nover++;
  return 0;
}

static int retryable(const char *kind) {
  return strcmp(kind, "timeout") == 0 || strcmp(kind, "signal") == 0 || strcmp(kind, "exit") == 0;
}

/* Records a failed attempt in the stage's attempts table; r->scratch
   holds the pset's encoding afterwards. */
static int record_attempt(ps_run_t *r, ps_worker_t *w, task_t t, const char *kind, const char *msg, size_t msg_len,
                          const char *tb, size_t tb_len, int64_t start, int64_t dur, int64_t cpu, int64_t peak) {
  ps_limits_t lim;
  limits_of(r, t, &lim);
  r->scratch.len = 0;
  r->src->get(r->src, t.index, &r->scratch);
  uint64_t hash = ps_hash(r->scratch.data, r->scratch.len, 0);
  if (r->stage) {
    ps_attempt_t a = {t.index, t.attempt, w ? w->id : 0, kind, msg, tb, msg_len, tb_len,
                      w && w->host[0] ? w->host : NULL, start, dur, cpu, peak, lim.timeout, lim.memory, hash};
    ps_err_t err;
    if (ps_stage_attempt(r->stage, &a, &err) != 0) {
      fail_run(r, err.code, "cannot store results: %s%s", err.msg, "");
      return err.code;
    }
  }
  return 0;
}

/* An attempt at t failed: it is recorded, then t runs again (retries left,
   or the retry callback says so) or is finished as failed. */
static void attempt_failed(ps_run_t *r, ps_worker_t *w, task_t t, const char *kind, const char *msg,
                           size_t msg_len, const char *tb, size_t tb_len, int64_t start, int64_t dur, int64_t cpu,
                           int64_t peak) {
  ps_limits_t lim;
  limits_of(r, t, &lim);
  if (record_attempt(r, w, t, kind, msg, msg_len, tb, tb_len, start, dur, cpu, peak) != 0) return;
  int again = 0;
  ps_limits_t next;
  ps_limits_unset(&next);
  if (t.attempt >= MAX_ATTEMPTS) {
    again = 0;
  } else if (r->o->retry) {
    ps_failure_t f = {t.index, t.attempt, kind, msg, msg_len, r->scratch.data, r->scratch.len, &lim};
    char why[400];
    int rc = r->o->retry(r->o->retry_ud, &f, &next, why, sizeof why);
    if (rc < 0) {
      char idx[32];
      snprintf(idx, sizeof idx, "%lld", (long long)t.index + 1);
      ps_limits_free(&next);
      fail_run(r, PS_EVALUE, "the retry function failed on pset #%s: %s", idx, why);
      return;
    }
    again = rc == 1;
  } else {
    again = retryable(kind) && t.attempt <= lim.retries;
  }
  if (!again) {
    ps_limits_free(&next);
    finish(r, w, t, kind, start, dur, cpu, peak, NULL, 0, msg, msg_len, tb, tb_len);
    return;
  }
  if (override_of(r, &t, &lim) != 0 || ps_limits_merge(&r->over[t.ov].limits, &next) != 0) {
    ps_limits_free(&next);
    fail_run(r, PS_ENOMEM, "out of memory%s%s", "", "");
    return;
  }
  ps_limits_free(&next);
  ps_buf_t *c = &r->over[t.ov].causes;
  ps_buf_printf(c, "%s#%lld %s", c->len ? "; " : "", (long long)t.attempt, kind);
  if (strcmp(kind, "timeout") != 0 && strcmp(kind, "memory") != 0) {
    /* The kind says it all for limits; crashes and errors say more. */
    ps_buf_puts(c, ": ");
    ps_buf_put(c, msg, msg_len < 120 ? msg_len : 120);
  }
  ps_log_printf(&r->e->log, "stage %s: pset #%lld attempt %lld failed (%s: %.*s); trying again", r->o->name,
                (long long)t.index + 1, (long long)t.attempt, kind, (int)(msg_len < 300 ? msg_len : 300), msg);
  if (r->o->verbose >= 3)
    ps_progress_event(&r->progress, "pset #%lld attempt %lld failed (%s); trying again", (long long)t.index + 1,
                      (long long)t.attempt, kind);
  t.attempt++;
  t.suspect = 0;
  r->c.retried++;
  if (requeue_push_front(r, t) != 0) fail_run(r, PS_ENOMEM, "out of memory%s%s", "", "");
}

static const char *const status_kinds[] = {"ok", "error", "memory", "timeout"};

/* Takes the oldest task in flight off the worker. */
/* Takes the first pset in flight off the slot; the next one started at
   `now` at the latest. */
static task_t slot_pop(ps_run_t *r, slot_t *s, int64_t now) {
  task_t t = s->fifo[s->head];
  s->head++;
  s->len--;
  r->c.active--;
  if (--s->batch[0] == 0) memmove(s->batch, s->batch + 1, sizeof(int) * (size_t)--s->nbatches);
  s->head_since = now;
  return t;
}

static void on_results(ps_run_t *r, ps_worker_t *w, const char *p, size_t n) {
  slot_t *s = slot_of(w);
  ps_msg_batch_t it;
  ps_msg_result_t m;
  int was_wide = s->weight > 1, rc = 0;
  int64_t now = ps_mono_us(); /* one reading for the frame's psets */
  if (ps_msg_batch_open(&it, p, n) != 0) goto bad;
  while (!r->fatal && (rc = ps_msg_next_result(&it, &m)) == 1) {
    if (m.status == PS_STATUS_OK && m.value.n > 0) {
      /* A result is a table, whole: the store reads it as one. */
      ps_reader_t v;
      ps_item_t head;
      ps_reader_init(&v, m.value.p, m.value.n);
      if (ps_skip_value(&v, 0) != 0 || ps_reader_left(&v) != 0) goto bad;
      ps_reader_init(&v, m.value.p, m.value.n);
      if (ps_read_item(&v, &head) != 0 || head.type != PS_V_TABLE) goto bad;
    }
    if (s->len == 0 || s->fifo[s->head].index != (int64_t)m.index) goto bad;
    task_t t = slot_pop(r, s, now);
    if (s->len == 0) s->alone = 0, s->weight = 1;
    if (m.status == PS_STATUS_OK)
      finish(r, w, t, "ok", (int64_t)m.start_us, (int64_t)m.duration_us, (int64_t)m.cpu_us, (int64_t)m.peak,
             m.value.n ? m.value.p : NULL, m.value.n, NULL, 0, NULL, 0);
    else
      attempt_failed(r, w, t, status_kinds[m.status], m.message.p, m.message.n, m.traceback.p, m.traceback.n,
                     (int64_t)m.start_us, (int64_t)m.duration_us, (int64_t)m.cpu_us, (int64_t)m.peak);
  }
  if (!r->fatal && rc != 0) goto bad;
  /* On disk before the worker gets more work: a driver killed now loses
     only psets still in flight (unless another program locks the
     database: then they wait in memory). */
  commit_rows(r);
  if (r->fatal) return;
  if (r->o->max_tasks_per_child > 0 && s->assigned >= r->o->max_tasks_per_child && s->len == 0 &&
      !s->retiring) {
    s->retiring = 1;
    ps_worker_bye(w);
    return;
  }
  if (was_wide || r->nreq > 0)
    dispatch_all(r);
  else
    dispatch(r, w, DEPTH);
  return;
bad:
  ps_worker_kill(w, SIGKILL, "sent a malformed results frame");
}

static void on_frame(ps_worker_t *w, int kind, const char *p, size_t n) {
  ps_engine_t *e = w->pool->owner;
  ps_run_t *r = e->run;
  switch (kind) {
    case PS_MSG_HELLO: {
      ps_msg_hello_t m;
      if (ps_msg_get_hello(p, n, &m) != 0) {
        ps_worker_kill(w, SIGKILL, "sent a malformed hello");
        return;
      }
      if (m.protocol != PS_PROTOCOL) {
        char why[128];
        snprintf(why, sizeof why, "speaks protocol %llu, this driver speaks %d",
                 (unsigned long long)m.protocol, PS_PROTOCOL);
        ps_worker_kill(w, SIGKILL, why);
        return;
      }
      snprintf(w->host, sizeof w->host, "%.*s", (int)(m.host.n < 255 ? m.host.n : 255), m.host.p);
      if (r) r->startup_failures = 0;
      return;
    }
    case PS_MSG_CODE_OK: {
      ps_msg_code_ok_t m;
      if (ps_msg_get_code_ok(p, n, &m) != 0) {
        ps_worker_kill(w, SIGKILL, "sent a malformed code reply");
        return;
      }
      if (!m.ok && r) {
        char why[400];
        snprintf(why, sizeof why, "%.*s", (int)(m.message.n < 399 ? m.message.n : 399), m.message.p);
        fail_run(r, PS_EWORKER, "the worker function cannot be loaded in a worker process: %s%s", why, "");
      }
      slot_t *s = slot_of(w);
      if (m.ok && s && !s->code_loaded) {
        /* Ready now: the psets it was given start no earlier, whatever its
           start-up took (a timeout measures the pset, not the worker). */
        s->code_loaded = 1;
        if (s->len > 0) s->head_since = ps_mono_us();
        if (r) r->stuck_starts = 0;
      }
      return;
    }
    case PS_MSG_RESULTS:
      if (r == NULL) {
        ps_worker_kill(w, SIGKILL, "sent results outside a stage");
        return;
      }
      on_results(r, w, p, n);
      return;
    case PS_MSG_STARTED: {
      ps_msg_started_t m;
      if (ps_msg_get_started(p, n, &m) != 0) {
        ps_worker_kill(w, SIGKILL, "sent a malformed start notice");
        return;
      }
      if (r && r->o->verbose >= 3)
        ps_progress_event(&r->progress, "pset #%llu started on worker %lld", (unsigned long long)m.index + 1,
                          (long long)w->id);
      return;
    }
    case PS_MSG_FATAL: {
      ps_bytes_t msg;
      if (ps_msg_get_fatal(p, n, &msg) == 0)
        snprintf(w->why, sizeof w->why, "reported: %.*s", (int)(msg.n < 250 ? msg.n : 250), msg.p);
      return;
    }
    default: ps_worker_kill(w, SIGKILL, "sent a frame a worker must not send");
  }
}

static void describe_death(ps_worker_t *w, char *out, size_t n) {
  if (w->why[0]) {
    snprintf(out, n, "worker %lld (pid %d) %s", (long long)w->id, w->pid, w->why);
  } else if (w->term_signal) {
    const char *abbrev = sigabbrev_np(w->term_signal);
    snprintf(out, n, "worker %lld (pid %d) was killed by signal %d (SIG%s)", (long long)w->id, w->pid,
             w->term_signal, abbrev ? abbrev : "?");
  } else {
    snprintf(out, n, "worker %lld (pid %d) exited with status %lld", (long long)w->id, w->pid,
             (long long)w->exit_status);
  }
}

static int spawn_worker(ps_run_t *r, ps_node_t *node);

/* Workers still to serve the stage on a node (not retiring). */
static int serving(const ps_pool_t *p, const ps_node_t *n) {
  int k = 0;
  for (int i = 0; i < p->n; i++) {
    const slot_t *s = p->workers[i]->data;
    if (p->workers[i]->node == n && s && !s->retiring && !p->workers[i]->closing) k++;
  }
  return k;
}

/* Workers before w in the pool's list that serve on its node. */
static int serving_before(const ps_pool_t *p, const ps_worker_t *w) {
  int k = 0;
  for (int i = 0; i < p->n && p->workers[i] != w; i++) {
    const slot_t *s = p->workers[i]->data;
    if (p->workers[i]->node == w->node && s && !s->retiring && !p->workers[i]->closing) k++;
  }
  return k;
}

/* Starts workers until every node that is up has one per slot, and no
   more than there are psets left to finish. */
static void fill_workers(ps_run_t *r) {
  ps_pool_t *p = &r->e->pool;
  int64_t left = r->total - r->c.ok - r->c.failed, busy = 0;
  for (int k = 0; k < p->nnodes; k++) busy += serving(p, p->nodes[k]);
  for (int k = 0; k < p->nnodes; k++) {
    ps_node_t *n = p->nodes[k];
    while (n->state == PS_NODE_UP && serving(p, n) < n->slots && busy < left && work_left(r) && !r->fatal) {
      if (spawn_worker(r, n) != 0) break;
      busy++;
    }
  }
}

static void on_dead(ps_worker_t *w) {
  ps_engine_t *e = w->pool->owner;
  ps_run_t *r = e->run;
  slot_t *s = slot_of(w);
  w->data = NULL;
  if (s == NULL) return;
  if (r != NULL) {
    char cause[400];
    describe_death(w, cause, sizeof cause);
    int expected = s->retiring && s->len == 0 && !w->why[0];
    if (!expected) ps_log_printf(&e->log, "stage %s: %s, %zu psets in flight", r->o->name, cause, s->len);
    r->c.active -= (int64_t)s->len;
    if (r->interrupted || r->fatal) {
      /* Stopping: what was in flight is simply not done. */
    } else if (s->startup_stuck) {
      /* It never became ready to run them: not the psets' fault. */
      for (size_t k = 0; k < s->len; k++) requeue_push(r, s->fifo[s->head + k]);
      if (++r->stuck_starts >= MAX_STARTUP_FAILURES)
        fail_run(r, PS_EWORKER,
                 "worker processes do not load the worker code (%s); is a module it requires stuck?%s", cause,
                 "");
    } else if (w->lost) {
      /* Its host is gone: not the psets' fault, they cost no attempt. */
      int64_t now = ps_now_us();
      for (size_t k = 0; k < s->len && !r->fatal; k++) {
        task_t t = s->fifo[s->head + k];
        record_attempt(r, w, t, "host_lost", cause, strlen(cause), "", 0, now, 0, 0, 0);
        t.suspect = 0;
        requeue_push(r, t);
      }
      if (s->len) ps_log_printf(&e->log, "stage %s: %zu psets of worker %lld requeued", r->o->name, s->len,
                                (long long)w->id);
    } else if (s->len == 1 || s->alone || s->timed_out) {
      /* The pset at the head killed it (or ran past its timeout). */
      task_t t = s->fifo[s->head];
      const char *kind = s->timed_out ? "timeout" : w->why[0] ? "error" : w->term_signal ? "signal" : "exit";
      int64_t dur = ps_mono_us() - s->head_since;
      if (s->timed_out) snprintf(cause, sizeof cause, "%s", s->kill_msg);
      attempt_failed(r, w, t, kind, cause, strlen(cause), "", 0, ps_now_us() - dur, dur, 0, 0);
      for (size_t k = 1; k < s->len; k++) requeue_push(r, s->fifo[s->head + k]);
    } else {
      for (size_t k = 0; k < s->len; k++) {
        task_t t = s->fifo[s->head + k];
        t.suspect = 1;
        requeue_push(r, t);
      }
    }
    if (!w->hello && !expected && !w->lost && ++r->startup_failures >= MAX_STARTUP_FAILURES)
      fail_run(r, PS_EWORKER, "worker processes die as they start; the last: %s%s", cause, "");
    if (!r->done && !r->fatal && !r->interrupted) {
      fill_workers(r);
      dispatch_all(r);
    }
  }
  ps_buf_free(&s->enc);
  free(s->fifo);
  free(s);
}

/* An ssh host connected or was lost. */
static void on_node(ps_node_t *n, int up) {
  ps_engine_t *e = n->pool->owner;
  ps_run_t *r = e->run;
  if (up)
    ps_log_printf(&e->log, "host %s: connected (%s, %d cores, %lld MiB), %d slots", n->name, n->host, n->cores,
                  (long long)n->mem_mb, n->slots);
  else
    ps_log_printf(&e->log, "host %s: %s: %s", n->name, n->ever_up ? "lost" : "cannot connect", n->why);
  if (r == NULL) return;
  if (up) {
    if (r->o->verbose >= 2) ps_progress_event(&r->progress, "host %s connected: %d slots", n->name, n->slots);
    fill_workers(r);
    dispatch_all(r);
  } else if (r->o->verbose >= 1 && n->failures <= 1) {
    /* Said once per outage; reconnect attempts go to the log. */
    ps_progress_event(&r->progress, "host %s %s: %s", n->name, n->ever_up ? "lost" : "unreachable", n->why);
  }
}

static int spawn_worker(ps_run_t *r, ps_node_t *node) {
  ps_worker_t *w;
  ps_err_t err;
  slot_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    fail_run(r, PS_ENOMEM, "out of memory%s%s", "", "");
    return PS_ENOMEM;
  }
  s->weight = 1;
  if (ps_pool_spawn(&r->e->pool, node, &w, &err) != 0) {
    free(s);
    fail_run(r, PS_EWORKER, "%s%s", err.msg, "");
    return PS_EWORKER;
  }
  w->data = s;
  send_code(r, w);
  return 0;
}

int ps_engine_init(ps_engine_t *e, const char *exe, ps_err_t *err) {
  memset(e, 0, sizeof *e);
  /* A worker that dies while we write to it must not kill the driver. */
  signal(SIGPIPE, SIG_IGN);
  int rc = uv_loop_init(&e->loop);
  if (rc != 0) return ps_err_set(err, PS_EWORKER, "cannot start the event loop: %s", uv_strerror(rc));
  if (ps_pool_init(&e->pool, &e->loop, exe) != 0) {
    uv_loop_close(&e->loop);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  e->pool.cb.on_frame = on_frame;
  e->pool.cb.on_dead = on_dead;
  e->pool.cb.on_node = on_node;
  e->pool.owner = e;
  e->log.fd = -1;
  ps_log_open(&e->log);
  ps_log_printf(&e->log, "psurvey %s, pid %d, worker program %s", PSURVEY_VERSION, (int)getpid(), exe);
  return 0;
}

void ps_engine_close(ps_engine_t *e) {
  ps_pool_close(&e->pool);
  uv_run(&e->loop, UV_RUN_NOWAIT);
  uv_loop_close(&e->loop);
  ps_log_printf(&e->log, "psurvey: done");
  ps_log_close(&e->log);
}

static void on_signal(uv_signal_t *h, int signum) {
  ps_run_t *r = h->data;
  if (!r->interrupted) r->interrupted = signum;
}

/* Whether some node is reached over a connection (a host): then progress
   lines say how each node does. */
static int has_hosts(const ps_pool_t *p) {
  for (int k = 0; k < p->nnodes; k++)
    if (p->nodes[k]->ops->end) return 1;
  return 0;
}

/* "h1 120 (3 slots), h2 lost" for the progress lines at verbose >= 2. */
static void hosts_text(ps_run_t *r) {
  ps_pool_t *p = &r->e->pool;
  size_t o = 0, size = sizeof r->progress.hosts;
  r->progress.hosts[0] = '\0';
  for (int k = 0; k < p->nnodes && o < size; k++) {
    ps_node_t *n = p->nodes[k];
    const char *state = n->state == PS_NODE_UP ? "" : n->state == PS_NODE_CONNECTING ? ", connecting" : ", down";
    int w = snprintf(r->progress.hosts + o, size - o, "%s%s %lld done (%d slots%s)", k ? ", " : "", n->name,
                     (long long)n->done, n->slots, state);
    if (w > 0) o += (size_t)w;
  }
}

static void on_tick(uv_timer_t *t) {
  ps_run_t *r = t->data;
  ps_pool_t *p = &r->e->pool;
  if (has_hosts(p)) hosts_text(r);
  r->c.running = 0;
  for (int k = 0; k < p->n; k++)
    if (p->workers[k]->data && slot_of(p->workers[k])->len > 0) r->c.running++;
  ps_progress_tick(&r->progress, &r->c, &r->hist);
}

/* Stops the stage when no node is up and none is expected back (every
   host lost or unreachable), naming each and why. */
static void check_hosts(ps_run_t *r) {
  ps_pool_t *p = &r->e->pool;
  if (r->fatal || r->interrupted || !ps_pool_nodes_gone(p)) return;
  char msg[600];
  size_t o = 0;
  for (int k = 0; k < p->nnodes && o < sizeof msg; k++) {
    int w = snprintf(msg + o, sizeof msg - o, "%s%s: %s", k ? "; " : "", p->nodes[k]->name, p->nodes[k]->why);
    if (w > 0) o += (size_t)w;
  }
  fail_run(r, PS_EHOSTS,
           "every %s is lost or unreachable (%s); what finished is stored: run again with --resume when "
           "they are back",
           p->nodes[0]->ops->noun, msg);
}

/* Every WATCH_MS: retries a commit the database refused, checks the
   hosts, and kills the workers whose head pset ran past its timeout
   without the worker's hook stopping it: stuck in C or in a child process.
   The head's start is known at the latest (head_since), so nothing is
   killed early; the grace lets the hook win when it can. */
static void on_watch(uv_timer_t *h) {
  ps_run_t *r = h->data;
  ps_pool_t *p = &r->e->pool;
  int64_t now = ps_mono_us();
  if (r->db_waiting) commit_rows(r);
  check_hosts(r);
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    slot_t *s = w->data;
    if (s == NULL || s->len == 0 || s->timed_out || w->closing) continue;
    ps_limits_t l;
    limits_of(r, s->fifo[s->head], &l);
    if (l.timeout <= 0) continue;
    if (!s->code_loaded) {
      /* Still starting: its pset's clock has not started. A start-up that
         never ends is bounded too, without costing the pset an attempt. */
      if ((double)(now - s->code_sent) / 1e6 < STARTUP_LIMIT_S + l.timeout) continue;
      s->startup_stuck = 1;
      ps_log_printf(&r->e->log,
                    "stage %s: worker %lld (pid %d) did not load the worker code in %g s: killing it",
                    r->o->name, (long long)w->id, w->pid, (double)(now - s->code_sent) / 1e6);
      ps_worker_kill(w, SIGKILL, NULL);
      continue;
    }
    double grace = 0.25 + l.timeout / 20;
    if ((double)(now - s->head_since) / 1e6 < l.timeout + grace) continue;
    s->timed_out = 1;
    snprintf(s->kill_msg, sizeof s->kill_msg,
             "timeout after %g s (stuck outside Lua: its worker and the processes it started were killed)",
             l.timeout);
    ps_log_printf(&r->e->log, "stage %s: pset #%lld: timeout after %g s: killing worker %lld (pid %d)",
                  r->o->name, (long long)s->fifo[s->head].index + 1, l.timeout, (long long)w->id, w->pid);
    ps_worker_kill(w, SIGKILL, NULL);
  }
}

/* After each round of I/O: commit what was stored, so a killed driver
   loses only what was in flight. While another program holds the
   database, the watch timer tries instead, less often. */
static void on_check(uv_check_t *h) {
  ps_run_t *r = h->data;
  if (!r->db_waiting) commit_rows(r);
}

static void on_handle_closed(uv_handle_t *h) {
  ps_run_t *r = h->data;
  r->open_handles--;
}

/* Watches the stop signals while the stage runs, except one that is
   ignored (`nohup` ignores SIGHUP). libuv sets a signal back to its default
   when its last watcher closes: unwatch_signals puts back what was there,
   so that Ctrl-C after map() reaches the host program's handler (lua.c's,
   psurvey's) instead of killing the process. */
static void watch_signals(ps_run_t *r) {
  for (int k = 0; k < NSTOP; k++) {
    sigaction(stop_signals[k], NULL, &r->saved[k]);
    uv_signal_init(&r->e->loop, &r->sig[k]);
    r->sig[k].data = r;
    r->open_handles++;
    if (r->saved[k].sa_handler != SIG_IGN) uv_signal_start(&r->sig[k], on_signal, stop_signals[k]);
  }
}

static void unwatch_signals(ps_run_t *r) {
  for (int k = 0; k < NSTOP; k++) uv_close((uv_handle_t *)&r->sig[k], on_handle_closed);
}

static void restore_signals(ps_run_t *r) {
  for (int k = 0; k < NSTOP; k++) sigaction(stop_signals[k], &r->saved[k], NULL);
}

static void close_handles(ps_run_t *r) {
  uv_close((uv_handle_t *)&r->timer, on_handle_closed);
  uv_close((uv_handle_t *)&r->watch, on_handle_closed);
  uv_close((uv_handle_t *)&r->check, on_handle_closed);
  unwatch_signals(r);
  while (r->open_handles > 0) uv_run(&r->e->loop, UV_RUN_ONCE);
  restore_signals(r);
}

/* Begins the stage in the store, and resumes it. Another program holding
   the database's write lock is waited for (the watch timer wakes the loop)
   until it lets go or a signal stops the run. */
static int begin_stage(ps_run_t *r, ps_store_t *store, ps_err_t *err) {
  const ps_run_opts_t *o = r->o;
  ps_stage_info_t info = o->stage;
  info.name = o->name;
  info.options = o->options_text;
  info.total = r->total;
  info.resume = o->resume;
  info.psets = r->src;
  for (;;) {
    int rc = ps_stage_begin(store, &info, &r->stage, err);
    if (rc == 0 && o->resume) {
      rc = ps_stage_resume(r->stage, r->src, r->total, o->resume_keep_failed, r->skip, &r->c.ok, &r->c.failed,
                           err);
      if (rc != 0) {
        ps_stage_free(r->stage);
        r->stage = NULL;
      }
    }
    if (rc != PS_EBUSY) {
      note_db_wait(r, 0, NULL);
      return rc;
    }
    note_db_wait(r, 1, err->msg);
    uv_run(&r->e->loop, UV_RUN_ONCE);
    if (r->interrupted)
      return ps_err_set(err, PS_EINTR,
                        "interrupted by signal %d while the database was locked by another program",
                        r->interrupted);
  }
}

/* Commits the last rows and records how the stage ended. A lock held by
   another program is waited for; after a signal, for END_WAIT_S at most,
   and what could not be written is counted in the log. */
static void end_stage(ps_run_t *r, const char *how) {
  ps_err_t err;
  int64_t deadline = 0;
  for (;;) {
    int rc = ps_stage_end(r->stage, how, &err);
    if (rc == 0) {
      note_db_wait(r, 0, NULL);
      break;
    }
    if (rc != PS_EBUSY) {
      fail_run(r, rc, "cannot store results: %s%s", err.msg, "");
      break;
    }
    note_db_wait(r, 1, err.msg);
    if (r->interrupted && deadline == 0) deadline = ps_mono_us() + (int64_t)(END_WAIT_S * 1e6);
    if (deadline && ps_mono_us() >= deadline) {
      /* What was counted and is lost: the counts say what is stored. */
      int64_t lost_ok, lost_failed;
      char n[32];
      snprintf(n, sizeof n, "%lld", (long long)ps_stage_pending(r->stage, &lost_ok, &lost_failed));
      r->c.ok -= lost_ok;
      r->c.failed -= lost_failed;
      fail_run(r, PS_EBUSY,
               "%s finished rows were not stored: the database stayed locked by another program%s", n, "");
      break;
    }
    uv_run(&r->e->loop, UV_RUN_ONCE);
  }
  ps_stage_free(r->stage);
  r->stage = NULL;
}

int ps_engine_run(ps_engine_t *e, ps_source_t *src, ps_store_t *store, const ps_run_opts_t *o,
                  ps_run_result_t *out, ps_err_t *err) {
  /* Without a node nothing would ever run: a caller's mistake, said now. */
  if (e->pool.nnodes == 0)
    return ps_err_set(err, PS_EVALUE, "no backend: the engine has no node to run workers on");
  ps_run_t *r = calloc(1, sizeof *r);
  if (r == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  r->e = e;
  r->src = src;
  r->o = o;
  r->total = o->limit > 0 && o->limit < src->count ? o->limit : src->count;
  r->c.total = r->total;
  if (o->resume) {
    r->skip = calloc((size_t)(r->total > 0 ? r->total : 1), 1);
    if (r->skip == NULL) {
      free(r);
      return ps_err_set(err, PS_ENOMEM, "out of memory");
    }
  }
  ps_buf_init(&r->scratch);
  ps_hist_init(&r->hist);
  r->start_us = ps_mono_us();
  ps_log_printf(&e->log, "stage %s: %lld psets, options: %s", o->name, (long long)r->total,
                o->options_text ? o->options_text : "");
  ps_progress_init(&r->progress, o->name, o->verbose, o->vstats);
  uv_timer_init(&e->loop, &r->timer);
  uv_timer_init(&e->loop, &r->watch);
  uv_check_init(&e->loop, &r->check);
  r->timer.data = r->watch.data = r->check.data = r;
  r->open_handles = 3;
  watch_signals(r);
  uv_timer_start(&r->watch, on_watch, WATCH_MS, WATCH_MS);
  uv_check_start(&r->check, on_check);
  e->run = r;

  int rc = store ? begin_stage(r, store, err) : 0;
  if (rc != 0) {
    close_handles(r);
    e->run = NULL;
    memset(out, 0, sizeof *out);
    out->interrupted = r->interrupted; /* a signal while the database was locked */
    ps_buf_free(&r->scratch);
    free(r->skip);
    free(r);
    return rc;
  }
  r->c.resumed = r->c.ok + r->c.failed;
  if (r->c.resumed)
    ps_log_printf(&e->log, "stage %s: resuming: %lld psets done earlier (%lld ok, %lld failed kept)", o->name,
                  (long long)r->c.resumed, (long long)r->c.ok, (long long)r->c.failed);
  skip_done(r);
  uint64_t every = ps_progress_interval(&r->progress);
  if (every) uv_timer_start(&r->timer, on_tick, every, every);

  check_done(r);
  if (!r->done) {
    /* Workers left from an earlier stage get the new code; those beyond
       their node's slots go. */
    ps_pool_t *p = &e->pool;
    for (int k = 0; k < p->nnodes; k++)
      if (p->nodes[k]->ops->slots_per_map) p->nodes[k]->slots = o->ncores;
    for (int k = 0; k < p->n; k++) {
      ps_worker_t *w = p->workers[k];
      slot_t *s = slot_of(w);
      if (s == NULL || w->closing || s->retiring) continue;
      s->head = s->len = 0;
      s->enc.len = 0;
      s->nbatches = 0;
      s->alone = 0;
      s->weight = 1;
      int extra = serving_before(p, w) >= w->node->slots;
      if (extra || (o->max_tasks_per_child > 0 && s->assigned >= o->max_tasks_per_child)) {
        s->retiring = 1;
        ps_worker_bye(w);
        continue;
      }
      send_code(r, w);
    }
    fill_workers(r);
    dispatch_all(r);
  }
  while (!r->done && !r->fatal && !r->interrupted) uv_run(&e->loop, UV_RUN_ONCE);

  /* Stop every worker: their work in flight belongs to this stage. */
  if (r->fatal || r->interrupted) ps_pool_drain(&e->pool, PS_DRAIN_KILL, STOP_GRACE_MS, STOP_LIMIT_MS);
  const char *how = r->interrupted ? "interrupted" : r->fatal ? "failed" : "done";
  if (r->stage) end_stage(r, how);
  ps_progress_end(&r->progress, &r->c, &r->hist, how);
  ps_log_printf(&e->log, "stage %s: %s: %lld ok, %lld failed of %lld", o->name, how, (long long)r->c.ok,
                (long long)r->c.failed, (long long)r->total);
  close_handles(r);
  e->run = NULL;

  memset(out, 0, sizeof *out);
  out->counts = r->c;
  out->counts.active = 0;
  out->hist = r->hist;
  out->seconds = (double)(ps_mono_us() - r->start_us) / 1e6;
  out->interrupted = r->interrupted;
  if (r->fatal) {
    *err = r->err;
    rc = r->err.code ? r->err.code : PS_EWORKER;
  } else if (r->interrupted) {
    rc = ps_err_set(err, PS_EINTR, "interrupted by signal %d", r->interrupted);
  }
  free(r->requeue);
  ps_buf_free(&r->scratch);
  free(r->skip);
  for (size_t k = 0; k < r->nover; k++) {
    ps_limits_free(&r->over[k].limits);
    ps_buf_free(&r->over[k].causes);
  }
  free(r->over);
  free(r);
  return rc;
}
