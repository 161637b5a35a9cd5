/* buf.c: the growable byte buffer of buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ps.h"

void ps_buf_init(ps_buf_t *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

void ps_buf_free(ps_buf_t *b) {
  free(b->data);
  ps_buf_init(b);
}

int ps_buf_grow(ps_buf_t *b, size_t extra) {
  if (b->failed) return PS_ENOMEM;
  if (b->cap - b->len >= extra) return 0;
  size_t want = b->len + extra;
  if (want < b->len) goto fail; /* overflow */
  size_t cap = b->cap ? b->cap : 64;
  while (cap < want) {
    if (cap > SIZE_MAX / 2) goto fail;
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) goto fail;
  b->data = p;
  b->cap = cap;
  return 0;
fail:
  b->failed = 1;
  return PS_ENOMEM;
}

char *ps_buf_steal(ps_buf_t *b, size_t *len) {
  char *p = b->data;
  if (len) *len = b->len;
  ps_buf_init(b);
  return p;
}

void ps_buf_printf(ps_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    ps_buf_put(b, small, (size_t)n);
    return;
  }
  if (ps_buf_reserve(b, (size_t)n + 1) != 0) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void ps_buf_patch_varint(ps_buf_t *b, size_t pos, uint64_t v) {
  unsigned char tmp[10];
  size_t k = 0;
  if (b->failed) return;
  while (v >= 0x80) tmp[k++] = (unsigned char)(v | 0x80), v >>= 7;
  tmp[k++] = (unsigned char)v;
  if (ps_buf_reserve(b, k - 1) != 0) return;
  memmove(b->data + pos + k, b->data + pos + 1, b->len - pos - 1);
  memcpy(b->data + pos, tmp, k);
  b->len += k - 1;
}
