/* run.c: the engine, and the life of one stage (run.h): its workers, their
   frames and deaths, its timers, signals and store waits. It carries out
   what the scheduler (scheduler.c) decides over the pool's workers; what
   becomes of each attempt is finish.c's. */
#include "run_private.h"

#include <assert.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "census.h"
#include "json.h"
#include "msg.h"
#include "node.h"
#include "value.h"

/* Workers that die before saying hello, in a row, before we give up. */
#define MAX_STARTUP_FAILURES 3
/* How often running psets are checked against their timeout (ms). */
#define WATCH_MS 100
/* With a timeout, a worker that has not loaded the stage's code after this
   long (plus the timeout) is killed: a start-up that never ends. */
#define STARTUP_LIMIT_S 60.0
/* A pset stuck past its timeout outside Lua is killed with its worker
   this long after it: a fixed part, and a part of the timeout. */
#define TIMEOUT_GRACE_S 0.25
#define TIMEOUT_GRACE_PART 20
/* After a signal, how long the last rows wait for a database locked by
   another program before they are given up. */
#define END_WAIT_S 5.0
/* A stage that stops kills its workers; those on hosts that have not
   answered after STOP_GRACE_MS have their ssh killed, and at STOP_LIMIT_MS
   what is left is given up (ps_pool_drain). */
#define STOP_GRACE_MS 1000
#define STOP_LIMIT_MS 2000
/* How often the driver's heartbeat is written (us). */
#define BEAT_EVERY_US 1000000
/* How long the end of a stage waits for its last points to reach carbon. */
#define CARBON_END_WAIT_US 200000
/* How long an engine's close waits for its last points to reach carbon. */
#define CARBON_CLOSE_WAIT_US 500000
/* Loop turns an engine's close gives its handles and requests to finish. */
#define CLOSE_TURNS 100
/* The encodings a worker's psets in flight keep are compacted past this. */
#define ENC_COMPACT_BYTES (1 << 20)
/* The signals that interrupt a stage. */
static const int stop_signals[PS_RUN_NSTOP] = {SIGINT, SIGTERM, SIGHUP};
#define NSTOP PS_RUN_NSTOP

static void fill_workers(ps_run_t *r);

/* Stops the stage (the first reason wins) and says why in the log. */
void ps__run_fail(ps_run_t *r, int code, const char *fmt, ...) {
  if (r->fatal) return;
  r->fatal = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err.msg, sizeof r->err.msg, fmt, ap);
  va_end(ap);
  r->err.code = code;
  ps_log_printf(&r->e->log, "stage %s: stopped: %s", r->o->name, r->err.msg);
}

/* Copies the fields set in `over` onto l, without allocating (names are
   borrowed). */
static void overlay(ps_limits_t *l, const ps_limits_t *over) {
  if (over == NULL) return;
  if (over->timeout >= 0) l->timeout = over->timeout;
  if (over->memory >= 0) l->memory = over->memory;
  if (over->ncores > 0) l->ncores = over->ncores;
  if (over->retries >= 0) l->retries = over->retries;
  if (over->gpus >= 0) l->gpus = over->gpus;
  if (over->name) l->name = over->name;
}

/* The limits task t runs with: the map's, the pset's own, and what a retry
   changed. Every field is set. */
void ps__run_limits(const ps_run_t *r, const ps_task_t *t, ps_limits_t *l) {
  *l = r->o->limits;
  if (t->ov >= 0) {
    overlay(l, &r->over[t->ov].limits);
    return;
  }
  if (r->src->limits) overlay(l, r->src->limits(r->src, t->index));
}

/* The scheduler asks how many slots a task needs. */
static int ncores_of(void *ud, const ps_task_t *t) {
  const ps_run_t *r = ud;
  if (t->ov < 0 && r->src->limits == NULL) return r->o->limits.ncores; /* no pset sets its own */
  ps_limits_t l;
  ps__run_limits(r, t, &l);
  return l.ncores;
}

/* The scheduler asks how many GPUs a task wants. */
static int gpus_of(void *ud, const ps_task_t *t) {
  const ps_run_t *r = ud;
  if (t->ov < 0 && r->src->limits == NULL) return r->o->limits.gpus;
  ps_limits_t l;
  ps__run_limits(r, t, &l);
  return l.gpus;
}

/* The scheduler asks how much memory a task reserves on its node (MiB):
   a pset that sets its own memory (its _psurvey table) reserves it, as a
   retry's options may have raised it; the map's memory only limits each
   heap, and reserves nothing. */
static int64_t memory_of(void *ud, const ps_task_t *t) {
  const ps_run_t *r = ud;
  const ps_limits_t *own = r->src->limits ? r->src->limits(r->src, t->index) : NULL;
  if (own == NULL || own->memory <= 0) return 0;
  ps_limits_t l;
  ps__run_limits(r, t, &l);
  return l.memory > 0 ? (int64_t)(l.memory + 0.999) : 0;
}

void ps__run_check_done(ps_run_t *r) {
  if (r->c.ok + r->c.failed >= r->total) r->done = 1;
}
/* Says once that the database is locked by another program, and again
   when it is free; the rows wait in memory meanwhile. */
static void note_db_wait(ps_run_t *r, int waiting, const char *why) {
  if (waiting && !r->db_waiting) {
    r->db_waiting = ps_mono_us();
    ps_log_printf(&r->e->log,
                  "stage %s: %s: waiting for it; finished rows are kept in memory until then",
                  r->o->name, why);
    if (r->o->verbose >= 1)
      ps_progress_event(&r->progress, "%s: waiting for it (finished rows are kept until then)",
                        why);
  } else if (!waiting && r->db_waiting) {
    char took[32];
    ps_format_seconds(took, sizeof took, (double)(ps_mono_us() - r->db_waiting) / 1e6);
    r->db_waiting = 0;
    ps_log_printf(&r->e->log, "stage %s: the database is free again after %s", r->o->name, took);
    if (r->o->verbose >= 1)
      ps_progress_event(&r->progress, "the database is free again after %s", took);
  }
}

