/* sbatch.c: Slurm allocations on demand (sbatch.h). */
#include "sbatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "census.h"
#include "errand.h"
#include "gate.h"
#include "program.h"

/* sbatch failures in a row after which no more jobs are asked for. */
#define GIVE_UP_AFTER 3
#define MAX_ARGS 64
/* How long a lost agent waits for squeue before it is judged anyway (us). */
#define JUDGE_PATIENCE_US 10000000
/* A squeue running this many polls' time, and 10 s at least, is stuck (a
   controller that does not answer): it is killed and asked again. An
   sbatch gets 60 s; one killed may have submitted its job, which the next
   squeue finds by its name. */
#define STUCK_POLLS 10
#define STUCK_MIN_US 10000000
#define SBATCH_STUCK_US 60000000
/* An agent lost this close to its job's end (or after it) was lost to
   the walltime: slurmctld ends jobs on its own periodic check (s). */
#define WALLTIME_SLACK_S 5

/* ENDING: Slurm is ending it (COMPLETING and the like): not counted as
   one kept, not yet ended. */
enum { JOB_QUEUED, JOB_RUNNING, JOB_ENDING, JOB_ENDED };

typedef struct job_s {
  char id[32];
  int64_t submitted;   /* monotonic us */
  int64_t start, ends; /* Unix seconds, as squeue last said; 0: not known */
  int64_t preempted;   /* when Slurm preempted it (Unix seconds), or 0 */
  int state;
  char last[24]; /* the state squeue last gave */
} job_t;

/* An agent lost without being told to end, waiting for squeue to say why
   (gate.h's judge). */
typedef struct losing_s {
  ps_node_t *node;
  int64_t since; /* monotonic us */
} losing_t;

/* The allocator: its node's impl. */
typedef struct alloc_s {
  ps_pool_t *pool;
  ps_node_t *node; /* NULL once the pool has freed it */
  ps_gate_t *gate;
  char token[PS_AUTH_TOKEN_HEX + 1];
  char name[64];     /* every job's name: this run's */
  char connect[200]; /* what agents connect to */
  char *argv[MAX_ARGS + 16];
  int nargv;
  char *squeue, *scancel;
  job_t *jobs;
  int njobs, capjobs;
  int want, per_minute, max_job_count;
  int64_t poll_us, last_poll; /* last_poll: when the squeue under way started */
  int64_t recent[256];        /* when the last submissions were made (monotonic us), a ring */
  int nrecent;
  int failures, closing, hurry; /* hurry: poll at the next tick */
  int stuck;                    /* squeues killed in a row for not answering */
  int64_t submit_started;       /* monotonic us */
  losing_t *losing;             /* growing: a preemption may take many agents at once */
  int nlosing, caplosing;
  ps_errand_t *submitting, *polling;
  uv_timer_t timer;
} alloc_t;

static alloc_t *alloc_of(const ps_node_t *n) { return n->impl; }

static const ps_backend_ops_t alloc_ops; /* the allocator node's functions, below */

/* A running job whose time is nearly out (a fifth of its time limit left,
   or two polls): its replacement is asked for now, so that it may start
   before this one ends. */
static int ending(const alloc_t *a, const job_t *j, int64_t now) {
  if (j->state != JOB_RUNNING || j->ends <= 0 || j->start <= 0 || j->ends <= j->start) return 0;
  int64_t margin = (j->ends - j->start) / 5, polls = 2 * a->poll_us / 1000000 + 1;
  return j->ends - now <= (margin > polls ? margin : polls);
}

/* Jobs that count toward the number kept: queued, or running with time
   left; the submission under way. */
static int active(const alloc_t *a) {
  int n = a->submitting ? 1 : 0;
  int64_t now = (int64_t)time(NULL);
  for (int k = 0; k < a->njobs; k++)
    n += (a->jobs[k].state == JOB_QUEUED || a->jobs[k].state == JOB_RUNNING) &&
         !ending(a, &a->jobs[k], now);
  return n;
}

static int submitted_last_minute(const alloc_t *a, int64_t now) {
  int n = 0;
  for (int k = 0; k < a->nrecent && k < 256; k++) n += now - a->recent[k] < 60000000;
  return n;
}

