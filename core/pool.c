/* pool.c: the pool of workers, and the local worker processes (pool.h).
   Workers on ssh hosts are node.c's; this file hands them over there. */
#include "pool.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "node.h"
#include "value.h"

/* Closing the pool: workers and agents have CLOSE_GRACE_MS to exit when
   asked, and are then killed; at CLOSE_LIMIT_MS what is left is dropped. */
#define CLOSE_GRACE_MS 1000
#define CLOSE_LIMIT_MS 3000

static void report_deaths(uv_idle_t *h);

int ps_pool_init(ps_pool_t *p, uv_loop_t *loop, const char *exe) {
  memset(p, 0, sizeof *p);
  p->loop = loop;
  p->exe = strdup(exe);
  p->next_id = 1;
  p->dead_tail = &p->dead;
  if (p->exe == NULL) return PS_ENOMEM;
  if (ps_reaper_init(loop, &p->reaper) != 0) {
    free(p->exe);
    return PS_ENOMEM;
  }
  uv_idle_init(loop, &p->reporter);
  p->reporter.data = p;
  return 0;
}

static void remove_worker(ps_pool_t *p, ps_worker_t *w) {
  for (int k = 0; k < p->n; k++)
    if (p->workers[k] == w) {
      memmove(&p->workers[k], &p->workers[k + 1], sizeof(ps_worker_t *) * (size_t)(p->n - k - 1));
      p->n--;
      return;
    }
}

/* The loop's idle phase: every worker buried since is reported dead,
   taken off the list and freed. on_dead may bury others (they are
   reported in the same pass) or start new workers. */
static void flush_deaths(ps_pool_t *p) {
  while (p->dead) {
    ps_worker_t *w = p->dead;
    p->dead = w->next_dead;
    if (p->dead == NULL) p->dead_tail = &p->dead;
    remove_worker(p, w);
    if (p->cb.on_dead) p->cb.on_dead(w);
    ps_link_close(w->link);
    free(w);
  }
  uv_idle_stop(&p->reporter);
}

static void report_deaths(uv_idle_t *h) { flush_deaths(h->data); }

void ps__worker_bury(ps_worker_t *w) {
  if (w->closing) return;
  w->closing = 1;
  ps_pool_t *p = w->pool;
  if (w->child) ps_child_forget(w->child);
  w->child = NULL;
  w->next_dead = NULL;
  *p->dead_tail = w;
  p->dead_tail = &w->next_dead;
  uv_idle_start(&p->reporter, report_deaths);
}

/* Called when both the exit status and the end of output are known. */
static void maybe_dead(ps_worker_t *w) {
  if (!w->exited || !w->eof || w->closing) return;
  ps__worker_bury(w);
}

static void on_process_exit(ps_child_t *c, int64_t status, int sig) {
  ps_worker_t *w = c->data;
  w->child = NULL;
  w->exited = 1;
  w->exit_status = status;
  w->term_signal = sig;
  maybe_dead(w);
}

static void on_worker_frame(ps_link_t *l, int kind, const char *payload, size_t len) {
  ps_worker_t *w = l->data;
  if (w->why[0] || w->closing) return;
  if (kind == PS_MSG_HELLO) w->hello = 1;
  w->pool->cb.on_frame(w, kind, payload, len);
}

static void on_worker_end(ps_link_t *l, const char *why) {
  ps_worker_t *w = l->data;
  /* A malformed frame ends the worker; the end of its output (or a failed
     read) is how it dies: the exit callback tells why. */
  if (why && strncmp(why, "a malformed frame", 17) == 0 && !w->why[0]) {
    char msg[sizeof w->why];
    snprintf(msg, sizeof msg, "sent %s", why);
    ps_worker_kill(w, SIGKILL, msg);
  }
  w->eof = 1;
  maybe_dead(w);
}

/* Room for one more worker in the list. */
static int reserve(ps_pool_t *p) {
  if (p->n < p->cap) return 0;
  int cap = p->cap ? p->cap * 2 : 8;
  ps_worker_t **ws = realloc(p->workers, sizeof(ps_worker_t *) * (size_t)cap);
  if (ws == NULL) return PS_ENOMEM;
  p->workers = ws;
  p->cap = cap;
  return 0;
}

int ps__pool_add(ps_pool_t *p, ps_worker_t *w) {
  if (reserve(p) != 0) return PS_ENOMEM;
  p->workers[p->n++] = w;
  return 0;
}

static const ps_link_cb_t worker_link = {on_worker_frame, on_worker_end, NULL};

