/* node.c: ssh hosts as nodes of the pool (node.h). */
#include "node.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"
#include "value.h"

/* How often hosts are looked after: pings, silence, reconnects (ms). */
#define TICK_MS 250
/* Longest wait between two connection attempts to a lost host (us). */
#define MAX_BACKOFF_US 30000000
/* How long an ssh killed by psurvey has to end before it is dropped (us). */
#define KILL_GRACE_US 1000000

typedef struct ps_hosts_s {
  uv_timer_t timer;
  ps_node_opts_t o;
  int closing;
} hosts_t;

/* One ssh process. It outlives its node's interest in it: a lost host gets
   a new connection while the old one's handles close. */
typedef struct conn_s {
  ps_node_t *node;   /* NULL once the node has moved on */
  ps_child_t *child; /* the ssh process until it is waited for */
  ps_link_t *link;   /* ssh's stdin and stdout: frames after the agent's magic */
  uv_pipe_t err;     /* ssh's stderr; the conn is freed when it is closed */
  int exited, eof_out;
  int64_t killed_at; /* when psurvey killed it (monotonic us), or 0 */
  int64_t exit_status;
  int term_signal;
  char tail[600]; /* the end of what ssh and the agent wrote to stderr */
  size_t taillen;
} conn_t;

static void conn_end(conn_t *c);

static int64_t backoff_us(int failures) {
  int64_t d = 1000000;
  for (int k = 1; k < failures && d < MAX_BACKOFF_US; k++) d *= 2;
  return d < MAX_BACKOFF_US ? d : MAX_BACKOFF_US;
}

static void conn_closed(uv_handle_t *h) { free(h->data); }

static void conn_close(conn_t *c) {
  if (c->child) ps_child_forget(c->child);
  c->child = NULL;
  ps_link_close(c->link);
  if (!uv_is_closing((uv_handle_t *)&c->err)) uv_close((uv_handle_t *)&c->err, conn_closed);
}

static int send_raw(ps_node_t *n, ps_buf_t *b) {
  if (n->conn == NULL || n->conn->exited) {
    ps_buf_free(b);
    return PS_EWORKER;
  }
  return ps_link_send(n->conn->link, b);
}

/* Sends what b holds, unless building it ran out of memory. */
static int send_built(ps_node_t *n, ps_buf_t *b) {
  if (!b->failed) return send_raw(n, b);
  ps_buf_free(b);
  return PS_ENOMEM;
}

/* The last line of what the connection wrote to stderr. */
static void last_line(const conn_t *c, char *out, size_t n) {
  size_t end = c->taillen;
  while (end > 0 && (c->tail[end - 1] == '\n' || c->tail[end - 1] == '\r')) end--;
  size_t start = end;
  while (start > 0 && c->tail[start - 1] != '\n') start--;
  snprintf(out, n, "%.*s", (int)(end - start), c->tail + start);
}

/* Why a connection ended, in words a user can act on. */
static void describe_end(ps_node_t *n, conn_t *c, char *out, size_t size) {
  char line[300];
  last_line(c, line, sizeof line);
  if (n->why[0]) {
    snprintf(out, size, "%s", n->why);
  } else if (n->state != PS_NODE_UP && (c->exit_status == 127 || strstr(line, "not found") ||
                                        strstr(line, "No such file"))) {
    snprintf(out, size,
             "psurvey is not installed there (%s): install it, or give psurvey=/path/to/psurvey in its hosts "
             "entry",
             line[0] ? line : "command not found");
  } else if (c->exit_status == 255) {
    snprintf(out, size, "ssh failed%s%s", line[0] ? ": " : " (exit status 255)", line);
  } else if (c->term_signal) {
    snprintf(out, size, "ssh was killed by signal %d%s%s", c->term_signal, line[0] ? ": " : "", line);
  } else {
    snprintf(out, size, "the connection ended (ssh exit status %lld)%s%s", (long long)c->exit_status,
             line[0] ? ": " : "", line);
  }
}

/* The host is gone: its workers are dead (not by their fault), and it is
   tried again later. */
static void node_lost(ps_node_t *n, const char *why) {
  ps_pool_t *p = n->pool;
  int was_up = n->state == PS_NODE_UP;
  n->state = PS_NODE_DOWN;
  if (why != n->why) snprintf(n->why, sizeof n->why, "%.399s", why);
  if (n->conn) n->conn->node = NULL;
  n->conn = NULL;
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    if (w->node != n || w->closing) continue;
    w->lost = 1;
    w->exited = w->eof = 1;
    if (!w->why[0]) snprintf(w->why, sizeof w->why, "was lost with host %.200s", n->name);
    n->workers--;
    ps__worker_bury(w);
  }
  n->failures++;
  n->retry_at = ps_mono_us() + backoff_us(n->failures);
  (void)was_up;
  if (p->cb.on_node) p->cb.on_node(n, 0);
}

