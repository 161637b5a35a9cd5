/* value.c: reading and writing the wire encoding of value.h. */
#include "value.h"

#include <string.h>

int ps_read_varint(ps_reader_t *r, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return PS_EPROTO;
    unsigned c = *r->p++;
    if (shift == 63 && (c & 0x7e)) return PS_EPROTO; /* more than 64 bits */
    x |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return PS_EPROTO;
}

int ps_read_byte(ps_reader_t *r, int *c) {
  if (r->p >= r->end) return PS_EPROTO;
  *c = *r->p++;
  return 0;
}

int ps_read_bytes(ps_reader_t *r, const char **s, size_t *len) {
  uint64_t n;
  if (ps_read_varint(r, &n) != 0 || n > ps_reader_left(r)) return PS_EPROTO;
  *s = (const char *)r->p;
  *len = (size_t)n;
  r->p += n;
  return 0;
}

int ps_read_item(ps_reader_t *r, ps_item_t *it) {
  int tag;
  uint64_t u;
  if (ps_read_byte(r, &tag) != 0) return PS_EPROTO;
  if (tag >= PS_TAG_FIXINT) {
    it->type = PS_V_INT;
    it->i = tag - PS_TAG_FIXINT;
    return 0;
  }
  if (tag >= PS_TAG_FIXSTR) {
    size_t n = (size_t)(tag - PS_TAG_FIXSTR);
    if (n > ps_reader_left(r)) return PS_EPROTO;
    it->type = PS_V_STR;
    it->s = (const char *)r->p;
    it->len = n;
    r->p += n;
    return 0;
  }
  switch (tag) {
    case PS_TAG_NIL: it->type = PS_V_NIL; return 0;
    case PS_TAG_FALSE:
    case PS_TAG_TRUE:
      it->type = PS_V_BOOL;
      it->i = tag == PS_TAG_TRUE;
      return 0;
    case PS_TAG_INT:
      if (ps_read_varint(r, &u) != 0) return PS_EPROTO;
      it->type = PS_V_INT;
      it->i = (int64_t)((u >> 1) ^ (~(u & 1) + 1)); /* zigzag */
      return 0;
    case PS_TAG_FLOAT: {
      if (ps_reader_left(r) < 8) return PS_EPROTO;
      uint64_t bits = 0;
      for (int k = 7; k >= 0; k--) bits = bits << 8 | r->p[k];
      r->p += 8;
      memcpy(&it->d, &bits, 8);
      it->type = PS_V_FLOAT;
      return 0;
    }
    case PS_TAG_STR: it->type = PS_V_STR; return ps_read_bytes(r, &it->s, &it->len);
    case PS_TAG_TABLE:
      if (ps_read_varint(r, &it->narr) != 0 || ps_read_varint(r, &it->nhash) != 0) return PS_EPROTO;
      /* Every value takes at least one byte: cheap early rejection of
         counts that cannot fit in what is left. */
      if (it->narr > ps_reader_left(r) || it->nhash > ps_reader_left(r) / 2) return PS_EPROTO;
      it->type = PS_V_TABLE;
      return 0;
    default: return PS_EPROTO;
  }
}

int ps_skip_value(ps_reader_t *r, int depth) {
  ps_item_t it;
  if (depth > PS_MAX_DEPTH) return PS_EPROTO;
  if (ps_read_item(r, &it) != 0) return PS_EPROTO;
  if (it.type != PS_V_TABLE) return 0;
  for (uint64_t k = 0; k < it.narr; k++)
    if (ps_skip_value(r, depth + 1) != 0) return PS_EPROTO;
  for (uint64_t k = 0; k < it.nhash; k++) {
    ps_item_t key;
    if (ps_read_item(r, &key) != 0) return PS_EPROTO;
    /* Keys are scalars; nil and NaN cannot be keys in Lua. */
    if (key.type == PS_V_NIL || key.type == PS_V_TABLE) return PS_EPROTO;
    if (key.type == PS_V_FLOAT && key.d != key.d) return PS_EPROTO;
    if (ps_skip_value(r, depth + 1) != 0) return PS_EPROTO;
  }
  return 0;
}

void ps_put_nil(ps_buf_t *b) { ps_buf_putc(b, PS_TAG_NIL); }

void ps_put_bool(ps_buf_t *b, int v) { ps_buf_putc(b, v ? PS_TAG_TRUE : PS_TAG_FALSE); }

void ps_put_int(ps_buf_t *b, int64_t v) {
  if (v >= 0 && v < 128) {
    ps_buf_putc(b, PS_TAG_FIXINT + (int)v);
    return;
  }
  ps_buf_putc(b, PS_TAG_INT);
  uint64_t u = (uint64_t)v;
  ps_buf_put_varint(b, (u << 1) ^ (v < 0 ? ~(uint64_t)0 : 0));
}

void ps_put_float(ps_buf_t *b, double v) {
  unsigned char out[9];
  uint64_t bits;
  memcpy(&bits, &v, 8);
  out[0] = PS_TAG_FLOAT;
  for (int k = 0; k < 8; k++) out[1 + k] = (unsigned char)(bits >> (8 * k));
  ps_buf_put(b, out, 9);
}

void ps_put_str(ps_buf_t *b, const char *s, size_t len) {
  if (len < 64) {
    ps_buf_putc(b, PS_TAG_FIXSTR + (int)len);
  } else {
    ps_buf_putc(b, PS_TAG_STR);
    ps_buf_put_varint(b, len);
  }
  ps_buf_put(b, s, len);
}

void ps_put_table(ps_buf_t *b, uint64_t narr, uint64_t nhash) {
  ps_buf_putc(b, PS_TAG_TABLE);
  ps_buf_put_varint(b, narr);
  ps_buf_put_varint(b, nhash);
}

void ps_put_bytes(ps_buf_t *b, const void *s, size_t len) {
  ps_buf_put_varint(b, len);
  ps_buf_put(b, s, len);
}

int ps_utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str, *end = s + len;
  while (s < end) {
    unsigned c = *s;
    if (c < 0x80) {
      s++;
      continue;
    }
    int n;
    unsigned min;
    if ((c & 0xe0) == 0xc0)
      n = 1, min = 0x80, c &= 0x1f;
    else if ((c & 0xf0) == 0xe0)
      n = 2, min = 0x800, c &= 0x0f;
    else if ((c & 0xf8) == 0xf0)
      n = 3, min = 0x10000, c &= 0x07;
    else
      return 0;
    if (end - s < n + 1) return 0;
    for (int k = 1; k <= n; k++) {
      if ((s[k] & 0xc0) != 0x80) return 0;
      c = c << 6 | (s[k] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    s += n + 1;
  }
  return 1;
}
