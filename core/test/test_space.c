/*
 * test_space.c: the sample generator and the keyed bijection (space.h)
 * and the views built on it (view.h): the bijection is a permutation, an
 * lhs puts one pset in each stratum, the Sobol points are the published
 * ones and nets, the same seed gives the same draws, views and crosses
 * pick from their parts.
 *
 * Its cases run as specs from spec/core/space_spec.lua (cases.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "space.h"
#include "view.h"

/* A sample of ndims uniform keys k00, k01... over [0, 1). */
static ps_source_t *unit_space(int ndims, int64_t n, int method, uint64_t seed) {
  ps_dim_t dims[64];
  memset(dims, 0, sizeof dims);
  for (int d = 0; d < ndims; d++) {
    dims[d].name = malloc(4);
    snprintf(dims[d].name, 4, "k%02d", d);
    dims[d].namelen = 3;
    dims[d].kind = PS_DIM_UNIFORM;
    dims[d].lo = 0;
    dims[d].hi = 1;
    ps_buf_init(&dims[d].values);
  }
  ps_err_t err;
  ps_source_t *s = ps_sample_new(dims, ndims, n, method, seed, &err);
  CHECK(s != NULL);
  return s;
}

static void bijection_is_a_permutation(void) {
  static unsigned char seen[70000];
  uint64_t sizes[] = {2,  3,   4,   5,   7,   8,    9,    15,    16,
                      17, 100, 255, 256, 257, 1000, 4097, 65536, 65537};
  for (uint64_t n = 0; n < 300 + sizeof sizes / sizeof sizes[0]; n++) {
    uint64_t size = n < 300 ? n : sizes[n - 300];
    for (uint64_t key = 0; key < 3; key++) {
      ps_perm_t p;
      ps_perm_init(&p, size, key * 7919);
      memset(seen, 0, size);
      int ok = 1;
      for (uint64_t i = 0; i < size; i++) {
        uint64_t j = ps_perm_at(&p, i);
        if (j >= size || seen[j]) ok = 0;
        if (j < size) seen[j] = 1;
      }
      CHECK(ok);
    }
  }
}

static void bijection_depends_on_its_key(void) {
  ps_perm_t a, b, c;
  ps_perm_init(&a, 1000, 1);
  ps_perm_init(&b, 1000, 1);
  ps_perm_init(&c, 1000, 2);
  int same_ab = 0, same_ac = 0, fixed = 0;
  for (uint64_t i = 0; i < 1000; i++) {
    same_ab += ps_perm_at(&a, i) == ps_perm_at(&b, i);
    same_ac += ps_perm_at(&a, i) == ps_perm_at(&c, i);
    fixed += ps_perm_at(&a, i) == i;
  }
  CHECK(same_ab == 1000);
  CHECK(same_ac < 20); /* about 1 expected */
  CHECK(fixed < 20);
  /* Huge domains cost nothing to set up and still stay within n. */
  ps_perm_t big;
  ps_perm_init(&big, (uint64_t)1 << 62, 5);
  for (uint64_t i = 0; i < 1000; i++)
    CHECK(ps_perm_at(&big, i * 4611686018427ULL) < (uint64_t)1 << 62);
}

static void lhs_puts_one_pset_in_each_stratum(void) {
  int64_t sizes[] = {1, 2, 3, 7, 10, 100, 1000, 4099};
  static unsigned char seen[3][5000];
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    int64_t n = sizes[k];
    ps_source_t *s = unit_space(3, n, PS_SAMPLE_LHS, 42 + k);
    memset(seen, 0, sizeof seen);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
      double u[3];
      ps_sample_units(s, i, u);
      for (int d = 0; d < 3; d++) {
        int64_t st = (int64_t)(u[d] * (double)n);
        if (!(u[d] >= 0 && u[d] < 1) || st >= n || seen[d][st]) ok = 0;
        if (st < n) seen[d][st] = 1;
      }
    }
    CHECK(ok);
    s->free(s);
  }
}