static ps_worker_t *find_worker(ps_node_t *n, uint64_t id) {
  ps_pool_t *p = n->pool;
  for (int k = 0; k < p->n; k++)
    if (p->workers[k]->node == n && (uint64_t)p->workers[k]->id == id) return p->workers[k];
  return NULL;
}

/* Ends the host's connection: ssh is killed with its process group (a
   wrapper's children with it). Its end is awaited as usual, but for
   KILL_GRACE_US only (on_tick). */
static void kill_conn(ps_node_t *n, const char *why) {
  conn_t *c = n->conn;
  if (!n->why[0]) snprintf(n->why, sizeof n->why, "%.399s", why);
  if (c == NULL || c->killed_at) return;
  c->killed_at = ps_mono_us();
  if (c->child) {
    kill(-c->child->pid, SIGKILL);
    kill(c->child->pid, SIGKILL);
  }
}

static void on_agent_hello(ps_node_t *n, const char *p, size_t len) {
  ps_msg_agent_t m;
  if (ps_msg_get_agent(p, len, &m) != 0) {
    kill_conn(n, "its agent sent a malformed hello");
    return;
  }
  if (m.protocol != PS_PROTOCOL) {
    char why[300];
    snprintf(why, sizeof why,
             "psurvey there is version %.*s (protocol %llu), this one is %s (protocol %d): install the same "
             "version on both",
             (int)(m.version.n < 40 ? m.version.n : 40), m.version.p, (unsigned long long)m.protocol,
             PSURVEY_VERSION, PS_PROTOCOL);
    kill_conn(n, why);
    return;
  }
  snprintf(n->host, sizeof n->host, "%.*s", (int)(m.host.n < 255 ? m.host.n : 255), m.host.p);
  n->cores = (int)m.cores;
  n->mem_mb = (int64_t)m.memory_mb;
  n->slots = n->given_slots > 0 ? n->given_slots : (m.cores > 1 ? (int)m.cores - 1 : 1);
  n->state = PS_NODE_UP;
  n->ever_up = 1;
  n->failures = 0;
  n->why[0] = '\0';
  if (n->pool->cb.on_node) n->pool->cb.on_node(n, 1);
}

static void on_node_frame(ps_node_t *n, int kind, const char *p, size_t len) {
  ps_msg_relay_t m;
  n->last_heard = ps_mono_us();
  switch (kind) {
    case PS_MSG_AGENT: on_agent_hello(n, p, len); return;
    case PS_MSG_PONG:
      if (ps_msg_get_empty(p, len) != 0) break;
      return;
    case PS_MSG_FROM: {
      if (ps_msg_get_relay(kind, p, len, &m) != 0) break;
      ps_worker_t *w = find_worker(n, m.worker);
      if (w == NULL || w->closing) return; /* killed meanwhile */
      if (m.kind == PS_MSG_HELLO) {
        ps_msg_hello_t h;
        if (ps_msg_get_hello(m.bytes.p, m.bytes.n, &h) == 0) w->pid = (int)h.pid;
        w->hello = 1;
      }
      n->pool->cb.on_frame(w, m.kind, m.bytes.p, m.bytes.n);
      return;
    }
    case PS_MSG_GONE: {
      if (ps_msg_get_relay(kind, p, len, &m) != 0) break;
      ps_worker_t *w = find_worker(n, m.worker);
      if (w == NULL || w->closing) return;
      w->exited = w->eof = 1;
      w->exit_status = (int64_t)m.arg1;
      w->term_signal = (int)m.arg2;
      if (m.bytes.n && !w->why[0])
        snprintf(w->why, sizeof w->why, "%.*s", (int)(m.bytes.n < 290 ? m.bytes.n : 290), m.bytes.p);
      n->workers--;
      ps__worker_bury(w);
      return;
    }
    default: break;
  }
  kill_conn(n, "its agent sent a malformed frame");
}

static void keep_tail(conn_t *c, const char *p, size_t n);

static void on_conn_frame(ps_link_t *l, int kind, const char *payload, size_t len) {
  conn_t *c = l->data;
  if (c->node) on_node_frame(c->node, kind, payload, len);
}

static void on_conn_end(ps_link_t *l, const char *why) {
  conn_t *c = l->data;
  if (why && c->node) {
    char msg[400];
    snprintf(msg, sizeof msg, "its agent sent %s", why);
    kill_conn(c->node, msg);
  }
  c->eof_out = 1;
  conn_end(c);
}

