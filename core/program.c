/* program.c: run a program to its end and keep its output (program.h). */
#include "program.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Bytes read from a pipe at a time. */
#define READ_CHUNK 65536

/* The environment of the program: the caller's, with p->env's variables
   replacing those of the same name, then the new ones. NULL when out of
   memory; the strings are the caller's and environ's, not copied. */
static char **environment(const char *const *add) {
  size_t n = 0, k = 0, extra = 0;
  while (environ[n]) n++;
  if (add)
    while (add[extra]) extra++;
  char **env = malloc(sizeof *env * (n + extra + 1));
  if (env == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    int replaced = 0;
    for (size_t j = 0; j < extra && !replaced; j++) {
      const char *eq = strchr(add[j], '=');
      size_t len = eq ? (size_t)(eq - add[j]) + 1 : strlen(add[j]);
      replaced = strncmp(environ[i], add[j], len) == 0;
    }
    if (!replaced) env[k++] = environ[i];
  }
  for (size_t j = 0; j < extra; j++) env[k++] = (char *)add[j];
  env[k] = NULL;
  return env;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Reads what is there from *fd into b; closes it at its end. 0, or
   PS_ENOMEM. */
static int drain(int *fd, ps_buf_t *b) {
  if (ps_buf_reserve(b, READ_CHUNK) != 0) return PS_ENOMEM;
  ssize_t got = read(*fd, b->data + b->len, READ_CHUNK);
  if (got > 0)
    b->len += (size_t)got;
  else if (got == 0 || (errno != EINTR && errno != EAGAIN))
    close_fd(fd);
  return 0;
}

int ps_program_run(const ps_program_t *p, ps_program_out_t *o, ps_err_t *err) {
  memset(o, 0, sizeof *o);
  ps_buf_init(&o->out);
  ps_buf_init(&o->err);
  int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};
  int rc = 0;
  char **env = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(er, O_CLOEXEC) != 0 ||
      (p->input && pipe2(in, O_CLOEXEC) != 0)) {
    rc = ps_err_set(err, PS_EWORKER, "cannot make pipes for '%s': %s", p->argv[0], strerror(errno));
    goto done;
  }
  env = environment(p->env);
  if (env == NULL) {
    rc = ps_err_set(err, PS_ENOMEM, "out of memory");
    goto done;
  }
  if (p->input)
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, er[1], 2);
  if (p->cwd) posix_spawn_file_actions_addchdir_np(&fa, p->cwd);
  /* The worker ignores SIGPIPE and blocks nothing a program expects. */
  sigset_t none, dflt;
  sigemptyset(&none);
  sigemptyset(&dflt);
  sigaddset(&dflt, SIGPIPE);
  sigaddset(&dflt, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &dflt);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int e = posix_spawnp(&pid, p->argv[0], &fa, &attr, (char *const *)p->argv, env);
  if (e != 0) {
    /* A directory it cannot enter fails the spawn too: say which. */
    if (p->cwd && access(p->cwd, X_OK) != 0)
      rc = ps_err_set(err, PS_EWORKER, "cannot run '%s' in '%s': %s", p->argv[0], p->cwd,
                      strerror(errno));
    else
      rc = ps_err_set(err, PS_EWORKER, "cannot run '%s': %s", p->argv[0], strerror(e));
    goto done;
  }
  close_fd(&in[0]);
  close_fd(&out[1]);
  close_fd(&er[1]);
  size_t sent = 0;
  if (in[1] >= 0) {
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    if (p->input_len == 0) close_fd(&in[1]);
  }
  while (out[0] >= 0 || er[0] >= 0 || in[1] >= 0) {
    struct pollfd fds[3];
    int n = 0, io = -1, oo = -1, eo = -1;
    if (in[1] >= 0) fds[io = n++] = (struct pollfd){in[1], POLLOUT, 0};
    if (out[0] >= 0) fds[oo = n++] = (struct pollfd){out[0], POLLIN, 0};
    if (er[0] >= 0) fds[eo = n++] = (struct pollfd){er[0], POLLIN, 0};
    if (poll(fds, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (io >= 0 && fds[io].revents) {
      ssize_t w = write(in[1], p->input + sent, p->input_len - sent);
      if (w > 0) sent += (size_t)w;
      /* Done, or the program closed its input (EPIPE): no more to give. */
      if (sent == p->input_len || (w < 0 && errno != EAGAIN && errno != EINTR)) close_fd(&in[1]);
    }
    if (oo >= 0 && fds[oo].revents && drain(&out[0], &o->out) != 0) rc = PS_ENOMEM;
    if (eo >= 0 && fds[eo].revents && drain(&er[0], &o->err) != 0) rc = PS_ENOMEM;
    if (rc) {
      /* Out of memory for what it writes: it ends, unread. */
      kill(pid, SIGKILL);
      close_fd(&out[0]);
      close_fd(&er[0]);
      close_fd(&in[1]);
    }
  }
  int status = 0;
  pid_t waited;
  while ((waited = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (waited < 0 && rc == 0)
    rc = ps_err_set(err, PS_EWORKER, "cannot wait for '%s': %s", p->argv[0], strerror(errno));
  o->exited = WIFEXITED(status);
  o->code = o->exited ? WEXITSTATUS(status) : 0;
  o->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (rc == PS_ENOMEM)
    ps_err_set(err, PS_ENOMEM, "out of memory reading the output of '%s'", p->argv[0]);
done:
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  free(env);
  close_fd(&in[0]);
  close_fd(&in[1]);
  close_fd(&out[0]);
  close_fd(&out[1]);
  close_fd(&er[0]);
  close_fd(&er[1]);
  if (rc) {
    ps_buf_free(&o->out);
    ps_buf_free(&o->err);
  }
  return rc;
}
