/*
 * make_corpus.c: writes the seed corpus of the fuzz targets, with the
 * engine's own writers, so that the seeds are what driver and worker send:
 *
 *   build-fuzz/fuzz/make_corpus core/fuzz/corpus
 *
 * writes corpus/fuzz_frames/ (a control byte, then frames of every kind,
 * whole sessions and a few malformed streams) and corpus/fuzz_value/
 * (value encodings and JSON texts). The files are committed; run it again
 * after a frame layout changes. It is not a fuzz target.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame.h"
#include "msg.h"
#include "stats.h"
#include "value.h"

static const char *outdir;

static void save(const char *target, const char *name, const void *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", outdir, target);
  if (mkdir(path, 0777) != 0 && errno != EEXIST) {
    perror(path);
    exit(1);
  }
  snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

/* A stream for fuzz_frames: the control byte, then the frames in b. */
static void save_frames(const char *name, int control, const ps_buf_t *b) {
  ps_buf_t out;
  ps_buf_init(&out);
  ps_buf_putc(&out, control);
  ps_buf_put(&out, b->data, b->len);
  if (out.failed) exit(1);
  save("fuzz_frames", name, out.data, out.len);
  ps_buf_free(&out);
}

static void save_value(const char *name, const ps_buf_t *b) {
  if (b->failed) exit(1);
  save("fuzz_value", name, b->data, b->len);
}

static void put_cstr(ps_buf_t *b, const char *s) { ps_put_str(b, s, strlen(s)); }

/* Values. */

/* A pset as map() sends it: { x = i, rate = 0.25 * i, name = "run-i" }. */
static void put_pset(ps_buf_t *b, int i) {
  char name[32];
  snprintf(name, sizeof name, "run-%d", i);
  ps_put_table(b, 0, 3);
  put_cstr(b, "x");
  ps_put_int(b, i);
  put_cstr(b, "rate");
  ps_put_float(b, 0.25 * i);
  put_cstr(b, "name");
  put_cstr(b, name);
}

/* A result: { slept = 0.3, worker = 1, tags = { "a", "b" } }. */
static void put_result(ps_buf_t *b) {
  ps_put_table(b, 0, 3);
  put_cstr(b, "slept");
  ps_put_float(b, 0.3);
  put_cstr(b, "worker");
  ps_put_int(b, 1);
  put_cstr(b, "tags");
  ps_put_table(b, 2, 0);
  put_cstr(b, "a");
  put_cstr(b, "b");
}