/* What comes before the agent's magic (a login script's chatter). */
static void on_conn_chatter(ps_link_t *l, const char *p, size_t n) { keep_tail(l->data, p, n); }

static const ps_link_cb_t conn_link = {on_conn_frame, on_conn_end, on_conn_chatter};

static void on_err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char chunk[4096]; /* copied out at once in on_err */
  (void)h;
  (void)hint;
  buf->base = chunk;
  buf->len = sizeof chunk;
}

/* What ssh, the agent and the workers there write to stderr: passed on to
   ours once the host is up (worker output belongs on the user's terminal),
   and its end kept for error messages. */
static void on_err(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (nread <= 0) {
    if (nread < 0) uv_read_stop(s);
    return;
  }
  keep_tail(c, buf->base, (size_t)nread);
}

static void keep_tail(conn_t *c, const char *p, size_t n) {
  if (n == 0) return;
  /* Before the host is up, what ssh says goes into the error message
     instead (a refused connection would be said twice). */
  if (c->node && c->node->state == PS_NODE_UP) {
    ssize_t w = write(2, p, n);
    (void)w;
  }
  if (n >= sizeof c->tail) {
    memcpy(c->tail, p + n - (sizeof c->tail - 1), sizeof c->tail - 1);
    c->taillen = sizeof c->tail - 1;
  } else {
    if (c->taillen + n >= sizeof c->tail) {
      size_t drop = c->taillen + n - (sizeof c->tail - 1);
      memmove(c->tail, c->tail + drop, c->taillen - drop);
      c->taillen -= drop;
    }
    memcpy(c->tail + c->taillen, p, n);
    c->taillen += n;
  }
}

static void on_exit_cb(ps_child_t *child, int64_t status, int sig) {
  conn_t *c = child->data;
  c->child = NULL;
  c->exited = 1;
  c->exit_status = status;
  c->term_signal = sig;
  conn_end(c);
}

/* Once ssh has exited and its output is read: the host is lost (if this is
   still its connection), and the handles close. */
static void conn_end(conn_t *c) {
  if (!c->exited || !c->eof_out) return;
  ps_node_t *n = c->node;
  if (n) {
    char why[500];
    describe_end(n, c, why, sizeof why);
    node_lost(n, why);
  }
  conn_close(c);
}

/* Gives up on a connection without waiting for its end: the host is lost
   now and the handles close; an ssh still running is left to the reaper.
   For an ssh that was killed and whose output stays open, or that exited
   while a process it started (a wrapper's child, in a session of its own)
   holds its output: nothing more will come from it. */
static void conn_drop(conn_t *c) {
  c->exited = c->eof_out = 1;
  conn_end(c);
}

static void node_connect(ps_node_t *n) {
  ps_pool_t *p = n->pool;
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return;
  n->state = PS_NODE_CONNECTING;
  n->since = n->last_heard = n->last_ping = ps_mono_us();
  n->why[0] = '\0';
  /* In a session of its own (child.h): Ctrl-C reaches the driver, which
     ends it. */
  int to_fd, from_fd, err_fd;
  ps_err_t err;
  if (ps_spawn(&p->reaper, n->argv[0], n->argv, on_exit_cb, c, &c->child, &to_fd, &from_fd, &err_fd, &err) !=
      0) {
    free(c);
    char why[300];
    snprintf(why, sizeof why, "cannot start '%.100s': %.150s", n->argv[0], err.msg);
    node_lost(n, why);
    return;
  }
  uv_pipe_init(p->loop, &c->err, 0);
  c->err.data = c;
  uv_pipe_open(&c->err, err_fd);
  c->node = n;
  n->conn = c;
  uv_read_start((uv_stream_t *)&c->err, on_err_alloc, on_err);
  if (ps_link_open(p->loop, from_fd, to_fd, PS_AGENT_MAGIC, PS_AGENT_MAGIC_LEN, &conn_link, c, &c->link,
                   &err) != 0) {
    /* Without its pipes ssh is of no use: it is ended, and so is the host. */
    kill_conn(n, err.msg);
    c->eof_out = 1;
  }
}

