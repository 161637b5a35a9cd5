/*
 * test_msg.c: the timers that end a RESULTS frame (msg.h, frame.h), and
 * the statistics they carry (ps_timing_t, ps_timers_t in stats.h): a
 * batch without samples is written as it always was, a batch with them
 * reads back the same, and a malformed section is refused; and the output
 * a record may carry, likewise.
 *
 * Its cases run as specs from spec/core/msg_spec.lua (cases.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cases.h"
#include "msg.h"
#include "stats.h"

/* One record (pset 3, ok, no result), as a worker writes it. */
static void one_record(ps_buf_t *recs) {
  ps_msg_result_head(recs, 3, 1000, 250, 200, 0);
  ps_msg_result_value(recs, "", 0, "", 0);
}

/* A RESULTS frame of one record and the timers in s (NULL: none). */
static void results_frame(ps_buf_t *b, const ps_timers_t *s) {
  ps_buf_t recs;
  ps_buf_init(&recs);
  one_record(&recs);
  ps_msg_put_results(b, 1, recs.data, recs.len, s);
  ps_buf_free(&recs);
}

static ps_timer_t *timer(ps_timers_t *s, const char *name) {
  int full;
  return ps_timers_get(s, name, strlen(name), &full);
}

/* Reads a RESULTS payload: its record count, then its timers into `into`
   (merged by name). The reader's answer: 0, or PS_EPROTO. */
static int read_results(const char *p, size_t n, ps_timers_t *into, int *records) {
  ps_msg_batch_t it;
  ps_msg_result_t r;
  ps_msg_timer_t t;
  int rc;
  *records = 0;
  if (ps_msg_batch_open(&it, p, n) != 0) return PS_EPROTO;
  while ((rc = ps_msg_next_result(&it, &r)) == 1) ++*records;
  if (rc != 0) return rc;
  while ((rc = ps_msg_next_timer(&it, &t)) == 1) {
    int full;
    ps_timer_t *mine = ps_timers_get(into, t.name.p, t.name.n, &full);
    if (mine == NULL) return PS_ENOMEM;
    ps_timing_merge(&mine->t, &t.t);
  }
  return rc;
}

static int read_frame(const ps_buf_t *b, ps_timers_t *into, int *records) {
  return read_results(b->data + PS_FRAME_HEADER, b->len - PS_FRAME_HEADER, into, records);
}

static void writes_a_batch_without_samples_as_before(void) {
  ps_buf_t recs, before, none, empty;
  ps_buf_init(&recs);
  ps_buf_init(&before);
  ps_buf_init(&none);
  ps_buf_init(&empty);
  one_record(&recs);
  /* The frame as it was before timers: kind, count, records. */
  size_t s = ps_frame_begin(&before, PS_MSG_RESULTS);
  ps_buf_put_varint(&before, 1);
  ps_buf_put(&before, recs.data, recs.len);
  ps_frame_end(&before, s);
  /* No set, and a set whose timers have no samples (sent already). */
  ps_timers_t sent;
  ps_timers_init(&sent);
  CHECK(timer(&sent, "a") != NULL);
  results_frame(&none, NULL);
  results_frame(&empty, &sent);
  CHECK(none.len == before.len && memcmp(none.data, before.data, before.len) == 0);
  CHECK(empty.len == before.len && memcmp(empty.data, before.data, before.len) == 0);
  ps_timers_t got;
  ps_timers_init(&got);
  int records;
  CHECK(read_frame(&none, &got, &records) == 0 && records == 1 && got.n == 0);
  ps_timers_free(&got);
  ps_timers_free(&sent);
  ps_buf_free(&recs);
  ps_buf_free(&before);
  ps_buf_free(&none);
  ps_buf_free(&empty);
}

