/*
 * lpsurvey.h: the bindings' shared entry points. psL_open_core builds the
 * table that require('psurvey.core') returns, in the host program and in
 * psurvey/core.so alike.
 */
#ifndef PSL_PSURVEY_H
#define PSL_PSURVEY_H

#include <lua.h>

int psL_open_core(lua_State *L);
void psL_open_engine(lua_State *L);
void psL_open_source(lua_State *L);
void psL_open_store(lua_State *L);
/* Pushes the metatable of psurvey.range (lrange.c), registered as
   "psurvey.range": in the driver and in every worker. */
void psL_open_range(lua_State *L);

/* A range axis (source.h) as a plain table, and back: -1 when the table
   is not one (nothing in it is trusted). */
struct ps_axis_s;
void psL_push_axis(lua_State *L, const struct ps_axis_s *a);
int psL_to_axis(lua_State *L, int idx, struct ps_axis_s *a);

/* The worker process: `psurvey worker` (lworker.c). */
int psL_worker_main(int argc, char **argv);

/* Reads a table of per-pset options (timeout, memory, ncores, retries,
   name) at idx into out; -1 and msg when a key or a value is wrong. */
struct ps_limits_s;
int psL_check_limits(lua_State *L, int idx, struct ps_limits_s *out, char *msg, size_t msgsz);

/* The objects behind a psurvey.source (lsource.c) and a psurvey.store
   (lstore.c) userdata at idx; raise when idx holds something else (or a
   closed store). */
struct ps_source_s;
struct ps_store_s;
struct ps_source_s *psL_checksource(lua_State *L, int idx);

/* Pushes a psurvey.source userdata that owns src. A view's base is the
   source userdata at index base (0: none): the new userdata keeps it
   alive, as src borrows its source. */
void psL_push_source(lua_State *L, struct ps_source_s *src, int base);
/* Adds sample, filter and shuffle (lspace.c) to the table on top. */
void psL_open_space(lua_State *L);
struct ps_store_s *psL_checkstore(lua_State *L, int idx);

#endif
