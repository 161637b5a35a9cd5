/*
 * value.h: the wire encoding of Lua values, read and written without Lua.
 *
 * A value is a tag byte and its payload:
 *   0x00 nil, 0x01 false, 0x02 true
 *   0x03 integer: zigzag LEB128          0x04 float: 8 bytes, little endian
 *   0x05 string: LEB128 length, bytes    0x06 table: LEB128 narr, LEB128 nhash,
 *                                             narr values, nhash key/value pairs
 *   0x40..0x7f string of length tag-0x40 (0..63) without a length field
 *   0x80..0xff integer tag-0x80 (0..127)
 * Tags 0x07..0x0c appear only in shipped worker code (core/lua/lship.c):
 *   0x07 function: string bytecode, LEB128 nups, nups values
 *   0x08 standard library reference: string name ("math.floor")
 *   0x09 back reference: LEB128 id of a table or function seen before
 *   0x0a the pset environment (_ENV)
 *   0x0b a module: string name, loaded with require on the worker side
 *   0x0c a table with a metatable: the table (0x06), then its metatable
 * Readers never trust their input: every length is checked against the
 * bytes left and every nesting level against PS_MAX_DEPTH.
 */
#ifndef PS_VALUE_H
#define PS_VALUE_H

#include <stdint.h>

#include "buf.h"
#include "ps.h"

enum {
  PS_TAG_NIL = 0x00,
  PS_TAG_FALSE = 0x01,
  PS_TAG_TRUE = 0x02,
  PS_TAG_INT = 0x03,
  PS_TAG_FLOAT = 0x04,
  PS_TAG_STR = 0x05,
  PS_TAG_TABLE = 0x06,
  PS_TAG_FUNC = 0x07,
  PS_TAG_STDREF = 0x08,
  PS_TAG_BACKREF = 0x09,
  PS_TAG_ENV = 0x0a,
  PS_TAG_MODULE = 0x0b,
  PS_TAG_META = 0x0c,
  PS_TAG_FIXSTR = 0x40,
  PS_TAG_FIXINT = 0x80,
};

/* What a read item is. */
enum { PS_V_NIL, PS_V_BOOL, PS_V_INT, PS_V_FLOAT, PS_V_STR, PS_V_TABLE };

typedef struct ps_item_s {
  int type;
  int64_t i;      /* PS_V_BOOL (0 or 1), PS_V_INT */
  double d;       /* PS_V_FLOAT */
  const char *s;  /* PS_V_STR: not NUL-terminated */
  size_t len;     /* PS_V_STR */
  uint64_t narr;  /* PS_V_TABLE: values in the array part */
  uint64_t nhash; /* PS_V_TABLE: key/value pairs in the hash part */
} ps_item_t;

typedef struct ps_reader_s {
  const unsigned char *p, *end;
} ps_reader_t;

static inline void ps_reader_init(ps_reader_t *r, const void *p, size_t n) {
  r->p = (const unsigned char *)p;
  r->end = r->p + n;
}

static inline size_t ps_reader_left(const ps_reader_t *r) { return (size_t)(r->end - r->p); }

int ps_read_varint(ps_reader_t *r, uint64_t *v);
int ps_read_byte(ps_reader_t *r, int *c);
/* A LEB128 length followed by that many bytes. */
int ps_read_bytes(ps_reader_t *r, const char **s, size_t *len);
/* One item: a scalar, or a table's header (its contents follow). Only the
   data tags: shipping tags are PS_EPROTO here. */
int ps_read_item(ps_reader_t *r, ps_item_t *it);
/* Checks and skips one whole value of the data tags. */
int ps_skip_value(ps_reader_t *r, int depth);

/* Writers. */
void ps_put_nil(ps_buf_t *b);
void ps_put_bool(ps_buf_t *b, int v);
void ps_put_int(ps_buf_t *b, int64_t v);
void ps_put_float(ps_buf_t *b, double v);
void ps_put_str(ps_buf_t *b, const char *s, size_t len);
void ps_put_table(ps_buf_t *b, uint64_t narr, uint64_t nhash);
/* Length-prefixed bytes, as ps_read_bytes reads them. */
void ps_put_bytes(ps_buf_t *b, const void *s, size_t len);

/* 1 when the bytes are valid UTF-8 (no overlongs, no surrogates). */
int ps_utf8_valid(const char *s, size_t len);

#endif
