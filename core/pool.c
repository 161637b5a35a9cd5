/* pool.c: the nodes and workers of a driver (pool.h). */
#include "pool.h"

#include <assert.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "msg.h"

/* Closing the pool: workers and agents have CLOSE_GRACE_MS to exit when
   asked, and are then killed; at CLOSE_LIMIT_MS what is left is dropped. */
#define CLOSE_GRACE_MS 1000
#define CLOSE_LIMIT_MS 3000
/* How often a drain looks at its deadlines while nothing else happens. */
#define DRAIN_TICK_MS 50

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
  ps_census_add(PS_CENSUS_HANDLES, 1);
  p->reporter.data = p;
  return 0;
}

int ps_pool_add_node(ps_pool_t *p, ps_node_t *n) {
  if (p->nnodes == p->capnodes) {
    int cap = p->capnodes ? p->capnodes * 2 : 8;
    ps_node_t **more = realloc(p->nodes, sizeof *more * (size_t)cap);
    if (more == NULL) return PS_ENOMEM;
    p->nodes = more;
    p->capnodes = cap;
  }
  n->pool = p;
  p->nodes[p->nnodes++] = n;
  return 0;
}

ps_node_t *ps_pool_find_node(const ps_pool_t *p, const char *backend) {
  for (int k = 0; k < p->nnodes; k++)
    if (strcmp(p->nodes[k]->ops->name, backend) == 0) return p->nodes[k];
  return NULL;
}

int ps_pool_on_close(ps_pool_t *p, void (*close)(ps_pool_t *p, void *data), void *data) {
  int max = (int)(sizeof p->closers / sizeof p->closers[0]);
  if (p->nclosers == max) return PS_ENOMEM;
  p->closers[p->nclosers].close = close;
  p->closers[p->nclosers++].data = data;
  return 0;
}

void ps_pool_node_up(ps_node_t *n) {
  n->state = PS_NODE_UP;
  n->ever_up = 1;
  n->failures = 0;
  n->why[0] = '\0';
  n->loss = PS_LOSS_HOST;
  if (n->pool->cb.on_node) n->pool->cb.on_node(n, 1);
}

void ps_pool_node_lost(ps_node_t *n, const char *why) {
  ps_pool_t *p = n->pool;
  n->state = PS_NODE_DOWN;
  if (why != n->why) ps_textf(n->why, sizeof n->why, "%s", why);
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    if (w->node != n || w->closing) continue;
    w->lost = 1;
    w->exited = w->eof = 1;
    if (!w->why[0]) ps_textf(w->why, sizeof w->why, "was lost with %s %s", n->ops->noun, n->name);
    ps__worker_bury(w);
  }
  n->failures++;
  if (p->cb.on_node) p->cb.on_node(n, 0);
}

void ps_pool_note(ps_pool_t *p, const char *fmt, ...) {
  if (p->cb.on_note == NULL) return;
  char text[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  p->cb.on_note(p, text);
}

int ps_pool_no_spawn(ps_node_t *n, ps_worker_t *w, ps_err_t *err) {
  (void)w;
  return ps_err_set(err, PS_EWORKER, "%s %s runs no worker: its agents do", n->ops->noun, n->name);
}

int ps_pool_no_send(ps_worker_t *w, ps_buf_t *b) {
  (void)w;
  ps_buf_free(b);
  return PS_EWORKER;
}

void ps_pool_no_kill(ps_worker_t *w, int sig) { (void)w, (void)sig; }

int ps_pool_nodes_up(const ps_pool_t *p, int *slots) {
  int up = 0, s = 0;
  for (int k = 0; k < p->nnodes; k++)
    if (p->nodes[k]->state == PS_NODE_UP) {
      up++;
      s += p->nodes[k]->slots;
    }
  if (slots) *slots = s;
  return up;
}

int ps_pool_nodes_gone(const ps_pool_t *p) {
  if (p->nnodes == 0) return 0;
  for (int k = 0; k < p->nnodes; k++) {
    const ps_node_t *n = p->nodes[k];
    if (!ps_node_gone(n)) return 0;
  }
  return 1;
}

static void remove_worker(ps_pool_t *p, ps_worker_t *w) {
  for (int k = 0; k < p->n; k++)
    if (p->workers[k] == w) {
      memmove(&p->workers[k], &p->workers[k + 1], sizeof(ps_worker_t *) * (size_t)(p->n - k - 1));
      p->n--;
      return;
    }
  assert(!"a dead worker is not in the pool's list");
}

/* Every worker buried since is reported dead, taken off the list and
   freed. on_dead may bury others (they are reported in the same pass) or
   start new workers. */
static void flush_deaths(ps_pool_t *p) {
  while (p->dead) {
    ps_worker_t *w = p->dead;
    p->dead = w->next_dead;
    if (p->dead == NULL) p->dead_tail = &p->dead;
    remove_worker(p, w);
    w->node->workers--;
    assert(w->node->workers >= 0);
    if (p->cb.on_dead) p->cb.on_dead(w);
    ps_link_close(w->link);
    ps_census_add(PS_CENSUS_WORKERS, -1);
    free(w);
  }
  uv_idle_stop(&p->reporter);
}

/* The loop's idle phase reports the deaths. */
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
  ps_census_add(PS_CENSUS_WORKERS, 1);
  return 0;
}