int ps_pool_spawn(ps_pool_t *p, ps_node_t *node, ps_worker_t **out, ps_err_t *err) {
  if (node) return ps_node_spawn(node, out, err);
  ps_worker_t *w = calloc(1, sizeof *w);
  if (w == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  if (reserve(p) != 0) {
    free(w);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  w->pool = p;
  w->id = p->next_id++;
  char *args[] = {p->exe, "worker", "--die-with-parent", NULL};
  int to_fd, from_fd;
  ps_err_t why;
  /* In a session of its own (child.h): a kill of the group reaches the
     simulators it runs. */
  if (ps_spawn(&p->reaper, p->exe, args, on_process_exit, w, &w->child, &to_fd, &from_fd, NULL, &why) != 0) {
    ps_err_set(err, PS_EWORKER, "cannot start worker process '%s': %s", p->exe, why.msg);
    free(w);
    return PS_EWORKER;
  }
  w->pid = w->child->pid;
  if (ps_link_open(p->loop, from_fd, to_fd, NULL, 0, &worker_link, w, &w->link, &why) != 0) {
    /* Its input and output are gone: it ends, and the reaper forgets it. */
    kill(-w->pid, SIGKILL);
    ps_child_forget(w->child);
    free(w);
    return ps_err_set(err, PS_EWORKER, "cannot talk to worker process '%s': %s", p->exe, why.msg);
  }
  ps__pool_add(p, w);
  *out = w;
  return 0;
}

int ps_worker_send(ps_worker_t *w, ps_buf_t *b) {
  if (w->node) return ps_node_send(w, b);
  if (w->closing || w->exited) {
    ps_buf_free(b);
    return PS_EWORKER;
  }
  return ps_link_send(w->link, b);
}

void ps_worker_kill(ps_worker_t *w, int sig, const char *why) {
  if (why && !w->why[0]) snprintf(w->why, sizeof w->why, "%.290s", why);
  if (w->exited) return;
  if (w->node) {
    ps_node_kill(w, sig);
    return;
  }
  if (kill(-w->pid, sig) != 0) kill(w->pid, sig);
}

void ps_worker_bye(ps_worker_t *w) {
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_empty(&b, PS_MSG_BYE);
  ps_worker_send(w, &b);
}

int ps_pool_alive(const ps_pool_t *p) {
  int alive = 0;
  for (int k = 0; k < p->n; k++) alive += !p->workers[k]->closing;
  return alive;
}

/* The drain's timer only wakes the loop up, so that its deadlines are
   checked while nothing else happens. */
static void on_drain_tick(uv_timer_t *t) { (void)t; }
static void on_drain_timer_closed(uv_handle_t *h) { *(int *)h->data = 1; }

/* Gives up on the local workers still listed: each is reported dead and
   its handles close; its process, if it still runs, is the reaper's. */
static void abandon_workers(ps_pool_t *p) {
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    if (w->node || w->closing) continue;
    if (!w->why[0]) snprintf(w->why, sizeof w->why, "did not end when killed");
    w->exited = w->eof = 1;
    ps__worker_bury(w);
  }
}

static int draining(const ps_pool_t *p, int hosts) { return p->n > 0 || (hosts && ps__nodes_open(p) > 0); }

int ps_pool_drain(ps_pool_t *p, int how, int grace_ms, int limit_ms) {
  int hosts = how & PS_DRAIN_HOSTS;
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    if (how & PS_DRAIN_BYE) {
      ps_worker_bye(w);
      /* The end of its input says the same. */
      if (!w->node && w->link) ps_link_shutdown(w->link);
    } else {
      ps_worker_kill(w, SIGKILL, NULL);
    }
  }
  if (hosts) ps__nodes_bye(p);
  uv_timer_t tick;
  int closed = 0, killed = 0, left = 0;
  uv_timer_init(p->loop, &tick);
  tick.data = &closed;
  uv_timer_start(&tick, on_drain_tick, 50, 50);
  int64_t start = ps_mono_us();
  while (draining(p, hosts)) {
    int64_t ms = (ps_mono_us() - start) / 1000;
    if (ms >= limit_ms) {
      left = p->n + (hosts ? ps__nodes_open(p) : 0);
      ps__nodes_end(p, hosts, 1);
      abandon_workers(p);
      break;
    }
    if (ms >= grace_ms && !killed) {
      killed = 1;
      for (int k = 0; k < p->n; k++) ps_worker_kill(p->workers[k], SIGKILL, NULL);
      ps__nodes_end(p, hosts, 0);
    }
    uv_run(p->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&tick, on_drain_timer_closed);
  while (!closed) uv_run(p->loop, UV_RUN_ONCE);
  return left;
}

void ps_pool_close(ps_pool_t *p) {
  ps_pool_drain(p, PS_DRAIN_BYE | PS_DRAIN_HOSTS, CLOSE_GRACE_MS, CLOSE_LIMIT_MS);
  ps_nodes_close(p);
  flush_deaths(p); /* the hosts' workers, lost as they closed */
  ps_reaper_close(&p->reaper);
  uv_close((uv_handle_t *)&p->reporter, NULL);
  uv_run(p->loop, UV_RUN_NOWAIT);
  free(p->workers);
  free(p->exe);
  p->workers = NULL;
  p->exe = NULL;
}