/* The driver's heartbeat as it is now, for `psurvey status` (store.h);
   its strings are r's. */
static void make_beat(ps_run_t *r, ps_beat_t *b) {
  int64_t now = ps_mono_us(), done = r->c.ok + r->c.failed, counted;
  double rate = ps_progress_rate(&r->progress, now, done, &counted);
  ps_eta_t eta;
  ps_eta(&eta, r->total - done, rate, counted, &r->hist);
  /* Busy workers and workers of each node: {"host": {"busy": b, "workers": w}}. */
  ps_pool_t *p = &r->e->pool;
  ps_buf_t *j = &r->beat_hosts;
  j->len = 0;
  ps_buf_putc(j, '{');
  for (int k = 0; k < p->nnodes; k++) {
    const ps_node_t *node = p->nodes[k];
    int busy = 0, workers = 0;
    for (int s = 0; s < r->sched.nslots; s++) {
      if (r->sched.slots[s]->node != node) continue;
      workers++;
      busy += r->sched.slots[s]->len > 0;
    }
    if (k) ps_buf_putc(j, ',');
    ps_json_string(j, node->name, strlen(node->name));
    ps_buf_printf(j, ":{\"busy\":%d,\"workers\":%d}", busy, workers);
  }
  ps_buf_putc(j, '}');
  ps_buf_putc(j, '\0');
  int known = r->hist.count > 0;
  *b = (ps_beat_t){
      .run = r->o->stage.run,
      .stage = r->o->name,
      .beat = (double)ps_now_us() / 1e6,
      .started = r->started,
      .total = r->total,
      .ok = r->c.ok,
      .failed = r->c.failed,
      .active = r->c.active,
      .workers = r->sched.nslots,
      .rate = rate,
      .hosts = j->failed ? NULL : j->data,
      .p25 = known ? ps_hist_quantile(&r->hist, 0.25) / 1e6 : -1,
      .p50 = known ? ps_hist_quantile(&r->hist, 0.5) / 1e6 : -1,
      .p75 = known ? ps_hist_quantile(&r->hist, 0.75) / 1e6 : -1,
      .p90 = known ? ps_hist_quantile(&r->hist, 0.9) / 1e6 : -1,
      .eta = eta.mid,
      .eta_lo = eta.lo,
      .eta_hi = eta.hi,
      .pid = (int64_t)getpid(),
      .host = r->hostname,
  };
}

/* A heartbeat alone (the stage's start and end): skipped when another
   program holds the database, never waited for. */
static void beat_now(ps_run_t *r) {
  if (r->store == NULL) return;
  ps_beat_t b;
  make_beat(r, &b);
  ps_store_beat(r->store, &b, NULL);
}

/* Writes the rows stored since the last commit, and the heartbeat when
   one is due. Another program holding the database's write lock is
   waited for, not a failure (the beat is skipped). */
static void commit_rows(ps_run_t *r) {
  ps_err_t err;
  if (r->stage == NULL) return;
  ps_beat_t b;
  if (r->beat_due) make_beat(r, &b);
  int rc = ps_stage_commit_beat(r->stage, r->beat_due ? &b : NULL, &err);
  r->beat_due = 0;
  if (rc == PS_EBUSY) {
    note_db_wait(r, 1, err.msg);
  } else if (rc != 0) {
    ps__run_fail(r, rc, "cannot store results: %s", err.msg);
  } else {
    note_db_wait(r, 0, NULL);
  }
}

static void send_code(ps_run_t *r, ps_worker_t *w) {
  const ps_run_opts_t *o = r->o;
  worker_state_t *st = ps__state_of(w);
  if (st) {
    st->code_loaded = 0;
    st->code_sent = ps_mono_us();
  }
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_code_t m = {(uint64_t)w->id,
                     o->verbose >= 3 ? PS_CODE_REPORT_STARTS : 0,
                     (uint64_t)o->sandbox,
                     o->seed,
                     {o->name, strlen(o->name)},
                     {o->code, o->code_len},
                     {o->user, o->user_len},
                     {o->workdir ? o->workdir : "", o->workdir ? strlen(o->workdir) : 0},
                     (uint64_t)o->output};
  ps_msg_put_code(&b, &m);
  if (b.failed)
    ps__run_fail(r, PS_ENOMEM, "out of memory sending the worker code");
  else
    ps_worker_send(w, &b);
  ps_buf_free(&b);
}

/* The ncores task t sets for itself (its _psurvey table, or a retry's),
   which its worker gives OMP_NUM_THREADS and the like; 0 when it sets
   none and the worker's own setting holds. */
static int own_ncores(const ps_run_t *r, const ps_task_t *t) {
  const ps_limits_t *own = r->src->limits ? r->src->limits(r->src, t->index) : NULL;
  int mine = own ? own->ncores : 0;
  if (t->ov >= 0 && (mine > 0 || r->over[t->ov].limits.ncores > 1))
    return r->over[t->ov].limits.ncores;
  return mine;
}

/* Appends task t to a TASKS frame being built in b. A pset too large to
   send (over PS_VALUE_MAX) fails here: -1. */
static int put_task(ps_run_t *r, ps_buf_t *b, const ps_task_t *t) {
  ps_limits_t l;
  ps__run_limits(r, t, &l);
  r->scratch.len = 0;
  r->src->get(r->src, t->index, &r->scratch);
  if (r->scratch.len > PS_VALUE_MAX) {
    char msg[160];
    snprintf(msg, sizeof msg, "the pset is %.1f MiB encoded, over the %u MiB one pset may take",
             (double)r->scratch.len / (1 << 20), PS_VALUE_MAX >> 20);
    ps__run_fail_here(r, t, msg);
    return -1;
  }
  ps_msg_task_t m = {(uint64_t)t->index,
                     (uint64_t)t->attempt,
                     (uint64_t)(l.timeout * 1000.0 + 0.5),
                     (uint64_t)(l.memory * 1024.0 * 1024.0),
                     (uint64_t)own_ncores(r, t),
                     {r->scratch.data, r->scratch.len}};
  ps_msg_tasks_add(b, &m);
  return 0;
}

