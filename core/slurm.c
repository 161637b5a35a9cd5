/* slurm.c: the agents of a Slurm allocation (slurm.h). */
#include "slurm.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "census.h"
#include "gate.h"
#include "program.h"

/* The allocation: its node's impl. */
typedef struct step_s {
  ps_node_t *node; /* NULL once the pool has freed it */
  ps_gate_t *gate;
  ps_child_t *child; /* srun, until it is waited for */
  uv_pipe_t out;     /* srun's stdout and stderr, both ends kept */
  uv_pipe_t err;
  int exited, open_pipes;
  int64_t status;
  int sig;
  char tail[600];
  size_t taillen;
  char job[64];
} step_t;

static step_t *step_of(const ps_node_t *n) { return n->impl; }

static void keep_tail(step_t *s, const char *p, size_t n) {
  if (n >= sizeof s->tail) {
    p += n - (sizeof s->tail - 1);
    n = sizeof s->tail - 1;
  }
  if (s->taillen + n >= sizeof s->tail) {
    size_t drop = s->taillen + n - (sizeof s->tail - 1);
    memmove(s->tail, s->tail + drop, s->taillen - drop);
    s->taillen -= drop;
  }
  memcpy(s->tail + s->taillen, p, n);
  s->taillen += n;
  s->tail[s->taillen] = '\0';
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char chunk[4096]; /* copied out at once */
  (void)h, (void)hint;
  buf->base = chunk;
  buf->len = sizeof chunk;
}

/* What srun and the agents write: the end kept, for the error message of
   a step that fails; the rest to our stderr (a worker's output belongs on
   the user's terminal). */
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  step_t *s = st->data;
  if (nread <= 0) {
    if (nread < 0) uv_read_stop(st);
    return;
  }
  keep_tail(s, buf->base, (size_t)nread);
  ssize_t w = write(2, buf->base, (size_t)nread);
  (void)w;
}

static void pipe_closed(uv_handle_t *h) {
  step_t *s = h->data;
  ps_census_add(PS_CENSUS_HANDLES, -1);
  if (--s->open_pipes == 0 && s->node == NULL) free(s);
}

static void close_pipes(step_t *s) {
  if (!uv_is_closing((uv_handle_t *)&s->out)) uv_close((uv_handle_t *)&s->out, pipe_closed);
  if (!uv_is_closing((uv_handle_t *)&s->err)) uv_close((uv_handle_t *)&s->err, pipe_closed);
}

static void on_exit_cb(ps_child_t *child, int64_t status, int sig) {
  step_t *s = child->data;
  ps_node_t *n = s->node;
  s->child = NULL;
  s->exited = 1;
  s->status = status;
  s->sig = sig;
  char why[800];
  size_t end = s->taillen;
  while (end > 0 && (s->tail[end - 1] == '\n' || s->tail[end - 1] == '\r')) end--;
  size_t start = end;
  while (start > 0 && s->tail[start - 1] != '\n') start--;
  if (sig)
    snprintf(why, sizeof why, "srun for job %s was killed by signal %d", s->job, sig);
  else
    snprintf(why, sizeof why, "srun for job %s ended (exit status %lld)%s%.*s", s->job,
             (long long)status, end > start ? ": " : "", (int)(end - start), s->tail + start);
  if (n) ps_pool_node_lost(n, why);
}

/* Closing: the agents are told BYE by their nodes and end, and so does
   srun's step; srun is killed only if it outlasts the drain (step_end). */
static void step_bye(ps_node_t *n) { (void)n; }

static int step_open(const ps_node_t *n) { return step_of(n)->child != NULL; }

static void step_end(ps_node_t *n, int drop) {
  step_t *s = step_of(n);
  if (s->child) {
    kill(-s->child->pid, SIGKILL);
    kill(s->child->pid, SIGKILL);
  }
  if (drop && s->child) {
    ps_child_forget(s->child);
    s->child = NULL;
  }
}

/* The agents it stands for are not coming once srun has ended. */
static int step_gone(const ps_node_t *n) { return step_of(n)->exited || !step_of(n)->child; }

/* The pipes may still be closing: the last to close frees the step. */
static void step_free(ps_node_t *n) {
  step_t *s = step_of(n);
  if (s->child) ps_child_forget(s->child);
  s->child = NULL;
  s->node = NULL;
  n->impl = NULL;
  close_pipes(s);
}

static void step_describe(const ps_node_t *n, char *out, size_t size) {
  const step_t *s = step_of(n);
  int connecting, up, lost;
  ps_gate_counts(s->gate, &connecting, &up, &lost);
  snprintf(out, size, "slurm job %s: agents %d up, %d connecting, %d lost%s", s->job, up,
           connecting, lost, s->exited ? " (srun has ended)" : "");
}

static const ps_backend_ops_t step_ops = {
    .name = "slurm",
    .noun = "Slurm allocation",
    .spawn = ps_pool_no_spawn,
    .send = ps_pool_no_send,
    .kill = ps_pool_no_kill,
    .bye = step_bye,
    .open = step_open,
    .end = step_end,
    .gone = step_gone,
    .free = step_free,
    .describe = step_describe,
};

/* This node's address as Slurm reaches it (its NodeAddr in `scontrol show
   node`), which the allocation's other nodes reach too: better than what
   the host's name resolves to, which may be a loopback address (Debian
   maps it to 127.0.1.1). -1 when Slurm does not say. */