static void sobol_gives_the_published_points(void) {
  /* scipy.stats.qmc.Sobol(3, scramble=False), Joe and Kuo's order. */
  static const double want[8][3] = {{0, 0, 0},          {.5, .5, .5},       {.75, .25, .25},
                                    {.25, .75, .75},    {.375, .375, .625}, {.875, .875, .125},
                                    {.625, .125, .875}, {.125, .625, .375}};
  ps_source_t *s = unit_space(3, 8, PS_SAMPLE_SOBOL, 0);
  for (int i = 0; i < 8; i++) {
    double u[3];
    ps_sample_units(s, i, u);
    for (int d = 0; d < 3; d++) CHECK(u[d] == want[i][d]);
  }
  s->free(s);
}

/* Whether the first 2^m points of s are a (0, m, 2)-net in dimensions 1
   and 2, and stratify each of its ndims dimensions into 2^m. */
static int sobol_is_a_net(ps_source_t *s, int ndims, int m) {
  int64_t n = (int64_t)1 << m;
  static int count[64][4096];
  static int box[4096];
  double u[PS_SOBOL_DIMS];
  int ok = 1;
  memset(count, 0, sizeof count);
  for (int a = 0; a <= m; a++) {
    memset(box, 0, sizeof box);
    for (int64_t i = 0; i < n; i++) {
      ps_sample_units(s, i, u);
      int64_t x = (int64_t)(u[0] * (double)((int64_t)1 << a));
      int64_t y = (int64_t)(u[1] * (double)((int64_t)1 << (m - a)));
      box[(x << (m - a)) | y]++;
      if (a == 0)
        for (int d = 0; d < ndims; d++) count[d][(int64_t)(u[d] * (double)n)]++;
    }
    for (int64_t b = 0; b < n; b++) ok &= box[b] == 1;
  }
  for (int d = 0; d < ndims; d++)
    for (int64_t b = 0; b < n; b++) ok &= count[d][b] == 1;
  return ok;
}

static void sobol_is_a_net_plain_and_shifted(void) {
  for (uint64_t seed = 0; seed < 3; seed++) {
    ps_source_t *s = unit_space(PS_SOBOL_DIMS, 4096, PS_SAMPLE_SOBOL, seed);
    for (int m = 0; m <= 12; m++) CHECK(sobol_is_a_net(s, PS_SOBOL_DIMS, m));
    s->free(s);
  }
  ps_dim_t dims[PS_SOBOL_DIMS + 1];
  ps_err_t err;
  CHECK(ps_sample_new(dims, PS_SOBOL_DIMS + 1, 10, PS_SAMPLE_SOBOL, 0, &err) == NULL);
  CHECK(strstr(err.msg, "sobol has 32 dimensions") != NULL);
}

static void seeds_reproduce_draws(void) {
  ps_source_t *a = unit_space(2, 1000, PS_SAMPLE_RANDOM, 7);
  ps_source_t *b = unit_space(2, 1000, PS_SAMPLE_RANDOM, 7);
  ps_source_t *c = unit_space(2, 1000, PS_SAMPLE_RANDOM, 8);
  int same = 1, differ = 0;
  double sum = 0;
  for (int64_t i = 0; i < 1000; i++) {
    double ua[2], ub[2], uc[2];
    ps_sample_units(a, i, ua);
    ps_sample_units(b, i, ub);
    ps_sample_units(c, i, uc);
    same &= ua[0] == ub[0] && ua[1] == ub[1];
    differ += ua[0] != uc[0];
    sum += ua[0] + ua[1];
    CHECK(ua[0] >= 0 && ua[0] < 1 && ua[1] >= 0 && ua[1] < 1);
  }
  CHECK(same);
  CHECK(differ == 1000);
  CHECK(sum / 2000 > 0.47 && sum / 2000 < 0.53);
  /* A fixed value, on any machine: the draws are integer arithmetic. */
  CHECK(ps_space_hash(0, 0) == ps_space_hash(0, 0));
  CHECK(ps_space_unit(UINT64_MAX) == 1 - 0x1p-53);
  CHECK(ps_space_unit(0) == 0);
  a->free(a);
  b->free(b);
  c->free(c);
}