static void values(void) {
  ps_buf_t b;
  ps_buf_init(&b);
#define VALUE(name, code) \
  do {                    \
    b.len = 0;            \
    code;                 \
    save_value(name, &b); \
  } while (0)
  VALUE("nil", ps_put_nil(&b));
  VALUE("false", ps_put_bool(&b, 0));
  VALUE("true", ps_put_bool(&b, 1));
  VALUE("fixint", ps_put_int(&b, 127));
  VALUE("int", ps_put_int(&b, 300));
  VALUE("int_negative", ps_put_int(&b, -1));
  VALUE("int_max", ps_put_int(&b, INT64_MAX));
  VALUE("int_min", ps_put_int(&b, INT64_MIN));
  VALUE("int_long_form", ps_buf_putc(&b, PS_TAG_INT); ps_buf_put_varint(&b, 10));
  VALUE("float", ps_put_float(&b, 0.1));
  VALUE("float_negative_zero", ps_put_float(&b, -0.0));
  VALUE("float_big", ps_put_float(&b, 1e300));
  VALUE("float_inf", ps_put_float(&b, INFINITY));
  VALUE("float_nan", ps_put_float(&b, NAN));
  VALUE("str_empty", ps_put_str(&b, "", 0));
  VALUE("str_utf8", put_cstr(&b, "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e"));
  VALUE("str_control", put_cstr(&b, "tab\there\nquote\" back\\ bell\a"));
  VALUE("str_not_utf8", put_cstr(&b, "\xff\xc0\xaf\xed\xa0\x80"));
  VALUE("str_long",
        put_cstr(&b, "a string of more than sixty-three bytes takes the tag 0x05 and a length"));
  VALUE("table_empty", ps_put_table(&b, 0, 0));
  VALUE("table_array", ps_put_table(&b, 3, 0); ps_put_int(&b, 1); ps_put_int(&b, 2);
        ps_put_int(&b, 3));
  VALUE("table_hole", ps_put_table(&b, 3, 0); ps_put_int(&b, 1); ps_put_nil(&b); ps_put_int(&b, 3));
  VALUE("table_mixed", ps_put_table(&b, 1, 1); put_cstr(&b, "first"); put_cstr(&b, "k");
        ps_put_bool(&b, 1));
  VALUE("table_keys", ps_put_table(&b, 0, 3); ps_put_int(&b, 10); put_cstr(&b, "ten");
        ps_put_float(&b, 1.5); put_cstr(&b, "one and a half"); ps_put_bool(&b, 0);
        put_cstr(&b, "no"));
  VALUE("pset", put_pset(&b, 7));
  VALUE("result", put_result(&b));
  /* The deepest nesting the readers accept, then one level more. */
  VALUE("table_deepest", for (int k = 0; k < PS_MAX_DEPTH; k++) ps_put_table(&b, 1, 0);
        ps_put_int(&b, 1));
  VALUE("table_too_deep", for (int k = 0; k <= PS_MAX_DEPTH; k++) ps_put_table(&b, 1, 0);
        ps_put_int(&b, 1));
  VALUE("json_object",
        ps_buf_puts(&b, "{\"a\": [1, 2.5, \"x\\u00e9\"], \"b\": null, \"c\": true}"));
  VALUE("json_numbers",
        ps_buf_puts(&b, "[0, -0.0, 1e400, -9223372036854775808, 1.7976931348623157e308]"));
  VALUE("json_escapes",
        ps_buf_puts(&b, "\"\\ud83d\\ude00 \\ud800 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\""));
#undef VALUE
  ps_buf_free(&b);
}

/* Frames, as run.c (driver) and lworker.c (worker) write them. */

static void hello(ps_buf_t *b) {
  size_t s = ps_frame_begin(b, PS_MSG_HELLO);
  ps_buf_put_varint(b, PS_PROTOCOL);
  ps_buf_put_varint(b, 4242);
  ps_put_bytes(b, "node1", 5);
  ps_buf_put_varint(b, 8);
  ps_put_bytes(b, PSURVEY_VERSION, strlen(PSURVEY_VERSION));
  ps_frame_end(b, s);
}

static void code(ps_buf_t *b) {
  /* The shipped function is Lua's to read; these bytes only look like one. */
  static const char fn[] = {PS_TAG_FUNC, PS_TAG_FIXSTR + 5, 0x1b, 'L', 'u', 'a', 0x54,
                            1,           PS_TAG_ENV};
  ps_buf_t user;
  ps_buf_init(&user);
  ps_put_table(&user, 0, 1);
  put_cstr(&user, "scale");
  ps_put_int(&user, 2);
  size_t s = ps_frame_begin(b, PS_MSG_CODE);
  ps_buf_put_varint(b, 1);
  ps_buf_put_varint(b, PS_CODE_REPORT_STARTS);
  ps_put_bytes(b, "map", 3);
  ps_put_bytes(b, fn, sizeof fn);
  ps_put_bytes(b, user.data, user.len);
  ps_buf_put_varint(b, 0);
  ps_buf_put_varint(b, 12345);
  ps_put_bytes(b, "runs", 4); /* workdir */
  ps_buf_put_varint(b, PS_OUTPUT_TAIL);
  ps_frame_end(b, s);
  ps_buf_free(&user);
}

static void code_ok(ps_buf_t *b, int ok) {
  const char *msg = ok ? "" : "attempt to call a nil value (global 'f')";
  size_t s = ps_frame_begin(b, PS_MSG_CODE_OK);
  ps_buf_put_varint(b, (uint64_t)ok);
  ps_put_bytes(b, msg, strlen(msg));
  ps_frame_end(b, s);
}

