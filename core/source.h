/*
 * source.h: where a stage's psets come from, by index, without Lua. A
 * product computes pset i from its axes (nothing is materialised); an
 * array holds psets already encoded by the bindings.
 */
#ifndef PS_SOURCE_H
#define PS_SOURCE_H

#include "buf.h"
#include "resources.h"
#include "ps.h"

typedef struct ps_source_s ps_source_t;
struct ps_source_s {
  int64_t count;
  /* Appends the encoding of pset i (0-based) to out. */
  void (*get)(ps_source_t *s, int64_t i, ps_buf_t *out);
  /* The limits pset i sets for itself (its _psurvey table), or NULL. */
  const ps_limits_t *(*limits)(ps_source_t *s, int64_t i);
  void (*free)(ps_source_t *s);
};

/* One key of a product: an explicit list of encoded values, or a range. */
typedef struct ps_axis_s {
  char *name;
  size_t namelen;
  int64_t n;
  ps_buf_t values; /* explicit: the encodings, back to back */
  size_t *offsets; /* explicit: n + 1 offsets into values */
  int is_range, is_int;
  int64_t ifirst, istep;
  double dfirst, dstep;
} ps_axis_t;

/* A product of naxes axes, enumerated with axis order[naxes-1] varying
   fastest. The pset encoding lists keys sorted by name. Takes ownership of
   the axes' buffers. Returns NULL when out of memory. */
ps_source_t *ps_product_new(ps_axis_t *axes, int naxes, const int *order, ps_err_t *err);

/* An array of pre-encoded psets: data holds them back to back, offsets has
   count + 1 entries; limits (may be NULL) has count entries, NULL where a
   pset sets none. Takes ownership of all three. */
ps_source_t *ps_array_new(char *data, int64_t *offsets, ps_limits_t **limits, int64_t count);

#endif
