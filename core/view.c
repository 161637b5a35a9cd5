/* view.c: filtered and shuffled views of a source, and crosses (view.h). */
#include "view.h"

#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "space.h"
#include "value.h"

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
  /* The seed's own stream for shuffles, apart from those of samples. */
  ps_perm_init(&v->perm, (uint64_t)base->count, ps_space_hash(seed, 0x5f5f5f5f));
  return &v->base;
}

typedef struct cross_s {
  ps_source_t base;
  int nparts;
  ps_source_t **parts; /* borrowed: they outlive the cross */
  ps_buf_t keys;       /* base.keys: the parts' keys, one after the other */
} cross_t;

/* The digits of i in the mixed radix of the parts' counts, the last part
   varying fastest. */
static void cross_digits(const cross_t *c, int64_t i, int64_t *d) {
  for (int k = c->nparts - 1; k >= 0; k--) {
    d[k] = i % c->parts[k]->count;
    i /= c->parts[k]->count;
  }
}

/* Each part's pset is a table of string keys (source.h): its header is
   replaced by one for all of them, and their pairs follow each other. */
static void cross_get(ps_source_t *s, int64_t i, ps_buf_t *out) {
  cross_t *c = (cross_t *)s;
  int64_t digit[16], *d = c->nparts <= 16 ? digit : malloc(sizeof(int64_t) * (size_t)c->nparts);
  size_t *body = malloc(sizeof(size_t) * (size_t)c->nparts * 2);
  ps_buf_t parts;
  ps_buf_init(&parts);
  if (d == NULL || body == NULL) goto oom;
  cross_digits(c, i, d);
  uint64_t nhash = 0;
  for (int k = 0; k < c->nparts; k++) {
    size_t at = parts.len;
    c->parts[k]->get(c->parts[k], d[k], &parts);
    if (parts.failed) goto oom;
    ps_reader_t r;
    ps_item_t t;
    ps_reader_init(&r, parts.data + at, parts.len - at);
    if (ps_read_item(&r, &t) != 0 || t.type != PS_V_TABLE || t.narr != 0) goto oom;
    body[2 * k] = parts.len - ps_reader_left(&r);
    body[2 * k + 1] = parts.len;
    nhash += t.nhash;
  }
  ps_put_table(out, 0, nhash);
  for (int k = 0; k < c->nparts; k++)
    ps_buf_put(out, parts.data + body[2 * k], body[2 * k + 1] - body[2 * k]);
  goto done;
oom:
  out->failed = 1;
done:
  ps_buf_free(&parts);
  free(body);
  if (d != digit) free(d);
}

static const ps_limits_t *cross_limits(ps_source_t *s, int64_t i) {
  cross_t *c = (cross_t *)s;
  int64_t digit[16], *d = c->nparts <= 16 ? digit : malloc(sizeof(int64_t) * (size_t)c->nparts);
  const ps_limits_t *l = NULL;
  if (d == NULL) return NULL;
  cross_digits(c, i, d);
  for (int k = 0; k < c->nparts && l == NULL; k++)
    if (c->parts[k]->limits) l = c->parts[k]->limits(c->parts[k], d[k]);
  if (d != digit) free(d);
  return l;
}

static void cross_free(ps_source_t *s) {
  cross_t *c = (cross_t *)s;
  free(c->parts);
  ps_buf_free(&c->keys);
  free(c);
  ps_census_add(PS_CENSUS_SOURCES, -1);
}

ps_source_t *ps_cross_new(ps_source_t **parts, int nparts, ps_err_t *err) {
  cross_t *c = calloc(1, sizeof *c);
  if (c == NULL) goto oom;
  ps_census_add(PS_CENSUS_SOURCES, 1);
  ps_buf_init(&c->keys);
  c->parts = malloc(sizeof *parts * (size_t)(nparts ? nparts : 1));
  if (c->parts == NULL) goto oom;
  memcpy(c->parts, parts, sizeof *parts * (size_t)nparts);
  c->nparts = nparts;
  int64_t count = nparts ? 1 : 0, nkeys = 0;
  for (int k = 0; k < nparts; k++) {
    int64_t n = parts[k]->count;
    if (n == 0) {
      count = 0;
    } else if (count > INT64_MAX / n) {
      ps_err_set(err, PS_EVALUE, "the product has more than 2^63 psets");
      cross_free(&c->base);
      return NULL;
    } else {
      count *= n;
    }
    ps_buf_put(&c->keys, parts[k]->keys, parts[k]->keys_len);
    nkeys = nkeys < 0 || parts[k]->nkeys < 0 ? -1 : nkeys + parts[k]->nkeys;
  }
  if (c->keys.failed) goto oom;
  c->base.count = count;
  c->base.keys = c->keys.data;
  c->base.keys_len = c->keys.len;
  c->base.nkeys = nkeys > PS_SOURCE_KEYS_MAX ? -1 : nkeys;
  c->base.get = cross_get;
  c->base.limits = cross_limits;
  c->base.free = cross_free;
  return &c->base;
oom:
  ps_err_set(err, PS_ENOMEM, "out of memory");
  if (c) cross_free(&c->base);
  return NULL;
}
