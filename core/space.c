/* space.c: samples of a space, by index, and the keyed bijection (space.h). */
#include "space.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "hash.h"
#include "value.h"

#define GOLDEN 0x9e3779b97f4a7c15ULL

/* What a draw is for: each purpose its own stream of the seed. */
enum { FOR_RANDOM = 1, FOR_STRATUM, FOR_JITTER, FOR_SHIFT };

uint64_t ps_space_hash(uint64_t k, uint64_t x) { return ps_mix64(x + ps_mix64(k + GOLDEN)); }

double ps_space_unit(uint64_t x) { return (double)(x >> 11) * 0x1p-53; }

void ps_perm_init(ps_perm_t *p, uint64_t n, uint64_t key) {
  int bits = 0;
  while (bits < 64 && ((uint64_t)1 << bits) < n) bits++;
  bits += bits & 1;
  p->n = n;
  p->half = bits / 2;
  for (int r = 0; r < PS_PERM_ROUNDS; r++) p->keys[r] = ps_space_hash(key, (uint64_t)r);
}

/* One pass of the Feistel network over 2 * half bits. */
static uint64_t feistel(const ps_perm_t *p, uint64_t x) {
  uint64_t mask = p->half >= 32 ? 0xffffffffULL : ((uint64_t)1 << p->half) - 1;
  uint64_t l = x >> p->half, r = x & mask;
  for (int k = 0; k < PS_PERM_ROUNDS; k++) {
    uint64_t t = l ^ (ps_space_hash(p->keys[k], r) & mask);
    l = r;
    r = t;
  }
  return (l << p->half) | r;
}

uint64_t ps_perm_at(const ps_perm_t *p, uint64_t i) {
  if (p->n <= 1) return i;
  uint64_t x = i;
  do x = feistel(p, x);
  while (x >= p->n);
  return x;
}

/*
 * Joe and Kuo's new-joe-kuo-6.21201, dimensions 2 to 32: the degree s of
 * the primitive polynomial, its coefficients a (the bits between its first
 * and last, most significant first) and the initial numbers m_1..m_s.
 */
static const struct {
  int s, a, m[7];
} joe_kuo[PS_SOBOL_DIMS - 1] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
    {7, 7, {1, 1, 3, 13, 7, 35, 63}},
    {7, 8, {1, 3, 5, 9, 1, 25, 53}},
    {7, 14, {1, 3, 1, 13, 9, 35, 107}},
    {7, 19, {1, 3, 1, 5, 27, 61, 31}},
    {7, 21, {1, 1, 5, 11, 19, 41, 61}},
    {7, 28, {1, 3, 5, 3, 3, 13, 69}},
    {7, 31, {1, 1, 7, 13, 1, 19, 1}},
    {7, 32, {1, 3, 7, 5, 13, 19, 59}},
    {7, 37, {1, 1, 3, 9, 25, 29, 41}},
    {7, 41, {1, 3, 5, 13, 23, 1, 55}},
    {7, 42, {1, 3, 7, 3, 13, 59, 17}},
};

/* The 64 direction numbers of Sobol dimension d (0-based). */
static void sobol_directions(int d, uint64_t v[64]) {
  if (d == 0) {
    for (int k = 0; k < 64; k++) v[k] = (uint64_t)1 << (63 - k);
    return;
  }
  int s = joe_kuo[d - 1].s, a = joe_kuo[d - 1].a;
  for (int k = 0; k < s; k++) v[k] = (uint64_t)joe_kuo[d - 1].m[k] << (63 - k);
  for (int k = s; k < 64; k++) {
    v[k] = v[k - s] ^ (v[k - s] >> s);
    for (int j = 1; j < s; j++)
      if ((a >> (s - 1 - j)) & 1) v[k] ^= v[k - j];
  }
}

