/*
 * node.h: a node of the pool: somewhere workers run, with some slots.
 * This machine is one node (local.c); each ssh host is one (ssh.c, its
 * workers behind an agent that relays their frames, relay.c); nodes that
 * connect back to the driver (Slurm) will be more. The scheduler iterates
 * nodes without asking what they are: what differs is the table of
 * functions of the backend that made the node.
 */
#ifndef PS_NODE_H
#define PS_NODE_H

#include <stdint.h>

#include "buf.h"
#include "ps.h"

typedef struct ps_pool_s ps_pool_t;
typedef struct ps_worker_s ps_worker_t;
typedef struct ps_node_s ps_node_t;

/* LOSING: its connection is gone and its backend is finding out why
   (gate.h); it takes no work, and is DOWN once its backend knows. */
enum { PS_NODE_DOWN, PS_NODE_CONNECTING, PS_NODE_UP, PS_NODE_LOSING };

/* Why a node was lost, when its backend can tell: the attempts of the
   psets it had in flight record it (host_lost, preempted, walltime). */
enum { PS_LOSS_HOST, PS_LOSS_PREEMPTED, PS_LOSS_WALLTIME };

/* A node's GPUs: at most PS_GPUS_MAX, their ids (as CUDA_VISIBLE_DEVICES
   names them: an index or a UUID) PS_GPUS_TEXT bytes at most, joined with
   commas. A worker is bound to some of them for its life. */
#define PS_GPUS_MAX 64
#define PS_GPUS_MAX_TEXT "64"
#define PS_GPUS_TEXT 1024

/*
 * A backend: what its nodes do. A backend that reaches its nodes over
 * connections (ssh) reports their arrival and loss with ps_pool_node_up and
 * ps_pool_node_lost (pool.h); a worker's frames come in through the pool's
 * on_frame, its death through ps__worker_bury.
 */
typedef struct ps_backend_ops_s {
  const char *name; /* "process", "ssh" */
  const char *noun; /* for messages: "this machine", "ssh host" */
  /* The node's slots follow each map's ncores (this machine), instead of
     its own count (a host's). */
  int slots_per_map;
  /* Starts worker w (pool, id and node set) on up node n. */
  int (*spawn)(ps_node_t *n, ps_worker_t *w, ps_err_t *err);
  /* Sends one or more frames to w; takes b's memory. */
  int (*send)(ps_worker_t *w, ps_buf_t *b);
  /* Kills w and every process in its group. */
  void (*kill)(ps_worker_t *w, int sig);
  /* Closing, in the order ps_pool_drain calls them: no new connections and
     the end of input to the node's connection (BYE); whether a connection
     is still open; its end forced, and with drop given up on at once (the
     node is lost now). NULL for a node without a connection. */
  void (*bye)(ps_node_t *n);
  int (*open)(const ps_node_t *n);
  void (*end)(ps_node_t *n, int drop);
  /* Whether the node is down and not expected back. */
  int (*gone)(const ps_node_t *n);
  /* Frees the node's own state (the pool frees the node). */
  void (*free)(ps_node_t *n);
  /* For a node that stands for others to come (a Slurm allocation): how
     they stand, in a few words ("jobs 1 queued, 2 running; agents 2 up,
     1 lost"), for the progress lines. May be NULL. */
  void (*describe)(const ps_node_t *n, char *out, size_t size);
} ps_backend_ops_t;

struct ps_node_s {
  ps_pool_t *pool;
  const ps_backend_ops_t *ops;
  void *impl;     /* the backend's own state of the node */
  char name[300]; /* as the user named it: [user@]host[:port], or this machine's name */
  int state;      /* PS_NODE_* */
  int slots;      /* workers it takes at once */
  int cores;
  int64_t mem_mb;
  int ngpus;               /* GPUs its workers may be bound to */
  char gpus[PS_GPUS_TEXT]; /* their ids, comma-separated, as configured */
  char host[256];          /* the host's own name */
  char job[32];            /* the Slurm job its agent runs in, or "" */
  int64_t ends;            /* when that job's time runs out (Unix seconds), or 0 */
  int workers;             /* alive there */
  int failures;            /* connection attempts failed in a row */
  int ever_up;
  int64_t done;  /* psets finished there (the scheduler counts) */
  char why[400]; /* why it went down, or "" */
  int loss;      /* PS_LOSS_*: the cause, as its backend found it */
};

/* Whether n is lost for good: not up, and its backend does not expect it
   back (a node without `gone` always may come back). */
static inline int ps_node_gone(const ps_node_t *n) {
  return n->state != PS_NODE_UP && n->ops->gone != NULL && n->ops->gone(n);
}

#endif
