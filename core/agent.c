/*
 * agent.c: `psurvey agent`, the far end of one ssh connection, or of a
 * connection back to the driver (`--connect`, dial.c). It runs a
 * pool of `psurvey worker` processes on its host, as the driver asks
 * (SPAWN, KILL), and relays frames: TO from the driver goes to a worker
 * as it is, a worker's frames go back wrapped in FROM, a worker's death as
 * GONE. It answers PING with PONG. When its input ends (the driver or the
 * ssh connection is gone) or BYE arrives, it kills its workers and exits:
 * nothing is left running on a host a survey has lost.
 *
 * Writes to the driver are blocking: the agent has nothing better to do
 * while ssh is busy, and the pressure travels back to the workers.
 */
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"
#include "frame.h"
#include "link.h"
#include "local.h"
#include "msg.h"
#include "pool.h"
#include "value.h"

/* Stopping, its workers have STOP_GRACE_MS to end when killed before the
   agent gives up on them at STOP_LIMIT_MS (ps_pool_drain). */
#define STOP_GRACE_MS 1000
#define STOP_LIMIT_MS 2000

typedef struct agent_s {
  uv_loop_t loop;
  ps_pool_t pool;
  ps_node_t *here; /* this host: the local backend's node */
  ps_link_t *in;   /* the driver's frames, on standard input */
  int out;
  int stopping;
} agent_t;

static void stop(agent_t *a);

static void send_frame(agent_t *a, ps_buf_t *b) {
  const char *p = b->data;
  size_t n = b->failed ? 0 : b->len;
  while (n > 0) {
    ssize_t k = write(a->out, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      stop(a); /* the driver is gone */
      break;
    }
    p += k;
    n -= (size_t)k;
  }
  ps_buf_free(b);
}

static uint64_t driver_id(ps_worker_t *w) { return (uint64_t)(uintptr_t)w->data; }

static ps_worker_t *find(agent_t *a, uint64_t id) {
  for (int k = 0; k < a->pool.n; k++)
    if (driver_id(a->pool.workers[k]) == id && !a->pool.workers[k]->closing)
      return a->pool.workers[k];
  return NULL;
}

static void gone(agent_t *a, uint64_t id, int64_t status, int sig, const char *why) {
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_gone(&b, id, (uint64_t)status, (uint64_t)sig, why, strlen(why));
  send_frame(a, &b);
}

static void on_worker_frame(ps_worker_t *w, int kind, const char *payload, size_t len) {
  agent_t *a = w->pool->owner;
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_from(&b, driver_id(w), kind, payload, len);
  send_frame(a, &b);
}

static void on_worker_dead(ps_worker_t *w) {
  agent_t *a = w->pool->owner;
  if (!a->stopping) gone(a, driver_id(w), w->exit_status, w->term_signal, w->why);
}

static void on_driver_frame(agent_t *a, int kind, const char *p, size_t n) {
  ps_msg_relay_t m;
  switch (kind) {
    case PS_MSG_SPAWN: {
      ps_worker_t *w;
      ps_err_t err;
      if (ps_msg_get_relay(kind, p, n, &m) != 0 || m.bytes.n >= PS_GPUS_TEXT) break;
      char gpus[PS_GPUS_TEXT];
      ps_text(gpus, sizeof gpus, m.bytes.p, m.bytes.n);
      if (ps_pool_spawn(&a->pool, a->here, gpus, &w, &err) != 0) {
        gone(a, m.worker, 127, 0, err.msg);
        return;
      }
      w->data = (void *)(uintptr_t)m.worker;
      return;
    }
    case PS_MSG_TO: {
      if (ps_msg_get_relay(kind, p, n, &m) != 0) break;
      ps_worker_t *w = find(a, m.worker);
      if (w == NULL) return; /* it died meanwhile: GONE is on its way */
      ps_buf_t b;
      ps_buf_init(&b);
      ps_buf_put(&b, m.bytes.p, m.bytes.n);
      ps_worker_send(w, &b);
      return;
    }
    case PS_MSG_KILL: {
      if (ps_msg_get_relay(kind, p, n, &m) != 0 || m.arg1 > 64) break;
      ps_worker_t *w = find(a, m.worker);
      if (w) ps_worker_kill(w, (int)m.arg1, NULL);
      return;
    }
    case PS_MSG_PING: {
      if (ps_msg_get_empty(p, n) != 0) break;
      ps_buf_t b;
      ps_buf_init(&b);
      ps_msg_put_empty(&b, PS_MSG_PONG);
      send_frame(a, &b);
      return;
    }
    case PS_MSG_BYE: stop(a); return;
    default: break;
  }
  fprintf(stderr, "psurvey agent: a malformed frame from the driver (kind %d)\n", kind);
  stop(a);
}

