/*
 * pool.h: the nodes of a driver and the workers on them, whatever the
 * nodes are (node.h: this machine, ssh hosts...). The pool starts, feeds
 * and buries workers through their node's backend; what they run is the
 * scheduler's business (run.c), told through the callbacks. Not here: how
 * a node is reached (local.c, ssh.c, relay.c).
 */
#ifndef PS_POOL_H
#define PS_POOL_H

#include <uv.h>

#include "buf.h"
#include "child.h"
#include "frame.h"
#include "link.h"
#include "node.h"
#include "ps.h"

typedef struct ps_pool_cb_s {
  /* A whole frame arrived from a worker. */
  void (*on_frame)(ps_worker_t *w, int kind, const char *payload, size_t len);
  /* The worker is gone: exited/signal/why say how. Deaths are queued and
     reported from the loop, never from inside a pool function or a walk
     over the workers. The worker is freed after this returns. */
  void (*on_dead)(ps_worker_t *w);
  /* A node came up (up = 1) or was lost (up = 0: its workers were already
     buried, with w->lost set). */
  void (*on_node)(ps_node_t *n, int up);
  /* A backend's remark for the log (an agent refused...). May be NULL. */
  void (*on_note)(ps_pool_t *p, const char *text);
} ps_pool_cb_t;

struct ps_worker_s {
  ps_pool_t *pool;
  ps_node_t *node; /* where it runs */
  int64_t id;
  int pid;
  int64_t exit_status;
  int term_signal;
  char why[300]; /* a protocol error that made the pool kill it, or "" */
  int exited, eof;
  int closing; /* dead: on_dead comes (queued), then it is freed */
  int hello;   /* its HELLO arrived */
  int lost;    /* its node was lost: not its fault, nor its psets' */
  char host[256];
  char gpus[PS_GPUS_TEXT]; /* the GPU ids it is bound to, comma-separated, or "" */
  void *data;              /* the scheduler's per-worker state */
  ps_child_t *child;       /* a local worker's process until it is waited for */
  ps_link_t *link;         /* a local worker's socket pairs */
  ps_worker_t *next_dead;
};

struct ps_pool_s {
  uv_loop_t *loop;
  char *exe;          /* the psurvey program, for local workers */
  ps_reaper_t reaper; /* learns when the processes this driver starts exit */
  ps_pool_cb_t cb;
  void *owner;
  ps_worker_t **workers; /* alive or dying, in order of start */
  int n, cap;
  ps_worker_t *dead, **dead_tail; /* buried, on_dead not yet called */
  uv_idle_t reporter;             /* reports them */
  int64_t next_id;
  ps_node_t **nodes; /* in the order they were added */
  int nnodes, capnodes;
  /* What backends must do when the pool closes (a timer to stop). */
  struct {
    void (*close)(ps_pool_t *p, void *data);
    void *data;
  } closers[4];
  int nclosers;
};

int ps_pool_init(ps_pool_t *p, uv_loop_t *loop, const char *exe);
/* Adds a node (the pool frees it at its close, after ops->free). */
int ps_pool_add_node(ps_pool_t *p, ps_node_t *n);
/* The first node a backend of that name added, or NULL. */
ps_node_t *ps_pool_find_node(const ps_pool_t *p, const char *backend);
/* Asks for close(p, data) when the pool closes, before the nodes are freed. */
int ps_pool_on_close(ps_pool_t *p, void (*close)(ps_pool_t *p, void *data), void *data);
/* For backends: node n is up, or is lost (its workers are buried, not by
   their fault); the scheduler hears of it through on_node. */
void ps_pool_node_up(ps_node_t *n);
void ps_pool_node_lost(ps_node_t *n, const char *why);
/* A backend's remark for the log (on_note), formatted. */
void ps_pool_note(ps_pool_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The spawn, send and kill of a node that stands for others and runs no
   worker itself (a Slurm allocation, whose agents are nodes of their
   own): spawn refuses, send drops, kill does nothing. */
int ps_pool_no_spawn(ps_node_t *n, ps_worker_t *w, ps_err_t *err);
int ps_pool_no_send(ps_worker_t *w, ps_buf_t *b);
void ps_pool_no_kill(ps_worker_t *w, int sig);
/* Nodes up now, and slots on them. */
int ps_pool_nodes_up(const ps_pool_t *p, int *slots);
/* 1 when no node is up and none is expected back. */
int ps_pool_nodes_gone(const ps_pool_t *p);

/* Starts one worker on up node n, bound to the GPUs gpus names (ids
   joined with commas, "" for none: its CUDA_VISIBLE_DEVICES). */
int ps_pool_spawn(ps_pool_t *p, ps_node_t *n, const char *gpus, ps_worker_t **out, ps_err_t *err);
/* Sets n's GPUs from ids joined with commas: 0, or PS_EVALUE with err
   filled (too many, too long, an empty or repeated id). */
int ps_node_set_gpus(ps_node_t *n, const char *ids, ps_err_t *err);
/* The ids of n's GPUs in mask (bit k: its k-th), joined with commas, into
   out of size PS_GPUS_TEXT. */
void ps_node_gpu_ids(const ps_node_t *n, uint64_t mask, char *out);
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
   nodes' connections are ended too. */
enum { PS_DRAIN_KILL = 0, PS_DRAIN_BYE = 1, PS_DRAIN_HOSTS = 2 };
/* Every way of stopping workers goes through here, and ends within
   limit_ms whatever the workers and nodes do. It runs the loop until the
   workers (and with PS_DRAIN_HOSTS the node connections) are gone. After
   grace_ms, every worker left is killed with its process group, and the
   connection of every node that has not answered is ended (a silent host,
   a stopped agent, a wrapper that ignores signals). At limit_ms, what is
   left is given up: workers are reported dead, nodes lost, handles closed,
   and processes still running are left to the reaper. Returns how many
   workers and connections were given up. */
int ps_pool_drain(ps_pool_t *p, int how, int grace_ms, int limit_ms);
/* Drains every worker and node connection (ps_pool_drain: asked, killed
   after a second, given up after three) and frees the pool. */
void ps_pool_close(ps_pool_t *p);

/* For pool.c and the backends: adds w to the pool's list; marks w dead
   and queues it: the loop reports it (on_dead), removes it and frees it. */
int ps__pool_add(ps_pool_t *p, ps_worker_t *w);
void ps__worker_bury(ps_worker_t *w);

#endif
