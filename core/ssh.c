/* ssh.c: ssh hosts as nodes of the pool (ssh.h). */
#include "ssh.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "census.h"
#include "relay.h"

/* How often hosts are looked after: pings, silence, reconnects (ms). */
#define TICK_MS 250
/* Longest wait between two connection attempts to a lost host (us). */
#define MAX_BACKOFF_US 30000000
/* How long an ssh killed by psurvey has to end before it is dropped (us). */
#define KILL_GRACE_US 1000000
/* The first wait before a lost host is tried again (us); it doubles. */
#define FIRST_BACKOFF_US 1000000
/* Seconds of silence before a host is lost, unless ssh.heartbeat says. */
#define DEFAULT_HEARTBEAT_S 30

/* What the hosts of one ssh backend share: their options and the timer
   that looks after them. */
typedef struct hosts_s {
  ps_pool_t *pool;
  uv_timer_t timer;
  ps_ssh_opts_t o;
  int closing;
} hosts_t;

typedef struct conn_s conn_t;

/* A host: its node's impl. */
typedef struct host_s {
  ps_relay_t relay;
  hosts_t *hosts;
  char **argv;      /* the ssh command; owned */
  conn_t *conn;     /* the current ssh process, or NULL */
  int64_t retry_at; /* when to connect again (monotonic us) */
  int64_t since;
} host_t;

static host_t *host_of(const ps_node_t *n) { return n->impl; }

/* One ssh process. It outlives its node's interest in it: a lost host gets
   a new connection while the old one's handles close. */
struct conn_s {
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
};

static void conn_end(conn_t *c);

static int64_t backoff_us(int failures) {
  int64_t d = FIRST_BACKOFF_US;
  for (int k = 1; k < failures && d < MAX_BACKOFF_US; k++) d *= 2;
  return d < MAX_BACKOFF_US ? d : MAX_BACKOFF_US;
}

static void conn_closed(uv_handle_t *h) {
  ps_census_add(PS_CENSUS_HANDLES, -1);
  free(h->data);
}

static void conn_close(conn_t *c) {
  if (c->child) ps_child_forget(c->child);
  c->child = NULL;
  ps_link_close(c->link);
  if (!uv_is_closing((uv_handle_t *)&c->err)) uv_close((uv_handle_t *)&c->err, conn_closed);
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
  } else if (n->state != PS_NODE_UP &&
             (c->exit_status == 127 || strstr(line, "not found") || strstr(line, "No such file"))) {
    snprintf(out, size,
             "psurvey is not installed there (%s): install it, or give psurvey=/path/to/psurvey in "
             "its hosts "
             "entry",
             line[0] ? line : "command not found");
  } else if (c->exit_status == 255) {
    snprintf(out, size, "ssh failed%s%s", line[0] ? ": " : " (exit status 255)", line);
  } else if (c->term_signal) {
    snprintf(out, size, "ssh was killed by signal %d%s%s", c->term_signal, line[0] ? ": " : "",
             line);
  } else {
    snprintf(out, size, "the connection ended (ssh exit status %lld)%s%s",
             (long long)c->exit_status, line[0] ? ": " : "", line);
  }
}

/* The host is gone: its workers are dead (not by their fault), and it is
   tried again later. */
static void node_lost(ps_node_t *n, const char *why) {
  host_t *h = host_of(n);
  if (h->conn) h->conn->node = NULL;
  h->conn = NULL;
  h->relay.link = NULL;
  ps_pool_node_lost(n, why);
  h->retry_at = ps_mono_us() + backoff_us(n->failures);
}

/* Ends the host's connection: ssh is killed with its process group (a
   wrapper's children with it). Its end is awaited as usual, but for
   KILL_GRACE_US only (on_tick). */
static void kill_conn(ps_node_t *n, const char *why) {
  conn_t *c = host_of(n)->conn;
  if (!n->why[0]) ps_textf(n->why, sizeof n->why, "%s", why);
  if (c == NULL || c->killed_at) return;
  c->killed_at = ps_mono_us();
  if (c->child) {
    kill(-c->child->pid, SIGKILL);
    kill(c->child->pid, SIGKILL);
  }
}