static void reads_back_the_samples_written(void) {
  ps_timers_t s, got;
  ps_timers_init(&s);
  ps_timers_init(&got);
  /* Added out of order: the set, and so the frame, keeps them sorted. */
  ps_timer_t *b = timer(&s, "solve"), *a = timer(&s, "a");
  CHECK(a != NULL && b != NULL);
  for (int k = 0; k < 3; k++) ps_timing_add(&a->t, 0.25);
  static const double many[] = {0, 2.5e-7, 0.001, 0.5, 0.5, 1.0, 90.0};
  for (size_t k = 0; k < sizeof many / sizeof *many; k++) ps_timing_add(&b->t, many[k]);
  ps_buf_t f;
  ps_buf_init(&f);
  results_frame(&f, &s);
  int records;
  CHECK(read_frame(&f, &got, &records) == 0 && records == 1);
  CHECK(got.n == 2 && strcmp(got.v[0]->name, "a") == 0 && strcmp(got.v[1]->name, "solve") == 0);
  if (got.n == 2) {
    const ps_timing_t *ga = &got.v[0]->t, *gb = &got.v[1]->t;
    CHECK(ga->hist.count == 3 && ga->sum == 0.75 && ga->min == 0.25 && ga->max == 0.25);
    CHECK(ps_timing_quantile(ga, 0.5) == 0.25);
    CHECK(gb->hist.count == 7 && gb->sum == b->t.sum && gb->min == 0 && gb->max == 90.0);
    for (double q = 0.05; q < 1; q += 0.05)
      CHECK(ps_timing_quantile(gb, q) == ps_timing_quantile(&b->t, q));
  }
  /* Written again from what was read: the same bytes. */
  ps_buf_t again;
  ps_buf_init(&again);
  results_frame(&again, &got);
  CHECK(again.len == f.len && memcmp(again.data, f.data, f.len) == 0);
  ps_buf_free(&again);
  ps_buf_free(&f);
  ps_timers_free(&got);
  ps_timers_free(&s);
}

/* The payload of a frame of one record and a hand-written section. */
static int read_section(const char *section, size_t n) {
  ps_buf_t recs, b;
  ps_buf_init(&recs);
  ps_buf_init(&b);
  one_record(&recs);
  ps_buf_put_varint(&b, 1);
  ps_buf_put(&b, recs.data, recs.len);
  ps_buf_put(&b, section, n);
  ps_timers_t got;
  ps_timers_init(&got);
  int records;
  int rc = read_results(b.data, b.len, &got, &records);
  ps_timers_free(&got);
  ps_buf_free(&recs);
  ps_buf_free(&b);
  return rc;
}

#define SECTION(s) read_section(s, sizeof s - 1)
/* 0.25 s: the double's 8 bytes, and the varint of 250000000 ns's bucket, 763. */
#define QUARTER "\0\0\0\0\0\0\xd0\x3f"
#define BUCKET_QUARTER "\xfb\x05"

