/* source.c: lazy products and pre-encoded arrays of psets (source.h). */
#include "source.h"

#include <stdlib.h>
#include <string.h>

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
  if (!a->is_range) {
    ps_buf_put(out, a->values.data + a->offsets[k], a->offsets[k + 1] - a->offsets[k]);
  } else if (a->is_int) {
    ps_put_int(out, a->ifirst + k * a->istep);
  } else {
    ps_put_float(out, a->dfirst + (double)k * a->dstep);
  }
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
  return &p->base;
oom:
  ps_err_set(err, PS_ENOMEM, "out of memory");
fail:
  /* The axes stay owned by the caller on failure. */
  p->naxes = 0;
  product_free(&p->base);
  return NULL;
}

typedef struct array_s {
  ps_source_t base;
  char *data;
  int64_t *offsets;
  ps_limits_t **limits;
} array_t;

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
  free(a);
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
  return &a->base;
}