typedef struct sample_s {
  ps_source_t base;
  int ndims;
  int method;
  ps_dim_t *dims;  /* sorted by name: the encoding order */
  uint64_t *key;   /* per key: its random stream (random), its jitter (lhs), its shift (sobol) */
  ps_perm_t *perm; /* lhs: per key, the stratum of each pset */
  uint64_t (*dir)[64]; /* sobol: per key, its direction numbers */
  ps_buf_t keys;       /* encoded names, in dims order */
  size_t *keyoffs;
} sample_t;

static double unit_of(const sample_t *p, int d, int64_t i) {
  if (p->method == PS_SAMPLE_RANDOM) return ps_space_unit(ps_space_hash(p->key[d], (uint64_t)i));
  if (p->method == PS_SAMPLE_SOBOL) {
    uint64_t g = (uint64_t)i ^ ((uint64_t)i >> 1), x = 0;
    for (int k = 0; g; k++, g >>= 1)
      if (g & 1) x ^= p->dir[d][k];
    return ps_space_unit(x ^ p->key[d]);
  }
  double n = (double)p->base.count, s = (double)ps_perm_at(&p->perm[d], (uint64_t)i);
  double u = (s + ps_space_unit(ps_space_hash(p->key[d], (uint64_t)i))) / n;
  while (u * n >= s + 1) u = nextafter(u, 0);
  while (u * n < s) u = nextafter(u, 1);
  return u;
}

void ps_sample_units(ps_source_t *s, int64_t i, double *u) {
  sample_t *p = (sample_t *)s;
  for (int d = 0; d < p->ndims; d++) u[d] = unit_of(p, d, i);
}

/* Holds x in [lo, hi). */
static double within(double x, double lo, double hi) {
  if (x >= hi) x = nextafter(hi, lo);
  return x < lo ? lo : x;
}

static void dim_put(const ps_dim_t *a, double u, ps_buf_t *out) {
  if (a->kind == PS_DIM_UNIFORM) {
    ps_put_float(out, within(a->lo + u * (a->hi - a->lo), a->lo, a->hi));
  } else if (a->kind == PS_DIM_LOG) {
    double ll = log(a->lo);
    ps_put_float(out, within(exp(ll + u * (log(a->hi) - ll)), a->lo, a->hi));
  } else if (a->kind == PS_DIM_INT) {
    /* In unsigned arithmetic: hi - lo + 1 is 2^64 for the whole of int64. */
    uint64_t span = (uint64_t)a->ihi - (uint64_t)a->ilo;
    double k = floor(u * ((double)span + 1.0));
    uint64_t j = k >= 0x1p64 ? span : (uint64_t)k;
    if (j > span) j = span;
    ps_put_int(out, (int64_t)((uint64_t)a->ilo + j));
  } else {
    int64_t k = (int64_t)(u * (double)a->n);
    if (k >= a->n) k = a->n - 1;
    ps_buf_put(out, a->values.data + a->offsets[k], a->offsets[k + 1] - a->offsets[k]);
  }
}

static void sample_get(ps_source_t *s, int64_t i, ps_buf_t *out) {
  sample_t *p = (sample_t *)s;
  ps_put_table(out, 0, (uint64_t)p->ndims);
  for (int d = 0; d < p->ndims; d++) {
    ps_buf_put(out, p->keys.data + p->keyoffs[d], p->keyoffs[d + 1] - p->keyoffs[d]);
    dim_put(&p->dims[d], unit_of(p, d, i), out);
  }
}

static void sample_free(ps_source_t *s) {
  sample_t *p = (sample_t *)s;
  for (int d = 0; d < p->ndims; d++) {
    free(p->dims[d].name);
    ps_buf_free(&p->dims[d].values);
    free(p->dims[d].offsets);
  }
  free(p->dims);
  free(p->key);
  free(p->perm);
  free(p->dir);
  ps_buf_free(&p->keys);
  free(p->keyoffs);
  free(p);
  ps_census_add(PS_CENSUS_SOURCES, -1);
}