/* The first line of text, for the log. */
static void first_line(const ps_buf_t *b, char *out, size_t size) {
  size_t n = 0;
  while (n < b->len && b->data[n] != '\n') n++;
  snprintf(out, size, "%.*s", (int)n, b->failed || b->data == NULL ? "" : b->data);
}

static job_t *find_job(alloc_t *a, const char *id) {
  for (int k = 0; k < a->njobs; k++)
    if (strcmp(a->jobs[k].id, id) == 0) return &a->jobs[k];
  return NULL;
}

/* A job of this run's, queued as far as we know; NULL when out of memory. */
static job_t *add_job(alloc_t *a, const char *id) {
  if (a->njobs == a->capjobs) {
    int cap = a->capjobs ? 2 * a->capjobs : 16;
    job_t *more = realloc(a->jobs, sizeof *more * (size_t)cap);
    if (more == NULL) return NULL;
    a->jobs = more;
    a->capjobs = cap;
  }
  job_t *j = &a->jobs[a->njobs++];
  memset(j, 0, sizeof *j);
  snprintf(j->id, sizeof j->id, "%s", id);
  j->submitted = ps_mono_us();
  j->state = JOB_QUEUED;
  snprintf(j->last, sizeof j->last, "PENDING");
  return j;
}

static void on_submitted(ps_errand_t *e, int exited, int code, int sig, const ps_buf_t *out,
                         const ps_buf_t *err) {
  alloc_t *a = e->data;
  a->submitting = NULL;
  char line[300], id[32] = "";
  first_line(out, line, sizeof line);
  if (exited && code == 0) sscanf(line, "%31[0-9_]", id);
  if (id[0] == '\0') {
    first_line(err, line, sizeof line);
    a->failures++;
    ps_pool_note(a->pool, "sbatch failed (%s): %s", exited ? "its exit status" : "a signal",
                 line[0] ? line : "no message");
    if (a->failures >= GIVE_UP_AFTER && a->node) {
      char why[400];
      snprintf(why, sizeof why, "sbatch failed %d times in a row: %s", a->failures,
               line[0] ? line : "no message");
      (void)sig;
      ps_pool_node_lost(a->node, why);
    }
    return;
  }
  a->failures = 0;
  if (find_job(a, id) || add_job(a, id))
    ps_pool_note(a->pool, "submitted slurm job %s (%d queued or running)", id, active(a));
}

/* A time as squeue prints it, 2026-11-29T21:05:00 (local time), in Unix
   seconds; 0 for N/A, Unknown, NONE. */
static int64_t unix_time(const char *text) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == NULL || *rest != '\0') return 0;
  tm.tm_isdst = -1;
  time_t t = mktime(&tm);
  return t == (time_t)-1 ? 0 : (int64_t)t;
}

/* The agents of job j know when it ends (the scheduler drains them). */
static void set_ends(alloc_t *a, const job_t *j) {
  for (int k = 0; k < a->pool->nnodes; k++) {
    ps_node_t *n = a->pool->nodes[k];
    if (n->ops != &alloc_ops && strcmp(n->job, j->id) == 0) n->ends = j->ends;
  }
}

/* What squeue's state says of a job: the states Slurm has ended it in,
   those in which it is ending it; any other is a wait (PENDING,
   CONFIGURING, REQUEUED, SUSPENDED...). */
static int job_state(const char *state) {
  static const char *const over[] = {"BOOT_FAIL", "CANCELLED",     "COMPLETED",   "DEADLINE",
                                     "FAILED",    "NODE_FAIL",     "PREEMPTED",   "TIMEOUT",
                                     "REVOKED",   "OUT_OF_MEMORY", "SPECIAL_EXIT"};
  static const char *const ending[] = {"COMPLETING", "SIGNALING", "STAGE_OUT"};
  if (strcmp(state, "RUNNING") == 0) return JOB_RUNNING;
  for (size_t k = 0; k < sizeof over / sizeof *over; k++)
    if (strcmp(state, over[k]) == 0) return JOB_ENDED;
  for (size_t k = 0; k < sizeof ending / sizeof *ending; k++)
    if (strcmp(state, ending[k]) == 0) return JOB_ENDING;
  return JOB_QUEUED;
}

/* The verdict on the k-th lost agent, from what squeue last said of its
   job: preempted (Slurm set the job's PreemptTime), its walltime (lost
   at or near its job's end), or lost for a cause Slurm does not name
   (scancel, a node's failure, the agent's own death). */
