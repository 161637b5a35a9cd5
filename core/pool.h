/*
 * pool.h: the workers of a driver, wherever they run: `psurvey worker`
 * processes on socket pairs on this machine, or on ssh hosts, each reached through
 * one `ssh HOST psurvey agent` connection that relays their frames
 * (node.c). The pool starts, feeds, reads and buries workers; what they
 * run is the scheduler's business (run.c), told through the callbacks. A
 * worker's memory is freed after on_dead has returned (for a local one,
 * once all of its handles are closed).
 */
#ifndef PS_POOL_H
#define PS_POOL_H

#include <uv.h>

#include "buf.h"
#include "child.h"
#include "frame.h"
#include "link.h"
#include "ps.h"

typedef struct ps_pool_s ps_pool_t;
typedef struct ps_worker_s ps_worker_t;
typedef struct ps_node_s ps_node_t;

typedef struct ps_pool_cb_s {
  /* A whole frame arrived. */
  void (*on_frame)(ps_worker_t *w, int kind, const char *payload, size_t len);
  /* The process is gone and its output fully read: exited/signal/why say
     how. Deaths are queued and reported from the loop, never from inside
     a pool function or a walk over the workers. The worker is freed after
     this returns. */
  void (*on_dead)(ps_worker_t *w);
  /* A host connected (up = 1: its agent said hello) or was lost (up = 0:
     its workers were already reported dead, with w->lost set). */
  void (*on_node)(ps_node_t *n, int up);
} ps_pool_cb_t;

struct ps_worker_s {
  ps_pool_t *pool;
  int64_t id;
  int pid;
  int64_t exit_status;
  int term_signal;
  char why[300]; /* a protocol error that made the pool kill it, or "" */
  int exited, eof;
  int closing; /* dead: on_dead comes (queued), then it is freed */
  int hello; /* its HELLO arrived */
  int lost;  /* its host was lost: not its fault, nor its psets' */
  char host[256];
  ps_node_t *node; /* the ssh host it runs on, or NULL for this machine */
  void *data;      /* the scheduler's per-worker state */
  ps_child_t *child; /* a local worker's process until it is waited for */
  ps_link_t *link;   /* a local worker's socket pairs */
  ps_worker_t *next_dead;
};

struct ps_pool_s {
  uv_loop_t *loop;
  char *exe;
  ps_reaper_t reaper; /* learns when local workers exit */
  ps_pool_cb_t cb;
  void *owner;
  ps_worker_t **workers; /* alive or dying, in order of start */
  int n, cap;
  ps_worker_t *dead, **dead_tail; /* buried, on_dead not yet called */
  uv_idle_t reporter;             /* reports them */
  int64_t next_id;
  ps_node_t **nodes; /* ssh hosts (node.h), in the order listed */
  int nnodes;
  struct ps_hosts_s *hosts; /* node.c's state: options, the heartbeat timer */
};

int ps_pool_init(ps_pool_t *p, uv_loop_t *loop, const char *exe);
/* Starts one worker on this machine (node NULL) or on an ssh host that is
   up. */
int ps_pool_spawn(ps_pool_t *p, ps_node_t *node, ps_worker_t **out, ps_err_t *err);
/* Sends the frame bytes; takes ownership of b's memory. */
int ps_worker_send(ps_worker_t *w, ps_buf_t *b);
/* Kills the worker and every process in its group (simulators it runs). */
void ps_worker_kill(ps_worker_t *w, int sig, const char *why);
/* Asks the worker to exit when it has read what was sent. */
void ps_worker_bye(ps_worker_t *w);
/* Workers not yet dead. */
int ps_pool_alive(const ps_pool_t *p);
/* How ps_pool_drain begins: every worker is killed (0), or asked to exit
   when it has read what was sent (PS_DRAIN_BYE); with PS_DRAIN_HOSTS, the
   ssh host connections are ended too. */
enum { PS_DRAIN_KILL = 0, PS_DRAIN_BYE = 1, PS_DRAIN_HOSTS = 2 };
/* Every way of stopping workers goes through here, and ends within
   limit_ms whatever the workers and hosts do. It runs the loop until the
   workers (and with PS_DRAIN_HOSTS the host connections) are gone. After
   grace_ms, every worker left is killed with its process group, and so is
   the ssh of every host that has not answered (a silent host, a stopped
   agent, a wrapper that ignores signals). At limit_ms, what is left is
   given up: workers are reported dead, hosts lost, handles closed, and
   processes still running are left to the reaper. Returns how many
   workers and connections were given up. */
int ps_pool_drain(ps_pool_t *p, int how, int grace_ms, int limit_ms);
/* Drains every worker and host connection (ps_pool_drain: asked, killed
   after a second, given up after three) and frees the pool. */
void ps_pool_close(ps_pool_t *p);

/* For pool.c and node.c: adds w to the pool's list; marks w dead and
   queues it: the loop reports it (on_dead), removes it and frees it. */
int ps__pool_add(ps_pool_t *p, ps_worker_t *w);
void ps__worker_bury(ps_worker_t *w);

#endif
