/*
 * test_cpus.c: the CPUs a process may use (cpus.h): the cgroup v2 cpu.max
 * parser, the cgroup path of /proc/self/cgroup, and the quota of a cgroup
 * and those above it over a tree made in a temporary directory. Its cases
 * run as specs from spec/core/cpus_spec.lua (cases.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cases.h"
#include "cpus.h"

static void parses_no_limit(void) {
  CHECK(ps_cpus_parse_max("max 100000\n") == 0);
  CHECK(ps_cpus_parse_max("max 100000") == 0);
}

static void parses_whole_cpus(void) {
  CHECK(ps_cpus_parse_max("200000 100000\n") == 2);
  CHECK(ps_cpus_parse_max("100000 100000\n") == 1);
  CHECK(ps_cpus_parse_max("1600000 100000\n") == 16);
}

static void rounds_down_to_at_least_one(void) {
  CHECK(ps_cpus_parse_max("250000 100000\n") == 2);
  CHECK(ps_cpus_parse_max("150000 100000\n") == 1);
  CHECK(ps_cpus_parse_max("50000 100000\n") == 1);
  CHECK(ps_cpus_parse_max("1 1000000\n") == 1);
}

static void rejects_malformed_text(void) {
  CHECK(ps_cpus_parse_max("") == -1);
  CHECK(ps_cpus_parse_max("max") == -1);
  CHECK(ps_cpus_parse_max("200000") == -1);
  CHECK(ps_cpus_parse_max("200000 0") == -1);
  CHECK(ps_cpus_parse_max("200000 -5") == -1);
  CHECK(ps_cpus_parse_max("-200000 100000") == -1);
  CHECK(ps_cpus_parse_max("20x 100000") == -1);
  CHECK(ps_cpus_parse_max("200000 100000 7") == -1);
  CHECK(ps_cpus_parse_max("unlimited 100000") == -1);
}

static void finds_the_v2_cgroup_path(void) {
  char path[64];
  CHECK(ps_cpus_cgroup_path("0::/user.slice/job_42\n", path, sizeof path) == 0);
  CHECK(strcmp(path, "/user.slice/job_42") == 0);
  CHECK(ps_cpus_cgroup_path("12:cpu,cpuacct:/old\n0::/\n", path, sizeof path) == 0);
  CHECK(strcmp(path, "/") == 0);
  CHECK(ps_cpus_cgroup_path("12:cpu,cpuacct:/old\n3:memory:/old\n", path, sizeof path) == -1);
  CHECK(ps_cpus_cgroup_path("", path, sizeof path) == -1);
  CHECK(ps_cpus_cgroup_path("0::/a/very/long/path/that/does/not/fit/in/eight\n", path, 8) == -1);
}

static void put(const char *dir, const char *text) {
  char file[600];
  snprintf(file, sizeof file, "%s/cpu.max", dir);
  FILE *f = fopen(file, "w");
  CHECK(f != NULL);
  if (f == NULL) return;
  fputs(text, f);
  fclose(f);
}

/* A tree root/a/b/c with cpu.max files where each case puts them. */
static void make_tree(char *root, size_t n) {
  snprintf(root, n, "/tmp/psurvey-cpus-XXXXXX");
  CHECK(mkdtemp(root) != NULL);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/a", root);
  mkdir(dir, 0700);
  snprintf(dir, sizeof dir, "%s/a/b", root);
  mkdir(dir, 0700);
  snprintf(dir, sizeof dir, "%s/a/b/c", root);
  mkdir(dir, 0700);
}

static void remove_tree(const char *root) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  CHECK(system(cmd) == 0);
}

static void takes_the_fewest_quota_up_the_tree(void) {
  char root[256], dir[512];
  make_tree(root, sizeof root);
  CHECK(ps_cpus_quota(root, "/a/b/c") == 0); /* no cpu.max anywhere: no limit */
  snprintf(dir, sizeof dir, "%s/a/b/c", root);
  put(dir, "max 100000\n");
  CHECK(ps_cpus_quota(root, "/a/b/c") == 0);
  snprintf(dir, sizeof dir, "%s/a", root);
  put(dir, "300000 100000\n");
  CHECK(ps_cpus_quota(root, "/a/b/c") == 3); /* a parent's quota binds */
  snprintf(dir, sizeof dir, "%s/a/b", root);
  put(dir, "200000 100000\n");
  CHECK(ps_cpus_quota(root, "/a/b/c") == 2);
  CHECK(ps_cpus_quota(root, "/a/b/c/") == 2);
  CHECK(ps_cpus_quota(root, "/a") == 3); /* not a child's */
  put(root, "100000 100000\n");
  CHECK(ps_cpus_quota(root, "/a/b/c") == 1);
  CHECK(ps_cpus_quota(root, "/") == 1);
  remove_tree(root);
}

static void counts_at_least_one_usable_cpu(void) {
  int usable = ps_cpus_usable();
  CHECK(usable >= 1);
  CHECK(usable <= ps_cpus_online());
}

static const tc_case_t cases[] = {
    {"parses a cpu.max without a limit", parses_no_limit},
    {"parses a quota of whole CPUs", parses_whole_cpus},
    {"rounds a quota down, to at least one CPU", rounds_down_to_at_least_one},
    {"rejects a malformed cpu.max", rejects_malformed_text},
    {"finds the cgroup v2 path in /proc/self/cgroup", finds_the_v2_cgroup_path},
    {"takes the fewest CPUs of the quotas up the tree", takes_the_fewest_quota_up_the_tree},
    {"counts at least one usable CPU", counts_at_least_one_usable_cpu},
};

int main(int argc, char **argv) {
  return tc_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