static void judge_now(alloc_t *a, int k) {
  ps_node_t *n = a->losing[k].node;
  a->losing[k] = a->losing[--a->nlosing];
  const job_t *j = find_job(a, n->job);
  size_t used = strlen(n->why);
  if (j && j->preempted > 0) {
    n->loss = PS_LOSS_PREEMPTED;
    snprintf(n->why + used, sizeof n->why - used, " (slurm job %s was preempted)", n->job);
  } else if (n->ends > 0 && (int64_t)time(NULL) >= n->ends - WALLTIME_SLACK_S) {
    n->loss = PS_LOSS_WALLTIME;
    snprintf(n->why + used, sizeof n->why - used, " (slurm job %s reached its time limit)", n->job);
  } else {
    n->loss = PS_LOSS_HOST;
    snprintf(n->why + used, sizeof n->why - used, " (slurm job %s)", n->job);
  }
  ps_pool_node_lost(n, n->why);
}

/* gate.h's judge: the agent's job is looked up by the next squeue that
   starts from now. */
static void judge(void *data, ps_node_t *n) {
  alloc_t *a = data;
  if (a->nlosing == a->caplosing) {
    int cap = a->caplosing ? 2 * a->caplosing : 16;
    losing_t *more = realloc(a->losing, sizeof *more * (size_t)cap);
    if (more == NULL) { /* out of memory: judged on what is known */
      ps_pool_node_lost(n, n->why);
      return;
    }
    a->losing = more;
    a->caplosing = cap;
  }
  a->losing[a->nlosing++] = (losing_t){n, ps_mono_us()};
  a->hurry = 1;
  if (a->closing) judge_now(a, a->nlosing - 1);
}

/* One line of squeue's answer: "ID STATE START END PREEMPTED". */
static void read_job(alloc_t *a, const char *line) {
  char id[32], state[24], start[32] = "", ends[32] = "", preempted[32] = "";
  if (sscanf(line, "%31s %23s %31s %31s %31s", id, state, start, ends, preempted) < 2) return;
  int now = job_state(state);
  job_t *j = find_job(a, id);
  /* One of this run's that a killed sbatch did not tell us of (while an
     sbatch runs, an unknown job may be its own, told soon). */
  if (j == NULL && a->submitting == NULL && now != JOB_ENDED && (j = add_job(a, id)) != NULL)
    ps_pool_note(a->pool, "slurm job %s is this run's too (its sbatch did not answer)", id);
  if (j == NULL) return;
  /* Its end is its time limit's while it waits or runs; once it has
     ended, the time it ended. */
  if (now == JOB_QUEUED || now == JOB_RUNNING) {
    j->start = unix_time(start);
    j->ends = unix_time(ends);
    set_ends(a, j);
  }
  j->preempted = unix_time(preempted);
  snprintf(j->last, sizeof j->last, "%s", state);
  if (j->state == JOB_ENDED) return;
  if (now == JOB_RUNNING && j->state == JOB_QUEUED)
    ps_pool_note(a->pool, "slurm job %s started", id);
  if (now == JOB_ENDED) ps_pool_note(a->pool, "slurm job %s ended: %s", id, state);
  j->state = now;
}

/* squeue's answer: "ID STATE START END PREEMPTED" per line, for this
   run's jobs. A job it no longer lists has ended. */
static void on_polled(ps_errand_t *e, int exited, int code, int sig, const ps_buf_t *out,
                      const ps_buf_t *err) {
  alloc_t *a = e->data;
  (void)sig, (void)err;
  a->polling = NULL;
  if (!exited || code != 0 || out->failed) return; /* the next poll asks again */
  if (a->stuck > 0) ps_pool_note(a->pool, "squeue answers again");
  a->stuck = 0;
  for (int k = 0; k < a->njobs; k++) a->jobs[k].last[0] = a->jobs[k].state == JOB_ENDED ? 'E' : 0;
  const char *p = out->data ? out->data : "", *end = p + out->len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) nl = end;
    char line[200];
    snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
    read_job(a, line);
    p = nl + 1;
  }
  /* A job submitted after this squeue started may not be listed yet. */
  for (int k = 0; k < a->njobs; k++)
    if (a->jobs[k].state != JOB_ENDED && a->jobs[k].last[0] == 0 &&
        a->jobs[k].submitted < a->last_poll) {
      ps_pool_note(a->pool, "slurm job %s ended (squeue no longer lists it)", a->jobs[k].id);
      a->jobs[k].state = JOB_ENDED;
    }
  /* The agents lost before this squeue started have their verdict. */
  for (int k = a->nlosing - 1; k >= 0; k--)
    if (a->losing[k].since <= a->last_poll) judge_now(a, k);
}

