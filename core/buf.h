/*
 * buf.h: a growable byte buffer. Allocation failure is sticky: after it,
 * every put is a no-op and `failed` stays set, so a writer checks once at
 * the end instead of after every byte.
 */
#ifndef PS_BUF_H
#define PS_BUF_H

#include <stdint.h>
#include <string.h>

typedef struct ps_buf_s {
  char *data;
  size_t len, cap;
  int failed;
} ps_buf_t;

void ps_buf_init(ps_buf_t *b);
void ps_buf_free(ps_buf_t *b);
/* Makes room for `extra` more bytes; 0 on success, PS_ENOMEM otherwise. */
int ps_buf_grow(ps_buf_t *b, size_t extra);
/* Gives the bytes away: the caller frees them; b is empty afterwards. */
char *ps_buf_steal(ps_buf_t *b, size_t *len);

static inline int ps_buf_reserve(ps_buf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return !b->failed ? 0 : -1;
  return ps_buf_grow(b, extra);
}

static inline void ps_buf_put(ps_buf_t *b, const void *p, size_t n) {
  if (ps_buf_reserve(b, n) != 0) return;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
}

static inline void ps_buf_putc(ps_buf_t *b, int c) {
  if (ps_buf_reserve(b, 1) != 0) return;
  b->data[b->len++] = (char)c;
}

static inline void ps_buf_puts(ps_buf_t *b, const char *s) { ps_buf_put(b, s, strlen(s)); }

/* Unsigned LEB128. */
static inline void ps_buf_put_varint(ps_buf_t *b, uint64_t v) {
  if (ps_buf_reserve(b, 10) != 0) return;
  unsigned char *p = (unsigned char *)b->data + b->len;
  while (v >= 0x80) {
    *p++ = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  *p++ = (unsigned char)v;
  b->len = (size_t)((char *)p - b->data);
}

/* Rewrites the one byte reserved at pos as the varint of v, moving what
   follows when v needs more bytes (counts known only after writing). */
void ps_buf_patch_varint(ps_buf_t *b, size_t pos, uint64_t v);

void ps_buf_printf(ps_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
