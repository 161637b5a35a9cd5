/*
 * view.h: the psets of another source, picked by index: those a filter
 * kept (an array of their indices, 8 bytes a pset) or all of them in a
 * seeded order (a keyed bijection on [0, n), space.h: no array at all).
 * A view computes nothing of its own: pset i is the base's pset at the
 * picked index, with the limits that pset sets for itself, and its keys
 * are the base's. It does not own the base, which must outlive it (the
 * bindings tie their lives together).
 */
#ifndef PS_VIEW_H
#define PS_VIEW_H

#include <stdint.h>

#include "source.h"

/* The base's psets at index[0..count-1] (0-based, each below the base's
   count). Takes ownership of index. NULL when out of memory (the caller
   keeps index). */
ps_source_t *ps_view_new(ps_source_t *base, int64_t *index, int64_t count);

/* The base's psets in the order of a bijection keyed by seed: pset i is
   the base's p(i). The same seed gives the same order. NULL when out of
   memory. */
ps_source_t *ps_shuffle_new(ps_source_t *base, uint64_t seed);

#endif
