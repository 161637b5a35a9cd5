/*
 * census.h: counts of what the engine holds open (libuv handles, engines,
 * worker processes and other children, databases, stages, cursors, pset
 * sources), raised where each is made and lowered where it goes. The
 * bindings hand them to Lua (core.census()), and specs check them at zero
 * once a survey is shut down and its objects collected: a leak shows as a
 * count, by name, where a leak checker sees only what is never freed (a
 * handle left open in a loop that lives on is not). A count is one
 * addition, so every build keeps them: the specs check the build users
 * run.
 */
#ifndef PS_CENSUS_H
#define PS_CENSUS_H

#include <stdint.h>

enum {
  PS_CENSUS_HANDLES,  /* libuv handles, from init to their close callback */
  PS_CENSUS_ENGINES,  /* ps_engine_init .. ps_engine_close */
  PS_CENSUS_WORKERS,  /* a pool's workers, from spawn to free */
  PS_CENSUS_CHILDREN, /* processes a reaper waits for */
  PS_CENSUS_STORES,   /* open databases */
  PS_CENSUS_STAGES,   /* stages being written */
  PS_CENSUS_CURSORS,  /* open cursors */
  PS_CENSUS_SOURCES,  /* pset sources */
  PS_CENSUS_KINDS
};

void ps_census_add(int kind, int delta);
int64_t ps_census_count(int kind);
/* "handles", "engines", ... */
const char *ps_census_name(int kind);

#endif
