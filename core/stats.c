/* stats.c: the log-linear histogram of stats.h, and the named timers over it. */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

void ps_hist_init(ps_hist_t *h) {
  memset(h, 0, sizeof *h);
  h->min_us = INT64_MAX;
}

/* Values below PS_HIST_SUB have a bucket each; above, each power of two is
   cut into PS_HIST_SUB buckets. */
static int bucket_of(uint64_t v) {
  if (v < PS_HIST_SUB) return (int)v;
  int e = 63 - __builtin_clzll(v); /* v in [2^e, 2^(e+1)) */
  int sub = (int)((v >> (e - 5)) & (PS_HIST_SUB - 1));
  return (e - 4) * PS_HIST_SUB + sub;
}

static double bucket_mid(int b) {
  if (b < PS_HIST_SUB) return b;
  int e = b / PS_HIST_SUB + 4, sub = b % PS_HIST_SUB;
  double lo = (double)((uint64_t)(PS_HIST_SUB + sub) << (e - 5));
  double width = (double)(1ull << (e - 5));
  return lo + width / 2;
}

int ps_hist_bucket(int64_t v) {
  int b = bucket_of(v < 0 ? 0 : (uint64_t)v);
  return b < PS_HIST_BUCKETS ? b : PS_HIST_BUCKETS - 1;
}

void ps_hist_add(ps_hist_t *h, int64_t us) {
  if (us < 0) us = 0;
  h->count++;
  h->sum_us += (double)us;
  if (us < h->min_us) h->min_us = us;
  if (us > h->max_us) h->max_us = us;
  h->bucket[ps_hist_bucket(us)]++;
}

double ps_hist_quantile(const ps_hist_t *h, double q) {
  if (h->count == 0) return 0;
  int64_t want = (int64_t)(q * (double)h->count + 0.5);
  if (want < 1) want = 1;
  int64_t seen = 0;
  for (int b = 0; b < PS_HIST_BUCKETS; b++) {
    seen += h->bucket[b];
    if (seen >= want) {
      double v = bucket_mid(b);
      if (v < (double)h->min_us) v = (double)h->min_us;
      if (v > (double)h->max_us) v = (double)h->max_us;
      return v;
    }
  }
  return (double)h->max_us;
}

void ps_timing_init(ps_timing_t *t) {
  ps_hist_init(&t->hist);
  t->sum = t->max = 0;
  t->min = 0;
}

int64_t ps_timing_ns(double seconds) {
  double ns = seconds * 1e9 + 0.5;
  return ns >= 9.2e18 ? INT64_MAX : ns > 0 ? (int64_t)ns : 0;
}

void ps_timing_add(ps_timing_t *t, double seconds) {
  if (t->hist.count == 0 || seconds < t->min) t->min = seconds;
  if (t->hist.count == 0 || seconds > t->max) t->max = seconds;
  t->sum += seconds;
  ps_hist_add(&t->hist, ps_timing_ns(seconds));
}

void ps_timing_merge(ps_timing_t *into, const ps_timing_t *from) {
  const ps_hist_t *f = &from->hist;
  ps_hist_t *h = &into->hist;
  if (f->count == 0) return;
  if (h->count == 0 || from->min < into->min) into->min = from->min;
  if (h->count == 0 || from->max > into->max) into->max = from->max;
  into->sum += from->sum;
  h->count += f->count;
  h->sum_us += f->sum_us;
  if (f->min_us < h->min_us) h->min_us = f->min_us;
  if (f->max_us > h->max_us) h->max_us = f->max_us;
  /* Only the buckets between the smallest and the largest can be full. */
  for (int b = ps_hist_bucket(f->min_us), last = ps_hist_bucket(f->max_us); b <= last; b++)
    h->bucket[b] += f->bucket[b];
}

double ps_timing_quantile(const ps_timing_t *t, double q) {
  if (t->hist.count == 0) return 0;
  double s = ps_hist_quantile(&t->hist, q) / 1e9;
  return s < t->min ? t->min : s > t->max ? t->max : s;
}

void ps_timers_init(ps_timers_t *s) { memset(s, 0, sizeof *s); }

void ps_timers_free(ps_timers_t *s) {
  for (int k = 0; k < s->n; k++) free(s->v[k]);
  free(s->v);
  ps_timers_init(s);
}

int ps_timers_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c ? c : an < bn ? -1 : an > bn;
}

ps_timer_t *ps_timers_get(ps_timers_t *s, const char *name, size_t len, int *full) {
  int lo = 0, hi = s->n; /* the answer is in [lo, hi] */
  while (lo < hi) {
    int mid = (lo + hi) / 2, c = ps_timers_cmp(s->v[mid]->name, s->v[mid]->len, name, len);
    if (c == 0) return s->v[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *full = s->n >= PS_TIMERS_MAX;
  if (*full) return NULL;
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 8;
    ps_timer_t **v = realloc(s->v, (size_t)cap * sizeof *v);
    if (v == NULL) return NULL;
    s->v = v;
    s->cap = cap;
  }
  ps_timer_t *t = malloc(sizeof *t + len + 1);
  if (t == NULL) return NULL;
  ps_timing_init(&t->t);
  t->len = len;
  memcpy(t->name, name, len);
  t->name[len] = '\0';
  memmove(s->v + lo + 1, s->v + lo, (size_t)(s->n - lo) * sizeof *s->v);
  s->v[lo] = t;
  s->n++;
  return t;
}
