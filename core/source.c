/* source.c: lazy products and pre-encoded arrays of psets (source.h). */
#include "source.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "value.h"

typedef struct product_s {
  ps_source_t base;
  int naxes;
  ps_axis_t *axes; /* sorted by name: the encoding order */
  int *order;      /* enumeration order, as indexes into axes */
  ps_buf_t keys;   /* encoded names, in axes order */
  size_t *keyoffs;
} product_t;

static void axis_put(const ps_axis_t *a, int64_t k, ps_buf_t *out) {
  if (a->kind == PS_AXIS_LIST)
    ps_buf_put(out, a->values.data + a->offsets[k], a->offsets[k + 1] - a->offsets[k]);
  else if (a->kind == PS_AXIS_INT)
    ps_put_int(out, ps_axis_int(a, k));
  else
    ps_put_float(out, ps_axis_float(a, k));
}

static void product_get(ps_source_t *s, int64_t i, ps_buf_t *out) {
  product_t *p = (product_t *)s;
  int64_t digit[64];
  int64_t *d = p->naxes <= 64 ? digit : malloc(sizeof(int64_t) * (size_t)p->naxes);
  if (d == NULL) {
    out->failed = 1;
    return;
  }
  for (int k = p->naxes - 1; k >= 0; k--) {
    const ps_axis_t *a = &p->axes[p->order[k]];
    d[p->order[k]] = i % a->n;
    i /= a->n;
  }
  ps_put_table(out, 0, (uint64_t)p->naxes);
  for (int k = 0; k < p->naxes; k++) {
    ps_buf_put(out, p->keys.data + p->keyoffs[k], p->keyoffs[k + 1] - p->keyoffs[k]);
    axis_put(&p->axes[k], d[k], out);
  }
  if (d != digit) free(d);
}

static void product_free(ps_source_t *s) {
  product_t *p = (product_t *)s;
  for (int k = 0; k < p->naxes; k++) {
    free(p->axes[k].name);
    ps_buf_free(&p->axes[k].values);
    free(p->axes[k].offsets);
  }
  free(p->axes);
  free(p->order);
  ps_buf_free(&p->keys);
  free(p->keyoffs);
  free(p);
  ps_census_add(PS_CENSUS_SOURCES, -1);
}

static int axis_cmp(const void *a, const void *b) {
  const ps_axis_t *x = a, *y = b;
  size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return x->namelen < y->namelen ? -1 : x->namelen > y->namelen;
}

ps_source_t *ps_product_new(ps_axis_t *axes, int naxes, const int *order, ps_err_t *err) {
  product_t *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  ps_census_add(PS_CENSUS_SOURCES, 1);
  p->naxes = naxes;
  p->axes = malloc(sizeof(ps_axis_t) * (size_t)(naxes ? naxes : 1));
  p->order = malloc(sizeof(int) * (size_t)(naxes ? naxes : 1));
  p->keyoffs = malloc(sizeof(size_t) * (size_t)(naxes + 1));
  ps_buf_init(&p->keys);
  p->base.get = product_get;
  p->base.free = product_free;
  if (p->axes == NULL || p->order == NULL || p->keyoffs == NULL) goto oom;
  /* Sort a copy by name, remembering where each given axis went. */
  memcpy(p->axes, axes, sizeof(ps_axis_t) * (size_t)naxes);
  qsort(p->axes, (size_t)naxes, sizeof(ps_axis_t), axis_cmp);
  for (int k = 0; k < naxes; k++)
    for (int j = 0; j < naxes; j++)
      if (p->axes[j].name == axes[order[k]].name) p->order[k] = j;
  int64_t count = naxes ? 1 : 0;
  for (int k = 0; k < naxes; k++) {
    const ps_axis_t *a = &p->axes[k];
    if (k > 0 && axis_cmp(&p->axes[k - 1], a) == 0) {
      ps_err_set(err, PS_EVALUE, "key '%s' appears twice in the product", a->name);
      goto fail;
    }
    if (a->n == 0)
      count = 0;
    else if (count > INT64_MAX / a->n) {
      ps_err_set(err, PS_EVALUE, "the product has more than 2^63 psets");
      goto fail;
    } else
      count *= a->n;
    p->keyoffs[k] = p->keys.len;
    ps_put_str(&p->keys, a->name, a->namelen);
  }
  p->keyoffs[naxes] = p->keys.len;
  if (p->keys.failed) goto oom;
  p->base.count = count;
  p->base.keys = p->keys.data;
  p->base.keys_len = p->keys.len;
  p->base.nkeys = naxes;
  return &p->base;
oom:
  ps_err_set(err, PS_ENOMEM, "out of memory");
fail:
  /* The axes stay owned by the caller on failure. */
  p->naxes = 0;
  product_free(&p->base);
  return NULL;
}

