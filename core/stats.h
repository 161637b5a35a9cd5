/*
 * stats.h: run-time statistics in constant memory: exact count, sum, min
 * and max, and a log-linear histogram (1/32 relative precision) for
 * percentiles, so a survey of ten million psets costs the same few KiB.
 */
#ifndef PS_STATS_H
#define PS_STATS_H

#include <stdint.h>

#define PS_HIST_SUB 32
#define PS_HIST_BUCKETS (64 * PS_HIST_SUB)

typedef struct ps_hist_s {
  int64_t count;
  double sum_us;
  int64_t min_us, max_us;
  uint32_t bucket[PS_HIST_BUCKETS];
} ps_hist_t;

void ps_hist_init(ps_hist_t *h);
void ps_hist_add(ps_hist_t *h, int64_t us);
/* The value (us) below which a fraction q of the samples fall. */
double ps_hist_quantile(const ps_hist_t *h, double q);

#endif