static void refuses_a_malformed_section(void) {
  /* Well formed: one timer 'a', one sample of 0.25 s. */
  CHECK(SECTION("\1\1a\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1") == 0);
  /* Two in order, then the same two in the wrong order, and twice. */
  CHECK(SECTION("\2\1a\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1"
                "\1b\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1") == 0);
  CHECK(SECTION("\2\1b\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1"
                "\1a\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1") == PS_EPROTO);
  CHECK(SECTION("\2\1a\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1"
                "\1a\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1") == PS_EPROTO);
  /* No timers is no section, not an empty one. */
  CHECK(SECTION("\0") == PS_EPROTO);
  /* An empty name, a control character, a count of 0. */
  CHECK(SECTION("\1\0\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1") == PS_EPROTO);
  CHECK(SECTION("\1\1\n\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1") == PS_EPROTO);
  CHECK(SECTION("\1\1a\0" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1") == PS_EPROTO);
  /* -0, NaN, and a minimum above the maximum. */
  CHECK(SECTION("\1\1a\1" QUARTER "\0\0\0\0\0\0\0\x80" QUARTER "\1\0\1") == PS_EPROTO);
  CHECK(SECTION("\1\1a\1" QUARTER QUARTER "\0\0\0\0\0\0\xf8\x7f\1" BUCKET_QUARTER "\1") ==
        PS_EPROTO);
  CHECK(SECTION("\1\1a\2" QUARTER QUARTER "\0\0\0\0\0\0\0\0\2\0\1" BUCKET_QUARTER "\1") ==
        PS_EPROTO);
  /* Buckets that are not min's and max's, or do not add up to the count. */
  CHECK(SECTION("\1\1a\1" QUARTER QUARTER QUARTER "\1\0\1") == PS_EPROTO);
  CHECK(SECTION("\1\1a\2" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1") == PS_EPROTO);
  CHECK(SECTION("\1\1a\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\2") == PS_EPROTO);
  /* A byte left over, and a section cut short. */
  CHECK(SECTION("\1\1a\1" QUARTER QUARTER QUARTER "\1" BUCKET_QUARTER "\1\0") == PS_EPROTO);
  CHECK(SECTION("\1\1a\1" QUARTER QUARTER) == PS_EPROTO);
}

static void merges_as_if_all_samples_were_added_to_one(void) {
  ps_timing_t one, left, right;
  ps_timing_init(&one);
  ps_timing_init(&left);
  ps_timing_init(&right);
  for (int k = 0; k < 1000; k++) {
    double s = (double)(k % 97) * 1e-3 + (double)k * 1e-9;
    ps_timing_add(&one, s);
    ps_timing_add(k % 3 ? &left : &right, s);
  }
  ps_timing_merge(&left, &right);
  CHECK(left.hist.count == 1000 && left.min == one.min && left.max == one.max);
  CHECK(fabs(left.sum - one.sum) < 1e-9);
  CHECK(memcmp(left.hist.bucket, one.hist.bucket, sizeof one.hist.bucket) == 0);
  for (double q = 0.01; q < 1; q += 0.01)
    CHECK(ps_timing_quantile(&left, q) == ps_timing_quantile(&one, q));
  /* Percentiles stay within the samples, and a timer without any is 0. */
  CHECK(ps_timing_quantile(&one, 0) >= one.min && ps_timing_quantile(&one, 1) <= one.max);
  ps_timing_t none;
  ps_timing_init(&none);
  CHECK(ps_timing_quantile(&none, 0.5) == 0);
  ps_timing_merge(&left, &none);
  CHECK(left.hist.count == 1000);
  /* Huge samples are capped in the histogram, kept exactly elsewhere. */
  ps_timing_add(&none, 1e300);
  CHECK(none.max == 1e300 && none.hist.max_us == INT64_MAX &&
        ps_timing_quantile(&none, 1) <= 1e300);
}

static void holds_at_most_the_names_of_a_map(void) {
  ps_timers_t s;
  ps_timers_init(&s);
  char name[16];
  int full = -1;
  for (int k = 0; k < PS_TIMERS_MAX; k++) {
    snprintf(name, sizeof name, "t%02d", PS_TIMERS_MAX - 1 - k);
    CHECK(timer(&s, name) != NULL);
  }
  CHECK(s.n == PS_TIMERS_MAX && strcmp(s.v[0]->name, "t00") == 0);
  for (int k = 1; k < s.n; k++)
    CHECK(ps_timers_cmp(s.v[k - 1]->name, s.v[k - 1]->len, s.v[k]->name, s.v[k]->len) < 0);
  /* A name it has is found; a new one is refused, saying why. */
  CHECK(timer(&s, "t07") == s.v[7]);
  CHECK(ps_timers_get(&s, "new", 3, &full) == NULL && full == 1);
  /* A prefix sorts first. */
  ps_timers_t p;
  ps_timers_init(&p);
  CHECK(timer(&p, "ab") != NULL && timer(&p, "a") != NULL && timer(&p, "") != NULL);
  CHECK(strcmp(p.v[0]->name, "") == 0 && strcmp(p.v[1]->name, "a") == 0);
  ps_timers_free(&p);
  ps_timers_free(&s);
  CHECK(s.n == 0 && s.v == NULL);
}

static void knows_a_timer_name(void) {
  CHECK(ps_msg_timer_name_valid("solve", 5));
  CHECK(ps_msg_timer_name_valid("\xc3\xa9tape 1", 8));
  CHECK(!ps_msg_timer_name_valid("", 0));
  CHECK(!ps_msg_timer_name_valid("a\nb", 3));
  CHECK(!ps_msg_timer_name_valid("a\0b", 3));
  CHECK(!ps_msg_timer_name_valid("\xff", 1));
  char longest[PS_TIMER_NAME_MAX + 1];
  memset(longest, 'x', sizeof longest);
  CHECK(ps_msg_timer_name_valid(longest, PS_TIMER_NAME_MAX));
  CHECK(!ps_msg_timer_name_valid(longest, PS_TIMER_NAME_MAX + 1));
}

/* A record with output, as a worker writes it: pset 5, ok with no result,
   then stdout in two pieces (a note and the tail) and stderr. */
static void record_with_output(ps_buf_t *recs, const char *out, const char *err) {
  ps_msg_result_head(recs, 5, 1000, 250, 200, 0);
  size_t at = ps_msg_result_value(recs, "", 0, "", 0);
  ps_bytes_t o[2] = {{"[cut] ", 6}, {out, strlen(out)}}, e[2] = {{"", 0}, {err, strlen(err)}};
  if (!*out) o[0].n = 0;
  ps_msg_result_output(recs, at, o, e);
}

/* The one record of a RESULTS payload, or PS_EPROTO. */
static int read_one(const ps_buf_t *recs, ps_msg_result_t *r) {
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_results(&b, 1, recs->data, recs->len, NULL);
  ps_msg_batch_t it;
  ps_msg_timer_t t;
  int rc = ps_msg_batch_open(&it, b.data + PS_FRAME_HEADER, b.len - PS_FRAME_HEADER);
  if (rc == 0) rc = ps_msg_next_result(&it, r) == 1 ? 0 : PS_EPROTO;
  if (rc == 0) rc = ps_msg_next_timer(&it, &t);
  ps_buf_free(&b);
  return rc;
}

static void writes_a_record_without_output_as_before(void) {
  ps_buf_t plain, none;
  ps_buf_init(&plain);
  ps_buf_init(&none);
  one_record(&plain);
  ps_msg_result_head(&none, 3, 1000, 250, 200, 0);
  size_t at = ps_msg_result_value(&none, "", 0, "", 0);
  ps_bytes_t empty[2] = {{"", 0}, {"", 0}};
  ps_msg_result_output(&none, at, empty, empty);
  CHECK(none.len == plain.len && memcmp(none.data, plain.data, plain.len) == 0);
  ps_msg_result_t r;
  CHECK(read_one(&none, &r) == 0);
  CHECK(r.status == PS_STATUS_OK && r.out.n == 0 && r.err.n == 0);
  ps_buf_free(&plain);
  ps_buf_free(&none);
}

static void reads_back_the_output_written(void) {
  ps_buf_t recs;
  ps_buf_init(&recs);
  record_with_output(&recs, "hello\n", "oops\n");
  ps_msg_result_t r;
  CHECK(read_one(&recs, &r) == 0);
  CHECK(r.index == 5 && r.status == PS_STATUS_OK && r.value.n == 0);
  CHECK(r.out.n == 12 && memcmp(r.out.p, "[cut] hello\n", 12) == 0);
  CHECK(r.err.n == 5 && memcmp(r.err.p, "oops\n", 5) == 0);
  /* A failure's output, stderr only. */
  recs.len = 0;
  ps_msg_result_head(&recs, 7, 1, 2, 3, 4);
  ps_bytes_t m[2] = {{"boom", 4}, {"", 0}}, tb[2] = {{"", 0}, {"", 0}};
  size_t at = ps_msg_result_failure(&recs, PS_STATUS_ERROR, m, tb);
  ps_bytes_t o[2] = {{"", 0}, {"", 0}}, e[2] = {{"x", 1}, {"", 0}};
  ps_msg_result_output(&recs, at, o, e);
  CHECK(read_one(&recs, &r) == 0);
  CHECK(r.status == PS_STATUS_ERROR && r.message.n == 4 && r.out.n == 0 && r.err.n == 1);
  ps_buf_free(&recs);
}

static void refuses_malformed_output(void) {
  ps_buf_t recs;
  ps_buf_init(&recs);
  ps_msg_result_t r;
  /* The flag with both streams empty has another encoding: none. */
  one_record(&recs);
  recs.data[recs.len - 2] |= (char)PS_STATUS_OUTPUT;
  ps_buf_putc(&recs, 0);
  ps_buf_putc(&recs, 0);
  CHECK(read_one(&recs, &r) == PS_EPROTO);
  /* The flag without the streams. */
  recs.len -= 2;
  CHECK(read_one(&recs, &r) == PS_EPROTO);
  /* A stream longer than the payload. */
  ps_buf_putc(&recs, 9);
  ps_buf_puts(&recs, "abc");
  CHECK(read_one(&recs, &r) == PS_EPROTO);
  /* A status past the last, with or without the flag. */
  recs.len = 0;
  one_record(&recs);
  recs.data[recs.len - 2] = (char)(PS_STATUS_OUTPUT | 0x04);
  CHECK(read_one(&recs, &r) == PS_EPROTO);
  recs.data[recs.len - 2] = 0x40;
  CHECK(read_one(&recs, &r) == PS_EPROTO);
  ps_buf_free(&recs);
}

int main(int argc, char **argv) {
  static const tc_case_t cases[] = {
      {"writes a batch without samples as before", writes_a_batch_without_samples_as_before},
      {"reads back the samples written", reads_back_the_samples_written},
      {"refuses a malformed timers section", refuses_a_malformed_section},
      {"merges as if all samples were added to one", merges_as_if_all_samples_were_added_to_one},
      {"holds at most the names of a map", holds_at_most_the_names_of_a_map},
      {"knows a timer name", knows_a_timer_name},
      {"writes a record without output as before", writes_a_record_without_output_as_before},
      {"reads back the output written", reads_back_the_output_written},
      {"refuses malformed output", refuses_malformed_output},
  };
  return tc_main(argc, argv, cases, (int)(sizeof cases / sizeof *cases));
}