/* After put_task: t is in flight on w, its encoding (r->scratch) kept. */
static void sent_task(ps_run_t *r, worker_state_t *st, ps_task_t t, int64_t now) {
  ps_slot_t *s = &st->slot;
  if (s->len == 0) {
    st->enc.len = 0; /* nothing in flight needs what is there */
  } else if (s->fifo[s->head].eoff > ENC_COMPACT_BYTES) {
    /* Drop the encodings of psets already finished. */
    int64_t drop = s->fifo[s->head].eoff;
    memmove(st->enc.data, st->enc.data + drop, st->enc.len - (size_t)drop);
    st->enc.len -= (size_t)drop;
    for (size_t k = 0; k < s->len; k++) s->fifo[s->head + k].eoff -= drop;
  }
  t.eoff = (int64_t)st->enc.len;
  t.elen = r->scratch.len;
  ps_buf_put(&st->enc, r->scratch.data, r->scratch.len);
  if (st->enc.failed || ps_sched_sent(&r->sched, s, t, now) != 0)
    ps__run_fail(r, PS_ENOMEM, "out of memory");
}

/* Whether a halted stage has nothing left running: at once when halting
   now; when halting soon, once every worker's running pset is done (a
   worker killed for holding more counts as done). */
static int halt_settled(ps_run_t *r) {
  if (r->halted == PS_HALT_NEVER) return 0;
  if (r->halted == PS_HALT_NOW) return 1;
  ps_pool_t *p = &r->e->pool;
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    worker_state_t *st = ps__state_of(w);
    if (st && !w->why[0] && st->slot.len > 0) return 0;
  }
  return 1;
}

/* Gives the worker batches, as the scheduler makes them, until it holds
   `depth` of them. */
static void dispatch(ps_run_t *r, ps_worker_t *w, int depth) {
  worker_state_t *st = ps__state_of(w);
  if (r->done || r->fatal || r->interrupted || r->halted || w->closing || w->why[0]) return;
  /* A node being lost (its backend finding out why) takes no work. */
  if (w->node->state != PS_NODE_UP) return;
  ps_pool_t *p = &r->e->pool;
  const ps_node_t *largest = ps_sched_largest(p->nodes, p->nnodes);
  int64_t want, now = ps_mono_us(); /* one reading for what is sent now */
  while (!r->fatal && ps_sched_next_batch(&r->sched, &st->slot, depth, &want)) {
    /* An agent whose allocation ends before the batch would is drained:
       its psets go to workers with time left. */
    if (!ps_sched_in_time(&r->sched, w->node, want, ps_now_us())) break;
    ps_buf_t b;
    ps_buf_init(&b);
    size_t start = ps_msg_tasks_begin(&b);
    int64_t n = 0, taken = 0;
    ps_task_t t;
    int got;
    while (n < want && !r->fatal &&
           (got = ps_sched_take(&r->sched, &st->slot, largest, &t)) != PS_TAKE_NONE) {
      taken++;
      if (got == PS_TAKE_TOO_WIDE) {
        ps__run_too_wide(r, &t, largest);
        continue;
      }
      if (got == PS_TAKE_TOO_MANY_GPUS) {
        ps__run_too_many_gpus(r, &t);
        continue;
      }
      if (got == PS_TAKE_TOO_MUCH_MEMORY) {
        ps__run_too_much_memory(r, &t);
        continue;
      }
      if (put_task(r, &b, &t) != 0) continue;
      sent_task(r, st, t, now);
      n++;
      if (b.len >= PS_BATCH_BYTES) break;
    }
    if (n == 0) {
      /* Every pset taken failed here: perhaps the next batch goes. */
      ps_buf_free(&b);
      if (taken > 0) continue;
      break;
    }
    ps_msg_tasks_end(&b, start, (uint64_t)n);
    if (b.failed || r->scratch.failed) {
      ps_buf_free(&b);
      ps__run_fail(r, PS_ENOMEM, "out of memory building a batch");
      return;
    }
    ps_worker_send(w, &b);
    ps_buf_free(&b);
    ps_sched_batch_sent(&r->sched, &st->slot, (int)n);
    r->c.active += n;
    /* A worker bound to GPUs took the pset it was started for: the next
       pset that wants GPUs may need a worker of its own, which
       ps_sched_place starts only while no idle bound worker waits. */
    if (st->slot.ngpus > 0) fill_workers(r);
  }
}

/* Breadth first: every worker gets its first batch before any gets a
   second, so a small stage spreads over all of them. */
static void dispatch_all(ps_run_t *r) {
  ps_sched_t *s = &r->sched;
  for (int depth = 1; depth <= PS_SCHED_DEPTH; depth++)
    for (int k = 0; k < s->nslots; k++) dispatch(r, s->slots[k]->owner, depth);
}

/* Adds the timer samples that end a RESULTS frame to the stage's. The
   names past PS_TIMERS_MAX are left out, and said once in the log. */
static int add_timers(ps_run_t *r, ps_msg_batch_t *it) {
  ps_msg_timer_t m;
  int rc, full;
  while ((rc = ps_msg_next_timer(it, &m)) == 1) {
    ps_timer_t *t = ps_timers_get(&r->timers, m.name.p, m.name.n, &full);
    if (t != NULL) {
      ps_timing_merge(&t->t, &m.t);
    } else if (!full) {
      ps__run_fail(r, PS_ENOMEM, "out of memory");
      return 0;
    } else if (r->timers_dropped++ == 0) {
      ps_log_printf(&r->e->log,
                    "stage %s: timer '%.*s' and any other past %d names are left out of the "
                    "statistics",
                    r->o->name, (int)m.name.n, m.name.p, PS_TIMERS_MAX);
    }
  }
  return rc;
}

