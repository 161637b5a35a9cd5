/* gate.c: agents that connect back, as nodes of the pool (gate.h). */
#include "gate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "census.h"
#include "relay.h"

/* How often agents are looked after: pings, silence, slow exchanges (ms). */
#define TICK_MS 250
/* Time a connection has for the token exchange and its hello (us). */
#define EXCHANGE_US 10000000
#define DEFAULT_HEARTBEAT_S 30

typedef struct agent_s agent_t;

struct ps_gate_s {
  ps_pool_t *pool;
  ps_backend_ops_t ops; /* the gate's functions, under the backend's name */
  char token[PS_AUTH_TOKEN_HEX + 64];
  int64_t heartbeat_us;
  int fd;
  uv_poll_t listening;
  uv_timer_t timer;
  int handles; /* open: freed when both are closed */
  int port, closing, connecting, lost;
  agent_t *pending; /* connections in the token exchange */
  void (*judge)(void *data, ps_node_t *n);
  void *judge_data;
};

/* A connection: first in the token exchange (pending), then a node's. */
struct agent_s {
  ps_gate_t *gate;
  agent_t *next;
  int fd;
  uv_poll_t poll; /* readable, during the exchange */
  int stage;      /* 0: reading the hello, 1: the answer */
  unsigned char in[PS_AUTH_HELLO_LEN];
  size_t got;
  unsigned char agent_nonce[PS_AUTH_NONCE], driver_nonce[PS_AUTH_NONCE];
  int64_t since;
  char peer[80];
  /* A node's: */
  ps_node_t *node;
  ps_relay_t relay;
  int bye; /* told to end */
};

/* One of the gate's handles (its own two, and each connection's in the
   exchange) is closed: the gate is freed with the last. */
static void release(ps_gate_t *g) {
  ps_census_add(PS_CENSUS_HANDLES, -1);
  if (--g->handles == 0) free(g);
}

static void gate_closed(uv_handle_t *h) { release(h->data); }

static void unlink_pending(agent_t *a) {
  for (agent_t **p = &a->gate->pending; *p; p = &(*p)->next)
    if (*p == a) {
      *p = a->next;
      return;
    }
}

static void pending_closed(uv_handle_t *h) {
  agent_t *a = h->data;
  ps_gate_t *g = a->gate;
  if (a->fd >= 0) close(a->fd);
  free(a);
  release(g);
}

/* Ends a connection in the exchange, saying why in the log. */
static void refuse(agent_t *a, const char *why) {
  ps_gate_t *g = a->gate;
  ps_pool_note(g->pool, "refused an agent from %s: %s", a->peer, why);
  unlink_pending(a);
  g->connecting--;
  uv_poll_stop(&a->poll);
  uv_close((uv_handle_t *)&a->poll, pending_closed);
}

/* The node's functions. */

static agent_t *agent_of(const ps_node_t *n) { return n->impl; }

/* The connection is gone; the node is lost now, or, when its loss may
   have a cause the backend can find out (judged = 1: not told to end, in
   a job), once the judge knows it. */
static void lose(ps_node_t *n, const char *why, int judged) {
  agent_t *a = agent_of(n);
  ps_gate_t *g = a->gate;
  if (a->relay.link == NULL) return;
  ps_link_close(a->relay.link);
  a->relay.link = NULL;
  g->lost++;
  if (judged && g->judge && !a->bye && !g->closing && n->job[0] && n->state == PS_NODE_UP) {
    n->state = PS_NODE_LOSING;
    snprintf(n->why, sizeof n->why, "%s", why);
    g->judge(g->judge_data, n);
    return;
  }
  ps_pool_node_lost(n, why);
}

static void node_lost(ps_node_t *n, const char *why) { lose(n, why, 0); }

static void on_frame(ps_link_t *l, int kind, const char *payload, size_t len) {
  agent_t *a = l->data;
  char why[400];
  if (ps_relay_frame(&a->relay, kind, payload, len, why, sizeof why) != 0) node_lost(a->node, why);
}

