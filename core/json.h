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
   array and string keys, holes, a key that is not a string): the store's
   JSON columns, read back exactly by ps_json_read.
   Otherwise (exports, logs) write every value, by the conventions Python's
   json module and pandas read: NaN, infinities as the bare tokens NaN,
   Infinity, -Infinity; a string that is not UTF-8 as {"$base64": "..."}
   (ps_json_bytes); a table that is not an array as an object whose keys are
   the text of its keys (integers "1", floats as ps_number_text, booleans
   "true"), a key that is not UTF-8 with a \u00XX escape for each of its
   bytes. The one ambiguity left: a table whose only key is "$base64", with
   a string value, reads like a binary string. On the values strict accepts,
   both write the same text. */
int ps_json_write(ps_reader_t *r, ps_buf_t *b, int strict);

/* Writes s as a JSON string; bytes of a string that is not UTF-8 as
   \u00XX escapes (for keys: a value goes through ps_json_bytes). */
void ps_json_string(ps_buf_t *b, const char *s, size_t n);

/* Writes bytes as a JSON value that keeps them: a string when they are
   UTF-8, otherwise {"$base64":"..."} (RFC 4648 base64, with padding). */
void ps_json_bytes(ps_buf_t *b, const char *s, size_t n);

/* The shortest text of d that reads back exactly ("0.1", "1.0", "1e+300");
   NaN, Infinity and -Infinity for the others. */
void ps_number_text(ps_buf_t *b, double d);

/* Parses JSON text into the value encoding; also the tokens NaN, Infinity
   and -Infinity. {"$base64": ...} stays a table: the store's JSON columns
   never hold a binary string, and may hold such a table. PS_EPROTO on bad
   input. */
int ps_json_read(const char *s, size_t n, ps_buf_t *out);

#endif