static int dim_cmp(const void *a, const void *b) {
  const ps_dim_t *x = a, *y = b;
  size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return x->namelen < y->namelen ? -1 : x->namelen > y->namelen;
}

ps_source_t *ps_sample_new(ps_dim_t *dims, int ndims, int64_t n, int method, uint64_t seed,
                           ps_err_t *err) {
  if (method == PS_SAMPLE_SOBOL && ndims > PS_SOBOL_DIMS) {
    ps_err_set(err, PS_EVALUE, "sobol has %d dimensions, the space %d keys", PS_SOBOL_DIMS, ndims);
    return NULL;
  }
  if (method == PS_SAMPLE_LHS && n > ((int64_t)1 << 53)) {
    ps_err_set(err, PS_EVALUE, "lhs takes at most 2^53 psets, whose strata doubles can tell apart");
    return NULL;
  }
  sample_t *p = calloc(1, sizeof *p);
  if (p == NULL) goto oom;
  size_t nd = (size_t)(ndims ? ndims : 1);
  p->dims = malloc(sizeof(ps_dim_t) * nd);
  p->key = calloc(nd, sizeof *p->key);
  p->keyoffs = malloc(sizeof(size_t) * (nd + 1));
  if (method == PS_SAMPLE_LHS) p->perm = calloc(nd, sizeof *p->perm);
  if (method == PS_SAMPLE_SOBOL) p->dir = calloc(nd, sizeof *p->dir);
  ps_buf_init(&p->keys);
  if (p->dims == NULL || p->key == NULL || p->keyoffs == NULL ||
      (method == PS_SAMPLE_LHS && p->perm == NULL) || (method == PS_SAMPLE_SOBOL && p->dir == NULL))
    goto oom;
  memcpy(p->dims, dims, sizeof(ps_dim_t) * (size_t)ndims);
  qsort(p->dims, (size_t)ndims, sizeof(ps_dim_t), dim_cmp);
  for (int d = 0; d < ndims; d++) {
    const ps_dim_t *a = &p->dims[d];
    if (d > 0 && dim_cmp(&p->dims[d - 1], a) == 0) {
      ps_err_set(err, PS_EVALUE, "key '%s' appears twice in the space", a->name);
      goto fail;
    }
    uint64_t name = ps_hash(a->name, a->namelen, 0);
    if (method == PS_SAMPLE_RANDOM) {
      p->key[d] = ps_space_hash(ps_space_hash(seed, FOR_RANDOM), name);
    } else if (method == PS_SAMPLE_LHS) {
      p->key[d] = ps_space_hash(ps_space_hash(seed, FOR_JITTER), name);
      ps_perm_init(&p->perm[d], (uint64_t)n, ps_space_hash(ps_space_hash(seed, FOR_STRATUM), name));
    } else {
      sobol_directions(d, p->dir[d]);
      p->key[d] = seed == 0 ? 0 : ps_space_hash(ps_space_hash(seed, FOR_SHIFT), (uint64_t)d);
    }
    p->keyoffs[d] = p->keys.len;
    ps_put_str(&p->keys, a->name, a->namelen);
  }
  p->keyoffs[ndims] = p->keys.len;
  if (p->keys.failed) goto oom;
  ps_census_add(PS_CENSUS_SOURCES, 1);
  p->ndims = ndims;
  p->method = method;
  p->base.count = ndims ? n : 0;
  p->base.keys = p->keys.data;
  p->base.keys_len = p->keys.len;
  p->base.nkeys = ndims;
  p->base.get = sample_get;
  p->base.free = sample_free;
  return &p->base;
oom:
  ps_err_set(err, PS_ENOMEM, "out of memory");
fail:
  /* The dims stay owned by the caller on failure. */
  if (p) {
    free(p->dims);
    free(p->key);
    free(p->perm);
    free(p->dir);
    ps_buf_free(&p->keys);
    free(p->keyoffs);
    free(p);
  }
  return NULL;
}