static void on_results(ps_run_t *r, ps_worker_t *w, const char *p, size_t n) {
  worker_state_t *st = ps__state_of(w);
  ps_slot_t *s = &st->slot;
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
    ps_task_t t = ps_sched_finished(&r->sched, s, now);
    r->c.active--;
    ps_outcome_t out = {.index = t.index,
                        .attempt = t.attempt,
                        .kind = ps_outcome_of_status(m.status),
                        .start_us = (int64_t)m.start_us,
                        .duration_us = (int64_t)m.duration_us,
                        .cpu_us = (int64_t)m.cpu_us,
                        .peak_bytes = (int64_t)m.peak,
                        .result = m.value,
                        .message = m.message,
                        .traceback = m.traceback,
                        .out = m.out,
                        .err = m.err};
    assert(out.kind != PS_OUTCOME_KINDS); /* the reader checked the status */
    if (out.kind == PS_OUTCOME_OK)
      ps__run_finish(r, w, &t, &out);
    else
      ps__run_attempt_failed(r, w, t, &out);
  }
  if (!r->fatal && (rc != 0 || add_timers(r, &it) != 0)) goto bad;
  /* On disk before the worker gets more work: a driver killed now loses
     only psets still in flight (unless another program locks the
     database: then they wait in memory). */
  commit_rows(r);
  if (r->fatal) return;
  if (r->halted == PS_HALT_SOON && s->len > 0) {
    /* Halting soon: its running pset is done; what it holds next must not
       start (if it just did, it is killed and not stored). */
    ps_worker_kill(w, SIGKILL, "halted");
    return;
  }
  if (r->o->max_tasks_per_child > 0 && s->assigned >= r->o->max_tasks_per_child && s->len == 0 &&
      !s->retiring) {
    s->retiring = 1;
    ps_worker_bye(w);
    return;
  }
  /* With GPUs, an idle worker may have to make way for one bound to others. */
  if (r->sched.o.most_gpus > 0 && s->len == 0) fill_workers(r);
  if (was_wide || r->sched.nreq > 0)
    dispatch_all(r);
  else
    dispatch(r, w, PS_SCHED_DEPTH);
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
      ps_text(w->host, sizeof w->host, m.host.p, m.host.n);
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
        ps_text(why, sizeof why, m.message.p, m.message.n);
        ps__run_fail(r, PS_EWORKER, "the worker function cannot be loaded in a worker process: %s",
                     why);
      }
      worker_state_t *st = ps__state_of(w);
      if (m.ok && st && !st->code_loaded) {
        /* Ready now: the psets it was given start no earlier, whatever its
           start-up took (a timeout measures the pset, not the worker). */
        st->code_loaded = 1;
        if (st->slot.len > 0) st->slot.head_since = ps_mono_us();
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
      if (r && r->o->verbose >= 3 && m.index < (uint64_t)r->src->count) {
        char name[128];
        ps__run_pset_name(r, (int64_t)m.index, name, sizeof name);
        ps_progress_event(&r->progress, "pset %s started on worker %lld", name, (long long)w->id);
      }
      return;
    }
    case PS_MSG_FATAL: {
      ps_bytes_t msg;
      if (ps_msg_get_fatal(p, n, &msg) ==
          0) /* A frame's bytes are far fewer than INT_MAX (PS_FRAME_MAX). */
        ps_textf(w->why, sizeof w->why, "reported: %.*s", (int)msg.n, msg.p);
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
    snprintf(out, n, "worker %lld (pid %d) was killed by signal %d (SIG%s)", (long long)w->id,
             w->pid, w->term_signal, abbrev ? abbrev : "?");
  } else {
    snprintf(out, n, "worker %lld (pid %d) exited with status %lld", (long long)w->id, w->pid,
             (long long)w->exit_status);
  }
}

/* Starts a worker on node n for the stage, bound to the node's GPUs in
   mask: it joins the scheduler's slots and gets the stage's code. */
static int spawn_worker(ps_run_t *r, ps_node_t *node, uint64_t mask) {
  char gpus[PS_GPUS_TEXT];
  ps_worker_t *w;
  ps_err_t err;
  worker_state_t *st = calloc(1, sizeof *st);
  if (st == NULL || ps_sched_add(&r->sched, &st->slot) != 0) {
    free(st);
    ps__run_fail(r, PS_ENOMEM, "out of memory");
    return PS_ENOMEM;
  }
  ps_node_gpu_ids(node, mask, gpus);
  if (ps_pool_spawn(&r->e->pool, node, gpus, &w, &err) != 0) {
    ps_sched_remove(&r->sched, &st->slot);
    free(st);
    ps__run_fail(r, PS_EWORKER, "%s", err.msg);
    return PS_EWORKER;
  }
  ps_slot_init(&st->slot, node, w);
  ps_slot_bind(&st->slot, mask);
  w->data = st;
  send_code(r, w);
  return 0;
}

/* Starts workers where the scheduler places them: one per slot of every
   node that is up, and no more than there are psets left to finish; with
   GPUs, first retires the idle workers whose binding is in the way. */
static void fill_workers(ps_run_t *r) {
  ps_pool_t *p = &r->e->pool;
  int64_t left = r->total - r->c.ok - r->c.failed;
  ps_node_t *n;
  ps_slot_t *go;
  uint64_t mask;
  if (r->sched.o.most_gpus > 0)
    while (!r->fatal && (go = ps_sched_retire(&r->sched, left)) != NULL) {
      go->retiring = 1;
      ps_worker_bye(go->owner);
    }
  while (!r->fatal && (n = ps_sched_place(&r->sched, p->nodes, p->nnodes, left, &mask)) != NULL)
    if (spawn_worker(r, n, mask) != 0) break;
}

