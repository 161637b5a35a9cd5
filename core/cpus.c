/* cpus.c: the CPUs this process may use (cpus.h). */
#include "cpus.h"

#include "ps.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ps_cpus_parse_max(const char *text) {
  char quota[32];
  long long period;
  char end;
  /* "max 100000\n" or "200000 100000\n": two words and nothing after. */
  int got = sscanf(text, "%31s %lld %c", quota, &period, &end);
  if (got != 2 || period <= 0) return -1;
  if (strcmp(quota, "max") == 0) return 0;
  char *rest;
  long long q = strtoll(quota, &rest, 10);
  if (*rest != '\0' || q <= 0) return -1;
  long long cpus = q / period;
  if (cpus < 1) return 1;
  return cpus > 1000000 ? 1000000 : (int)cpus;
}

int ps_cpus_cgroup_path(const char *text, char *out, size_t n) {
  /* Each line is "ID:CONTROLLERS:PATH"; cgroup v2's is "0::PATH". */
  for (const char *line = text; line && *line;
       line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    if (strncmp(line, "0::", 3) != 0) continue;
    const char *p = line + 3, *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (len == 0 || p[0] != '/' || len >= n) return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
  }
  return -1;
}

/* The text of a small file, into buf of size n: 0, or -1. */
static int slurp(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t got = fread(buf, 1, n - 1, f);
  fclose(f);
  buf[got] = '\0';
  return 0;
}

int ps_cpus_quota(const char *root, const char *path) {
  char dir[4096], file[4200], text[128];
  int fewest = 0;
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) return 0;
  /* From the process's cgroup up to the root: a parent's quota binds its
     children too. */
  for (;;) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') dir[--len] = '\0';
    snprintf(file, sizeof file, "%s%s/cpu.max", root, strcmp(dir, "/") == 0 ? "" : dir);
    if (slurp(file, text, sizeof text) == 0) {
      int cpus = ps_cpus_parse_max(text);
      if (cpus > 0 && (fewest == 0 || cpus < fewest)) fewest = cpus;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL || strcmp(dir, "/") == 0) break;
    if (slash == dir)
      dir[1] = '\0';
    else
      *slash = '\0';
  }
  return fewest;
}

int ps_cpus_online(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

int ps_cpus_usable(void) {
  int cpus = ps_cpus_online();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int mine = CPU_COUNT(&set);
    if (mine > 0 && mine < cpus) cpus = mine;
  }
  char text[4096], path[4096];
  if (slurp("/proc/self/cgroup", text, sizeof text) == 0 &&
      ps_cpus_cgroup_path(text, path, sizeof path) == 0) {
    int quota = ps_cpus_quota("/sys/fs/cgroup", path);
    if (quota > 0 && quota < cpus) cpus = quota;
  }
  return cpus > 0 ? cpus : 1;
}

const char *const ps_thread_vars[PS_THREAD_VARS] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                    "MKL_NUM_THREADS"};

int ps_threads_init(ps_threads_t *t) {
  memset(t, 0, sizeof *t);
  for (int k = 0; k < PS_THREAD_VARS; k++) {
    const char *v = getenv(ps_thread_vars[k]);
    if ((t->base[k] = strdup(v && *v ? v : "1")) == NULL) {
      ps_threads_free(t);
      return PS_ENOMEM;
    }
    setenv(ps_thread_vars[k], t->base[k], 1);
  }
  return 0;
}

void ps_threads_set(ps_threads_t *t, int n) {
  if (n < 0) n = 0;
  if (n == t->now) return;
  char text[16];
  snprintf(text, sizeof text, "%d", n);
  for (int k = 0; k < PS_THREAD_VARS; k++) setenv(ps_thread_vars[k], n ? text : t->base[k], 1);
  t->now = n;
}

void ps_threads_free(ps_threads_t *t) {
  for (int k = 0; k < PS_THREAD_VARS; k++) {
    free(t->base[k]);
    t->base[k] = NULL;
  }
}