static void on_end(ps_link_t *l, const char *why) {
  agent_t *a = l->data;
  char text[400];
  if (a->bye && why == NULL) return node_lost(a->node, "it ended as asked (BYE)");
  /* A malformed frame is the agent's doing; a reset or EOF may be Slurm's. */
  int malformed = why && strncmp(why, "a malformed frame", 17) == 0;
  if (malformed)
    snprintf(text, sizeof text, "its agent sent %s", why);
  else
    snprintf(text, sizeof text, "its agent's connection ended%s%s", why ? ": " : "",
             why ? why : "");
  lose(a->node, text, !malformed);
}

static const ps_link_cb_t agent_link = {on_frame, on_end, NULL};

static int gate_spawn(ps_node_t *n, ps_worker_t *w, ps_err_t *err) {
  if (ps_relay_spawn(&agent_of(n)->relay, w) != 0)
    return ps_err_set(err, PS_EWORKER, "cannot ask %s %s for a worker", n->ops->noun, n->name);
  return 0;
}

static int gate_send(ps_worker_t *w, ps_buf_t *b) {
  if (w->node->state != PS_NODE_UP) {
    ps_buf_free(b);
    return PS_EWORKER;
  }
  return ps_relay_send(&agent_of(w->node)->relay, w, b);
}

static void gate_kill(ps_worker_t *w, int sig) {
  if (w->node->state == PS_NODE_UP) ps_relay_kill(&agent_of(w->node)->relay, w, sig);
}

static void gate_bye(ps_node_t *n) {
  agent_t *a = agent_of(n);
  a->bye = 1;
  if (a->relay.link && n->state == PS_NODE_UP) ps_relay_bye(&a->relay);
  if (a->relay.link) ps_link_shutdown(a->relay.link);
}

static int gate_open_conn(const ps_node_t *n) { return agent_of(n)->relay.link != NULL; }

static void gate_end(ps_node_t *n, int drop) {
  (void)drop;
  node_lost(n, "it did not end when asked to (closing)");
}

/* Lost for good: an agent does not come back. */
static int gate_gone(const ps_node_t *n) { return n->state == PS_NODE_DOWN; }

static void gate_free(ps_node_t *n) {
  free(n->impl);
  n->impl = NULL;
}

static const ps_backend_ops_t gate_ops = {
    .spawn = gate_spawn,
    .send = gate_send,
    .kill = gate_kill,
    .bye = gate_bye,
    .open = gate_open_conn,
    .end = gate_end,
    .gone = gate_gone,
    .free = gate_free,
};

/* The exchange is through: the connection becomes a node, in CONNECTING
   until the agent's hello. The poll handle is closed first: libuv wants
   one handle per descriptor. */
static void become_node(uv_handle_t *h) {
  agent_t *a = h->data;
  ps_gate_t *g = a->gate;
  ps_node_t *n = g->closing ? NULL : calloc(1, sizeof *n);
  ps_err_t err;
  if (n == NULL || ps_pool_add_node(g->pool, n) != 0) {
    free(n);
    close(a->fd);
    free(a);
    release(g);
    return;
  }
  release(g);
  n->ops = &g->ops;
  n->impl = a;
  n->state = PS_NODE_CONNECTING;
  snprintf(n->name, sizeof n->name, "%s", a->peer);
  a->node = n;
  a->relay.node = n;
  a->relay.last_heard = a->relay.last_ping = ps_mono_us();
  int fd = a->fd;
  a->fd = -1;
  if (ps_link_open(g->pool->loop, fd, fd, PS_AGENT_MAGIC, PS_AGENT_MAGIC_LEN, &agent_link, a,
                   &a->relay.link, &err) != 0) {
    a->relay.link = NULL;
    ps_pool_node_lost(n, err.msg);
  }
}

