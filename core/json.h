/*
 * json.h: JSON for what people read: exports and nested tables in SQLite.
 * Exact where JSON allows it: integers stay integers, floats are written
 * with the fewest digits that read back to the same double and always with
 * a '.' or an exponent, so a reader can tell them from integers.
 */
#ifndef PS_JSON_H
#define PS_JSON_H

#include "buf.h"
#include "value.h"

/* Writes the value at r. strict: fail with PS_EVALUE on what JSON cannot
   hold exactly (a string that is not UTF-8, NaN, infinities, a table mixing
   array and string keys, holes); otherwise write a best effort (such
   strings with \u00XX escapes per byte, NaN and infinities as null). */
int ps_json_write(ps_reader_t *r, ps_buf_t *b, int strict);

/* Writes s as a JSON string. */
void ps_json_string(ps_buf_t *b, const char *s, size_t n);

/* The shortest text of d that reads back exactly ("0.1", "1.0", "1e+300"). */
void ps_number_text(ps_buf_t *b, double d);

/* Parses JSON text into the value encoding. PS_EPROTO on bad input. */
int ps_json_read(const char *s, size_t n, ps_buf_t *out);

#endif