/* What becomes of the psets in flight on a worker that died. */
static void settle_death(ps_run_t *r, ps_worker_t *w, worker_state_t *st, const char *cause) {
  ps_slot_t *s = &st->slot;
  ps_sched_t *sc = &r->sched;
  int rc = 0;
  if (r->interrupted || r->fatal || r->halted) {
    /* Stopping: what was in flight is simply not done. */
  } else if (st->startup_stuck) {
    /* It never became ready to run them: not the psets' fault. */
    rc = ps_sched_requeue_from(sc, s, 0);
    if (++r->stuck_starts >= MAX_STARTUP_FAILURES)
      ps__run_fail(
          r, PS_EWORKER,
          "worker processes do not load the worker code (%s); is a module it requires stuck?",
          cause);
  } else if (w->lost) {
    /* Its host is gone: not the psets' fault, they cost no attempt. The
       attempts say why, when its backend found out. */
    int64_t now = ps_now_us();
    ps_outcome_kind_t kind = w->node->loss == PS_LOSS_PREEMPTED  ? PS_OUTCOME_PREEMPTED
                             : w->node->loss == PS_LOSS_WALLTIME ? PS_OUTCOME_WALLTIME
                                                                 : PS_OUTCOME_HOST_LOST;
    for (size_t k = 0; k < s->len && !r->fatal && rc == 0; k++) {
      ps_task_t t = s->fifo[s->head + k];
      ps_outcome_t out = {.index = t.index,
                          .attempt = t.attempt,
                          .kind = kind,
                          .start_us = now,
                          .message = {cause, strlen(cause)}};
      ps__run_record_attempt(r, w, &t, &out);
      t.suspect = 0;
      rc = ps_sched_requeue(sc, t, 0);
    }
    if (s->len)
      ps_log_printf(&r->e->log, "stage %s: %zu psets of worker %lld requeued", r->o->name, s->len,
                    (long long)w->id);
  } else if (ps_sched_blames_head(s) || st->timed_out) {
    /* The pset at the head killed it (or ran past its timeout). */
    ps_task_t t = s->fifo[s->head];
    ps_outcome_kind_t kind = st->timed_out    ? PS_OUTCOME_TIMEOUT
                             : w->why[0]      ? PS_OUTCOME_ERROR
                             : w->term_signal ? PS_OUTCOME_SIGNAL
                                              : PS_OUTCOME_EXIT;
    int64_t dur = ps_mono_us() - s->head_since;
    const char *msg = st->timed_out ? st->kill_msg : cause;
    ps_outcome_t out = {.index = t.index,
                        .attempt = t.attempt,
                        .kind = kind,
                        .start_us = ps_now_us() - dur,
                        .duration_us = dur,
                        .message = {msg, strlen(msg)}};
    ps__run_attempt_failed(r, w, t, &out);
    if (rc == 0) rc = ps_sched_requeue_from(sc, s, 1);
  } else {
    rc = ps_sched_suspect(sc, s);
  }
  if (rc != 0) ps__run_fail(r, PS_ENOMEM, "out of memory");
}

static void on_dead(ps_worker_t *w) {
  ps_engine_t *e = w->pool->owner;
  ps_run_t *r = e->run;
  worker_state_t *st = ps__state_of(w);
  w->data = NULL;
  if (st == NULL) return;
  ps_slot_t *s = &st->slot;
  if (r != NULL) {
    char cause[400];
    describe_death(w, cause, sizeof cause);
    int expected = s->retiring && s->len == 0 && !w->why[0];
    if (!expected)
      ps_log_printf(&e->log, "stage %s: %s, %zu psets in flight", r->o->name, cause, s->len);
    r->c.active -= (int64_t)s->len;
    ps_sched_remove(&r->sched, s);
    settle_death(r, w, st, cause);
    if (!w->hello && !expected && !w->lost && ++r->startup_failures >= MAX_STARTUP_FAILURES)
      ps__run_fail(r, PS_EWORKER, "worker processes die as they start; the last: %s", cause);
    if (!r->done && !r->fatal && !r->interrupted) {
      fill_workers(r);
      dispatch_all(r);
    }
  }
  ps_buf_free(&st->enc);
  ps_slot_free(s);
  free(st);
}

/* A node connected or was lost. */
/* Whether a node that was never up may still come (a Slurm allocation
   asked for, an ssh host still trying). */
static int more_may_come(const ps_pool_t *p) {
  for (int k = 0; k < p->nnodes; k++) {
    const ps_node_t *n = p->nodes[k];
    if (!n->ever_up && !ps_node_gone(n)) return 1;
  }
  return 0;
}

static void on_node(ps_node_t *n, int up) {
  ps_engine_t *e = n->pool->owner;
  ps_run_t *r = e->run;
  if (up)
    ps_log_printf(&e->log, "host %s: connected (%s, %d cores, %lld MiB), %d slots", n->name,
                  n->host, n->cores, (long long)n->mem_mb, n->slots);
  else
    ps_log_printf(&e->log, "host %s: %s: %s", n->name, n->ever_up ? "lost" : "cannot connect",
                  n->why);
  if (r == NULL) return;
  /* What a pset may ask for follows the nodes: it grows as they come (a
     Slurm agent's GPUs and memory are known from its hello), and shrinks
     as they are lost for good, unless more may come (a node never up and
     not gone: Slurm allocations asked for), so that a pset no node left
     can take fails instead of waiting for ever. */
  if (up || !more_may_come(&e->pool)) {
    r->sched.o.most_gpus = ps_sched_most_gpus(e->pool.nodes, e->pool.nnodes);
    r->sched.most_mb = ps_sched_most_memory(e->pool.nodes, e->pool.nnodes);
  }
  if (up && r->o->verbose >= 2)
    ps_progress_event(&r->progress, "host %s connected: %d slots", n->name, n->slots);
  if (!up && r->o->verbose >= 1 && n->failures <= 1) /* once per outage; retries: the log */
    ps_progress_event(&r->progress, "host %s %s: %s", n->name, n->ever_up ? "lost" : "unreachable",
                      n->why);
  if (up) fill_workers(r);
  dispatch_all(r);
}
/* A backend's remark: the log keeps it. */
static void on_note(ps_pool_t *p, const char *text) {
  ps_engine_t *e = p->owner;
  ps_log_printf(&e->log, "%s", text);
}

