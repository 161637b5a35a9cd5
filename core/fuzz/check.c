/*
 * check.c: the value and JSON checks shared by the fuzz targets (check.h).
 * Each check compares two ways the engine has of looking at the same bytes;
 * none of them knows what the bytes should be.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "value.h"

void fz_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
  abort();
}

/* UTF-8 as Unicode's table of well-formed byte sequences (3-7) spells it,
   written apart from ps_utf8_valid so that the two can disagree. */
static int utf8_reference(const unsigned char *s, size_t n) {
  size_t k = 0;
  while (k < n) {
    unsigned c = s[k];
    unsigned lo = 0x80, hi = 0xbf;
    size_t more;
    if (c <= 0x7f) {
      k++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      more = 1;
    else if (c >= 0xe0 && c <= 0xef)
      more = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
      more = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
      return 0;
    if (n - k - 1 < more) return 0;
    if (s[k + 1] < lo || s[k + 1] > hi) return 0;
    for (size_t j = 2; j <= more; j++)
      if (s[k + j] < 0x80 || s[k + j] > 0xbf) return 0;
    k += more + 1;
  }
  return 1;
}

/* A finite float's text must read back to the same bits and look like a
   float (a '.' or an exponent), as json.h promises. */
static void check_number_text(double d) {
  if (!isfinite(d)) return;
  ps_buf_t t;
  ps_buf_init(&t);
  ps_number_text(&t, d);
  ps_buf_putc(&t, '\0');
  if (!t.failed) {
    char *end;
    double back = strtod(t.data, &end);
    FZ_ASSERT(*end == '\0');
    FZ_ASSERT(memcmp(&back, &d, sizeof d) == 0);
    FZ_ASSERT(strpbrk(t.data, ".e") != NULL);
  }
  ps_buf_free(&t);
}

static void check_item(const ps_item_t *it) {
  if (it->type == PS_V_STR)
    FZ_ASSERT(ps_utf8_valid(it->s, it->len) ==
              utf8_reference((const unsigned char *)it->s, it->len));
  else if (it->type == PS_V_FLOAT)
    check_number_text(it->d);
}

static void put_scalar(ps_buf_t *b, const ps_item_t *it) {
  switch (it->type) {
    case PS_V_NIL: ps_put_nil(b); break;
    case PS_V_BOOL: ps_put_bool(b, (int)it->i); break;
    case PS_V_INT: ps_put_int(b, it->i); break;
    case PS_V_FLOAT: ps_put_float(b, it->d); break;
    case PS_V_STR: ps_put_str(b, it->s, it->len); break;
    default: FZ_ASSERT(!"a table is not a scalar");
  }
}

/* Re-encodes one value through ps_read_item and the ps_put_* writers, the
   way the bindings decode a value and encode it again. Only for values
   that ps_skip_value accepted: those must copy without an error. */
static int copy_value(ps_reader_t *r, ps_buf_t *b, int depth) {
  ps_item_t it;
  if (depth > PS_MAX_DEPTH || ps_read_item(r, &it) != 0) return -1;
  check_item(&it);
  if (it.type != PS_V_TABLE) {
    put_scalar(b, &it);
    return 0;
  }
  ps_put_table(b, it.narr, it.nhash);
  for (uint64_t k = 0; k < it.narr; k++)
    if (copy_value(r, b, depth + 1) != 0) return -1;
  for (uint64_t k = 0; k < it.nhash; k++) {
    ps_item_t key;
    if (ps_read_item(r, &key) != 0 || key.type == PS_V_NIL || key.type == PS_V_TABLE) return -1;
    check_item(&key);
    put_scalar(b, &key);
    if (copy_value(r, b, depth + 1) != 0) return -1;
  }
  return 0;
}

/* ps_json_write over [p, p+n): the code, the JSON in b and in *used how
   many bytes it read. */
static int json_of(const char *p, size_t n, int strict, ps_buf_t *b, size_t *used) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  ps_buf_init(b);
  int rc = ps_json_write(&r, b, strict);
  *used = n - ps_reader_left(&r);
  return rc;
}

