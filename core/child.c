/* child.c: worker processes started with posix_spawn, and their reaper
   (child.h). Built with _GNU_SOURCE (POSIX_SPAWN_SETSID). */
#include "child.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "census.h"

extern char **environ;

/* Whether child c has ended, without reaping it: its pid, and so its
   process group's id, stays taken until waitpid. */
static int ended(const ps_child_t *c, int *gone) {
  siginfo_t si;
  int rc;
  memset(&si, 0, sizeof si);
  do rc = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT);
  while (rc < 0 && errno == EINTR);
  /* ECHILD: someone else waited for it (a waitpid(-1) in user code). */
  *gone = rc < 0 && errno == ECHILD;
  return *gone || (rc == 0 && si.si_pid == c->pid);
}

/* Waits, without blocking, for each child of the list that has ended, and
   reports it. Before a child is reaped, while its pid still names its
   process group (each child leads one, ps_spawn), the group is killed:
   what a worker started in the background (`os.execute('sim &')`) or an
   ssh program left behind ends with it, whether it exited, retired or was
   killed. A callback may start or forget children: the list is walked
   again from its head after each one. */
static void reap(ps_reaper_t *r) {
  for (;;) {
    ps_child_t **link = &r->children, *c = NULL;
    int status = 0, gone = 0;
    for (; *link; link = &(*link)->next)
      if (ended(*link, &gone)) {
        c = *link;
        *link = c->next;
        break;
      }
    if (c == NULL) break;
    if (gone) {
      status = SIGKILL; /* its status is lost: it is reported as killed */
    } else {
      kill(-c->pid, SIGKILL);
      while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (r->children == NULL) uv_unref((uv_handle_t *)&r->sigchld);
    int64_t code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (c->on_exit) c->on_exit(c, code, sig);
    ps_census_add(PS_CENSUS_CHILDREN, -1);
    free(c);
  }
}

static void on_sigchld(uv_signal_t *h, int signum) {
  (void)signum;
  reap(h->data);
}

int ps_reaper_init(uv_loop_t *loop, ps_reaper_t *r) {
  memset(r, 0, sizeof *r);
  int rc = uv_signal_init(loop, &r->sigchld);
  if (rc != 0) return rc;
  ps_census_add(PS_CENSUS_HANDLES, 1);
  r->sigchld.data = r;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  (void)h;
  ps_census_add(PS_CENSUS_HANDLES, -1);
}

/* Closing, the children still running are waited for CLOSE_WAIT_US at
   most, looked at every CLOSE_POLL_US. */
#define CLOSE_WAIT_US 1000000
#define CLOSE_POLL_US 2000

/* Kills the children still running, each with its process group, and
   waits up to a second for them all: a process stuck in the kernel (an
   unkillable wait on a dead NFS server) is left to init rather than
   holding the driver. */
void ps_reaper_close(ps_reaper_t *r) {
  for (ps_child_t *c = r->children; c; c = c->next) {
    kill(-c->pid, SIGKILL);
    kill(c->pid, SIGKILL);
  }
  int64_t deadline = ps_mono_us() + CLOSE_WAIT_US;
  while (r->children) {
    for (ps_child_t **link = &r->children; *link;) {
      ps_child_t *c = *link;
      int status;
      pid_t got = waitpid(c->pid, &status, WNOHANG);
      if (got == c->pid || (got < 0 && errno != EINTR) || ps_mono_us() > deadline) {
        *link = c->next;
        ps_census_add(PS_CENSUS_CHILDREN, -1);
        free(c);
      } else {
        link = &c->next;
      }
    }
    if (r->children) usleep(CLOSE_POLL_US);
  }
  uv_close((uv_handle_t *)&r->sigchld, on_closed);
}

int ps_spawn(ps_reaper_t *r, const char *file, char *const argv[], ps_child_cb on_exit, void *data,
             ps_child_t **out, int *to_child, int *from_child, int *from_stderr, ps_err_t *err) {
  /* The watcher is on before the first child can end. */
  if (!r->started) {
    int rc = uv_signal_start(&r->sigchld, on_sigchld, SIGCHLD);
    if (rc != 0)
      return ps_err_set(err, PS_EWORKER, "cannot watch for SIGCHLD: %s", uv_strerror(rc));
    uv_unref((uv_handle_t *)&r->sigchld);
    r->started = 1;
  }
  ps_child_t *c = calloc(1, sizeof *c);
  if (c == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  /* Socket pairs, as uv_spawn makes: their buffers hold a few hundred KiB
     where a pipe holds 64, which halves the wakeups of a driver reading
     large results frames (workload 7 of bench/run: 0.90 s with pipes,
     0.68 s with sockets). in[1] and outp[0] stay here. */
  int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, outp) != 0 ||
      (from_stderr && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, errp) != 0)) {
    int e = errno;
    if (in[0] >= 0) close(in[0]), close(in[1]);
    if (outp[0] >= 0) close(outp[0]), close(outp[1]);
    free(c);
    return ps_err_set(err, PS_EWORKER, "no socket pair for its input and output: %s", strerror(e));
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  /* dup2 clears close-on-exec on the copies: of the socket pairs, only
     the child's 0, 1 (and 2) are inherited. */
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
  if (from_stderr) posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
  /* As uv_spawn: no blocked signals, default dispositions (the driver
     ignores SIGPIPE), and with POSIX_SPAWN_SETSID as UV_PROCESS_DETACHED,
     a session of its own: Ctrl-C in the terminal reaches the driver only,
     and a kill of the group reaches what the worker runs. */
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  pid_t pid;
  int rc = posix_spawnp(&pid, file, &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(outp[1]);
  if (from_stderr) close(errp[1]);
  if (rc != 0) {
    close(in[1]);
    close(outp[0]);
    if (from_stderr) close(errp[0]);
    free(c);
    return ps_err_set(err, PS_EWORKER, "%s", strerror(rc));
  }
  ps_census_add(PS_CENSUS_CHILDREN, 1);
  c->pid = pid;
  c->on_exit = on_exit;
  c->data = data;
  c->next = r->children;
  if (r->children == NULL) uv_ref((uv_handle_t *)&r->sigchld);
  r->children = c;
  *out = c;
  *to_child = in[1];
  *from_child = outp[0];
  if (from_stderr) *from_stderr = errp[0];
  return 0;
}

void ps_child_forget(ps_child_t *c) {
  c->on_exit = NULL;
  c->data = NULL;
}
