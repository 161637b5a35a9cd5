/*
 * lcodec.h: Lua values to and from the wire encoding of core/value.h.
 * This and the other core/lua/ files are the only C that speaks both Lua
 * and the engine.
 */
#ifndef PSL_CODEC_H
#define PSL_CODEC_H

#include <lua.h>

#include "buf.h"

/* Why an encoding failed: what was found and where (a key path such as
   ".a.b[3]", empty for the value itself). */
typedef struct psL_encerr_s {
  char what[160];
  char path[256];
} psL_encerr_t;

/*
 * Appends the value at idx to b. canonical sorts table keys, so equal
 * values always give equal bytes (pset hashing). Never raises for a value
 * that cannot travel: returns -1 and fills e. Does not call metamethods.
 */
int psL_encode(lua_State *L, int idx, ps_buf_t *b, int canonical, psL_encerr_t *e);

/* Pushes the value encoded in s[0..n). On malformed bytes pushes nothing,
   returns -1 and writes a message into err. */
int psL_decode(lua_State *L, const char *s, size_t n, char *err, size_t errsz);

/* Decodes one value from a reader position, for frames holding several. */
struct ps_reader_s;
int psL_decode_from(lua_State *L, struct ps_reader_s *r, char *err, size_t errsz);

/* Pushes an item read from the store or a frame as a Lua value; raises
   when a table's encoding is malformed. */
struct ps_item_s;
void psL_push_item(lua_State *L, const struct ps_item_s *it);

/* Formats a key for an error path: ".name", "[3]" or "[\"a b\"]". */
void psL_keypath(lua_State *L, int keyidx, char *out, size_t outsz);

#endif
