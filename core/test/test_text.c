/*
 * test_text.c: text in fixed fields (ps_text, ps_textf in ps.h): cut to
 * fit at a whole UTF-8 character, always ended.
 *
 * Its cases run as specs from spec/core/text_spec.lua (cases.h).
 */
#include <stdio.h>
#include <string.h>

#include "cases.h"
#include "ps.h"

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

static const tc_case_t cases[] = {
    {"copies what fits into the field and ends it", copies_what_fits},
    {"cuts at a whole UTF-8 character", cuts_at_a_whole_character},
    {"copies bytes that are not UTF-8 as they are", leaves_bytes_that_are_not_utf8},
};
int main(int argc, char **argv) {
  return tc_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
