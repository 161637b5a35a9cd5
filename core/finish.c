/* finish.c: what becomes of an attempt at a pset (run_private.h): its
   outcome stored as the pset's row and counted, or recorded in the
   attempts table and the pset queued again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brief.h"
#include "hash.h"
#include "json.h"
#include "run_private.h"
#include "value.h"

/* Attempts at one pset, whatever a retry function says. */
#define MAX_ATTEMPTS 100
/* A failure's log line (1 KiB) shows this much of its pset, as JSON made
   only of a pset this small, and this much of a retried attempt's
   message; a row's _exception keeps this much of each earlier attempt's. */
#define LOG_PSET_BYTES 300
#define LOG_PSET_MAX 4096
#define LOG_MESSAGE_BYTES 300
#define CAUSE_BYTES 120
/* A percentage halt counts from this many finished psets on. */
#define HALT_PCT_AFTER 10
/* The first psets of a map all failing alike this many times is a warning. */
#define BROKEN_AFTER 10
/* A pset's values on a terminal line, at most this many bytes. */
#define BRIEF_WIDTH 60
/* Errors of the driver's callback shown one by one (all are logged). */
#define ON_ROW_ERRORS_SHOWN 10

void ps__run_fail_here(ps_run_t *r, const ps_task_t *t, const char *msg) {
  ps_outcome_t out = {.index = t->index,
                      .attempt = t->attempt,
                      .kind = PS_OUTCOME_ERROR,
                      .start_us = ps_now_us(),
                      .message = {msg, strlen(msg)}};
  ps__run_finish(r, NULL, t, &out);
}

void ps__run_pset_name(ps_run_t *r, int64_t index, char *out, size_t n) {
  ps_buf_t enc, text;
  ps_buf_init(&enc);
  ps_buf_init(&text);
  r->src->get(r->src, index, &enc);
  ps_brief_pset(enc.data, enc.len, BRIEF_WIDTH, &text);
  if (text.failed || enc.failed || text.len == 0)
    snprintf(out, n, "#%lld", (long long)index + 1);
  else
    snprintf(out, n, "#%lld (%.*s)", (long long)index + 1, (int)text.len, text.data);
  ps_buf_free(&enc);
  ps_buf_free(&text);
}

/* Shows what an attempt wrote, each line tagged with its pset ("[#12] "):
   at verbose 3 every attempt's, at verbose 2 with a failure shown. */
static void show_output(ps_run_t *r, const ps_outcome_t *out) {
  if (out->out.n + out->err.n == 0) return;
  char tag[32];
  snprintf(tag, sizeof tag, "[#%lld] ", (long long)out->index + 1);
  ps_progress_output(&r->progress, tag, out->out.p, out->out.n);
  ps_progress_output(&r->progress, tag, out->err.p, out->err.n);
}

/* Stores what an attempt wrote in the stage's output table (and shows it
   at verbose 3): 0, or the error that stopped the stage. */
static int store_output(ps_run_t *r, const ps_outcome_t *out) {
  if (out->out.n + out->err.n == 0) return 0;
  if (r->o->verbose >= 3) show_output(r, out);
  if (!r->stage) return 0;
  ps_output_t o = {out->index, out->attempt, out->out.p, out->err.p, out->out.n, out->err.n};
  ps_err_t err;
  if (ps_stage_output(r->stage, &o, &err) == 0) return 0;
  ps__run_fail(r, err.code, "cannot store results: %s", err.msg);
  return err.code;
}

/* Writes a failure to the log: the pset (its start), the attempt, why. */
static void log_failure(ps_run_t *r, const ps_row_t *row, const ps_outcome_t *out) {
  ps_log_t *log = &r->e->log;
  ps_buf_t js;
  ps_buf_init(&js);
  ps_reader_t pr;
  ps_reader_init(&pr, row->pset, row->pset_len);
  /* A log line holds 1 KiB: the pset gets LOG_PSET_BYTES of it, so that
     the message after it shows, and a large pset is not written out in
     full to be cut. */
  if (row->pset_len <= LOG_PSET_MAX)
    ps_json_write(&pr, &js, 0);
  else
    ps_buf_printf(&js, "(%.1f KiB, not shown)", (double)row->pset_len / 1024);
  if (js.len > LOG_PSET_BYTES) {
    js.len = LOG_PSET_BYTES - 3;
    while (js.len > 0 && ((unsigned char)js.data[js.len] & 0xC0) == 0x80)
      js.len--; /* a whole character */
    ps_buf_puts(&js, "...");
  }
  ps_buf_putc(&js, 0);
  ps_log_printf(log, "stage %s: pset #%lld %s (attempt %lld, worker %lld): %s: %.*s", r->o->name,
                (long long)out->index + 1, js.failed ? "?" : js.data, (long long)out->attempt,
                (long long)row->worker, row->status, (int)row->exception_len, row->exception);
  ps_log_block(log, "    ", row->traceback, row->traceback_len);
  ps_buf_free(&js);
  char name[128];
  ps__run_pset_name(r, out->index, name, sizeof name);
  if (ps_progress_failure(&r->progress, name, row->exception, row->exception_len, row->traceback,
                          row->traceback_len, log->path) &&
      r->o->verbose == 2)
    show_output(r, out);
}

