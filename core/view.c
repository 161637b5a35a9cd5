/* view.c: filtered and shuffled views of a source (view.h). */
#include "view.h"

#include <stdlib.h>

#include "census.h"
#include "space.h"

typedef struct view_s {
  ps_source_t base;
  ps_source_t *of; /* borrowed: outlives the view */
  int64_t *index;  /* filter: the picked indices; NULL for a shuffle */
  ps_perm_t perm;  /* shuffle */
} view_t;

static int64_t picked(const view_t *v, int64_t i) {
  return v->index ? v->index[i] : (int64_t)ps_perm_at(&v->perm, (uint64_t)i);
}

static void view_get(ps_source_t *s, int64_t i, ps_buf_t *out) {
  view_t *v = (view_t *)s;
  v->of->get(v->of, picked(v, i), out);
}

static const ps_limits_t *view_limits(ps_source_t *s, int64_t i) {
  view_t *v = (view_t *)s;
  return v->of->limits ? v->of->limits(v->of, picked(v, i)) : NULL;
}

static void view_free(ps_source_t *s) {
  view_t *v = (view_t *)s;
  free(v->index);
  free(v);
  ps_census_add(PS_CENSUS_SOURCES, -1);
}

static view_t *view_new(ps_source_t *of, int64_t count) {
  view_t *v = calloc(1, sizeof *v);
  if (v == NULL) return NULL;
  v->of = of;
  v->base.count = count;
  v->base.keys = of->keys;
  v->base.keys_len = of->keys_len;
  v->base.nkeys = of->nkeys;
  v->base.get = view_get;
  v->base.limits = view_limits;
  v->base.free = view_free;
  ps_census_add(PS_CENSUS_SOURCES, 1);
  return v;
}

ps_source_t *ps_view_new(ps_source_t *base, int64_t *index, int64_t count) {
  view_t *v = view_new(base, count);
  if (v == NULL) return NULL;
  v->index = index;
  return &v->base;
}

ps_source_t *ps_shuffle_new(ps_source_t *base, uint64_t seed) {
  view_t *v = view_new(base, base->count);
  if (v == NULL) return NULL;
  ps_perm_init(&v->perm, (uint64_t)base->count, ps_space_hash(seed, 0x5f5f5f5f));
  return &v->base;
}
