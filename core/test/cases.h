/*
 * cases.h: the shape every C test of core/test/ shares. A test is a table
 * of named cases; CHECK counts a failed check and names it on stderr; the
 * program's main is tc_main:
 *
 *   test_X --list   the cases, one per line
 *   test_X NAME     runs one case: exit 0, or 1 naming what failed
 *   test_X          runs them all
 *
 * spec/support/helpers.lua (H.c_test, H.c_case) runs each case as a spec.
 * Header-only: each test is one program of one file.
 */
#ifndef PS_TEST_CASES_H
#define PS_TEST_CASES_H

#include <stdio.h>
#include <string.h>

typedef struct tc_case_s {
  const char *name;
  void (*run)(void);
} tc_case_t;

static int tc_failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      tc_failures++;                                                           \
    }                                                                          \
  } while (0)

/* Runs the case named by argv[1], or every case; lists them with --list. */
static inline int tc_main(int argc, char **argv, const tc_case_t *cases, int n) {
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (int k = 0; k < n; k++) puts(cases[k].name);
    return 0;
  }
  int ran = 0;
  for (int k = 0; k < n; k++) {
    if (argc == 2 && strcmp(argv[1], cases[k].name) != 0) continue;
    int before = tc_failures;
    cases[k].run();
    printf("%s %s\n", tc_failures == before ? "ok" : "FAILED", cases[k].name);
    ran++;
  }
  if (ran == 0) {
    fprintf(stderr, "%s: no case named '%s' (--list lists them)\n", argv[0], argv[1]);
    return 2;
  }
  return tc_failures ? 1 : 0;
}

#endif