/* Range axes (source.h). */

int ps_axis_range_int(ps_axis_t *a, int64_t first, int64_t last, int64_t step, ps_err_t *err) {
  a->kind = PS_AXIS_INT;
  a->ifirst = first;
  a->istep = step;
  a->n = 0;
  if (step > 0 ? last < first : last > first) return 0;
  /* The span and the step as unsigned magnitudes: last - first overflows
     int64 for range(math.mininteger, math.maxinteger, 4), whose 2^62
     values are fine. */
  uint64_t span = step > 0 ? (uint64_t)last - (uint64_t)first : (uint64_t)first - (uint64_t)last;
  uint64_t mag = step > 0 ? (uint64_t)step : 0 - (uint64_t)step;
  uint64_t q = span / mag;
  if (q >= (uint64_t)INT64_MAX) return ps_err_set(err, PS_EVALUE, "more than 2^63 - 1 values");
  a->n = (int64_t)q + 1;
  return 0;
}

int ps_axis_range_int_to(ps_axis_t *a, int64_t first, double last, int64_t step, ps_err_t *err) {
  /* The integers up to a float last: its floor going up, its ceiling going
     down. A last beyond every integer stands for the largest (smallest)
     one; a last before every integer leaves the range empty. */
  if (step > 0 ? last < -0x1p63 : last >= 0x1p63) {
    ps_axis_range_int(a, first, first, step, err); /* one value: it cannot fail */
    a->n = 0;
    return 0;
  }
  if (step > 0)
    return ps_axis_range_int(a, first, last >= 0x1p63 ? INT64_MAX : (int64_t)floor(last), step,
                             err);
  return ps_axis_range_int(a, first, last < -0x1p63 ? INT64_MIN : (int64_t)ceil(last), step, err);
}

int64_t ps_axis_int(const ps_axis_t *a, int64_t k) {
  /* In unsigned arithmetic, which wraps where int64 would overflow on the
     way to a value that fits. */
  return (int64_t)((uint64_t)a->ifirst + (uint64_t)k * (uint64_t)a->istep);
}

/* Decimal places of the shortest decimal form of x that reads back to x
   (0.05: 2, 2.8: 1, 1e+20: 0, 1/3: 16). */
static int decimals_of(double x) {
  char s[40];
  for (int p = 0; p < 17; p++) {
    snprintf(s, sizeof s, "%.*e", p, x);
    if (strtod(s, NULL) == x) {
      int e = atoi(strchr(s, 'e') + 1);
      return p > e ? p - e : 0;
    }
  }
  return 17; /* not reached: 17 significant digits always read back */
}