/* Calls the driver's callback with a stored row. Its error is the user's
   code failing, not the pset: counted, logged with its traceback, shown
   (the first few), and the stage goes on; the row stays stored. */
static void call_on_row(ps_run_t *r, const ps_row_t *row) {
  char msg[4096];
  msg[0] = '\0';
  if (r->o->on_row(r->o->on_row_ud, row, &r->c, msg, sizeof msg) == 0) return;
  r->c.on_row_errors++;
  size_t len = strlen(msg);
  const char *nl = memchr(msg, '\n', len);
  size_t first = nl ? (size_t)(nl - msg) : len;
  ps_log_t *log = &r->e->log;
  ps_log_printf(log, "stage %s: on_result failed on pset #%lld: %.*s", r->o->name,
                (long long)row->index + 1, (int)first, msg);
  if (nl) ps_log_block(log, "    ", nl + 1, len - first - 1);
  if (r->o->verbose < 1 || (r->o->verbose < 3 && r->c.on_row_errors > ON_ROW_ERRORS_SHOWN)) return;
  /* As for failed psets: the first says where tracebacks are; verbose 2
     shows each one here. */
  int point = r->c.on_row_errors == 1 && r->o->verbose < 2;
  char name[128];
  ps__run_pset_name(r, row->index, name, sizeof name);
  ps_progress_event(&r->progress, "on_result failed on pset %s: %.*s%s%s%s", name, (int)first, msg,
                    point ? " (its traceback is in " : "", point ? log->path : "",
                    point ? ")" : "");
  if (r->o->verbose >= 2 && nl) ps_progress_block(&r->progress, nl + 1, len - first - 1);
}

/* Trips the stage's halt option when its failures reach it: counted over
   this run's psets (not those resumed), a percentage once at least
   HALT_PCT_AFTER have finished. */
static void check_halt(ps_run_t *r) {
  const ps_run_opts_t *o = r->o;
  /* Nothing is left to stop once every pset is finished. */
  if (o->halt == PS_HALT_NEVER || r->halted || r->c.ok + r->c.failed >= r->total) return;
  int64_t failed = r->failures.total;
  int64_t finished = r->c.ok + r->c.failed - r->c.resumed;
  int trip = o->halt_fail > 0 ? failed >= o->halt_fail
                              : finished >= HALT_PCT_AFTER &&
                                    (double)failed * 100.0 >= o->halt_pct * (double)finished;
  if (!trip) return;
  r->halted = o->halt;
  ps_log_printf(&r->e->log, "stage %s: halt '%s': %lld of %lld finished psets failed; %s", o->name,
                o->halt_text ? o->halt_text : "?", (long long)failed, (long long)finished,
                o->halt == PS_HALT_NOW ? "stopping now" : "no new psets start");
  ps_progress_event(&r->progress, "halt '%s': %lld of %lld finished psets failed: %s",
                    o->halt_text ? o->halt_text : "?", (long long)failed, (long long)finished,
                    o->halt == PS_HALT_NOW ? "stopping the running psets"
                                           : "no new psets start; the running ones finish");
}

/* Stores the outcome of pset t as its row and counts it. w is NULL for a
   pset that never reached a worker. */
