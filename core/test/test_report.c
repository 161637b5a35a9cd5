/*
 * test_report.c: what a terminal line says of a failed pset: the pset in
 * brief (brief.h) and the failures of a stage grouped (tally.h).
 *
 * Its cases run as specs from spec/core/report_spec.lua (cases.h).
 */
#include <stdio.h>
#include <string.h>

#include "brief.h"
#include "cases.h"
#include "tally.h"
#include "value.h"

/* The brief of a pset { keys[k] = ints[k] } plus extras, as text. */
static const char *brief(ps_buf_t *enc, size_t width) {
  static char out[256];
  ps_buf_t b;
  ps_buf_init(&b);
  ps_brief_pset(enc->data, enc->len, width, &b);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  ps_buf_free(&b);
  return out;
}

static void briefs_a_pset(void) {
  ps_buf_t enc;
  ps_buf_init(&enc);
  ps_put_table(&enc, 0, 6);
  ps_put_str(&enc, "a", 1);
  ps_put_int(&enc, -3);
  ps_put_str(&enc, "f", 1);
  ps_put_float(&enc, 0.1);
  ps_put_str(&enc, "s", 1);
  ps_put_str(&enc, "two words", 9);
  ps_put_str(&enc, "t", 1);
  ps_put_table(&enc, 1, 0);
  ps_put_int(&enc, 1);
  ps_put_str(&enc, "_psurvey", 8);
  ps_put_table(&enc, 0, 1);
  ps_put_str(&enc, "timeout", 7);
  ps_put_int(&enc, 2);
  ps_put_str(&enc, "b", 1);
  ps_put_bool(&enc, 1);
  CHECK(strcmp(brief(&enc, 100), "a=-3, f=0.1, s='two words', t={...}, b=true") == 0);
  CHECK(strcmp(brief(&enc, 12), "a=-3, f=0...") == 0);
  ps_buf_free(&enc);
}

static void trusts_no_encoding(void) {
  ps_buf_t enc;
  ps_buf_init(&enc);
  ps_put_table(&enc, 0, 2); /* says 2 pairs, holds 1 */
  ps_put_str(&enc, "a", 1);
  ps_put_int(&enc, 1);
  CHECK(strcmp(brief(&enc, 100), "?") == 0);
  enc.len = 0;
  ps_put_int(&enc, 7); /* not a table */
  CHECK(strcmp(brief(&enc, 100), "?") == 0);
  enc.len = 0;
  CHECK(strcmp(brief(&enc, 100), "?") == 0); /* nothing */
  ps_buf_free(&enc);
}

static void groups_failures(void) {
  ps_tally_t t;
  char out[300];
  ps_tally_init(&t);
  ps_tally_text(&t, out, sizeof out);
  CHECK(strcmp(out, "") == 0);
  for (int k = 0; k < 6; k++) ps_tally_add(&t, "timeout", "pset timed out after 2 s", 24);
  for (int k = 0; k < 3; k++) {
    const char *m = "survey.lua:12: bad parameter r\nmore";
    ps_tally_add(&t, "error", m, strlen(m));
  }
  const char *e = "worker 3 (pid 123) exited with status 3";
  ps_tally_add(&t, "exit", e, strlen(e));
  ps_tally_add(&t, "exit", e, strlen(e));
  const char *s = "worker 4 (pid 9) was killed by signal 9 (SIGKILL)";
  ps_tally_add(&t, "signal", s, strlen(s));
  ps_tally_text(&t, out, sizeof out);
  CHECK(strcmp(out,
               "12 failed: 6 x timeout, 3 x \"bad parameter r\", 2 x exit 3, 1 x signal SIGKILL") ==
        0);
}

static void groups_a_workers_failures_by_what_went_wrong(void) {
  ps_tally_t t;
  char out[300];
  ps_tally_init(&t);
  const char *a = "worker 2 (pid 4730) sent a malformed frame: frame too long";
  const char *b = "worker 13 (pid 4731) sent a malformed frame: frame too long";
  ps_tally_add(&t, "error", a, strlen(a));
  ps_tally_add(&t, "error", b, strlen(b));
  ps_tally_text(&t, out, sizeof out);
  CHECK(strcmp(out, "2 failed: 2 x \"sent a malformed frame: frame too long\"") == 0);
}

static void keeps_a_bounded_number_of_groups(void) {
  ps_tally_t t;
  char out[1000], msg[32];
  ps_tally_init(&t);
  for (int k = 0; k < PS_TALLY_GROUPS + 3; k++) {
    snprintf(msg, sizeof msg, "reason %d", k);
    ps_tally_add(&t, "error", msg, strlen(msg));
  }
  ps_tally_text(&t, out, sizeof out);
  CHECK(strstr(out, "11 failed: 1 x \"reason 0\", ") == out);
  CHECK(strstr(out, ", 3 x other") != NULL);
  /* A long message is cut at a whole character; a tiny buffer still ends. */
  char long_msg[200];
  memset(long_msg, 'x', sizeof long_msg);
  ps_tally_init(&t);
  ps_tally_add(&t, "error", long_msg, sizeof long_msg);
  ps_tally_text(&t, out, sizeof out);
  CHECK(strlen(out) < 80 && strstr(out, "...\"") != NULL);
  char tiny[5];
  ps_tally_text(&t, tiny, sizeof tiny);
  CHECK(strlen(tiny) == 4);
}

static const tc_case_t cases[] = {
    {"briefs a pset in one line, cut to a width", briefs_a_pset},
    {"shows a pset it cannot read as ?", trusts_no_encoding},
    {"groups failures by kind and message, largest first", groups_failures},
    {"keeps a bounded number of groups", keeps_a_bounded_number_of_groups},
    {"groups the failures of workers by what went wrong, not by worker",
     groups_a_workers_failures_by_what_went_wrong},
};
int main(int argc, char **argv) {
  return tc_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