int ps_pool_spawn(ps_pool_t *p, ps_node_t *n, const char *gpus, ps_worker_t **out, ps_err_t *err) {
  assert(n->pool == p);
  if (n->state != PS_NODE_UP)
    return ps_err_set(err, PS_EWORKER, "%s %s is not connected", n->ops->noun, n->name);
  ps_worker_t *w = calloc(1, sizeof *w);
  if (w == NULL || reserve(p) != 0) {
    free(w);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  w->pool = p;
  w->node = n;
  w->id = p->next_id++;
  snprintf(w->host, sizeof w->host, "%s", n->host);
  if (strlen(gpus) >= sizeof w->gpus) {
    free(w);
    return ps_err_set(err, PS_EVALUE, "GPU ids of %zu bytes, over the %d a worker takes",
                      strlen(gpus), PS_GPUS_TEXT - 1);
  }
  strcpy(w->gpus, gpus);
  int rc = n->ops->spawn(n, w, err);
  if (rc != 0) {
    free(w);
    return rc;
  }
  n->workers++;
  ps__pool_add(p, w);
  *out = w;
  return 0;
}

int ps_worker_send(ps_worker_t *w, ps_buf_t *b) {
  if (w->closing || w->exited) {
    ps_buf_free(b);
    return PS_EWORKER;
  }
  return w->node->ops->send(w, b);
}

void ps_worker_kill(ps_worker_t *w, int sig, const char *why) {
  if (why && !w->why[0]) snprintf(w->why, sizeof w->why, "%s", why);
  if (w->exited || w->closing) return;
  w->node->ops->kill(w, sig);
}

void ps_worker_bye(ps_worker_t *w) {
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_empty(&b, PS_MSG_BYE);
  ps_worker_send(w, &b);
  /* The end of its input says the same. */
  if (w->link) ps_link_shutdown(w->link);
}

int ps_pool_alive(const ps_pool_t *p) {
  int alive = 0;
  for (int k = 0; k < p->n; k++) alive += !p->workers[k]->closing;
  return alive;
}

/* The drain's timer only wakes the loop up, so that its deadlines are
   checked while nothing else happens. */
static void on_drain_tick(uv_timer_t *t) { (void)t; }
static void on_drain_timer_closed(uv_handle_t *h) {
  *(int *)h->data = 1;
  ps_census_add(PS_CENSUS_HANDLES, -1);
}
static void on_reporter_closed(uv_handle_t *h) {
  (void)h;
  ps_census_add(PS_CENSUS_HANDLES, -1);
}

/* Gives up on the workers still listed whose node has no connection to end
   (this machine's): each is reported dead and its handles close; its
   process, if it still runs, is the reaper's. */
static void abandon_workers(ps_pool_t *p) {
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    if (w->closing || w->node->ops->end) continue;
    if (!w->why[0]) snprintf(w->why, sizeof w->why, "did not end when killed");
    w->exited = w->eof = 1;
    ps__worker_bury(w);
  }
}

static int node_has_workers(const ps_node_t *n) {
  const ps_pool_t *p = n->pool;
  for (int k = 0; k < p->n; k++)
    if (p->workers[k]->node == n && !p->workers[k]->closing) return 1;
  return 0;
}

/* Connections still open, over the nodes that have them. */
static int connections_open(const ps_pool_t *p) {
  int open = 0;
  for (int k = 0; k < p->nnodes; k++)
    if (p->nodes[k]->ops->open) open += p->nodes[k]->ops->open(p->nodes[k]);
  return open;
}

/* Ends the connection of every node (all), or of each that still has
   workers; with drop, gives up on it at once. */
static void end_connections(ps_pool_t *p, int all, int drop) {
  for (int k = 0; k < p->nnodes; k++) {
    ps_node_t *n = p->nodes[k];
    if (n->ops->end && (all || node_has_workers(n))) n->ops->end(n, drop);
  }
}

static int draining(const ps_pool_t *p, int hosts) {
  return p->n > 0 || (hosts && connections_open(p) > 0);
}

