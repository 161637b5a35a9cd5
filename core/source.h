/*
 * source.h: where a stage's psets come from, by index, without Lua. A
 * product computes pset i from its axes (nothing is materialised); an
 * array holds psets already encoded by the bindings.
 */
#ifndef PS_SOURCE_H
#define PS_SOURCE_H

#include "buf.h"
#include "ps.h"
#include "resources.h"

typedef struct ps_source_s ps_source_t;
/* More distinct pset keys than any SQLite table can have columns. */
#define PS_SOURCE_KEYS_MAX 32767

struct ps_source_s {
  int64_t count;
  /* Every key of its psets, each once, in the order they first appear
     (a product's: sorted by name, as encoded), as value-encoded strings
     back to back: the store makes their columns before any row, so that
     no result can take a pset key's column. nkeys is -1 when there are
     more than PS_SOURCE_KEYS_MAX. Owned by the source. */
  const char *keys;
  size_t keys_len;
  int64_t nkeys;
  /* Appends the encoding of pset i (0-based) to out. */
  void (*get)(ps_source_t *s, int64_t i, ps_buf_t *out);
  /* The limits pset i sets for itself (its _psurvey table), or NULL. */
  const ps_limits_t *(*limits)(ps_source_t *s, int64_t i);
  void (*free)(ps_source_t *s);
};

/* What an axis of a product is: a list of values, or values computed from
   their index (psurvey.range, psurvey.linspace, psurvey.logspace). */
enum { PS_AXIS_LIST, PS_AXIS_INT, PS_AXIS_FLOAT, PS_AXIS_LINSPACE, PS_AXIS_LOGSPACE };

/* One key of a product. */
typedef struct ps_axis_s {
  char *name;
  size_t namelen;
  int kind;
  int64_t n;
  ps_buf_t values;       /* list: the encodings, back to back */
  size_t *offsets;       /* list: n + 1 offsets into values */
  int64_t ifirst, istep; /* integer range */
  double first, step;    /* float range, linspace, logspace (step: of the exponent) */
  double last;           /* float range: the bound no value passes; linspace: its last value */
  double span;           /* linspace: last - first */
  int decimals;          /* float range: decimal places its values are rounded to, or -1 */
} ps_axis_t;

/*
 * Range axes. Each fills a's kind, n and the fields of its kind, and
 * returns 0; or PS_EVALUE with why in err (the caller names the
 * arguments). Arguments are finite and a step is not 0: the caller checks.
 *
 * An integer range is first, first + step, ... up to last, exactly; a count
 * over 2^63 - 1 is an error. `last` may be a float: the integers up to it.
 *
 * A float range gives the decimals its arguments were written with: value
 * k is first + k*step rounded to as many decimal places as first and step
 * have in their shortest decimal form, when that is 15 or fewer (so
 * range(2.8, 4.0, 0.05) has 2.85, not 2.8499999999999996); with more, it is
 * first + k*step. It never passes last: a value that rounding put beyond
 * last by a few units in the last place counts, and is last. More than 2^53
 * values is an error.
 *
 * A linspace is numpy.linspace(first, last, n): k*step + first with step =
 * (last - first) / (n - 1), the last value exactly `last`. A logspace is
 * numpy.logspace: 10^x for each x of that linspace.
 */
int ps_axis_range_int(ps_axis_t *a, int64_t first, int64_t last, int64_t step, ps_err_t *err);
int ps_axis_range_int_to(ps_axis_t *a, int64_t first, double last, int64_t step, ps_err_t *err);
int ps_axis_range_float(ps_axis_t *a, double first, double last, double step, ps_err_t *err);
int ps_axis_linspace(ps_axis_t *a, double first, double last, int64_t n, int log, ps_err_t *err);

/* Value k (0-based, below n) of a range axis: ps_axis_int for PS_AXIS_INT,
   ps_axis_float for the others. The product and psurvey.range's indexing
   both compute values here, so they cannot disagree. */
int64_t ps_axis_int(const ps_axis_t *a, int64_t k);
double ps_axis_float(const ps_axis_t *a, int64_t k);

/* A product of naxes axes, enumerated with axis order[naxes-1] varying
   fastest. The pset encoding lists keys sorted by name. Takes ownership of
   the axes' buffers. Returns NULL when out of memory. */
ps_source_t *ps_product_new(ps_axis_t *axes, int naxes, const int *order, ps_err_t *err);

/* An array of pre-encoded psets: data holds them back to back, offsets has
   count + 1 entries; limits (may be NULL) has count entries, NULL where a
   pset sets none. Takes ownership of all three. */
ps_source_t *ps_array_new(char *data, int64_t *offsets, ps_limits_t **limits, int64_t count);

#endif