static int same_bytes(const ps_buf_t *a, const ps_buf_t *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Checks the copy of a valid value of `used` bytes: it reads back as one
   valid value, it is no longer than the original (the writers use the
   shortest forms), it is its own copy, and its JSON is the original's. */
static void check_copy(const char *p, size_t used, const ps_buf_t *loose) {
  ps_buf_t c, cc, cj;
  ps_reader_t r;
  size_t cused;
  ps_buf_init(&c);
  ps_buf_init(&cc);
  ps_reader_init(&r, p, used);
  FZ_ASSERT(copy_value(&r, &c, 0) == 0);
  FZ_ASSERT(ps_reader_left(&r) == 0);
  if (!c.failed) {
    FZ_ASSERT(c.len <= used);
    ps_reader_init(&r, c.data, c.len);
    FZ_ASSERT(ps_skip_value(&r, 0) == 0 && ps_reader_left(&r) == 0);
    ps_reader_init(&r, c.data, c.len);
    FZ_ASSERT(copy_value(&r, &cc, 0) == 0);
    if (!cc.failed) FZ_ASSERT(same_bytes(&c, &cc));
    int rc = json_of(c.data, c.len, 0, &cj, &cused);
    FZ_ASSERT(rc == 0 && cused == c.len);
    if (!cj.failed && !loose->failed) FZ_ASSERT(same_bytes(&cj, loose));
    ps_buf_free(&cj);
  }
  ps_buf_free(&c);
  ps_buf_free(&cc);
}

/* Strict JSON is exact: it reads back (ps_json_read) to a value whose
   strict JSON is the same text. */
static void check_round_trip(const ps_buf_t *strict) {
  ps_buf_t v, again;
  ps_buf_init(&v);
  FZ_ASSERT(ps_json_read(strict->data ? strict->data : "", strict->len, &v) == 0);
  size_t used;
  int rc = json_of(v.data, v.len, 1, &again, &used);
  FZ_ASSERT(rc == 0 && used == v.len);
  if (!again.failed) FZ_ASSERT(same_bytes(&again, strict));
  ps_buf_free(&v);
  ps_buf_free(&again);
}

/* The checks of fz_read_value, and with `deep` those of fz_check_value. */
static int check_value(const char *p, size_t n, int deep) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  int valid = ps_skip_value(&r, 0) == 0;
  size_t used = n - ps_reader_left(&r);
  FZ_ASSERT(used <= n);

  /* The lenient writer (logs, exports) takes whatever bytes it is given;
     on a valid value it must succeed and stop where ps_skip_value did. */
  ps_buf_t loose, strict;
  size_t lused, sused;
  int lrc = json_of(p, n, 0, &loose, &lused);
  if (valid) FZ_ASSERT(lrc == 0 && lused == used);
  if (deep && lrc == 0 && !loose.failed) {
    ps_buf_t v;
    ps_buf_init(&v);
    FZ_ASSERT(ps_json_read(loose.data ? loose.data : "", loose.len, &v) == 0);
    ps_buf_free(&v);
  }

  /* The strict writer (the store's JSON columns) accepts a subset of the
     valid values and then writes what the lenient one writes. */
  int src = json_of(p, n, 1, &strict, &sused);
  if (src == 0) {
    FZ_ASSERT(valid && sused == used && lrc == 0);
    if (!strict.failed && !loose.failed) FZ_ASSERT(same_bytes(&strict, &loose));
    if (deep && !strict.failed) check_round_trip(&strict);
  }

  if (valid && deep) {
    check_copy(p, used, &loose);
  } else if (valid) {
    /* The worker's decoding: ps_read_item all the way down. */
    ps_buf_t c;
    ps_buf_init(&c);
    ps_reader_init(&r, p, used);
    FZ_ASSERT(copy_value(&r, &c, 0) == 0 && ps_reader_left(&r) == 0);
    ps_buf_free(&c);
  }
  ps_buf_free(&loose);
  ps_buf_free(&strict);
  return valid && used == n;
}

int fz_read_value(const char *p, size_t n) { return check_value(p, n, 0); }

int fz_check_value(const char *p, size_t n) { return check_value(p, n, 1); }

void fz_check_json(const char *p, size_t n) {
  ps_buf_t v;
  ps_buf_init(&v);
  if (ps_json_read(p, n, &v) == 0 && !v.failed) {
    ps_reader_t r;
    ps_reader_init(&r, v.data, v.len);
    FZ_ASSERT(ps_skip_value(&r, 0) == 0 && ps_reader_left(&r) == 0);
    FZ_ASSERT(fz_check_value(v.data, v.len));
  }
  ps_buf_free(&v);
}
