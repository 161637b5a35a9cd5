/*
 * pool.h: the local process backend: `psurvey worker` processes on pipes,
 * driven by the libuv loop. The pool starts, feeds, reads and buries
 * workers; what they run is the scheduler's business (run.c), told through
 * the callbacks. A worker's memory is freed only when all of its handles
 * are closed, after on_dead has returned.
 */
#ifndef PS_POOL_H
#define PS_POOL_H

#include <uv.h>

#include "buf.h"
#include "frame.h"
#include "ps.h"

typedef struct ps_pool_s ps_pool_t;
typedef struct ps_worker_s ps_worker_t;

typedef struct ps_pool_cb_s {
  /* A whole frame arrived. */
  void (*on_frame)(ps_worker_t *w, int kind, const char *payload, size_t len);
  /* The process is gone and its output fully read: exited/signal/why say
     how. The worker is freed after this returns. */
  void (*on_dead)(ps_worker_t *w);
} ps_pool_cb_t;

struct ps_worker_s {
  ps_pool_t *pool;
  int64_t id;
  int pid;
  int64_t exit_status;
  int term_signal;
  char why[300]; /* a protocol error that made the pool kill it, or "" */
  int exited, eof, closing, open_handles;
  int hello; /* its HELLO arrived */
  char host[256];
  void *data; /* the scheduler's per-worker state */
  uv_process_t proc;
  uv_pipe_t to, from;
  ps_framer_t framer;
};

struct ps_pool_s {
  uv_loop_t *loop;
  char *exe;
  ps_pool_cb_t cb;
  void *owner;
  ps_worker_t **workers; /* alive or dying, in order of start */
  int n, cap;
  int64_t next_id;
};

int ps_pool_init(ps_pool_t *p, uv_loop_t *loop, const char *exe);
/* Starts one worker. */
int ps_pool_spawn(ps_pool_t *p, ps_worker_t **out, ps_err_t *err);
/* Sends the frame bytes; takes ownership of b's memory. */
int ps_worker_send(ps_worker_t *w, ps_buf_t *b);
/* Kills the worker and every process in its group (simulators it runs). */
void ps_worker_kill(ps_worker_t *w, int sig, const char *why);
/* Asks the worker to exit when it has read what was sent. */
void ps_worker_bye(ps_worker_t *w);
/* Workers not yet dead. */
int ps_pool_alive(const ps_pool_t *p);
/* Stops every worker and waits (up to a second, then SIGKILL) until all
   are gone, running the loop. */
void ps_pool_close(ps_pool_t *p);

#endif