static const double pow10s[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* The double nearest to v rounded to d decimal places: what printing v
   with "%.*f" and reading it back with strtod gives (both exact in glibc),
   and a zero without a sign. The fast paths give the same, some 50 times
   faster. Below 2^53, t = v * 10^d and e = fma(v, 10^d, -t) add up to the
   exact product, and t - m is exact (from 2^52 up, t is the integer m), so
   f = (t - m) + e is the distance of the exact product from the integer m
   nearest to t, within 2^-54. Unless that is a near tie (a value exactly
   halfway, which %.*f breaks by the exact digits), it says which integer
   the exact product rounds to, and that integer over 10^d (two exact
   doubles, one correctly rounded division) is the double nearest to the
   decimal, as strtod's result is. From 2^53 up, v is an integer (d <= 15)
   or its unit in the last place is over 10^-d: the decimal is less than
   half a unit away from v, whose nearest double it is. */
static double round_decimals(double v, int d) {
  double p = pow10s[d], t = v * p, r;
  if (!(fabs(t) < 0x1p53)) return v;
  double m = nearbyint(t);
  double f = (t - m) + fma(v, p, -t);
  if (fabs(fabs(f) - 0.5) > 0x1p-20) {
    r = (f > 0.5 ? m + 1 : f < -0.5 ? m - 1 : m) / p;
    return r == 0 ? 0.0 : r;
  }
  char s[400]; /* DBL_MAX has 309 digits before the point */
  snprintf(s, sizeof s, "%.*f", d, v);
  r = strtod(s, NULL);
  return r == 0 ? 0.0 : r;
}

/* Value k of a float range, before it is held at last. */
static double range_raw(const ps_axis_t *a, int64_t k) {
  double v = a->first + (double)k * a->step;
  return a->decimals >= 0 ? round_decimals(v, a->decimals) : v;
}

/* Whether value k of a float range is within last, tol included. */
static int range_has(const ps_axis_t *a, int64_t k, double tol) {
  double v = range_raw(a, k);
  return a->step > 0 ? v <= a->last + tol : v >= a->last - tol;
}

int ps_axis_range_float(ps_axis_t *a, double first, double last, double step, ps_err_t *err) {
  a->kind = PS_AXIS_FLOAT;
  a->first = first;
  a->last = last;
  a->step = step;
  int d = decimals_of(first), ds = decimals_of(step);
  a->decimals = ds > d ? ds : d;
  if (a->decimals > 15) a->decimals = -1;
  a->n = 0;
  double q = (last - first) / step;
  if (q > 0x1p53)
    return ps_err_set(err, PS_EVALUE, "more than 2^53 values, which floats cannot count");
  /* Rounding error: a few units in the last place of the largest value,
     never half a step (that would be a value of its own). */
  double tol = fmin(fabs(step) / 2, 0x1p-51 * fmax(fabs(first), fabs(last)));
  int64_t n = q < 0 ? 0 : (int64_t)q + 1;
  /* q is off by a rounding error, a few values at most: the values decide.
     They never decrease (each step of the computation is monotonic), so
     the range ends before the first value beyond last; a value that does
     not grow (a step below the precision of first) is not a new one. */
  for (int k = 0; k < 64 && n > 0 && !range_has(a, n - 1, tol); k++) n--;
  for (int k = 0;
       k < 64 && range_has(a, n, tol) && (n == 0 || range_raw(a, n) != range_raw(a, n - 1)); k++)
    n++;
  a->n = n;
  return 0;
}

int ps_axis_linspace(ps_axis_t *a, double first, double last, int64_t n, int log, ps_err_t *err) {
  a->kind = log ? PS_AXIS_LOGSPACE : PS_AXIS_LINSPACE;
  a->first = first;
  a->last = last;
  a->n = n;
  a->span = last - first;
  if (!isfinite(a->span)) return ps_err_set(err, PS_EVALUE, "the span is not a finite number");
  a->step = n > 1 ? a->span / (double)(n - 1) : 0;
  return 0;
}

/* numpy.linspace's value k, in numpy's order of operations. */
static double linspace_at(const ps_axis_t *a, int64_t k) {
  if (a->n > 1 && k == a->n - 1) return a->last;
  if (a->n > 1 && a->step == 0) return ((double)k / (double)(a->n - 1)) * a->span + a->first;
  if (a->n > 1) return (double)k * a->step + a->first;
  return (double)k * a->span + a->first;
}

double ps_axis_float(const ps_axis_t *a, int64_t k) {
  if (a->kind == PS_AXIS_LINSPACE) return linspace_at(a, k);
  if (a->kind == PS_AXIS_LOGSPACE) return pow(10.0, linspace_at(a, k));
  double v = range_raw(a, k);
  if (a->step > 0 ? v > a->last : v < a->last) v = a->last;
  return v;
}

typedef struct array_s {
  ps_source_t base;
  char *data;
  int64_t *offsets;
  ps_limits_t **limits;
  ps_buf_t keys; /* base.keys */
} array_t;

typedef struct keyref_s {
  const char *s;
  size_t len;
} keyref_t;

/*
 * Lists the distinct keys of the psets, in the order they first appear.
 * Most psets have the keys of the one before, at the same places: each
 * key is compared with the key at its place in the pset before, and only
 * a new one is looked for in the list.
 */
static int collect_keys(array_t *a) {
  keyref_t *list = NULL;
  int *prev = NULL; /* list index of the k-th key of the pset before */
  int64_t n = 0, nprev = 0, cap = 0, capprev = 0;
  int rc = 0;
  for (int64_t i = 0; i < a->base.count && rc == 0 && n >= 0; i++) {
    ps_reader_t r;
    ps_item_t t, key;
    ps_reader_init(&r, a->data + a->offsets[i], (size_t)(a->offsets[i + 1] - a->offsets[i]));
    if (ps_read_item(&r, &t) != 0 || t.type != PS_V_TABLE) continue;
    for (uint64_t k = 0; k < t.nhash && rc == 0; k++) {
      if (ps_read_item(&r, &key) != 0 || key.type != PS_V_STR || ps_skip_value(&r, 1) != 0) break;
      int64_t found = -1;
      if ((int64_t)k < nprev && list[prev[k]].len == key.len &&
          memcmp(list[prev[k]].s, key.s, key.len) == 0)
        found = prev[k];
      for (int64_t j = 0; j < n && found < 0; j++)
        if (list[j].len == key.len && memcmp(list[j].s, key.s, key.len) == 0) found = j;
      if (found < 0) {
        if (n == PS_SOURCE_KEYS_MAX) {
          n = -1;
          break;
        }
        if (n == cap) {
          cap = cap ? cap * 2 : 16;
          keyref_t *more = realloc(list, sizeof *list * (size_t)cap);
          if (more == NULL)
            rc = PS_ENOMEM;
          else
            list = more;
          if (rc) break;
        }
        list[n].s = key.s;
        list[n].len = key.len;
        found = n++;
      }
      if ((int64_t)k >= capprev) {
        capprev = (int64_t)k + 16;
        int *more = realloc(prev, sizeof *prev * (size_t)capprev);
        if (more == NULL)
          rc = PS_ENOMEM;
        else
          prev = more;
        if (rc) break;
      }
      prev[k] = (int)found;
      if ((int64_t)k + 1 > nprev) nprev = (int64_t)k + 1;
    }
  }
  for (int64_t j = 0; j < n && rc == 0; j++) ps_put_str(&a->keys, list[j].s, list[j].len);
  free(list);
  free(prev);
  if (rc == 0 && a->keys.failed) rc = PS_ENOMEM;
  a->base.keys = a->keys.data;
  a->base.keys_len = a->keys.len;
  a->base.nkeys = n;
  return rc;
}

static void array_get(ps_source_t *s, int64_t i, ps_buf_t *out) {
  array_t *a = (array_t *)s;
  ps_buf_put(out, a->data + a->offsets[i], (size_t)(a->offsets[i + 1] - a->offsets[i]));
}

static const ps_limits_t *array_limits(ps_source_t *s, int64_t i) {
  array_t *a = (array_t *)s;
  return a->limits ? a->limits[i] : NULL;
}

static void array_free(ps_source_t *s) {
  array_t *a = (array_t *)s;
  if (a->limits) {
    for (int64_t i = 0; i < a->base.count; i++)
      if (a->limits[i]) {
        ps_limits_free(a->limits[i]);
        free(a->limits[i]);
      }
    free(a->limits);
  }
  free(a->data);
  free(a->offsets);
  ps_buf_free(&a->keys);
  free(a);
  ps_census_add(PS_CENSUS_SOURCES, -1);
}

ps_source_t *ps_array_new(char *data, int64_t *offsets, ps_limits_t **limits, int64_t count) {
  array_t *a = calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  a->data = data;
  a->offsets = offsets;
  a->limits = limits;
  a->base.limits = array_limits;
  a->base.count = count;
  a->base.get = array_get;
  a->base.free = array_free;
  ps_buf_init(&a->keys);
  if (collect_keys(a) != 0) {
    /* The caller keeps data, offsets and limits on failure. */
    ps_buf_free(&a->keys);
    free(a);
    return NULL;
  }
  ps_census_add(PS_CENSUS_SOURCES, 1);
  return &a->base;
}