/* n tasks from `first`, the count patched in afterwards as run.c does;
   psets are tables, or integers when there are many (a smaller file). */
static void tasks(ps_buf_t *b, int first, int n) {
  ps_buf_t pset;
  ps_buf_init(&pset);
  size_t s = ps_frame_begin(b, PS_MSG_TASKS);
  size_t countpos = b->len;
  ps_buf_putc(b, 0);
  for (int k = first; k < first + n; k++) {
    ps_buf_put_varint(b, (uint64_t)k);
    ps_buf_put_varint(b, 1);
    ps_buf_put_varint(b, k % 2 ? 5000 : 0);
    ps_buf_put_varint(b, k % 3 ? 0 : 64u << 20);
    ps_buf_put_varint(b, (uint64_t)(k % 4)); /* threads */
    pset.len = 0;
    if (n < 100)
      put_pset(&pset, k);
    else
      ps_put_int(&pset, k);
    ps_put_bytes(b, pset.data, pset.len);
  }
  ps_buf_patch_varint(b, countpos, (uint64_t)n);
  ps_frame_end(b, s);
  ps_buf_free(&pset);
}

/* One result of each status. */
static void results(ps_buf_t *b, int first) {
  static const char *const msg[] = {"", "survey.lua:3: boom", "not enough memory",
                                    "timed out after 5 s"};
  ps_buf_t v;
  ps_buf_init(&v);
  put_result(&v);
  size_t s = ps_frame_begin(b, PS_MSG_RESULTS);
  ps_buf_put_varint(b, 5);
  for (int k = 0; k < 5; k++) {
    int status = k < 4 ? k : PS_STATUS_OK;
    ps_buf_put_varint(b, (uint64_t)(first + k));
    ps_buf_put_varint(b, UINT64_C(1764320000000000) + (uint64_t)k);
    ps_buf_put_varint(b, 300000);
    ps_buf_put_varint(b, 1200);
    ps_buf_put_varint(b, 65536);
    ps_buf_putc(b, status);
    if (status != PS_STATUS_OK) {
      ps_put_bytes(b, msg[status], strlen(msg[status]));
      ps_put_bytes(b, "stack traceback:\n\t[C]: in ?", 27);
    } else if (k == 0) {
      ps_put_bytes(b, v.data, v.len);
    } else {
      ps_put_bytes(b, "", 0); /* no result */
    }
  }
  ps_frame_end(b, s);
  ps_buf_free(&v);
}

/* A result, then the timers its pset recorded (system.record), written
   by the worker's writer: 'a' three times, 'solve' over nanoseconds to
   minutes. */
static void results_timers(ps_buf_t *b) {
  static const double solve[] = {0, 3e-9, 2.5e-7, 0.001, 0.25, 0.25, 1.5, 90};
  ps_timers_t s;
  ps_buf_t recs;
  int full;
  ps_timers_init(&s);
  ps_buf_init(&recs);
  ps_timer_t *a = ps_timers_get(&s, "a", 1, &full), *t = ps_timers_get(&s, "solve", 5, &full);
  if (a == NULL || t == NULL) exit(1);
  for (int k = 0; k < 3; k++) ps_timing_add(&a->t, 0.125);
  for (size_t k = 0; k < sizeof solve / sizeof *solve; k++) ps_timing_add(&t->t, solve[k]);
  ps_msg_result_head(&recs, 7, UINT64_C(1764320000000000), 300000, 1200, 65536);
  ps_msg_result_value(&recs, "", 0, "", 0);
  ps_msg_put_results(b, 1, recs.data, recs.len, &s);
  ps_buf_free(&recs);
  ps_timers_free(&s);
}

/* Results with output, hand-written: an ok pset that printed a line, a
   failed one whose stderr was cut (PS_STATUS_OUTPUT, frame.h). */