static void on_tick(uv_timer_t *t) {
  ps_pool_t *p = t->data;
  hosts_t *h = p->hosts;
  int64_t now = ps_mono_us();
  int64_t silence = (int64_t)(h->o.heartbeat * 1e6);
  int64_t ping_every = silence / 4 < 1000000 ? silence / 4 : 1000000;
  for (int k = 0; k < p->nnodes; k++) {
    ps_node_t *n = p->nodes[k];
    conn_t *c = n->conn;
    if (c && c->killed_at && now - c->killed_at > KILL_GRACE_US) {
      conn_drop(c);
    } else if (c && now - n->last_heard > silence) {
      char why[120];
      snprintf(why, sizeof why, "no word from it for %g s (heartbeat)", h->o.heartbeat);
      if (c->exited)
        conn_drop(c); /* describe_end says how ssh ended */
      else
        kill_conn(n, why);
    } else if (c && n->state == PS_NODE_UP && now - n->last_ping >= ping_every) {
      n->last_ping = now;
      ps_buf_t b;
      ps_buf_init(&b);
      ps_msg_put_empty(&b, PS_MSG_PING);
      send_built(n, &b);
    } else if (c == NULL && h->o.reconnect && now >= n->retry_at && !h->closing) {
      node_connect(n);
    }
  }
}

/* 'a b' -> "'a b'" for the remote shell. */
static char *shell_quote(const char *s) {
  size_t n = strlen(s);
  char *q = malloc(4 * n + 3), *o = q;
  if (q == NULL) return NULL;
  *o++ = '\'';
  for (const char *c = s; *c; c++) {
    if (*c == '\'') {
      memcpy(o, "'\\''", 4);
      o += 4;
    } else {
      *o++ = *c;
    }
  }
  *o++ = '\'';
  *o = '\0';
  return q;
}

static char **ssh_argv(const ps_node_spec_t *s, const ps_node_opts_t *o) {
  int n = 0, cap = o->nssh_args + 16;
  char **argv = calloc((size_t)cap, sizeof *argv);
  if (argv == NULL) return NULL;
  argv[n++] = strdup(o->ssh ? o->ssh : "ssh");
  /* The user's options first: ssh keeps the first value of each. */
  for (int k = 0; k < o->nssh_args; k++) argv[n++] = strdup(o->ssh_args[k]);
  const char *fixed[] = {"-T", "-e", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"};
  for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) argv[n++] = strdup(fixed[k]);
  if (s->port > 0) {
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    argv[n++] = strdup("-p");
    argv[n++] = strdup(port);
  }
  /* Whatever the host is called, ssh reads it as the destination. */
  argv[n++] = strdup("--");
  argv[n++] = strdup(s->target);
  char *prog = shell_quote(s->psurvey ? s->psurvey : "psurvey");
  char *cmd = prog ? malloc(strlen(prog) + 8) : NULL;
  if (cmd) sprintf(cmd, "%s agent", prog);
  free(prog);
  argv[n++] = cmd;
  for (int k = 0; k < n; k++)
    if (argv[k] == NULL) {
      for (int j = 0; j < n; j++) free(argv[j]);
      free(argv);
      return NULL;
    }
  return argv;
}

static void free_node(ps_node_t *n) {
  for (char **a = n->argv; a && *a; a++) free(*a);
  free(n->argv);
  free(n);
}

