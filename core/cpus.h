/*
 * cpus.h: how many CPUs this process may use, as a cluster job or a
 * container sees them: the CPUs of its affinity mask (taskset, a Slurm
 * cpuset) and the cgroup v2 quota of its cgroup and those above it
 * (cpu.max), whichever is fewer, at least 1. Not here: what a map makes of
 * that count (the ncores option, lua/psurvey/init.lua).
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

#endif