static void submit(alloc_t *a) {
  ps_err_t err;
  /* The token goes to sbatch in the environment, and with the job's to
     its agent, which takes it out of its own. */
  setenv("PSURVEY_AGENT_TOKEN", a->token, 1);
  int rc = ps_errand_start(a->pool->loop, &a->pool->reaper, a->argv, on_submitted, a,
                           &a->submitting, &err);
  unsetenv("PSURVEY_AGENT_TOKEN");
  if (rc != 0) {
    a->submitting = NULL;
    a->failures = GIVE_UP_AFTER;
    if (a->node) ps_pool_node_lost(a->node, err.msg);
    return;
  }
  a->submit_started = a->recent[a->nrecent++ % 256] = ps_mono_us();
}

static void poll_jobs(alloc_t *a) {
  char *argv[] = {a->squeue,
                  "-h",
                  "--states=all",
                  "--name",
                  a->name,
                  "-O",
                  "JobID: ,State: ,StartTime: ,EndTime: ,PreemptTime: ",
                  NULL};
  ps_err_t err;
  if (ps_errand_start(a->pool->loop, &a->pool->reaper, argv, on_polled, a, &a->polling, &err) != 0)
    a->polling = NULL;
}

static void on_tick(uv_timer_t *t) {
  alloc_t *a = t->data;
  if (a->closing) return;
  int64_t now = ps_mono_us();
  int64_t stuck_us =
      STUCK_POLLS * a->poll_us > STUCK_MIN_US ? STUCK_POLLS * a->poll_us : STUCK_MIN_US;
  if (a->polling && now - a->last_poll > stuck_us) {
    if (a->stuck++ == 0)
      ps_pool_note(a->pool, "squeue has not answered in %.0f s: killed, asking again",
                   stuck_us / 1e6);
    ps_errand_drop(a->polling);
    a->polling = NULL;
  }
  if (a->submitting && now - a->submit_started > SBATCH_STUCK_US) {
    ps_pool_note(a->pool, "sbatch has not answered in %d s: killed", SBATCH_STUCK_US / 1000000);
    ps_errand_drop(a->submitting);
    a->submitting = NULL;
    a->failures++;
  }
  if (a->polling == NULL && a->njobs > 0 && (a->hurry || now - a->last_poll >= a->poll_us)) {
    a->last_poll = now;
    a->hurry = 0;
    poll_jobs(a);
  }
  /* squeue does not answer: the lost agents are judged on what is known. */
  for (int k = a->nlosing - 1; k >= 0; k--)
    if (now - a->losing[k].since > JUDGE_PATIENCE_US) judge_now(a, k);
  int cap = a->want < a->max_job_count ? a->want : a->max_job_count;
  if (a->submitting == NULL && a->failures < GIVE_UP_AFTER && active(a) < cap &&
      submitted_last_minute(a, now) < a->per_minute)
    submit(a);
}

/* The allocator node's functions: it never runs a worker. */

static void timer_closed(uv_handle_t *h) {
  alloc_t *a = h->data;
  ps_census_add(PS_CENSUS_HANDLES, -1);
  for (int k = 0; k < a->nargv; k++) free(a->argv[k]);
  free(a->squeue);
  free(a->scancel);
  free(a->jobs);
  free(a->losing);
  free(a);
}

/* The survey is ending: no more submissions (the agents are told BYE by
   their own nodes, and their jobs end with them). */
static void alloc_bye(ps_node_t *n) {
  alloc_t *a = alloc_of(n);
  a->closing = 1;
  while (a->nlosing > 0) judge_now(a, a->nlosing - 1);
  if (a->submitting) ps_errand_drop(a->submitting);
  if (a->polling) ps_errand_drop(a->polling);
  a->submitting = a->polling = NULL;
}