static void on_link_frame(ps_link_t *l, int kind, const char *payload, size_t len) {
  agent_t *a = l->data;
  if (!a->stopping) on_driver_frame(a, kind, payload, len);
}

/* The driver or the ssh connection is gone, or sent garbage. */
static void on_link_end(ps_link_t *l, const char *why) {
  agent_t *a = l->data;
  if (why) fprintf(stderr, "psurvey agent: the driver sent %s\n", why);
  stop(a);
}

static const ps_link_cb_t driver_link = {on_link_frame, on_link_end, NULL};

static void stop(agent_t *a) {
  if (a->stopping) return;
  a->stopping = 1;
  /* Their work belongs to a driver that is done with this host. */
  for (int k = 0; k < a->pool.n; k++) ps_worker_kill(a->pool.workers[k], SIGKILL, NULL);
}

int ps_agent_main(const char *exe, int conn, int slots) {
  static agent_t A;
  agent_t *a = &A;
  memset(a, 0, sizeof *a);
  signal(SIGPIPE, SIG_IGN);
  /* Frames go out on a private descriptor; stdout becomes stderr, so that
     nothing else ever writes into the protocol. */
  a->out = conn >= 0 ? conn : dup(1);
  int in = conn >= 0 ? dup(conn) : 0;
  if (a->out < 0 || in < 0 || dup2(2, 1) < 0) {
    perror("psurvey agent");
    return 2;
  }
  if (uv_loop_init(&a->loop) != 0 || ps_pool_init(&a->pool, &a->loop, exe) != 0) {
    fprintf(stderr, "psurvey agent: cannot start\n");
    return 2;
  }
  ps_err_t err;
  if (ps_local_setup(&a->pool, &a->here, &err) != 0) {
    fprintf(stderr, "psurvey agent: %s\n", err.msg);
    return 2;
  }
  /* The driver decides how many workers run here. */
  a->here->slots = 1 << 20;
  a->pool.cb.on_frame = on_worker_frame;
  a->pool.cb.on_dead = on_worker_dead;
  a->pool.owner = a;

  char host[256];
  if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  /* In a Slurm job: its id, and the GPUs Slurm gave the step (as the
     workers will name them in CUDA_VISIBLE_DEVICES). */
  const char *job = getenv("SLURM_JOB_ID") ? getenv("SLURM_JOB_ID") : "";
  const char *gpus = job[0] && getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "";
  /* The CPUs the agent (and the workers it starts) may run on there. */
  int cores = slots > 0 ? slots : ps_cpus_usable();
  long pages = sysconf(_SC_PHYS_PAGES), pagesize = sysconf(_SC_PAGESIZE);
  uint64_t mem_mb =
      pages > 0 && pagesize > 0 ? (uint64_t)(pages / 1024) * (uint64_t)pagesize / 1024 : 0;
  /* In a Slurm job given --mem (or --mem-per-cpu), the job's memory on
     this node is what its psets share. */
  uint64_t job_mb = 0;
  if (job[0] && getenv("SLURM_MEM_PER_NODE"))
    job_mb = strtoull(getenv("SLURM_MEM_PER_NODE"), NULL, 10);
  else if (job[0] && getenv("SLURM_MEM_PER_CPU") && getenv("SLURM_CPUS_ON_NODE"))
    job_mb = strtoull(getenv("SLURM_MEM_PER_CPU"), NULL, 10) *
             strtoull(getenv("SLURM_CPUS_ON_NODE"), NULL, 10);
  if (job_mb > 0 && job_mb < mem_mb) mem_mb = job_mb;
  ps_buf_t b;
  ps_buf_init(&b);
  ps_buf_put(&b, PS_AGENT_MAGIC, PS_AGENT_MAGIC_LEN);
  ps_msg_agent_t hello = {PS_PROTOCOL,
                          (uint64_t)cores,
                          mem_mb,
                          {host, strlen(host)},
                          {PSURVEY_VERSION, strlen(PSURVEY_VERSION)},
                          {gpus, strlen(gpus)},
                          {job, strlen(job)},
                          0};
  ps_msg_put_agent(&b, &hello);
  send_frame(a, &b);

  if (ps_link_open(&a->loop, in, -1, NULL, 0, &driver_link, a, &a->in, &err) != 0) {
    fprintf(stderr, "psurvey agent: cannot read from the driver: %s\n", err.msg);
    return 2;
  }
  while (!a->stopping) uv_run(&a->loop, UV_RUN_ONCE);
  /* stop() killed the workers; a worker that cannot be waited for (stuck
     in the kernel) does not keep the agent. */
  ps_pool_drain(&a->pool, PS_DRAIN_KILL, STOP_GRACE_MS, STOP_LIMIT_MS);
  ps_link_close(a->in);
  ps_pool_close(&a->pool);
  uv_run(&a->loop, UV_RUN_NOWAIT);
  uv_loop_close(&a->loop);
  close(a->out);
  return 0;
}