static int node_address(char *out, size_t size) {
  const char *name = getenv("SLURMD_NODENAME");
  if (name == NULL || name[0] == '\0') return -1;
  const char *argv[] = {"scontrol", "show", "node", name, "--oneliner", NULL};
  ps_program_t prog = {argv, NULL, 0, NULL, NULL};
  ps_program_out_t res;
  ps_err_t err;
  if (ps_program_run(&prog, &res, &err) != 0) return -1;
  char line[4096] = "", addr[256] = "";
  if (res.exited && res.code == 0 && !res.out.failed && res.out.data)
    snprintf(line, sizeof line, "%.*s", (int)res.out.len, res.out.data);
  ps_buf_free(&res.out);
  ps_buf_free(&res.err);
  const char *at = strstr(line, " NodeAddr=");
  if (at == NULL || sscanf(at + 10, "%255s", addr) != 1) return -1;
  return ps_gate_address_of(addr, out, size, &err) == 0 ? 0 : -1;
}

int ps_slurm_setup(ps_pool_t *p, const ps_slurm_opts_t *o, ps_err_t *err) {
  const char *job = getenv("SLURM_JOB_ID");
  if (job == NULL || job[0] == '\0')
    return ps_err_set(err, PS_EVALUE,
                      "backend 'slurm': not inside a Slurm allocation (SLURM_JOB_ID is not set): "
                      "run the survey from an sbatch script or under salloc");
  if (ps_pool_find_node(p, step_ops.name))
    return ps_err_set(err, PS_EVALUE, "the Slurm backend is set once per run");
  char address[128], token[PS_AUTH_TOKEN_HEX + 1];
  if (o->listen)
    snprintf(address, sizeof address, "%s", o->listen);
  else if (node_address(address, sizeof address) != 0 &&
           ps_gate_own_address(address, sizeof address, err) != 0)
    return err->code;
  /* Agents on other nodes cannot reach a loopback address. */
  const char *nn = getenv("SLURM_JOB_NUM_NODES");
  if (!o->listen && ps_gate_is_loopback(address) && nn && atoi(nn) > 1)
    return ps_err_set(err, PS_EVALUE,
                      "backend 'slurm': this node's address for the agents is %s, a loopback "
                      "address the other %d nodes cannot reach: give slurm.listen",
                      address, atoi(nn) - 1);
  if (ps_auth_new_token(token) != 0)
    return ps_err_set(err, PS_EWORKER, "no randomness for the run's token");
  ps_gate_t *gate;
  ps_gate_opts_t go = {address, o->port, token, o->heartbeat, "slurm", "Slurm node", NULL, NULL};
  int rc = ps_gate_open(p, &go, &gate, err);
  if (rc != 0) return rc;
  ps_pool_note(p, "slurm job %s: agents connect to %s port %d", job, address, ps_gate_port(gate));
  ps_node_t *n = calloc(1, sizeof *n);
  step_t *s = calloc(1, sizeof *s);
  if (n == NULL || s == NULL || ps_pool_add_node(p, n) != 0) {
    free(n);
    free(s);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  n->ops = &step_ops;
  n->impl = s;
  n->state = PS_NODE_CONNECTING;
  s->node = n;
  s->gate = gate;
  snprintf(s->job, sizeof s->job, "%s", job);
  snprintf(n->name, sizeof n->name, "job %s", job);
  /* srun: one agent per node, each with the CPUs of its node's share of
     the job; the step may share them with the batch script's. */
  char connect[200], nodes[32], cpus[32];
  snprintf(connect, sizeof connect, strchr(address, ':') ? "[%s]:%d" : "%s:%d", address,
           ps_gate_port(gate));
  const char *cn = getenv("SLURM_CPUS_ON_NODE");
  snprintf(nodes, sizeof nodes, "--nodes=%s", nn && nn[0] ? nn : "1");
  snprintf(cpus, sizeof cpus, "--cpus-per-task=%s", cn && cn[0] ? cn : "1");
  char *argv[] = {(char *)(o->srun ? o->srun : "srun"),
                  nodes,
                  "--ntasks-per-node=1",
                  cpus,
                  "--overlap",
                  "--kill-on-bad-exit=0",
                  "--export=ALL",
                  p->exe,
                  "agent",
                  "--connect",
                  connect,
                  NULL};
  int to_fd, from_fd, err_fd;
  /* The token goes to srun in the environment (never on a command line),
     and srun passes it on to the agents, which take it out of theirs. */
  setenv("PSURVEY_AGENT_TOKEN", token, 1);
  rc =
      ps_spawn(&p->reaper, argv[0], argv, on_exit_cb, s, &s->child, &to_fd, &from_fd, &err_fd, err);
  unsetenv("PSURVEY_AGENT_TOKEN");
  if (rc != 0) {
    char why[300];
    ps_textf(why, sizeof why, "cannot start '%s': %s", argv[0], err->msg);
    return ps_err_set(err, PS_EVALUE, "backend 'slurm': %s", why);
  }
  close(to_fd);
  uv_pipe_init(p->loop, &s->out, 0);
  uv_pipe_init(p->loop, &s->err, 0);
  ps_census_add(PS_CENSUS_HANDLES, 2);
  s->open_pipes = 2;
  s->out.data = s->err.data = s;
  uv_pipe_open(&s->out, from_fd);
  uv_pipe_open(&s->err, err_fd);
  uv_read_start((uv_stream_t *)&s->out, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&s->err, on_alloc, on_read);
  return 0;
}
