/*
 * stats.h: run-time statistics in constant memory: exact count, sum, min
 * and max, and a log-linear histogram (1/32 relative precision) for
 * percentiles, so a survey of ten million psets costs the same few KiB.
 * The named timers of the worker's system.record (ps_timing_t, one
 * timer; ps_timers_t, a set of them by name) are the same statistics over
 * samples in seconds.
 */
#ifndef PS_STATS_H
#define PS_STATS_H

#include <stddef.h>
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
/* The bucket a value falls in (PS_HIST_BUCKETS - 1 for the largest). */
int ps_hist_bucket(int64_t v);

/* Timer names are non-empty UTF-8 without control characters, of at most
   this many bytes (ps_msg_timer_name_valid). */
#define PS_TIMER_NAME_MAX 128
/* Names a set of timers holds at most: one map's, in a worker or the driver. */
#define PS_TIMERS_MAX 64

/*
 * One named timer: samples in seconds, with their count, sum, min and max
 * kept exactly as doubles, and their histogram over nanoseconds (hist, its
 * count the same) for the percentiles, the run time's method.
 */
typedef struct ps_timing_s {
  double sum, min, max;
  ps_hist_t hist; /* ns */
} ps_timing_t;

void ps_timing_init(ps_timing_t *t);
/* One sample, a finite number of seconds >= 0 (the caller checks). */
void ps_timing_add(ps_timing_t *t, double seconds);
/* Adds the samples of `from` to `into`. */
void ps_timing_merge(ps_timing_t *into, const ps_timing_t *from);
/* The seconds below which a fraction q of the samples fall, within
   [min, max]; 0 without samples. */
double ps_timing_quantile(const ps_timing_t *t, double q);
/* Seconds as the histogram's nanoseconds: rounded, capped at INT64_MAX. */
int64_t ps_timing_ns(double seconds);

typedef struct ps_timer_s {
  ps_timing_t t;
  size_t len;
  char name[]; /* len bytes and a NUL */
} ps_timer_t;

/* Timers by name, sorted (memcmp order, a prefix first), so that a lookup
   is a binary search and a listing comes out in order. Each is malloc'd
   on its own: a pointer to one stays valid until ps_timers_free. */
typedef struct ps_timers_s {
  ps_timer_t **v;
  int n, cap;
} ps_timers_t;

void ps_timers_init(ps_timers_t *s);
void ps_timers_free(ps_timers_t *s);
/* The timer of that name, added (without samples) when missing. NULL when
   it is missing and PS_TIMERS_MAX are there, or out of memory (*full
   says which: 1 full, 0 memory). */
ps_timer_t *ps_timers_get(ps_timers_t *s, const char *name, size_t len, int *full);
/* Compares two names in the order a set keeps them. */
int ps_timers_cmp(const char *a, size_t an, const char *b, size_t bn);

#endif
