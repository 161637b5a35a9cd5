/*
 * view.h: the psets of another source, picked by index: those a filter
 * kept (an array of their indices, 8 bytes a pset) or all of them in a
 * seeded order (a keyed bijection on [0, n), space.h: no array at all);
 * and the product of sources of any kind (a cross), for a sample or a view
 * as an argument of psurvey.product.
 * A view computes nothing of its own: pset i is the base's pset at the
 * picked index, with the limits that pset sets for itself, and its keys
 * are the base's. It does not own the base, which must outlive it (the
 * bindings tie their lives together).
 */
#ifndef PS_VIEW_H
#define PS_VIEW_H

#include <stdint.h>

#include "ps.h"
#include "source.h"

/* The base's psets at index[0..count-1] (0-based, each below the base's
   count). Takes ownership of index. NULL when out of memory (the caller
   keeps index). */
ps_source_t *ps_view_new(ps_source_t *base, int64_t *index, int64_t count);

/* The base's psets in the order of a bijection keyed by seed: pset i is
   the base's p(i). The same seed gives the same order. NULL when out of
   memory. */
ps_source_t *ps_shuffle_new(ps_source_t *base, uint64_t seed);

/* The product of nparts sources, the first varying slowest: pset i is the
   psets of the parts at the digits of i (in the mixed radix of their
   counts) merged into one table, their keys one after the other (the
   caller makes sure no key is in two parts). Its limits are those of the
   first part whose pset sets some. Borrows the parts, as a view borrows
   its base. NULL with err: more than 2^63 psets, out of memory. */
ps_source_t *ps_cross_new(ps_source_t **parts, int nparts, ps_err_t *err);

#endif
