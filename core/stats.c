/* stats.c: the log-linear histogram of stats.h. */
#include "stats.h"

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

void ps_hist_add(ps_hist_t *h, int64_t us) {
  if (us < 0) us = 0;
  h->count++;
  h->sum_us += (double)us;
  if (us < h->min_us) h->min_us = us;
  if (us > h->max_us) h->max_us = us;
  int b = bucket_of((uint64_t)us);
  if (b >= PS_HIST_BUCKETS) b = PS_HIST_BUCKETS - 1;
  h->bucket[b]++;
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
