/* local.c: this machine as a node of the pool (local.h). */
#include "local.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"

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

static const ps_link_cb_t worker_link = {on_worker_frame, on_worker_end, NULL};

static int local_spawn(ps_node_t *n, ps_worker_t *w, ps_err_t *err) {
  ps_pool_t *p = n->pool;
  /* Bound to its GPUs for life: the worker sets CUDA_VISIBLE_DEVICES from
     --gpus before any library can read it ("" hides every GPU). */
  char gpus[sizeof w->gpus + 8];
  snprintf(gpus, sizeof gpus, "--gpus=%s", w->gpus);
  char *args[] = {p->exe, "worker", "--die-with-parent", gpus, NULL};
  int to_fd, from_fd;
  ps_err_t why;
  /* In a session of its own (child.h): a kill of the group reaches the
     simulators it runs. */
  if (ps_spawn(&p->reaper, p->exe, args, on_process_exit, w, &w->child, &to_fd, &from_fd, NULL,
               &why) != 0)
    return ps_err_set(err, PS_EWORKER, "cannot start worker process '%s': %s", p->exe, why.msg);
  w->pid = w->child->pid;
  if (ps_link_open(p->loop, from_fd, to_fd, NULL, 0, &worker_link, w, &w->link, &why) != 0) {
    /* Its input and output are gone: it ends, and the reaper forgets it. */
    kill(-w->pid, SIGKILL);
    ps_child_forget(w->child);
    return ps_err_set(err, PS_EWORKER, "cannot talk to worker process '%s': %s", p->exe, why.msg);
  }
  return 0;
}

static int local_send(ps_worker_t *w, ps_buf_t *b) { return ps_link_send(w->link, b); }

static void local_kill(ps_worker_t *w, int sig) {
  if (kill(-w->pid, sig) != 0) kill(w->pid, sig);
}

static const ps_backend_ops_t local_ops = {
    .name = "process",
    .noun = "this machine",
    .slots_per_map = 1,
    .spawn = local_spawn,
    .send = local_send,
    .kill = local_kill,
};

int ps_local_setup(ps_pool_t *p, ps_node_t **out, ps_err_t *err) {
  ps_node_t *n = ps_pool_find_node(p, local_ops.name);
  if (n == NULL) {
    if ((n = calloc(1, sizeof *n)) == NULL || ps_pool_add_node(p, n) != 0) {
      free(n);
      return ps_err_set(err, PS_ENOMEM, "out of memory");
    }
    n->ops = &local_ops;
    if (gethostname(n->host, sizeof n->host - 1) != 0) strcpy(n->host, "localhost");
    snprintf(n->name, sizeof n->name, "%s", n->host);
    /* What this process may run on (taskset, a cpuset, a quota). */
    n->cores = ps_cpus_usable();
    long pages = sysconf(_SC_PHYS_PAGES), pagesize = sysconf(_SC_PAGESIZE);
    n->mem_mb = pages > 0 && pagesize > 0 ? (int64_t)(pages / 1024) * pagesize / 1024 : 0;
    n->slots = 1;
    n->state = PS_NODE_UP;
    n->ever_up = 1;
  }
  if (out) *out = n;
  return 0;
}