static void results_output(ps_buf_t *b) {
  static const char cut[] = "[... 12 bytes cut ...]\nlast\n";
  size_t s = ps_frame_begin(b, PS_MSG_RESULTS);
  ps_buf_put_varint(b, 2);
  for (int k = 0; k < 2; k++) {
    ps_buf_put_varint(b, (uint64_t)k);
    ps_buf_put_varint(b, UINT64_C(1764320000000000));
    ps_buf_put_varint(b, 300000);
    ps_buf_put_varint(b, 1200);
    ps_buf_put_varint(b, 0);
    ps_buf_putc(b, (k == 0 ? PS_STATUS_OK : PS_STATUS_ERROR) | PS_STATUS_OUTPUT);
    if (k == 0) {
      ps_put_bytes(b, "", 0);
      ps_put_bytes(b, "hello\n", 6);
      ps_put_bytes(b, "", 0);
    } else {
      ps_put_bytes(b, "survey.lua:3: boom", 18);
      ps_put_bytes(b, "", 0);
      ps_put_bytes(b, "", 0);
      ps_put_bytes(b, cut, sizeof cut - 1);
    }
  }
  ps_frame_end(b, s);
}

static void started(ps_buf_t *b, int index) {
  size_t s = ps_frame_begin(b, PS_MSG_STARTED);
  ps_buf_put_varint(b, (uint64_t)index);
  ps_buf_put_varint(b, UINT64_C(1764320000000000));
  ps_frame_end(b, s);
}

static void bye(ps_buf_t *b) { ps_frame_end(b, ps_frame_begin(b, PS_MSG_BYE)); }

static void fatal(ps_buf_t *b) {
  size_t s = ps_frame_begin(b, PS_MSG_FATAL);
  ps_put_bytes(b, "malformed tasks frame", 21);
  ps_frame_end(b, s);
}

static void frames(void) {
  ps_buf_t b;
  ps_buf_init(&b);
#define FRAMES(name, control, code) \
  do {                              \
    b.len = 0;                      \
    code;                           \
    save_frames(name, control, &b); \
  } while (0)
  FRAMES("hello", 0, hello(&b));
  FRAMES("code", 0, code(&b));
  FRAMES("code_ok", 0, code_ok(&b, 1));
  FRAMES("code_failed", 0, code_ok(&b, 0));
  FRAMES("tasks", 0, tasks(&b, 0, 3));
  FRAMES("tasks_many", 0, tasks(&b, 100, 130));
  FRAMES("results", 0, results(&b, 0));
  FRAMES("results_timers", 0, results_timers(&b));
  FRAMES("results_output", 0, results_output(&b));
  FRAMES("started", 0, started(&b, 3));
  FRAMES("bye", 0, bye(&b));
  FRAMES("fatal", 0, fatal(&b));
  /* Whole sessions, read in pieces of varied sizes, or with a small limit. */
  FRAMES("worker_session", 5 << 3, hello(&b); code_ok(&b, 1); started(&b, 0); results(&b, 0);
         fatal(&b));
  FRAMES("driver_session", 7 << 3, code(&b); tasks(&b, 0, 2); tasks(&b, 2, 2); bye(&b));
  FRAMES("driver_session_limit", 6 | 1 << 3, code(&b); tasks(&b, 0, 2); bye(&b));
  /* Malformed streams: an empty frame, an unknown kind, a length over the
     limit, a frame cut short. */
  FRAMES("bad_empty", 0, ps_buf_put(&b, "\0\0\0\0", 4); bye(&b));
  FRAMES("bad_kind", 0, ps_buf_put(&b, "\1\0\0\0\xff", 5));
  FRAMES("bad_length", 0, ps_buf_put(&b, "\xff\xff\xff\xff\x05", 5));
  FRAMES("truncated", 0, hello(&b); b.len -= 3);
#undef FRAMES
  ps_buf_free(&b);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_corpus DIR (core/fuzz/corpus)\n");
    return 2;
  }
  outdir = argv[1];
  if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
    perror(outdir);
    return 1;
  }
  values();
  frames();
  return 0;
}