int ps_pool_drain(ps_pool_t *p, int how, int grace_ms, int limit_ms) {
  int hosts = how & PS_DRAIN_HOSTS;
  for (int k = 0; k < p->n; k++) {
    if (how & PS_DRAIN_BYE)
      ps_worker_bye(p->workers[k]);
    else
      ps_worker_kill(p->workers[k], SIGKILL, NULL);
  }
  if (hosts)
    for (int k = 0; k < p->nnodes; k++)
      if (p->nodes[k]->ops->bye) p->nodes[k]->ops->bye(p->nodes[k]);
  uv_timer_t tick;
  int closed = 0, killed = 0, left = 0;
  uv_timer_init(p->loop, &tick);
  ps_census_add(PS_CENSUS_HANDLES, 1);
  tick.data = &closed;
  uv_timer_start(&tick, on_drain_tick, DRAIN_TICK_MS, DRAIN_TICK_MS);
  int64_t start = ps_mono_us();
  while (draining(p, hosts)) {
    int64_t ms = (ps_mono_us() - start) / 1000;
    if (ms >= limit_ms) {
      left = ps_pool_alive(p) + (hosts ? connections_open(p) : 0);
      end_connections(p, hosts, 1);
      abandon_workers(p);
      break;
    }
    if (ms >= grace_ms && !killed) {
      killed = 1;
      for (int k = 0; k < p->n; k++) ps_worker_kill(p->workers[k], SIGKILL, NULL);
      end_connections(p, hosts, 0);
    }
    uv_run(p->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&tick, on_drain_timer_closed);
  while (!closed) uv_run(p->loop, UV_RUN_ONCE);
  return left;
}

void ps_pool_close(ps_pool_t *p) {
  ps_pool_drain(p, PS_DRAIN_BYE | PS_DRAIN_HOSTS, CLOSE_GRACE_MS, CLOSE_LIMIT_MS);
  for (int k = 0; k < p->nclosers; k++) p->closers[k].close(p, p->closers[k].data);
  /* After the drain, a node still connected is given up on. */
  end_connections(p, 1, 1);
  flush_deaths(p); /* the workers lost as their nodes closed */
  for (int k = 0; k < p->nnodes; k++) {
    if (p->nodes[k]->ops->free) p->nodes[k]->ops->free(p->nodes[k]);
    free(p->nodes[k]);
  }
  free(p->nodes);
  p->nodes = NULL;
  p->nnodes = p->capnodes = 0;
  ps_reaper_close(&p->reaper);
  uv_close((uv_handle_t *)&p->reporter, on_reporter_closed);
  uv_run(p->loop, UV_RUN_NOWAIT);
  free(p->workers);
  free(p->exe);
  p->workers = NULL;
  p->exe = NULL;
}

int ps_node_set_gpus(ps_node_t *n, const char *ids, ps_err_t *err) {
  size_t len = strlen(ids);
  if (len >= sizeof n->gpus)
    return ps_err_set(err, PS_EVALUE, "GPU ids of %zu bytes, over the %d a node takes", len,
                      PS_GPUS_TEXT - 1);
  int count = 0;
  const char *p = ids;
  while (len > 0) {
    const char *end = strchr(p, ',');
    size_t k = end ? (size_t)(end - p) : strlen(p);
    if (k == 0) return ps_err_set(err, PS_EVALUE, "an empty GPU id in '%s'", ids);
    if (++count > PS_GPUS_MAX)
      return ps_err_set(err, PS_EVALUE, "more than %d GPUs in '%s'", PS_GPUS_MAX, ids);
    /* The same id twice would let two workers share a GPU. */
    for (const char *q = ids; q < p;) {
      const char *qe = strchr(q, ',');
      if ((size_t)(qe - q) == k && memcmp(q, p, k) == 0)
        return ps_err_set(err, PS_EVALUE, "GPU id '%.*s' is listed twice", (int)k, p);
      q = qe + 1;
    }
    if (end == NULL) break;
    p = end + 1;
    if (*p == '\0') return ps_err_set(err, PS_EVALUE, "an empty GPU id in '%s'", ids);
  }
  memcpy(n->gpus, ids, len + 1);
  n->ngpus = count;
  return 0;
}

void ps_node_gpu_ids(const ps_node_t *n, uint64_t mask, char *out) {
  size_t o = 0;
  const char *p = n->gpus;
  out[0] = '\0';
  for (int k = 0; k < n->ngpus && *p; k++) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (mask >> k & 1) {
      /* Ids of n->gpus, so they fit as they did there. */
      if (o > 0) out[o++] = ',';
      memcpy(out + o, p, len);
      o += len;
      out[o] = '\0';
    }
    if (end == NULL) break;
    p = end + 1;
  }
}
