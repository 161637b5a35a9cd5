/*
 * progress.h: what a user sees on stderr while a stage runs. verbose 0:
 * nothing; 1: a line every 30 s; 2: a line every second (and a failed
 * pset's output under its failure); 3: also every event (start, finish,
 * failure of each pset, and what each wrote, tagged). On a terminal, verbose >= 1
 * draws a live bar instead of the periodic lines. vstats adds run-time
 * statistics at the same cadence: 1 at the end and every 30 s; 2 also
 * every second; 3 also each pset's run time as it finishes. The named
 * timers of the workers (system.record) have a line each at the end.
 */
#ifndef PS_PROGRESS_H
#define PS_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

typedef struct ps_counts_s {
  int64_t total, ok, failed, exceptions;
  int64_t on_row_errors; /* errors of the driver's callback (on_result) */
  int64_t active;        /* sent to workers, not finished */
  int64_t running;       /* workers busy with a pset */
  int64_t resumed;       /* done by an earlier run (--resume), in ok and failed */
  int64_t retried;       /* attempts that failed and were tried again */
} ps_counts_t;

/* The rate is counted over this many seconds, the last ones: a stage
   whose psets slow down or speed up shows it within as long. */
#define PS_RATE_WINDOW_S 30

/* The time a stage has left, in seconds, and a band around it (ps_eta);
   below 0: unknown. */
typedef struct ps_eta_s {
  double mid, lo, hi;
} ps_eta_t;

typedef struct ps_progress_s {
  int verbose, vstats, tty, utf8;
  char name[128];
  int64_t start_us, last_line_us, last_stats_us;
  int bar_shown;
  int failures_shown;
  char logpath[64]; /* the log holding failures' tracebacks, once one failed */
  char hosts[400];  /* per-host counts (ssh), shown at verbose >= 2; the caller fills it */
  /* How the agents to come stand (Slurm), shown at verbose >= 1 when it
     changes; the caller fills it. */
  char agents[300], agents_shown[300];
  int64_t last_hosts_us;
  /* Psets done (ok and failed) at each of the last seconds, a ring, for
     the rate over PS_RATE_WINDOW_S (ps_progress_sample). */
  int64_t sample_us[PS_RATE_WINDOW_S + 1], sample_done[PS_RATE_WINDOW_S + 1];
  int nsamples, next_sample;
} ps_progress_t;

void ps_progress_init(ps_progress_t *p, const char *name, int verbose, int vstats);
/* How often the timer should call ps_progress_tick, in ms (0: never). */
uint64_t ps_progress_interval(const ps_progress_t *p);
void ps_progress_tick(ps_progress_t *p, const ps_counts_t *c, const ps_hist_t *h);
/* Notes `done` psets (ok and failed, resumed ones too) at `now` (mono
   us): the caller does it when the stage starts and about once a second. */
void ps_progress_sample(ps_progress_t *p, int64_t now, int64_t done);
/* Psets finished per second over the last PS_RATE_WINDOW_S seconds (since
   the start before that), with `done` now; *counted (may be NULL): how
   many finished in that window. */
double ps_progress_rate(const ps_progress_t *p, int64_t now, int64_t done, int64_t *counted);
/* The time `left` psets take at `rate` psets/s, with a band from the
   run times measured so far (h) and the `counted` psets the rate was
   measured on; progress.c says how. */
void ps_eta(ps_eta_t *out, int64_t left, double rate, int64_t counted, const ps_hist_t *h);
/* "4m10s"; "?" below 0. */
void ps_format_eta(char *out, size_t n, double secs);
/* One event line (verbose 3), kept above the bar. */
void ps_progress_event(ps_progress_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Text shown indented under an event line: a traceback (verbose >= 2). */
void ps_progress_block(ps_progress_t *p, const char *text, size_t len);
/* Lines a pset wrote, each after tag ("[#12] "), kept above the bar. */
void ps_progress_output(ps_progress_t *p, const char *tag, const char *text, size_t len);
/* A pset failed (pset: "#137 (r=3.6)"): shown at verbose >= 1 for the first few, then counted; the
   first names the log that holds the tracebacks; verbose 2 shows each one. 1 when it was shown. */
int ps_progress_failure(ps_progress_t *p, const char *pset, const char *msg, size_t len,
                        const char *tb, size_t tb_len, const char *logpath);
/* The end of the stage: how it ended (verbose >= 1), failures (tally.h's
   line, or "") at every verbosity, statistics (vstats >= 1). */
void ps_progress_end(ps_progress_t *p, const ps_counts_t *c, const ps_hist_t *h, const char *how,
                     const char *failures);
/* "mean 0.301 s, p50 0.301 s, ..." for the stats line and tostring. */
void ps_format_stats(char *out, size_t n, const ps_hist_t *h);
/* The end of a stage at vstats >= 1: a line per named timer, in name order. */
void ps_progress_timers(ps_progress_t *p, const ps_timers_t *s);
/* "timer 'a' of 400 samples: mean 750 ms, ..." for its line and tostring. */
void ps_format_timer(char *out, size_t n, const ps_timer_t *t);
/* 0.000301 s -> "301 us", 12.5 -> "12.5 s", 2.5e-7 -> "250 ns" */
void ps_format_seconds(char *out, size_t n, double s);

#endif
