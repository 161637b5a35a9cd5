/* frame.c: frame writing and the stream splitter of frame.h. */
#include "frame.h"

#include <string.h>

size_t ps_frame_begin(ps_buf_t *b, int kind) {
  size_t start = b->len;
  char hdr[PS_FRAME_HEADER] = {0, 0, 0, 0, (char)kind};
  ps_buf_put(b, hdr, sizeof hdr);
  return start;
}

void ps_frame_end(ps_buf_t *b, size_t start) {
  if (b->failed) return;
  uint32_t n = (uint32_t)(b->len - start - 4);
  unsigned char *p = (unsigned char *)b->data + start;
  p[0] = (unsigned char)n;
  p[1] = (unsigned char)(n >> 8);
  p[2] = (unsigned char)(n >> 16);
  p[3] = (unsigned char)(n >> 24);
}

void ps_framer_init(ps_framer_t *f, uint32_t max) {
  ps_buf_init(&f->in);
  f->pos = 0;
  f->max = max;
}

void ps_framer_free(ps_framer_t *f) { ps_buf_free(&f->in); }

int ps_framer_space(ps_framer_t *f, size_t want, char **p, size_t *n) {
  /* Drop what was consumed before growing, so the buffer stays small. */
  if (f->pos > 0 && (f->pos == f->in.len || f->pos > f->in.cap / 2)) {
    memmove(f->in.data, f->in.data + f->pos, f->in.len - f->pos);
    f->in.len -= f->pos;
    f->pos = 0;
  }
  /* At least one byte: a buffer never allocated has no address to offset. */
  if (ps_buf_reserve(&f->in, want ? want : 1) != 0) return PS_ENOMEM;
  *p = f->in.data + f->in.len;
  *n = f->in.cap - f->in.len;
  return 0;
}

int ps_framer_next(ps_framer_t *f, int *kind, const char **payload, size_t *len, ps_err_t *err) {
  size_t avail = f->in.len - f->pos;
  if (avail < 4) return 0;
  const unsigned char *p = (const unsigned char *)f->in.data + f->pos;
  uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  if (n < 1) return ps_err_set(err, PS_EPROTO, "empty frame");
  if (n - 1 > f->max)
    return ps_err_set(err, PS_EPROTO, "frame of %u bytes is over the limit of %u bytes", n, f->max);
  if (avail > 4 && (p[4] == 0 || p[4] > PS_MSG_LAST))
    return ps_err_set(err, PS_EPROTO, "frame of unknown kind %d", p[4]);
  if (avail < 4 + (size_t)n) {
    /* Make sure the whole frame will fit. */
    if (ps_buf_reserve(&f->in, 4 + (size_t)n - avail) != 0)
      return ps_err_set(err, PS_ENOMEM, "out of memory for a frame of %u bytes", n);
    return 0;
  }
  *kind = p[4];
  *payload = (const char *)p + 5;
  *len = n - 1;
  f->pos += 4 + (size_t)n;
  return 1;
}