void ps__run_finish(ps_run_t *r, ps_worker_t *w, const ps_task_t *t, const ps_outcome_t *out) {
  ps_row_t row;
  ps_limits_t lim;
  memset(&row, 0, sizeof row);
  ps__run_limits(r, t, &lim);
  /* The encoding sent (still in the worker's state when the result comes
     back), else made again. */
  worker_state_t *st = w ? ps__state_of(w) : NULL;
  if (st && t->eoff >= 0 && (size_t)t->eoff + t->elen <= st->enc.len) {
    row.pset = st->enc.data + t->eoff;
    row.pset_len = t->elen;
  } else {
    r->scratch.len = 0;
    r->src->get(r->src, t->index, &r->scratch);
    row.pset = r->scratch.data;
    row.pset_len = r->scratch.len;
  }
  row.index = out->index;
  row.status = ps_outcome_name(out->kind);
  row.attempt = out->attempt;
  row.worker = w ? w->id : 0;
  row.host = w && w->host[0] ? w->host : NULL;
  row.start_us = out->start_us;
  row.duration_us = out->duration_us;
  row.cpu_us = out->cpu_us;
  row.peak_bytes = out->peak_bytes;
  row.name = lim.name;
  row.result = out->result.n ? out->result.p : NULL;
  row.result_len = out->result.n;
  if (out->kind != PS_OUTCOME_OK) {
    row.exception = out->message.p ? out->message.p : "";
    row.exception_len = out->message.n;
    row.traceback = out->traceback.p ? out->traceback.p : "";
    row.traceback_len = out->traceback.n;
  }
  /* A pset tried before: its row says what happened each time. */
  ps_buf_t why;
  ps_buf_init(&why);
  if (t->ov >= 0 && r->over[t->ov].causes.len > 0 && out->kind != PS_OUTCOME_OK) {
    ps_buf_put(&why, row.exception, row.exception_len);
    ps_buf_printf(&why, " (attempt %lld; earlier: ", (long long)out->attempt);
    ps_buf_put(&why, r->over[t->ov].causes.data, r->over[t->ov].causes.len);
    ps_buf_putc(&why, ')');
    if (!why.failed) {
      row.exception = why.data;
      row.exception_len = why.len;
    }
  }
  char bad[600];
  if (r->stage) {
    ps_err_t err;
    int rc = ps_stage_add(r->stage, &row, &err);
    if (rc == PS_EVALUE) {
      /* This row cannot be stored as it is: it becomes a failure. */
      snprintf(bad, sizeof bad, "%s", err.msg);
      row.status = ps_outcome_name(PS_OUTCOME_ERROR);
      row.result = NULL;
      row.result_len = 0;
      row.exception = bad;
      row.exception_len = strlen(bad);
      row.traceback = "";
      row.traceback_len = 0;
      rc = ps_stage_add(r->stage, &row, &err);
    }
    if (rc != 0) {
      ps_buf_free(&why);
      ps__run_fail(r, rc, "cannot store results: %s", err.msg);
      return;
    }
  }
  /* A failed attempt's output was stored with its record. */
  if (out->kind == PS_OUTCOME_OK && store_output(r, out) != 0) {
    ps_buf_free(&why);
    return;
  }
  if (w) w->node->done++;
  ps_hist_add(&r->hist, out->duration_us);
  ps_sched_ran(&r->sched, out->duration_us);
  if (row.exception == NULL) {
    r->c.ok++;
    if (r->o->verbose >= 3 || r->o->vstats >= 3) {
      char took[32];
      ps_format_seconds(took, sizeof took, (double)out->duration_us / 1e6);
      char name[128];
      ps__run_pset_name(r, out->index, name, sizeof name);
      ps_progress_event(&r->progress, "pset %s finished in %s on worker %lld", name, took,
                        (long long)row.worker);
    }
  } else {
    r->c.failed++;
    if (strcmp(row.status, ps_outcome_name(PS_OUTCOME_ERROR)) == 0) r->c.exceptions++;
    /* Its own message, without the causes of earlier attempts. */
    if (strcmp(row.status, ps_outcome_name(out->kind)) == 0 && out->message.p)
      ps_tally_add(&r->failures, row.status, out->message.p, out->message.n);
    else
      ps_tally_add(&r->failures, row.status, row.exception, row.exception_len);
    /* A broken worker fails everything alike: say so once, loudly, at any
       verbosity, instead of failing psets one by one in silence. */
    if (r->c.ok == 0 && r->failures.total == BROKEN_AFTER && r->failures.ngroups == 1)
      ps_progress_event(&r->progress,
                        "the first %d psets all failed with %s: is the worker broken?",
                        BROKEN_AFTER, r->failures.group[0].key);
    log_failure(r, &row, out);
  }
  if (r->o->on_row) call_on_row(r, &row);
  check_halt(r);
  ps_buf_free(&why);
  ps__run_check_done(r);
}