/* What is left of the jobs (queued, or an agent that did not end) is
   cancelled, now: the loop is closing, and scancel is quick. */
static void cancel_jobs(alloc_t *a) {
  const char *argv[MAX_ARGS + 4];
  int n_ids = 0;
  char ids[2048] = "";
  argv[0] = a->scancel;
  for (int k = 0; k < a->njobs && n_ids < MAX_ARGS; k++)
    if (a->jobs[k].state != JOB_ENDED) {
      argv[1 + n_ids++] = a->jobs[k].id;
      size_t used = strlen(ids);
      snprintf(ids + used, sizeof ids - used, "%s%s", used ? " " : "", a->jobs[k].id);
      a->jobs[k].state = JOB_ENDED;
    }
  argv[1 + n_ids] = NULL;
  if (n_ids == 0) return;
  ps_program_t prog = {argv, NULL, 0, NULL, NULL};
  ps_program_out_t out;
  ps_err_t err;
  if (ps_program_run(&prog, &out, &err) != 0) {
    ps_pool_note(a->pool, "cannot cancel slurm jobs %s: %s", ids, err.msg);
    return;
  }
  char why[300];
  first_line(&out.err, why, sizeof why);
  ps_pool_note(a->pool, "cancelled slurm jobs %s%s%s", ids, why[0] ? ": " : "", why);
  ps_buf_free(&out.out);
  ps_buf_free(&out.err);
}

static int alloc_open(const ps_node_t *n) {
  (void)n;
  return 0;
}

static void alloc_end(ps_node_t *n, int drop) { (void)n, (void)drop; }

static int alloc_gone(const ps_node_t *n) {
  const alloc_t *a = alloc_of(n);
  return a->closing || (a->failures >= GIVE_UP_AFTER && active(a) == 0);
}

static void alloc_free(ps_node_t *n) {
  alloc_t *a = alloc_of(n);
  alloc_bye(n);
  cancel_jobs(a);
  a->node = NULL;
  n->impl = NULL;
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, timer_closed);
}

static void alloc_describe(const ps_node_t *n, char *out, size_t size) {
  const alloc_t *a = alloc_of(n);
  int queued = 0, running = 0, connecting, up, lost;
  for (int k = 0; k < a->njobs; k++) {
    queued += a->jobs[k].state == JOB_QUEUED;
    running += a->jobs[k].state == JOB_RUNNING;
  }
  ps_gate_counts(a->gate, &connecting, &up, &lost);
  snprintf(out, size, "slurm: jobs %d queued, %d running; agents %d up, %d lost%s",
           queued + (a->submitting != NULL), running, up, lost,
           a->failures >= GIVE_UP_AFTER ? " (sbatch keeps failing)" : "");
}

static const ps_backend_ops_t alloc_ops = {
    .name = "slurm",
    .noun = "Slurm allocations",
    .spawn = ps_pool_no_spawn,
    .send = ps_pool_no_send,
    .kill = ps_pool_no_kill,
    .bye = alloc_bye,
    .open = alloc_open,
    .end = alloc_end,
    .gone = alloc_gone,
    .free = alloc_free,
    .describe = alloc_describe,
};

/* A number from `scontrol show config`: "Name = value". */
static long config_value(const ps_buf_t *b, const char *name) {
  if (b->data == NULL) return -1;
  const char *p = b->data, *end = b->data + b->len;
  size_t n = strlen(name);
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) nl = end;
    if ((size_t)(nl - p) > n && strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '=')) {
      const char *eq = memchr(p, '=', (size_t)(nl - p));
      if (eq) return strtol(eq + 1, NULL, 10);
    }
    p = nl + 1;
  }
  return -1;
}

static char *dup_or(const char *s, const char *dflt) { return strdup(s ? s : dflt); }