int ps_nodes_setup(ps_pool_t *p, const ps_node_spec_t *specs, int count, const ps_node_opts_t *o,
                   ps_err_t *err) {
  if (p->hosts) return ps_err_set(err, PS_EVALUE, "the ssh hosts are set once per run");
  hosts_t *h = calloc(1, sizeof *h);
  ps_node_t **nodes = calloc((size_t)(count ? count : 1), sizeof *nodes);
  if (h == NULL || nodes == NULL) {
    free(h);
    free(nodes);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  h->o = *o;
  /* The caller's strings are only used here, to build each argv. */
  h->o.ssh = NULL;
  h->o.ssh_args = NULL;
  h->o.nssh_args = 0;
  if (h->o.heartbeat <= 0) h->o.heartbeat = 30;
  for (int k = 0; k < count; k++) {
    ps_node_t *n = calloc(1, sizeof *n);
    if (n == NULL || (n->argv = ssh_argv(&specs[k], o)) == NULL) {
      free(n);
      for (int j = 0; j < k; j++) free_node(nodes[j]);
      free(nodes);
      free(h);
      return ps_err_set(err, PS_ENOMEM, "out of memory");
    }
    n->pool = p;
    n->given_slots = n->slots = specs[k].slots;
    if (specs[k].port > 0)
      snprintf(n->name, sizeof n->name, "%s:%d", specs[k].target, specs[k].port);
    else
      snprintf(n->name, sizeof n->name, "%s", specs[k].target);
    nodes[k] = n;
  }
  p->nodes = nodes;
  p->nnodes = count;
  p->hosts = h;
  uv_timer_init(p->loop, &h->timer);
  h->timer.data = p;
  uv_timer_start(&h->timer, on_tick, TICK_MS, TICK_MS);
  for (int k = 0; k < count; k++) node_connect(nodes[k]);
  return 0;
}

int ps_nodes_up(const ps_pool_t *p, int *slots) {
  int up = 0, s = 0;
  for (int k = 0; k < p->nnodes; k++)
    if (p->nodes[k]->state == PS_NODE_UP) {
      up++;
      s += p->nodes[k]->slots;
    }
  if (slots) *slots = s;
  return up;
}

int ps_nodes_gone(const ps_pool_t *p) {
  if (p->nnodes == 0) return 0;
  for (int k = 0; k < p->nnodes; k++) {
    const ps_node_t *n = p->nodes[k];
    /* Without reconnect, a host that is down stays down. */
    int given_up =
        n->failures >= 2 || (!p->hosts->o.reconnect && n->state == PS_NODE_DOWN && n->failures >= 1);
    if (n->state == PS_NODE_UP || !given_up) return 0;
  }
  return 1;
}

int ps_node_spawn(ps_node_t *n, ps_worker_t **out, ps_err_t *err) {
  if (n->state != PS_NODE_UP) return ps_err_set(err, PS_EWORKER, "host %s is not connected", n->name);
  ps_worker_t *w = calloc(1, sizeof *w);
  if (w == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  w->pool = n->pool;
  w->node = n;
  w->id = n->pool->next_id++;
  snprintf(w->host, sizeof w->host, "%s", n->host);
  if (ps__pool_add(n->pool, w) != 0) {
    free(w);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  n->workers++;
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_spawn(&b, (uint64_t)w->id);
  send_built(n, &b);
  *out = w;
  return 0;
}

int ps_node_send(ps_worker_t *w, ps_buf_t *b) {
  ps_node_t *n = w->node;
  if (w->closing || w->exited || n->state != PS_NODE_UP) {
    ps_buf_free(b);
    return PS_EWORKER;
  }
  /* TO: the worker's id, then its frame as it is. */
  ps_buf_t env;
  ps_buf_init(&env);
  ps_msg_put_to(&env, (uint64_t)w->id, b->data, b->len);
  ps_buf_free(b);
  return send_built(n, &env);
}

void ps_node_kill(ps_worker_t *w, int sig) {
  if (w->node->state != PS_NODE_UP) return;
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_kill(&b, (uint64_t)w->id, (uint64_t)sig);
  send_built(w->node, &b);
}

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

void ps__nodes_bye(ps_pool_t *p) {
  hosts_t *h = p->hosts;
  if (h == NULL) return;
  h->closing = 1;
  /* BYE, then the end of input: the agents stop their workers and exit. */
  for (int k = 0; k < p->nnodes; k++) {
    ps_node_t *n = p->nodes[k];
    if (n->conn && n->state == PS_NODE_UP) {
      ps_buf_t b;
      ps_buf_init(&b);
      ps_msg_put_empty(&b, PS_MSG_BYE);
      send_built(n, &b);
    }
    if (n->conn) ps_link_shutdown(n->conn->link);
  }
}

int ps__nodes_open(const ps_pool_t *p) {
  int open = 0;
  for (int k = 0; k < p->nnodes; k++) open += p->nodes[k]->conn != NULL;
  return open;
}

static int has_workers(const ps_node_t *n) {
  const ps_pool_t *p = n->pool;
  for (int k = 0; k < p->n; k++)
    if (p->workers[k]->node == n) return 1;
  return 0;
}

void ps__nodes_end(ps_pool_t *p, int all, int drop) {
  for (int k = 0; k < p->nnodes; k++) {
    ps_node_t *n = p->nodes[k];
    if (n->conn == NULL || !(all || has_workers(n))) continue;
    kill_conn(
        n, all ? "it did not end when asked to (closing)" : "it did not answer when its workers were killed");
    if (drop) conn_drop(n->conn);
  }
}

void ps_nodes_close(ps_pool_t *p) {
  hosts_t *h = p->hosts;
  if (h == NULL) return;
  /* After ps_pool_drain, nothing is left to end here. */
  ps__nodes_bye(p);
  ps__nodes_end(p, 1, 1);
  uv_timer_stop(&h->timer);
  h->timer.data = h;
  uv_close((uv_handle_t *)&h->timer, on_timer_closed);
  uv_run(p->loop, UV_RUN_NOWAIT);
  for (int k = 0; k < p->nnodes; k++) free_node(p->nodes[k]);
  free(p->nodes);
  p->nodes = NULL;
  p->nnodes = 0;
  p->hosts = NULL;
}