static void views_pick_from_their_base(void) {
  ps_source_t *s = unit_space(1, 50, PS_SAMPLE_RANDOM, 1);
  ps_source_t *v = ps_shuffle_new(s, 3);
  CHECK(v->count == 50);
  CHECK(v->nkeys == 1 && v->keys == s->keys);
  ps_buf_t x, y;
  ps_buf_init(&x);
  ps_buf_init(&y);
  int found = 0;
  for (int64_t i = 0; i < 50; i++) {
    x.len = 0;
    v->get(v, i, &x);
    for (int64_t j = 0; j < 50; j++) {
      y.len = 0;
      s->get(s, j, &y);
      found += x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    }
  }
  CHECK(found == 50);
  int64_t *index = malloc(2 * sizeof *index);
  index[0] = 49;
  index[1] = 0;
  ps_source_t *f = ps_view_new(s, index, 2);
  CHECK(f->count == 2);
  x.len = y.len = 0;
  f->get(f, 0, &x);
  s->get(s, 49, &y);
  CHECK(x.len == y.len && memcmp(x.data, y.data, x.len) == 0);
  CHECK(f->limits(f, 0) == NULL);
  ps_buf_free(&x);
  ps_buf_free(&y);
  f->free(f);
  v->free(v);
  s->free(s);
}

static void crosses_merge_their_parts(void) {
  /* The C does not look at keys (psets.lua refuses a key in two parts):
     a sample crossed with itself shows the merge. */
  ps_source_t *s = unit_space(1, 3, PS_SAMPLE_RANDOM, 1);
  ps_source_t *parts[2] = {s, s};
  ps_err_t err;
  ps_source_t *c = ps_cross_new(parts, 2, &err);
  CHECK(c != NULL && c->count == 9 && c->nkeys == 2);
  CHECK(c->keys_len == 2 * s->keys_len);
  ps_buf_t x, a, b;
  ps_buf_init(&x);
  ps_buf_init(&a);
  ps_buf_init(&b);
  for (int64_t i = 0; i < 9; i++) {
    x.len = a.len = b.len = 0;
    c->get(c, i, &x);
    s->get(s, i / 3, &a);
    s->get(s, i % 3, &b);
    /* One header of 2 pairs (0x06, 0, 2), then each part's pair. */
    size_t head = 3;
    CHECK(x.len == head + (a.len - head) + (b.len - head));
    CHECK((unsigned char)x.data[0] == 0x06 && x.data[1] == 0 && x.data[2] == 2);
    CHECK(memcmp(x.data + head, a.data + head, a.len - head) == 0);
    CHECK(memcmp(x.data + a.len, b.data + head, b.len - head) == 0);
  }
  CHECK(c->limits(c, 0) == NULL);
  ps_buf_free(&x);
  ps_buf_free(&a);
  ps_buf_free(&b);
  c->free(c);
  ps_source_t *huge[3] = {s, s, s};
  ps_source_t *big = unit_space(1, (int64_t)1 << 30, PS_SAMPLE_RANDOM, 1);
  huge[0] = huge[1] = huge[2] = big;
  CHECK(ps_cross_new(huge, 3, &err) == NULL);
  CHECK(strcmp(err.msg, "the product has more than 2^63 psets") == 0);
  big->free(big);
  s->free(s);
}

static const tc_case_t cases[] = {
    {"the bijection is a permutation of [0, n) for many n and keys", bijection_is_a_permutation},
    {"the bijection depends on its key", bijection_depends_on_its_key},
    {"lhs puts one pset in each stratum of each key", lhs_puts_one_pset_in_each_stratum},
    {"sobol gives the published points", sobol_gives_the_published_points},
    {"sobol's first 2^m points are nets, plain and shifted", sobol_is_a_net_plain_and_shifted},
    {"the same seed gives the same draws, another seed others", seeds_reproduce_draws},
    {"shuffled and filtered views pick from their base", views_pick_from_their_base},
    {"a cross merges the psets of its parts, the last varying fastest", crosses_merge_their_parts},
};
int main(int argc, char **argv) {
  return tc_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
