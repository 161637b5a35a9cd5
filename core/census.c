/* census.c: counts of what the engine holds open (census.h). */
#include "census.h"

#include <assert.h>

/* The driver runs one loop on one thread: plain counts do. */
static int64_t counts[PS_CENSUS_KINDS];

static const char *const names[PS_CENSUS_KINDS] = {"handles", "engines", "workers", "children",
                                                   "stores",  "stages",  "cursors", "sources"};

void ps_census_add(int kind, int delta) {
  assert(kind >= 0 && kind < PS_CENSUS_KINDS);
  counts[kind] += delta;
  assert(counts[kind] >= 0);
}

int64_t ps_census_count(int kind) {
  assert(kind >= 0 && kind < PS_CENSUS_KINDS);
  return counts[kind];
}

const char *ps_census_name(int kind) {
  assert(kind >= 0 && kind < PS_CENSUS_KINDS);
  return names[kind];
}