int ps_sbatch_setup(ps_pool_t *p, const ps_sbatch_opts_t *o, ps_err_t *err) {
  if (ps_pool_find_node(p, alloc_ops.name))
    return ps_err_set(err, PS_EVALUE, "the Slurm backend is set once per run");
  if (o->nargs > MAX_ARGS) return ps_err_set(err, PS_EVALUE, "at most %d sbatch options", MAX_ARGS);
  /* The site's limits. */
  const char *sc_argv[] = {o->scontrol ? o->scontrol : "scontrol", "show", "config", NULL};
  ps_program_t sc = {sc_argv, NULL, 0, NULL, NULL};
  ps_program_out_t sco;
  if (ps_program_run(&sc, &sco, err) != 0)
    return ps_err_set(err, PS_EVALUE, "backend 'slurm': cannot run scontrol: %s", err->msg);
  long max_jobs = config_value(&sco.out, "MaxJobCount");
  int scontrol_ok = sco.exited && sco.code == 0;
  char why[300];
  first_line(&sco.err, why, sizeof why);
  ps_buf_free(&sco.out);
  ps_buf_free(&sco.err);
  if (!scontrol_ok)
    return ps_err_set(err, PS_EVALUE, "backend 'slurm': scontrol show config failed: %s", why);
  char address[128];
  if (o->listen)
    snprintf(address, sizeof address, "%s", o->listen);
  else if (ps_gate_own_address(address, sizeof address, err) != 0)
    return err->code;
  alloc_t *a = calloc(1, sizeof *a);
  ps_node_t *n = calloc(1, sizeof *n);
  if (a == NULL || n == NULL || ps_auth_new_token(a->token) != 0) {
    free(a);
    free(n);
    return ps_err_set(err, PS_ENOMEM, "out of memory, or no randomness for the token");
  }
  ps_gate_t *gate;
  ps_gate_opts_t go = {address, o->port, a->token, o->heartbeat, "slurm", "Slurm node", judge, a};
  int rc = ps_gate_open(p, &go, &gate, err);
  if (rc != 0) {
    free(a);
    free(n);
    return rc;
  }
  if (ps_pool_add_node(p, n) != 0) {
    /* The gate, open until the pool closes, keeps a as its judge's: a
       stays (out of memory, the run is ending anyway). */
    free(n);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  a->pool = p;
  a->node = n;
  a->gate = gate;
  a->want = o->jobs > 0 ? o->jobs : 1;
  a->per_minute = o->per_minute > 0 ? o->per_minute : 30;
  a->max_job_count = max_jobs > 0 && max_jobs < 1000000 ? (int)max_jobs : 1000000;
  a->poll_us = (int64_t)((o->poll > 0 ? o->poll : 5) * 1e6);
  snprintf(a->name, sizeof a->name, "psurvey-%d-%.8s", (int)getpid(), a->token + 56);
  snprintf(a->connect, sizeof a->connect, strchr(address, ':') ? "[%s]:%d" : "%s:%d", address,
           ps_gate_port(gate));
  n->ops = &alloc_ops;
  n->impl = a;
  n->state = PS_NODE_CONNECTING;
  snprintf(n->name, sizeof n->name, "allocations %s", a->name);
  /* sbatch --parsable --job-name NAME --nodes=1 --ntasks=1 --output LOG
     [the user's options] --wrap "exec PSURVEY agent --connect ADDR:PORT" */
  char out[600], wrap[5000];
  snprintf(out, sizeof out, "--output=%s/agent-%%j.log", o->log_dir ? o->log_dir : ".");
  snprintf(wrap, sizeof wrap, "exec '%s' agent --connect %s", p->exe, a->connect);
  const char *fixed[] = {o->sbatch ? o->sbatch : "sbatch",
                         "--parsable",
                         "--job-name",
                         a->name,
                         "--nodes=1",
                         "--ntasks=1",
                         out};
  for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) a->argv[a->nargv++] = strdup(fixed[k]);
  for (int k = 0; k < o->nargs; k++) a->argv[a->nargv++] = strdup(o->args[k]);
  a->argv[a->nargv++] = strdup("--wrap");
  a->argv[a->nargv++] = strdup(wrap);
  a->argv[a->nargv] = NULL;
  a->squeue = dup_or(o->squeue, "squeue");
  a->scancel = dup_or(o->scancel, "scancel");
  uv_timer_init(p->loop, &a->timer);
  ps_census_add(PS_CENSUS_HANDLES, 1);
  a->timer.data = a;
  uv_timer_start(&a->timer, on_tick, 0, 250);
  ps_pool_note(p,
               "slurm: agents connect to %s port %d; jobs named %s, %d at a time (MaxJobCount %ld)",
               address, ps_gate_port(gate), a->name, a->want, max_jobs);
  return 0;
}