/* The override entry of a pset being retried, made on its first retry. */
static int override_of(ps_run_t *r, ps_task_t *t, const ps_limits_t *current) {
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

/* Records a failed attempt in the stage's attempts table; r->scratch
   holds the pset's encoding afterwards. */
int ps__run_record_attempt(ps_run_t *r, ps_worker_t *w, const ps_task_t *t,
                           const ps_outcome_t *out) {
  ps_limits_t lim;
  ps__run_limits(r, t, &lim);
  r->scratch.len = 0;
  r->src->get(r->src, t->index, &r->scratch);
  uint64_t hash = ps_hash(r->scratch.data, r->scratch.len, 0);
  if (r->stage) {
    ps_attempt_t a = {out->index,
                      out->attempt,
                      w ? w->id : 0,
                      ps_outcome_name(out->kind),
                      out->message.p ? out->message.p : "",
                      out->traceback.p ? out->traceback.p : "",
                      out->message.n,
                      out->traceback.n,
                      w && w->host[0] ? w->host : NULL,
                      out->start_us,
                      out->duration_us,
                      out->cpu_us,
                      out->peak_bytes,
                      lim.timeout,
                      lim.memory,
                      hash};
    ps_err_t err;
    if (ps_stage_attempt(r->stage, &a, &err) != 0) {
      ps__run_fail(r, err.code, "cannot store results: %s", err.msg);
      return err.code;
    }
  }
  return store_output(r, out);
}

/* An attempt at t failed: it is recorded, then t runs again (retries left,
   or the retry callback says so) or is finished as failed. */
void ps__run_attempt_failed(ps_run_t *r, ps_worker_t *w, ps_task_t t, const ps_outcome_t *out) {
  ps_limits_t lim;
  ps__run_limits(r, &t, &lim);
  if (ps__run_record_attempt(r, w, &t, out) != 0) return;
  const char *kind = ps_outcome_name(out->kind);
  const char *msg = out->message.p ? out->message.p : "";
  size_t msg_len = out->message.n;
  int again = 0;
  ps_limits_t next;
  ps_limits_unset(&next);
  if (t.attempt >= MAX_ATTEMPTS) {
    again = 0;
  } else if (r->o->retry) {
    ps_failure_t f = {t.index, t.attempt,       kind,           msg,
                      msg_len, r->scratch.data, r->scratch.len, &lim};
    char why[400];
    int rc = r->o->retry(r->o->retry_ud, &f, &next, why, sizeof why);
    if (rc < 0) {
      ps_limits_free(&next);
      ps__run_fail(r, PS_EVALUE, "the retry function failed on pset #%lld: %s",
                   (long long)t.index + 1, why);
      return;
    }
    again = rc == 1;
  } else {
    again = ps_outcome_retryable(out->kind) && t.attempt <= lim.retries;
  }
  if (!again) {
    ps_limits_free(&next);
    ps__run_finish(r, w, &t, out);
    return;
  }
  if (override_of(r, &t, &lim) != 0 || ps_limits_merge(&r->over[t.ov].limits, &next) != 0) {
    ps_limits_free(&next);
    ps__run_fail(r, PS_ENOMEM, "out of memory");
    return;
  }
  ps_limits_free(&next);
  ps_buf_t *c = &r->over[t.ov].causes;
  ps_buf_printf(c, "%s#%lld %s", c->len ? "; " : "", (long long)t.attempt, kind);
  if (out->kind != PS_OUTCOME_TIMEOUT && out->kind != PS_OUTCOME_MEMORY) {
    /* The kind says it all for limits; crashes and errors say more. */
    ps_buf_puts(c, ": ");
    ps_buf_put(c, msg, msg_len < CAUSE_BYTES ? msg_len : CAUSE_BYTES);
  }
  ps_log_printf(&r->e->log, "stage %s: pset #%lld attempt %lld failed (%s: %.*s); trying again",
                r->o->name, (long long)t.index + 1, (long long)t.attempt, kind,
                (int)(msg_len < LOG_MESSAGE_BYTES ? msg_len : LOG_MESSAGE_BYTES), msg);
  if (r->o->verbose >= 3) {
    char name[128];
    ps__run_pset_name(r, t.index, name, sizeof name);
    ps_progress_event(&r->progress, "pset %s attempt %lld failed (%s); trying again", name,
                      (long long)t.attempt, kind);
  }
  t.attempt++;
  t.suspect = 0;
  r->c.retried++;
  if (ps_sched_requeue(&r->sched, t, 1) != 0) ps__run_fail(r, PS_ENOMEM, "out of memory");
}

void ps__run_free_overrides(ps_run_t *r) {
  for (size_t k = 0; k < r->nover; k++) {
    ps_limits_free(&r->over[k].limits);
    ps_buf_free(&r->over[k].causes);
  }
  free(r->over);
  r->over = NULL;
  r->nover = r->capover = 0;
}
