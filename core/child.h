/*
 * child.h: starting worker processes without fork, and learning when
 * they end.
 *
 * libuv 1.44's uv_spawn forks, and fork copies the page tables of the
 * driver: 26 ms for a driver holding 650 MiB (1 ms for a small one), paid
 * again by every worker started later in the run (max_tasks_per_child, a
 * crash, a stage with more workers, an ssh reconnect). posix_spawn (glibc: clone with CLONE_VM and
 * CLONE_VFORK) costs the same whatever the driver holds. Such a child is
 * not a uv_process_t, so a reaper learns of its exit: one SIGCHLD watcher
 * per loop that waits for its own children by pid, leaving alone the
 * children others wait for (the user's os.execute). The ssh connections
 * of the ssh backend start the same way.
 */
#ifndef PS_CHILD_H
#define PS_CHILD_H

#include <stdint.h>
#include <uv.h>

#include "ps.h"

typedef struct ps_child_s ps_child_t;

/* A child ended: its exit status, or the signal that ended it (and 0). */
typedef void (*ps_child_cb)(ps_child_t *c, int64_t exit_status, int term_signal);

typedef struct ps_reaper_s {
  uv_signal_t sigchld;
  ps_child_t *children; /* started and not yet waited for */
  int started;
} ps_reaper_t;

struct ps_child_s {
  int pid;
  ps_child_cb on_exit; /* NULL: forgotten, waited for and freed silently */
  void *data;
  ps_child_t *next;
};

int ps_reaper_init(uv_loop_t *loop, ps_reaper_t *r);
/* Kills the children still running with their process groups, waits up
   to a second for them, and closes the watcher; the loop must run once
   more to finish closing. */
void ps_reaper_close(ps_reaper_t *r);

/* Starts `file` with argv in a session and process group of its own, its
   stdin and stdout on new socket pairs whose other ends are returned
   (close on exec, for uv_pipe_open), its stderr on a third one when
   from_stderr is not NULL, else this process's. When it ends, its
   process group is killed before it is reaped: nothing it started stays
   behind, unless it left the group. The child record is the reaper's:
   on_exit runs once from the loop, after which it is freed.
   On failure, err says why (the caller names the program). */
int ps_spawn(ps_reaper_t *r, const char *file, char *const argv[], ps_child_cb on_exit, void *data,
             ps_child_t **out, int *to_child, int *from_child, int *from_stderr, ps_err_t *err);
/* No callback for this child any more (its owner is gone); it is still
   waited for. */
void ps_child_forget(ps_child_t *c);

#endif
