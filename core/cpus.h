/*
 * cpus.h: how many CPUs this process may use, as a cluster job or a
 * container sees them: the CPUs of its affinity mask (taskset, a Slurm
 * cpuset) and the cgroup v2 quota of its cgroup and those above it
 * (cpu.max), whichever is fewer, at least 1; and the variables that size
 * the thread pools of the numerical libraries a worker's simulators use.
 * Not here: what a map makes of that count (the ncores option,
 * lua/psurvey/init.lua).
 */
#ifndef PS_CPUS_H
#define PS_CPUS_H

#include <stddef.h>

/* The CPUs a cpu.max text allows: its quota over its period, rounded
   down, at least 1; 0 for no limit ("max 100000"); -1 for text that is
   not "QUOTA PERIOD" or "max PERIOD". */
int ps_cpus_parse_max(const char *text);
/* The cgroup v2 path in the text of /proc/self/cgroup (its "0::/path"
   line), into out of size n: 0, or -1 without a v2 line (or too long). */
int ps_cpus_cgroup_path(const char *text, char *out, size_t n);
/* The CPUs a quota under the cgroup v2 tree at root allows the cgroup at
   path or any above it: the fewest; 0 for no limit. */
int ps_cpus_quota(const char *root, const char *path);
/* The CPUs this process may run on: online CPUs, then its affinity mask,
   then its cgroup's quota (read from /proc/self/cgroup and
   /sys/fs/cgroup), at least 1. */
int ps_cpus_usable(void);
/* The CPUs online on this machine, at least 1. */
int ps_cpus_online(void);

/* OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS, as a worker
   sets them for each pset (children inherit them at exec): the pset's
   ncores when it sets one, else the user's own setting from the worker's
   environment at its start, else 1, so that simulators run side by side do
   not oversubscribe the CPUs. */
#define PS_THREAD_VARS 3
extern const char *const ps_thread_vars[PS_THREAD_VARS];
typedef struct ps_threads_s {
  char *base[PS_THREAD_VARS]; /* for a pset without ncores; owned */
  int now;                    /* the ncores they hold, or 0 for base */
} ps_threads_t;
/* Reads the user's settings and sets the variables to base. PS_ENOMEM. */
int ps_threads_init(ps_threads_t *t);
/* Sets them for a pset: its ncores (n > 0), or base (n == 0). */
void ps_threads_set(ps_threads_t *t, int n);
void ps_threads_free(ps_threads_t *t);

#endif
