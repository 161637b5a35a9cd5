/*
 * test_text.c: text in fixed fields (ps_text, ps_textf in ps.h): cut to
 * fit at a whole UTF-8 character, always ended.
 *
 *   test_text --list | NAME | (nothing: all)    as test_scheduler.c
 */
#include <stdio.h>
#include <string.h>

#include "ps.h"

static int failures;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static void copies_what_fits(void) {
  char f[8];
  CHECK(strcmp(ps_text(f, sizeof f, "abc", 3), "abc") == 0);
  CHECK(strcmp(ps_text(f, sizeof f, "abcdefghij", 10), "abcdefg") == 0);
  CHECK(strcmp(ps_text(f, sizeof f, "ab\0cd", 2), "ab") == 0); /* a slice, not a C string */
  CHECK(strcmp(ps_textf(f, sizeof f, "%d-%s", 42, "xyz"), "42-xyz") == 0);
  CHECK(strcmp(ps_textf(f, sizeof f, "%s", "0123456789"), "0123456") == 0);
  char one[1] = {'x'};
  CHECK(ps_text(one, sizeof one, "abc", 3)[0] == '\0');
  CHECK(ps_textf(one, sizeof one, "abc")[0] == '\0');
}

static void cuts_at_a_whole_character(void) {
  char f[6];
  /* "aé€" is a, c3 a9, e2 82 ac: 6 bytes; 5 fit, and the euro sign is cut. */
  const char *s = "a\xc3\xa9\xe2\x82\xac";
  CHECK(strcmp(ps_text(f, sizeof f, s, strlen(s)), "a\xc3\xa9") == 0);
  CHECK(strcmp(ps_textf(f, sizeof f, "%s", s), "a\xc3\xa9") == 0);
  /* Exactly full: nothing is cut. */
  char g[7];
  CHECK(strcmp(ps_text(g, sizeof g, s, strlen(s)), s) == 0);
  CHECK(strcmp(ps_textf(g, sizeof g, "%s", s), s) == 0);
  /* A 4-byte character cut after 1, 2 or 3 of its bytes. */
  const char *emoji = "ab\xf0\x9f\x98\x80";
  for (size_t size = 4; size <= 6; size++) {
    char h[8];
    CHECK(strcmp(ps_text(h, size, emoji, strlen(emoji)), "ab") == 0);
    CHECK(strcmp(ps_textf(h, size, "%s", emoji), "ab") == 0);
  }
}

static void leaves_bytes_that_are_not_utf8(void) {
  char f[4];
  /* Continuation bytes with no lead, and Latin-1: copied as they are. */
  CHECK(memcmp(ps_text(f, sizeof f, "\x80\x80\x80\x80", 4), "\x80\x80\x80", 4) == 0);
  CHECK(strcmp(ps_text(f, sizeof f, "\xe9t\xe9t\xe9", 5), "\xe9t\xe9") == 0);
}

static const struct {
  const char *name;
  void (*run)(void);
} cases[] = {
    {"copies what fits into the field and ends it", copies_what_fits},
    {"cuts at a whole UTF-8 character", cuts_at_a_whole_character},
    {"copies bytes that are not UTF-8 as they are", leaves_bytes_that_are_not_utf8},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (int k = 0; k < NCASES; k++) puts(cases[k].name);
    return 0;
  }
  int ran = 0;
  for (int k = 0; k < NCASES; k++) {
    if (argc == 2 && strcmp(argv[1], cases[k].name) != 0) continue;
    int before = failures;
    cases[k].run();
    printf("%s %s\n", failures == before ? "ok" : "FAILED", cases[k].name);
    ran++;
  }
  if (ran == 0) {
    fprintf(stderr, "test_text: no case named '%s' (--list lists them)\n", argv[1]);
    return 2;
  }
  return failures ? 1 : 0;
}