static void on_readable(uv_poll_t *p, int status, int events) {
  agent_t *a = p->data;
  ps_gate_t *g = a->gate;
  (void)events;
  if (status < 0) return refuse(a, uv_strerror(status));
  size_t need = a->stage == 0 ? PS_AUTH_HELLO_LEN : PS_AUTH_ANSWER_LEN;
  ssize_t k = read(a->fd, a->in + a->got, need - a->got); /* never past the exchange */
  if (k < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (k <= 0) return refuse(a, k == 0 ? "it hung up during the token exchange" : strerror(errno));
  a->got += (size_t)k;
  if (a->got < need) return;
  a->got = 0;
  if (a->stage == 0) {
    uint32_t protocol;
    if (ps_auth_read_hello(a->in, &protocol, a->agent_nonce) != 0)
      return refuse(a, "not a psurvey agent");
    if (protocol != PS_PROTOCOL) {
      char why[100];
      snprintf(why, sizeof why, "it speaks protocol %u, this driver %d", (unsigned)protocol,
               PS_PROTOCOL);
      return refuse(a, why);
    }
    unsigned char challenge[PS_AUTH_CHALLENGE_LEN];
    if (ps_auth_challenge(g->token, a->agent_nonce, challenge, a->driver_nonce) != 0)
      return refuse(a, "no randomness for a nonce");
    /* A fresh socket's buffer takes the whole challenge at once. */
    if (write(a->fd, challenge, sizeof challenge) != (ssize_t)sizeof challenge)
      return refuse(a, "cannot send the challenge");
    a->stage = 1;
    return;
  }
  if (!ps_auth_check_answer(g->token, a->driver_nonce, a->agent_nonce, a->in))
    return refuse(a, "a wrong token");
  unlink_pending(a);
  g->connecting--;
  uv_poll_stop(&a->poll);
  uv_close((uv_handle_t *)&a->poll, become_node);
}

static void on_connection(uv_poll_t *p, int status, int events) {
  ps_gate_t *g = p->data;
  (void)events;
  if (status < 0 || g->closing) return;
  for (;;) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int fd = accept4(g->fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return; /* EAGAIN: all taken */
    agent_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (addr.ss_family == AF_INET) {
      struct sockaddr_in *in = (struct sockaddr_in *)&addr;
      inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
      port = ntohs(in->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      struct sockaddr_in6 *in = (struct sockaddr_in6 *)&addr;
      inet_ntop(AF_INET6, &in->sin6_addr, ip, sizeof ip);
      port = ntohs(in->sin6_port);
    }
    snprintf(a->peer, sizeof a->peer, "%s:%d", ip, port);
    a->gate = g;
    a->fd = fd;
    a->since = ps_mono_us();
    a->next = g->pending;
    g->pending = a;
    g->connecting++;
    uv_poll_init(g->pool->loop, &a->poll, fd);
    ps_census_add(PS_CENSUS_HANDLES, 1);
    g->handles++;
    a->poll.data = a;
    uv_poll_start(&a->poll, UV_READABLE, on_readable);
  }
}

/* Slow exchanges, silent agents, pings. */
static void on_tick(uv_timer_t *t) {
  ps_gate_t *g = t->data;
  int64_t now = ps_mono_us();
  for (agent_t *a = g->pending, *next; a; a = next) {
    next = a->next;
    if (now - a->since > EXCHANGE_US) refuse(a, "no token exchange within 10 s");
  }
  ps_pool_t *p = g->pool;
  for (int k = 0; k < p->nnodes; k++) {
    ps_node_t *n = p->nodes[k];
    if (n->ops != &g->ops || agent_of(n)->relay.link == NULL) continue;
    agent_t *a = agent_of(n);
    char why[120];
    if (ps_relay_watch(&a->relay, now, g->heartbeat_us, why, sizeof why)) {
      lose(n, why, 1);
    } else if (n->state == PS_NODE_CONNECTING && now - a->since > EXCHANGE_US) {
      node_lost(n, "no hello from its agent within 10 s");
    }
  }
}

static void close_gate(ps_pool_t *p, void *data) {
  ps_gate_t *g = data;
  (void)p;
  g->closing = 1;
  while (g->pending) refuse(g->pending, "the survey is ending");
  uv_timer_stop(&g->timer);
  uv_poll_stop(&g->listening);
  close(g->fd);
  uv_close((uv_handle_t *)&g->timer, gate_closed);
  uv_close((uv_handle_t *)&g->listening, gate_closed);
}

int ps_gate_open(ps_pool_t *p, const ps_gate_opts_t *o, ps_gate_t **out, ps_err_t *err) {
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  socklen_t len;
  struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, o->address, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)o->port);
    len = sizeof *in4;
  } else if (inet_pton(AF_INET6, o->address, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)o->port);
    len = sizeof *in6;
  } else {
    return ps_err_set(err, PS_EVALUE, "'%s' is not an IP address to listen on", o->address);
  }
  if (strlen(o->token) < PS_AUTH_TOKEN_MIN || strlen(o->token) >= PS_AUTH_TOKEN_HEX + 64)
    return ps_err_set(err, PS_EVALUE, "a token of %d to %d characters is needed", PS_AUTH_TOKEN_MIN,
                      PS_AUTH_TOKEN_HEX + 63);
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return ps_err_set(err, PS_EVALUE, "cannot listen on %s port %d: %s", o->address, o->port,
                      strerror(e));
  }
  ps_gate_t *g = calloc(1, sizeof *g);
  if (g == NULL || ps_pool_on_close(p, close_gate, g) != 0) {
    free(g);
    close(fd);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  g->pool = p;
  g->fd = fd;
  g->ops = gate_ops;
  g->ops.name = o->name;
  g->ops.noun = o->noun;
  snprintf(g->token, sizeof g->token, "%s", o->token);
  g->heartbeat_us = (int64_t)((o->heartbeat > 0 ? o->heartbeat : DEFAULT_HEARTBEAT_S) * 1e6);
  g->judge = o->judge;
  g->judge_data = o->judge_data;
  g->port = ntohs(addr.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
  uv_poll_init(p->loop, &g->listening, fd);
  uv_timer_init(p->loop, &g->timer);
  ps_census_add(PS_CENSUS_HANDLES, 2);
  g->handles = 2;
  g->listening.data = g->timer.data = g;
  uv_poll_start(&g->listening, UV_READABLE, on_connection);
  uv_timer_start(&g->timer, on_tick, TICK_MS, TICK_MS);
  *out = g;
  return 0;
}

int ps_gate_port(const ps_gate_t *g) { return g->port; }

void ps_gate_counts(const ps_gate_t *g, int *connecting, int *up, int *lost) {
  int c = g->connecting, u = 0;
  for (int k = 0; k < g->pool->nnodes; k++) {
    const ps_node_t *n = g->pool->nodes[k];
    if (n->ops != &g->ops) continue;
    if (n->state == PS_NODE_UP) u++;
    if (n->state == PS_NODE_CONNECTING) c++;
  }
  *connecting = c;
  *up = u;
  *lost = g->lost;
}

/* How good an address is for agents on other hosts: IPv4 first, loopback
   last (a host name often resolves to 127.0.1.1 or ::1 as well). */
static int rank(const struct addrinfo *ai) {
  if (ai->ai_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127 ? 2 : 0;
  }
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ai->ai_addr;
  return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ? 3 : 1;
}

int ps_gate_address_of(const char *name, char *out, size_t size, ps_err_t *err) {
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(name, NULL, &hints, &ai) != 0 || ai == NULL)
    return ps_err_set(err, PS_EVALUE, "'%s' resolves to no address", name);
  const struct addrinfo *best = NULL;
  for (const struct addrinfo *p = ai; p; p = p->ai_next)
    if ((p->ai_family == AF_INET || p->ai_family == AF_INET6) &&
        (best == NULL || rank(p) < rank(best)))
      best = p;
  int rc = best ? getnameinfo(best->ai_addr, best->ai_addrlen, out, (socklen_t)size, NULL, 0,
                              NI_NUMERICHOST)
                : -1;
  freeaddrinfo(ai);
  return rc == 0 ? 0 : ps_err_set(err, PS_EVALUE, "cannot write the address of '%s'", name);
}

int ps_gate_is_loopback(const char *address) {
  return strncmp(address, "127.", 4) == 0 || strcmp(address, "::1") == 0;
}

int ps_gate_own_address(char *out, size_t size, ps_err_t *err) {
  char host[256];
  if (gethostname(host, sizeof host - 1) != 0) return ps_err_set(err, PS_EVALUE, "no host name");
  host[sizeof host - 1] = '\0';
  if (ps_gate_address_of(host, out, size, err) != 0)
    return ps_err_set(err, PS_EVALUE,
                      "this host's name '%s' resolves to no address for the agents: give "
                      "slurm.listen",
                      host);
  return 0;
}