int ps_engine_init(ps_engine_t *e, const char *exe, ps_err_t *err) {
  memset(e, 0, sizeof *e);
  /* A worker that dies while we write to it must not kill the driver. */
  signal(SIGPIPE, SIG_IGN);
  int rc = uv_loop_init(&e->loop);
  if (rc != 0)
    return ps_err_set(err, PS_EWORKER, "cannot start the event loop: %s", uv_strerror(rc));
  if (ps_pool_init(&e->pool, &e->loop, exe) != 0) {
    uv_loop_close(&e->loop);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  e->pool.cb.on_frame = on_frame;
  e->pool.cb.on_dead = on_dead;
  e->pool.cb.on_node = on_node;
  e->pool.cb.on_note = on_note;
  e->pool.owner = e;
  e->log.fd = -1;
  ps_log_open(&e->log);
  ps_log_printf(&e->log, "psurvey %s, pid %d, worker program %s", PSURVEY_VERSION, (int)getpid(),
                exe);
  ps_census_add(PS_CENSUS_ENGINES, 1);
  return 0;
}

/* Counts the handles left open in the loop (none should be). */
static void count_handle(uv_handle_t *h, void *arg) {
  (void)h;
  ++*(int *)arg;
}

/* Gives carbon's waiting points up to `us` to go out: between maps the
   loop does not run, and a connection being made gets a moment, never
   more. */
static void settle_carbon(ps_engine_t *e, int64_t us) {
  int64_t until = ps_mono_us() + us;
  while (e->carbon && !ps_carbon_idle(e->carbon) && ps_mono_us() < until) {
    uv_run(&e->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

void ps_engine_close(ps_engine_t *e) {
  settle_carbon(e, CARBON_CLOSE_WAIT_US); /* the last stage's last points */
  ps_carbon_close(e->carbon);
  e->carbon = NULL;
  ps_pool_close(&e->pool);
  /* Closing handles and a cancelled address lookup finish in a few turns. */
  for (int k = 0; k < CLOSE_TURNS && uv_loop_alive(&e->loop); k++) uv_run(&e->loop, UV_RUN_NOWAIT);
  if (uv_loop_close(&e->loop) == UV_EBUSY) {
    /* A handle left open: said in the log (and seen in the census); the
       loop is left as it is rather than freed under it. */
    int left = 0;
    uv_walk(&e->loop, count_handle, &left);
    ps_log_printf(&e->log, "psurvey: %d libuv handles were left open", left);
  }
  ps_census_add(PS_CENSUS_ENGINES, -1);
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
    const char *state = n->state == PS_NODE_UP           ? ""
                        : n->state == PS_NODE_CONNECTING ? ", connecting"
                                                         : ", down";
    int w = snprintf(r->progress.hosts + o, size - o, "%s%s %lld done (%d slots%s)", k ? ", " : "",
                     n->name, (long long)n->done, n->slots, state);
    if (w > 0) o += (size_t)w;
  }
  /* The nodes that stand for agents to come say how those stand. */
  o = 0;
  size = sizeof r->progress.agents;
  r->progress.agents[0] = '\0';
  for (int k = 0; k < p->nnodes && o < size; k++) {
    ps_node_t *n = p->nodes[k];
    if (n->ops->describe == NULL) continue;
    char text[200];
    n->ops->describe(n, text, sizeof text);
    int w = snprintf(r->progress.agents + o, size - o, "%s%s", o ? "; " : "", text);
    if (w > 0) o += (size_t)w;
  }
}

/* The stage's progress to carbon: counts, rate, run-time percentiles, and
   the busy workers of each node, under <prefix>.<script>.<stage>. */
static void send_carbon(ps_run_t *r) {
  if (r->e->carbon == NULL || r->o->carbon_path == NULL) return;
  ps_pool_t *p = &r->e->pool;
  enum { FIXED = 7 };
  int n = FIXED + p->nnodes;
  ps_metric_t *m = calloc((size_t)n, sizeof *m);
  char(*paths)[PS_CARBON_PATH_MAX] = calloc((size_t)n, sizeof *paths);
  if (m == NULL || paths == NULL) {
    free(m);
    free(paths);
    return;
  }
  double secs = (double)(ps_mono_us() - r->start_us) / 1e6;
  int64_t done = r->c.ok + r->c.failed - r->c.resumed;
  const char *names[FIXED] = {"total", "active",      "finished",   "failures",
                              "rate",  "runtime_p50", "runtime_p90"};
  double values[FIXED] = {(double)r->c.total,
                          (double)r->c.active,
                          (double)r->c.ok,
                          (double)r->c.failed,
                          secs > 0 ? (double)done / secs : 0,
                          r->hist.count ? ps_hist_quantile(&r->hist, 0.5) / 1e6 : 0,
                          r->hist.count ? ps_hist_quantile(&r->hist, 0.9) / 1e6 : 0};
  int k = 0;
  for (int i = 0; i < FIXED; i++) {
    if (i >= 5 && r->hist.count == 0) continue; /* no run time measured yet */
    snprintf(paths[k], sizeof paths[k], "%s.%s", r->o->carbon_path, names[i]);
    m[k].path = paths[k];
    m[k].value = values[i];
    k++;
  }
  for (int j = 0; j < p->nnodes; j++) {
    const ps_node_t *node = p->nodes[j];
    int busy = 0;
    for (int s = 0; s < r->sched.nslots; s++)
      busy += r->sched.slots[s]->node == node && r->sched.slots[s]->len > 0;
    char host[128];
    ps_carbon_component(host, sizeof host, node->name);
    snprintf(paths[k], sizeof paths[k], "%s.hosts.%s.active", r->o->carbon_path, host);
    m[k].path = paths[k];
    m[k].value = busy;
    k++;
  }
  ps_carbon_send(r->e->carbon, m, (size_t)k, ps_now_us() / 1000000);
  r->carbon_last = ps_mono_us();
  free(m);
  free(paths);
}

static void on_tick(uv_timer_t *t) {
  ps_run_t *r = t->data;
  ps_pool_t *p = &r->e->pool;
  if (r->e->carbon && ps_mono_us() - r->carbon_last >= (int64_t)PS_CARBON_EVERY_S * 1000000)
    send_carbon(r);
  if (has_hosts(p)) hosts_text(r);
  r->c.running = 0;
  for (int k = 0; k < r->sched.nslots; k++) r->c.running += r->sched.slots[k]->len > 0;
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
    int w = snprintf(msg + o, sizeof msg - o, "%s%s: %s", k ? "; " : "", p->nodes[k]->name,
                     p->nodes[k]->why);
    if (w > 0) o += (size_t)w;
  }
  ps__run_fail(
      r, PS_EHOSTS,
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
  if (now - r->second_last >= BEAT_EVERY_US) {
    /* Once a second: the rate's sample, and a heartbeat for the next
       commit (on_check's, right after this turn's I/O). */
    r->second_last = now;
    ps_progress_sample(&r->progress, now, r->c.ok + r->c.failed);
    r->beat_due = r->store != NULL;
  }
  if (r->db_waiting) commit_rows(r);
  check_hosts(r);
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    worker_state_t *st = w->data;
    if (st == NULL || st->slot.len == 0 || st->timed_out || w->closing) continue;
    const ps_task_t *head = &st->slot.fifo[st->slot.head];
    ps_limits_t l;
    ps__run_limits(r, head, &l);
    if (l.timeout <= 0) continue;
    if (!st->code_loaded) {
      /* Still starting: its pset's clock has not started. A start-up that
         never ends is bounded too, without costing the pset an attempt. */
      if ((double)(now - st->code_sent) / 1e6 < STARTUP_LIMIT_S + l.timeout) continue;
      st->startup_stuck = 1;
      ps_log_printf(
          &r->e->log,
          "stage %s: worker %lld (pid %d) did not load the worker code in %g s: killing it",
          r->o->name, (long long)w->id, w->pid, (double)(now - st->code_sent) / 1e6);
      ps_worker_kill(w, SIGKILL, NULL);
      continue;
    }
    double grace = TIMEOUT_GRACE_S + l.timeout / TIMEOUT_GRACE_PART;
    if ((double)(now - st->slot.head_since) / 1e6 < l.timeout + grace) continue;
    st->timed_out = 1;
    snprintf(st->kill_msg, sizeof st->kill_msg,
             "timeout after %g s (stuck outside Lua: its worker and the processes it started were "
             "killed)",
             l.timeout);
    ps_log_printf(&r->e->log,
                  "stage %s: pset #%lld: timeout after %g s: killing worker %lld (pid %d)",
                  r->o->name, (long long)head->index + 1, l.timeout, (long long)w->id, w->pid);
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
  ps_census_add(PS_CENSUS_HANDLES, -1);
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
    ps_census_add(PS_CENSUS_HANDLES, 1);
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
      rc = ps_stage_resume(r->stage, r->src, r->total, o->resume_keep_failed, r->skip, &r->c.ok,
                           &r->c.failed, err);
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
      ps__run_fail(r, rc, "cannot store results: %s", err.msg);
      break;
    }
    note_db_wait(r, 1, err.msg);
    if (r->interrupted && deadline == 0) deadline = ps_mono_us() + (int64_t)(END_WAIT_S * 1e6);
    if (deadline && ps_mono_us() >= deadline) {
      /* What was counted and is lost: the counts say what is stored. */
      int64_t lost_ok, lost_failed;
      int64_t lost = ps_stage_pending(r->stage, &lost_ok, &lost_failed);
      r->c.ok -= lost_ok;
      r->c.failed -= lost_failed;
      ps__run_fail(
          r, PS_EBUSY,
          "%lld finished rows were not stored: the database stayed locked by another program",
          (long long)lost);
      break;
    }
    uv_run(&r->e->loop, UV_RUN_ONCE);
  }
  ps_stage_free(r->stage);
  r->stage = NULL;
}

int ps_engine_run(ps_engine_t *e, ps_source_t *src, ps_store_t *store, const ps_run_opts_t *o,
                  ps_run_result_t *out, ps_err_t *err) {
  assert(e->run == NULL); /* one stage at a time: the loop is not reentered */
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
  ps_buf_init(&r->beat_hosts);
  ps_hist_init(&r->hist);
  r->start_us = ps_mono_us();
  ps_log_printf(&e->log, "stage %s: %lld psets, options: %s", o->name, (long long)r->total,
                o->options_text ? o->options_text : "");
  ps_progress_init(&r->progress, o->name, o->verbose, o->vstats);
  ps_tally_init(&r->failures);
  uv_timer_init(&e->loop, &r->timer);
  uv_timer_init(&e->loop, &r->watch);
  uv_check_init(&e->loop, &r->check);
  r->timer.data = r->watch.data = r->check.data = r;
  r->open_handles = 3;
  ps_census_add(PS_CENSUS_HANDLES, 3);
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
  r->store = store;
  r->started = (double)ps_now_us() / 1e6;
  r->second_last = ps_mono_us();
  ps_progress_sample(&r->progress, r->second_last, r->c.resumed);
  if (r->c.resumed)
    ps_log_printf(&e->log,
                  "stage %s: resuming: %lld psets done earlier (%lld ok, %lld failed kept)",
                  o->name, (long long)r->c.resumed, (long long)r->c.ok, (long long)r->c.failed);
  ps_sched_opts_t so = {.total = r->total,
                        .skip = r->skip,
                        .group_size = o->group_size,
                        .max_tasks_per_child = o->max_tasks_per_child,
                        .ncores = ncores_of,
                        .psets_set_ncores = src->limits != NULL,
                        .gpus = gpus_of,
                        .psets_set_gpus = src->limits != NULL,
                        .most_gpus = ps_sched_most_gpus(e->pool.nodes, e->pool.nnodes),
                        .memory = memory_of,
                        .psets_set_memory = src->limits != NULL,
                        .ud = r};
  ps_sched_init(&r->sched, &so);
  r->sched.most_mb = ps_sched_most_memory(e->pool.nodes, e->pool.nnodes);
  if (gethostname(r->hostname, sizeof r->hostname - 1) != 0) strcpy(r->hostname, "localhost");
  uint64_t every = ps_progress_interval(&r->progress);
  /* The engine's carbon client, kept from stage to stage while its address
     stays the same. */
  if (o->carbon_host && e->carbon &&
      !ps_carbon_same(e->carbon, o->carbon_host, o->carbon_port, o->carbon_protocol)) {
    ps_carbon_close(e->carbon);
    e->carbon = NULL;
  }
  if (o->carbon_host && e->carbon == NULL) {
    ps_err_t cerr;
    e->carbon =
        ps_carbon_new(&e->loop, o->carbon_host, o->carbon_port, o->carbon_protocol, &e->log, &cerr);
    if (e->carbon == NULL) ps_log_printf(&e->log, "stage %s: %s", o->name, cerr.msg);
  }
  r->carbon_last = ps_mono_us();
  /* Carbon gets a point every PS_CARBON_EVERY_S: a tick a second at most. */
  if (r->e->carbon && (every == 0 || every > 1000)) every = 1000;
  if (every) uv_timer_start(&r->timer, on_tick, every, every);

  ps__run_check_done(r);
  if (!r->done) {
    /* Workers left from an earlier stage get the new code; those beyond
       their node's slots go. */
    ps_pool_t *p = &e->pool;
    for (int k = 0; k < p->nnodes; k++)
      if (p->nodes[k]->ops->slots_per_map) p->nodes[k]->slots = o->ncores;
    for (int k = 0; k < p->n && !r->fatal; k++) {
      ps_worker_t *w = p->workers[k];
      worker_state_t *st = ps__state_of(w);
      if (st == NULL || w->closing || st->slot.retiring) continue;
      ps_slot_reset(&st->slot);
      st->enc.len = 0;
      if (ps_sched_add(&r->sched, &st->slot) != 0) {
        ps__run_fail(r, PS_ENOMEM, "out of memory");
        break;
      }
      int extra = ps_sched_serving_before(&r->sched, &st->slot) >= w->node->slots;
      if (extra || (o->max_tasks_per_child > 0 && st->slot.assigned >= o->max_tasks_per_child)) {
        st->slot.retiring = 1;
        ps_worker_bye(w);
        continue;
      }
      send_code(r, w);
    }
    fill_workers(r);
    dispatch_all(r);
  }
  beat_now(r); /* the first, with the workers started */
  while (!r->done && !r->fatal && !r->interrupted && !halt_settled(r))
    uv_run(&e->loop, UV_RUN_ONCE);

  /* Stop every worker: their work in flight belongs to this stage. */
  if (r->fatal || r->interrupted || r->halted)
    ps_pool_drain(&e->pool, PS_DRAIN_KILL, STOP_GRACE_MS, STOP_LIMIT_MS);
  const char *how = r->interrupted ? "interrupted"
                    : r->fatal     ? "failed"
                    : r->halted    ? "halted"
                                   : "done";
  if (r->stage) end_stage(r, how);
  beat_now(r);
  send_carbon(r);
  settle_carbon(e, CARBON_END_WAIT_US); /* the stage's last points go out now */
  char failures[600];
  ps_tally_text(&r->failures, failures, sizeof failures);
  ps_progress_end(&r->progress, &r->c, &r->hist, how, failures);
  ps_progress_timers(&r->progress, &r->timers);
  ps_log_printf(&e->log, "stage %s: %s: %lld ok, %lld failed of %lld", o->name, how,
                (long long)r->c.ok, (long long)r->c.failed, (long long)r->total);
  close_handles(r);
  e->run = NULL;

  memset(out, 0, sizeof *out);
  out->counts = r->c;
  out->counts.active = 0;
  out->hist = r->hist;
  out->timers = r->timers; /* the caller's now */
  out->seconds = (double)(ps_mono_us() - r->start_us) / 1e6;
  out->interrupted = r->interrupted;
  out->halted = r->halted;
  if (r->fatal) {
    *err = r->err;
    rc = r->err.code ? r->err.code : PS_EWORKER;
  } else if (r->interrupted) {
    rc = ps_err_set(err, PS_EINTR, "interrupted by signal %d", r->interrupted);
  } else if (r->halted) {
    rc = ps_err_set(err, PS_EHALT, "halted by halt '%s' after %lld failed psets",
                    o->halt_text ? o->halt_text : "?", (long long)r->failures.total);
  }
  ps_sched_free(&r->sched);
  ps_buf_free(&r->scratch);
  ps_buf_free(&r->beat_hosts);
  free(r->skip);
  ps__run_free_overrides(r);
  free(r);
  return rc;
}