static void keep_tail(conn_t *c, const char *p, size_t n);

static void on_conn_frame(ps_link_t *l, int kind, const char *payload, size_t len) {
  conn_t *c = l->data;
  char why[400];
  if (c->node && ps_relay_frame(&host_of(c->node)->relay, kind, payload, len, why, sizeof why) != 0)
    kill_conn(c->node, why);
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
  host_t *h = host_of(n);
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return;
  n->state = PS_NODE_CONNECTING;
  h->since = h->relay.last_heard = h->relay.last_ping = ps_mono_us();
  n->why[0] = '\0';
  /* In a session of its own (child.h): Ctrl-C reaches the driver, which
     ends it. */
  int to_fd, from_fd, err_fd;
  ps_err_t err;
  if (ps_spawn(&p->reaper, h->argv[0], h->argv, on_exit_cb, c, &c->child, &to_fd, &from_fd, &err_fd,
               &err) != 0) {
    free(c);
    char why[300];
    ps_textf(why, sizeof why, "cannot start '%s': %s", h->argv[0], err.msg);
    node_lost(n, why);
    return;
  }
  uv_pipe_init(p->loop, &c->err, 0);
  ps_census_add(PS_CENSUS_HANDLES, 1);
  c->err.data = c;
  uv_pipe_open(&c->err, err_fd);
  c->node = n;
  h->conn = c;
  uv_read_start((uv_stream_t *)&c->err, on_err_alloc, on_err);
  if (ps_link_open(p->loop, from_fd, to_fd, PS_AGENT_MAGIC, PS_AGENT_MAGIC_LEN, &conn_link, c,
                   &c->link, &err) != 0) {
    /* Without its pipes ssh is of no use: it is ended, and so is the host. */
    kill_conn(n, err.msg);
    c->eof_out = 1;
  }
  h->relay.link = c->link;
}

/* Looks after the hosts: silence (the heartbeat), pings, an ssh that was
   killed and does not end, reconnects. */
