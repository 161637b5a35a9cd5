/*
 * lship.h: shipping a worker function to another Lua state: its bytecode
 * and its upvalues, captured by value.
 */
#ifndef PSL_SHIP_H
#define PSL_SHIP_H

#include <lua.h>

#include "buf.h"

struct ps_reader_s;

/* Appends the function at idx to b. On failure returns -1 and writes a
   message naming the upvalue that cannot travel into err. canonical
   strips debug information and sorts table keys: the same worker gives
   the same bytes in every run, for the code hash (not for shipping: the
   tracebacks need line numbers). */
int psL_ship(lua_State *L, int idx, ps_buf_t *b, int canonical, char *err, size_t errsz);

/* What psL_unship returns for bytes that no psL_ship could have written:
   a broken or hostile peer, not a worker that cannot run here. */
#define PSL_UNSHIP_MALFORMED (-2)

/* Pushes the function shipped in r. Upvalues named _ENV are joined to
   upvalue 1 of the function at envholder, so that one lua_setupvalue on the
   holder gives every shipped function a fresh environment. With strict,
   standard names and modules resolve in the strict sandbox (lsandbox.h)
   and what it does not allow is an error. Returns 0, -1 when the code
   cannot run here (err says why: a standard function the profile does not
   allow), or PSL_UNSHIP_MALFORMED; pushes nothing on failure. May raise
   (a module fails to load): call it under lua_pcall. */
int psL_unship(lua_State *L, struct ps_reader_s *r, int envholder, int strict, char *err,
               size_t errsz);

#endif
