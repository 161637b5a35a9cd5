/*
 * errand.h: a short program the driver runs in the background (sbatch,
 * squeue), its output kept, a callback when it has ended and all it wrote
 * is read. The driver never waits for one: a Slurm controller that is slow
 * to answer slows the errand, not the survey.
 */
#ifndef PS_ERRAND_H
#define PS_ERRAND_H

#include <uv.h>

#include "buf.h"
#include "child.h"

typedef struct ps_errand_s ps_errand_t;

/* It ended: exited (1, with code) or killed (0, with signal); out and err
   hold what it wrote. The errand is freed after this returns. */
typedef void (*ps_errand_cb)(ps_errand_t *e, int exited, int code, int signal, const ps_buf_t *out,
                             const ps_buf_t *err);

struct ps_errand_s {
  void *data; /* the owner's */
  /* The rest is the errand's own. */
  ps_errand_cb done;
  ps_child_t *child;
  uv_pipe_t out, err;
  ps_buf_t obuf, ebuf;
  int open, eofs, ended, exited, code, signal, reported;
};

/* Starts argv[0] (found on PATH) with argv; done is called from the loop. */
int ps_errand_start(uv_loop_t *loop, ps_reaper_t *r, char *const argv[], ps_errand_cb done,
                    void *data, ps_errand_t **out, ps_err_t *err);
/* No callback any more (its owner is closing): it is killed, and freed
   when its pipes close. */
void ps_errand_drop(ps_errand_t *e);

#endif