static void on_tick(uv_timer_t *t) {
  hosts_t *hs = t->data;
  ps_pool_t *p = hs->pool;
  int64_t now = ps_mono_us();
  int64_t silence = (int64_t)(hs->o.heartbeat * 1e6);
  for (int k = 0; k < p->nnodes; k++) {
    ps_node_t *n = p->nodes[k];
    if (n->impl == NULL || host_of(n)->hosts != hs) continue;
    host_t *h = host_of(n);
    conn_t *c = h->conn;
    char why[120];
    if (c && c->killed_at && now - c->killed_at > KILL_GRACE_US) {
      conn_drop(c);
    } else if (c && ps_relay_watch(&h->relay, now, silence, why, sizeof why)) {
      if (c->exited)
        conn_drop(c); /* describe_end says how ssh ended */
      else
        kill_conn(n, why);
    } else if (c == NULL && hs->o.reconnect && now >= h->retry_at && !hs->closing) {
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

static char **ssh_argv(const ps_ssh_spec_t *s, const ps_ssh_opts_t *o) {
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

/* The backend's functions. */

static int ssh_spawn(ps_node_t *n, ps_worker_t *w, ps_err_t *err) {
  if (ps_relay_spawn(&host_of(n)->relay, w) != 0)
    return ps_err_set(err, PS_EWORKER, "cannot ask ssh host %s for a worker", n->name);
  return 0;
}

static int ssh_send(ps_worker_t *w, ps_buf_t *b) {
  if (w->node->state != PS_NODE_UP) {
    ps_buf_free(b);
    return PS_EWORKER;
  }
  return ps_relay_send(&host_of(w->node)->relay, w, b);
}

static void ssh_kill(ps_worker_t *w, int sig) {
  if (w->node->state == PS_NODE_UP) ps_relay_kill(&host_of(w->node)->relay, w, sig);
}

/* BYE, then the end of input: the agent stops its workers and exits. No
   reconnecting from now on. */
static void ssh_bye(ps_node_t *n) {
  host_t *h = host_of(n);
  h->hosts->closing = 1;
  if (h->conn && n->state == PS_NODE_UP) ps_relay_bye(&h->relay);
  if (h->conn) ps_link_shutdown(h->conn->link);
}

static int ssh_open(const ps_node_t *n) { return host_of(n)->conn != NULL; }

static void ssh_end(ps_node_t *n, int drop) {
  host_t *h = host_of(n);
  if (h->conn == NULL) return;
  kill_conn(n, h->hosts->closing ? "it did not end when asked to (closing)"
                                 : "it did not answer when its workers were killed");
  if (drop && h->conn) conn_drop(h->conn);
}

/* Down, and not expected back: it failed twice in a row, or once when
   reconnect is off. */
static int ssh_gone(const ps_node_t *n) {
  return n->failures >= 2 ||
         (!host_of(n)->hosts->o.reconnect && n->state == PS_NODE_DOWN && n->failures >= 1);
}

static void ssh_free(ps_node_t *n) {
  host_t *h = host_of(n);
  if (h == NULL) return;
  for (char **a = h->argv; a && *a; a++) free(*a);
  free(h->argv);
  free(h);
  n->impl = NULL;
}

static const ps_backend_ops_t ssh_ops = {
    .name = "ssh",
    .noun = "ssh host",
    .spawn = ssh_spawn,
    .send = ssh_send,
    .kill = ssh_kill,
    .bye = ssh_bye,
    .open = ssh_open,
    .end = ssh_end,
    .gone = ssh_gone,
    .free = ssh_free,
};

static void on_timer_closed(uv_handle_t *h) {
  ps_census_add(PS_CENSUS_HANDLES, -1);
  free(h->data);
}

/* At the pool's close: the timer stops; the hosts' connections are the
   drain's. */
static void close_hosts(ps_pool_t *p, void *data) {
  hosts_t *hs = data;
  (void)p;
  hs->closing = 1;
  uv_timer_stop(&hs->timer);
  uv_close((uv_handle_t *)&hs->timer, on_timer_closed);
}

int ps_ssh_setup(ps_pool_t *p, const ps_ssh_spec_t *specs, int count, const ps_ssh_opts_t *o,
                 ps_err_t *err) {
  if (ps_pool_find_node(p, ssh_ops.name))
    return ps_err_set(err, PS_EVALUE, "the ssh hosts are set once per run");
  hosts_t *hs = calloc(1, sizeof *hs);
  if (hs == NULL || ps_pool_on_close(p, close_hosts, hs) != 0) {
    free(hs);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  hs->pool = p;
  hs->o = *o;
  /* The caller's strings are only used here, to build each argv. */
  hs->o.ssh = NULL;
  hs->o.ssh_args = NULL;
  hs->o.nssh_args = 0;
  if (hs->o.heartbeat <= 0) hs->o.heartbeat = DEFAULT_HEARTBEAT_S;
  uv_timer_init(p->loop, &hs->timer);
  ps_census_add(PS_CENSUS_HANDLES, 1);
  hs->timer.data = hs;
  int first = p->nnodes;
  for (int k = 0; k < count; k++) {
    ps_node_t *n = calloc(1, sizeof *n);
    host_t *h = calloc(1, sizeof *h);
    if (n == NULL || h == NULL || (h->argv = ssh_argv(&specs[k], o)) == NULL ||
        ps_pool_add_node(p, n) != 0) {
      if (h) free(h->argv);
      free(h);
      free(n);
      return ps_err_set(err, PS_ENOMEM, "out of memory");
    }
    n->ops = &ssh_ops;
    n->impl = h;
    h->hosts = hs;
    h->relay.node = n;
    h->relay.given_slots = specs[k].slots;
    n->slots = specs[k].slots;
    int rc = specs[k].gpus ? ps_node_set_gpus(n, specs[k].gpus, err) : 0;
    if (rc != 0) return rc;
    if (specs[k].port > 0)
      snprintf(n->name, sizeof n->name, "%s:%d", specs[k].target, specs[k].port);
    else
      snprintf(n->name, sizeof n->name, "%s", specs[k].target);
  }
  uv_timer_start(&hs->timer, on_tick, TICK_MS, TICK_MS);
  for (int k = first; k < p->nnodes; k++) node_connect(p->nodes[k]);
  return 0;
}
