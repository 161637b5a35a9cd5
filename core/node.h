/*
 * node.h: ssh hosts as nodes of the pool. Each host is reached through one
 * `ssh -T -e none HOST psurvey agent` process; the agent (agent.c) starts
 * that host's workers and relays their frames (frame.h: SPAWN, TO, FROM,
 * GONE, KILL, PING, PONG). A host that falls silent for `heartbeat`
 * seconds, whose ssh exits or whose agent dies is lost: its workers are
 * reported dead with w->lost set, and it is connected again later, with
 * backoff, when reconnect is on. psurvey runs the system ssh client, so the
 * user's ssh configuration (keys, agent, ProxyJump) applies.
 */
#ifndef PS_NODE_H
#define PS_NODE_H

#include "pool.h"

typedef struct ps_node_spec_s {
  const char *target;  /* [user@]host, as ssh takes it */
  int port;            /* 0: ssh's own default */
  int slots;           /* 0: the host's cores minus one, at least 1 */
  const char *psurvey; /* the program on that host; NULL: "psurvey" */
} ps_node_spec_t;

typedef struct ps_node_opts_s {
  const char *ssh;             /* the ssh program; NULL: "ssh" */
  const char *const *ssh_args; /* extra arguments to ssh, before psurvey's own */
  int nssh_args;
  double heartbeat; /* seconds of silence before a host counts as lost */
  int reconnect;    /* connect lost hosts again */
} ps_node_opts_t;

enum { PS_NODE_DOWN, PS_NODE_CONNECTING, PS_NODE_UP };

struct ps_node_s {
  ps_pool_t *pool;
  char name[300]; /* as listed: [user@]host[:port] */
  int state;
  int slots;       /* for the scheduler: given, or from the agent's hello */
  int given_slots; /* 0: from the hello */
  int cores;
  int64_t mem_mb;
  char host[256]; /* the host's own name, from the agent */
  int workers;    /* alive there */
  int failures;   /* connection attempts failed in a row */
  int ever_up;
  int64_t done;     /* psets finished there (the scheduler counts) */
  char why[400];    /* why it went down, or "" */
  int64_t retry_at; /* when to connect again (monotonic us) */
  int64_t last_heard, last_ping, since;
  char **argv; /* the ssh command; owned */
  struct conn_s *conn; /* the current ssh process, or NULL */
};

/* Adds the hosts to the pool and starts connecting to all of them. */
int ps_nodes_setup(ps_pool_t *p, const ps_node_spec_t *specs, int n, const ps_node_opts_t *o, ps_err_t *err);
/* Hosts up now, and slots on them. */
int ps_nodes_up(const ps_pool_t *p, int *slots);
/* 1 when there are hosts, none is up and none is expected back: each has
   failed twice in a row, or once when reconnect is off. */
int ps_nodes_gone(const ps_pool_t *p);
/* Starts a worker on an up host. */
int ps_node_spawn(ps_node_t *n, ps_worker_t **out, ps_err_t *err);
int ps_node_send(ps_worker_t *w, ps_buf_t *b);
void ps_node_kill(ps_worker_t *w, int sig);
/* Frees the nodes, dropping any connection still open (ps_pool_close
   drains them first). */
void ps_nodes_close(ps_pool_t *p);

/* For ps_pool_drain, in its order. BYE and the end of input to every
   agent, and no reconnecting from now on. The connections not yet ended.
   Kills the ssh of every host (all) or of each that still has workers,
   and with drop, gives up on it at once: the host is lost now. */
void ps__nodes_bye(ps_pool_t *p);
int ps__nodes_open(const ps_pool_t *p);
void ps__nodes_end(ps_pool_t *p, int all, int drop);

#endif
