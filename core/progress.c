/* progress.c: progress lines, the live bar and event lines (progress.h). */
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ps.h"

/* The live bar's cells, at most and at least (fewer: no bar, the counts only). */
#define BAR_MAX 40
#define BAR_MIN 5
/* Failures printed one by one before the rest are only counted. */
#define SHOW_FAILURES 10
/* How often the stage's timer ticks (ms): the live bar on a terminal, the
   lines elsewhere. */
#define BAR_TICK_MS 100
#define LINE_TICK_MS 1000
/* Progress and statistics lines come every second (verbose or vstats 2 and
   3 on a terminal...) or every 30 s (us). */
#define FAST_US 1000000
#define SLOW_US 30000000
/* A tick that fires this much early still prints the line that is due. */
#define TICK_SLACK_US 200000
/* The first line of a failure's message, cut at this many bytes. */
#define FAILURE_LINE_BYTES 300

void ps_progress_init(ps_progress_t *p, const char *name, int verbose, int vstats) {
  memset(p, 0, sizeof *p);
  p->verbose = verbose;
  p->vstats = vstats;
  /* A bar needs a terminal that understands it: not TERM=dumb (Emacs'
     shell, some CI logs), which gets the periodic lines instead. */
  const char *term = getenv("TERM");
  p->tty = isatty(2) && !(term && strcmp(term, "dumb") == 0);
  const char *lang = getenv("LC_ALL");
  if (!lang || !*lang) lang = getenv("LANG");
  p->utf8 = lang && (strstr(lang, "UTF-8") || strstr(lang, "utf8"));
  snprintf(p->name, sizeof p->name, "%s", name);
  p->start_us = p->last_line_us = p->last_stats_us = ps_mono_us();
}

uint64_t ps_progress_interval(const ps_progress_t *p) {
  if (p->verbose <= 0 && p->vstats <= 0) return 0;
  if (p->tty && p->verbose >= 1) return BAR_TICK_MS;
  return LINE_TICK_MS;
}

void ps_format_seconds(char *out, size_t n, double s) {
  if (s > 0 && s < 1e-6)
    snprintf(out, n, "%.0f ns", s * 1e9);
  else if (s < 1e-3)
    snprintf(out, n, "%.0f us", s * 1e6);
  else if (s < 1)
    snprintf(out, n, "%.3g ms", s * 1e3);
  else if (s < 600)
    snprintf(out, n, "%.3g s", s);
  else if (s < 36000)
    snprintf(out, n, "%d:%02d min", (int)(s / 60), (int)s % 60);
  else
    snprintf(out, n, "%.1f h", s / 3600);
}

static void grouped(char *out, size_t n, int64_t v) {
  char raw[32];
  snprintf(raw, sizeof raw, "%lld", (long long)v);
  size_t len = strlen(raw), o = 0;
  for (size_t k = 0; k < len && o + 2 < n; k++) {
    if (k && raw[k - 1] != '-' && (len - k) % 3 == 0) out[o++] = ',';
    out[o++] = raw[k];
  }
  out[o] = '\0';
}

void ps_format_eta(char *out, size_t n, double secs) {
  if (secs < 0)
    snprintf(out, n, "?");
  else if (secs < 60)
    snprintf(out, n, "%.0fs", secs);
  else if (secs < 3600)
    snprintf(out, n, "%dm%02ds", (int)secs / 60, (int)secs % 60);
  else
    snprintf(out, n, "%dh%02dm", (int)secs / 3600, (int)secs / 60 % 60);
}

void ps_progress_sample(ps_progress_t *p, int64_t now, int64_t done) {
  p->sample_us[p->next_sample] = now;
  p->sample_done[p->next_sample] = done;
  p->next_sample = (p->next_sample + 1) % (PS_RATE_WINDOW_S + 1);
  if (p->nsamples < PS_RATE_WINDOW_S + 1) p->nsamples++;
}

double ps_progress_rate(const ps_progress_t *p, int64_t now, int64_t done, int64_t *counted) {
  /* The oldest sample within the window (a second of slack: samples come
     about once a second); without one, since the stage started. */
  int64_t t0 = p->start_us, d0 = 0, window = (int64_t)(PS_RATE_WINDOW_S + 1) * 1000000;
  int found = 0;
  for (int k = 0; k < p->nsamples; k++) {
    if (now - p->sample_us[k] > window) continue;
    if (!found || p->sample_us[k] < t0) {
      t0 = p->sample_us[k];
      d0 = p->sample_done[k];
      found = 1;
    }
  }
  int64_t n = done - d0;
  if (counted) *counted = n > 0 ? n : 0;
  if (now - t0 < 1000 || n <= 0) return 0;
  return (double)n / ((double)(now - t0) / 1e6);
}

/*
 * The time left, and its band. The middle is left / rate: the rate is
 * measured end to end over the last seconds, so it holds what the run
 * times alone do not (how many workers are busy, batching, the driver's
 * own time). The band is an 80% band (z = 1.28) of a normal
 * approximation with two sources of doubt, added as variances:
 *   - the psets left may cost more or less than those seen: their total
 *     run time is a sum of `left` draws from the run-time distribution,
 *     whose mean is itself estimated from the k psets measured, so its
 *     relative spread is cv * sqrt(1/left + 1/k), cv the coefficient of
 *     variation. The standard deviation is taken from the interquartile
 *     range, (p75 - p25) / 1.349 as for a normal distribution, which a few
 *     psets that hang or fail at once do not sway;
 *   - the rate is a count of the `counted` psets that finished in its
 *     window: a Poisson count, of relative spread 1 / sqrt(counted).
 * The band is mid * (1 -+ z * spread), its low end 0 at least. Psets of
 * the same cost give a band from the rate's noise alone, which narrows as
 * the window fills.
 */
void ps_eta(ps_eta_t *out, int64_t left, double rate, int64_t counted, const ps_hist_t *h) {
  out->mid = out->lo = out->hi = -1;
  if (left <= 0) {
    out->mid = out->lo = out->hi = 0;
    return;
  }
  if (rate <= 0 || counted <= 0) return;
  out->mid = (double)left / rate;
  double var = 1.0 / (double)counted;
  if (h && h->count > 0 && h->sum_us > 0) {
    double mean = h->sum_us / (double)h->count;
    double sd = (ps_hist_quantile(h, 0.75) - ps_hist_quantile(h, 0.25)) / 1.349;
    double cv = sd / mean;
    var += cv * cv * (1.0 / (double)left + 1.0 / (double)h->count);
  }
  double spread = 1.28 * sqrt(var);
  out->lo = out->mid * (1 - spread);
  if (out->lo < 0) out->lo = 0;
  out->hi = out->mid * (1 + spread);
}

void ps_format_stats(char *out, size_t n, const ps_hist_t *h) {
  if (h->count == 0) {
    snprintf(out, n, "no psets ran");
    return;
  }
  char mean[24], mn[24], p50[24], p90[24], p99[24], mx[24];
  ps_format_seconds(mean, sizeof mean, h->sum_us / (double)h->count / 1e6);
  ps_format_seconds(mn, sizeof mn, (double)h->min_us / 1e6);
  ps_format_seconds(p50, sizeof p50, ps_hist_quantile(h, 0.5) / 1e6);
  ps_format_seconds(p90, sizeof p90, ps_hist_quantile(h, 0.9) / 1e6);
  ps_format_seconds(p99, sizeof p99, ps_hist_quantile(h, 0.99) / 1e6);
  ps_format_seconds(mx, sizeof mx, (double)h->max_us / 1e6);
  snprintf(out, n, "run time of %lld psets: mean %s, min %s, p50 %s, p90 %s, p99 %s, max %s",
           (long long)h->count, mean, mn, p50, p90, p99, mx);
}

void ps_format_timer(char *out, size_t n, const ps_timer_t *t) {
  const ps_timing_t *s = &t->t;
  char mean[24], mn[24], p50[24], p90[24], p99[24], mx[24];
  ps_format_seconds(mean, sizeof mean, s->sum / (double)s->hist.count);
  ps_format_seconds(mn, sizeof mn, s->min);
  ps_format_seconds(p50, sizeof p50, ps_timing_quantile(s, 0.5));
  ps_format_seconds(p90, sizeof p90, ps_timing_quantile(s, 0.9));
  ps_format_seconds(p99, sizeof p99, ps_timing_quantile(s, 0.99));
  ps_format_seconds(mx, sizeof mx, s->max);
  snprintf(out, n, "timer '%s' of %lld samples: mean %s, min %s, p50 %s, p90 %s, p99 %s, max %s",
           t->name, (long long)s->hist.count, mean, mn, p50, p90, p99, mx);
}

static void clear_bar(ps_progress_t *p) {
  if (p->bar_shown) {
    fputs("\r\033[K", stderr);
    p->bar_shown = 0;
  }
}

/* The counts, rate and ETA of a progress line or the bar, in out; the
   ETA's band, " (3m50s-4m40s)", in band (empty when unknown), which the
   bar shows when it fits. */
static void status_text(ps_progress_t *p, const ps_counts_t *c, const ps_hist_t *h, char *out,
                        size_t n, char *band, size_t bn) {
  int64_t now = ps_mono_us(), counted;
  int64_t done = c->ok + c->failed;
  double rate = ps_progress_rate(p, now, done, &counted);
  ps_eta_t eta;
  ps_eta(&eta, c->total - done, rate, counted, h);
  char d[32], t[32], r[32], mid[32], lo[32], hi[32];
  grouped(d, sizeof d, done);
  grouped(t, sizeof t, c->total);
  if (rate >= 100)
    grouped(r, sizeof r, (int64_t)rate);
  else
    snprintf(r, sizeof r, "%.1f", rate);
  ps_format_eta(mid, sizeof mid, eta.mid);
  snprintf(out, n, "%s/%s done, %lld running, %lld failed, %s/s, ETA %s", d, t,
           (long long)c->running, (long long)c->failed, r, mid);
  band[0] = '\0';
  if (eta.lo >= 0 && done < c->total) {
    ps_format_eta(lo, sizeof lo, eta.lo);
    ps_format_eta(hi, sizeof hi, eta.hi);
    /* A band whose ends read the same says nothing. */
    if (strcmp(lo, hi) != 0)
      snprintf(band, bn, " (%s%s%s)", lo, p->utf8 ? "\xe2\x80\x93" : "-", hi);
  }
}

/* The terminal's columns now (it may have been resized), or 80. */
static int term_columns(void) {
  struct winsize ws;
  if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/* The live bar, on one line of the terminal as wide as it is now: the
   name, the bar (BAR_MIN to BAR_MAX cells, left out when there is no room)
   and the counts, cut to fit; never the last column, which would wrap. */
static void draw_bar(ps_progress_t *p, const ps_counts_t *c, const ps_hist_t *h) {
  char text[260], band[100];
  status_text(p, c, h, text, sizeof text - sizeof band, band, sizeof band);
  int64_t done = c->ok + c->failed;
  int pct = c->total ? (int)(100 * done / c->total) : 100;
  int cols = term_columns() - 1;
  int name_len = (int)strlen(p->name);
  int text_len = (int)strlen(text);
  /* The ETA's band goes first when the line would not hold it beside a
     bar of BAR_MIN cells (its dash is one column of 3 bytes in UTF-8). */
  int band_cols = (int)strlen(band) - (p->utf8 && band[0] ? 2 : 0);
  if (band[0] && cols - name_len - text_len - band_cols - 7 >= BAR_MIN) {
    strcat(text, band);
    text_len += band_cols;
  }
  /* name, ' ', bar, ' ', "100%", ' ', text */
  int width = cols - name_len - text_len - 7;
  if (width > BAR_MAX) width = BAR_MAX;
  if (width < BAR_MIN) width = 0;
  int room = cols - name_len - (width ? width + 1 : 0) - 6;
  if (room < 0) room = 0;
  if (text_len > room) text[room] = '\0'; /* the band is gone by now: text is ASCII */
  int fill = c->total ? (int)(width * done / c->total) : width;
  char bar[BAR_MAX * 3 + 2];
  size_t o = 0;
  for (int k = 0; k < width; k++) {
    const char *cell =
        k < fill ? (p->utf8 ? "\xe2\x96\x88" : "#") : (p->utf8 ? "\xe2\x96\x91" : "-");
    size_t l = strlen(cell);
    memcpy(bar + o, cell, l);
    o += l;
  }
  if (width) bar[o++] = ' ';
  bar[o] = '\0';
  fprintf(stderr, "\r\033[K%.*s %s%3d%% %s", cols > 0 ? cols : 0, p->name, bar, pct, text);
  fflush(stderr);
  p->bar_shown = 1;
}

/* Whether a line due every `every` us since `last` is due now. A tick that
   fires a hair early still prints it: the slack is added here, never stored
   as the line's time (which would push the next line a tick later). */
static int due(int64_t now, int64_t last, int64_t every) {
  return every && now + TICK_SLACK_US - last >= every;
}

void ps_progress_tick(ps_progress_t *p, const ps_counts_t *c, const ps_hist_t *h) {
  int64_t now = ps_mono_us();
  /* Statistics follow verbose's cadence: vstats 1 every 30 s, 2 and 3 every
     second. */
  int64_t stats_every = p->vstats >= 2 ? FAST_US : p->vstats == 1 ? SLOW_US : 0;
  if (due(now, p->last_stats_us, stats_every)) {
    p->last_stats_us = now;
    if (h->count) {
      char s[300];
      ps_format_stats(s, sizeof s, h);
      clear_bar(p);
      fprintf(stderr, "psurvey: %s: %s\n", p->name, s);
    }
  }
  if (p->verbose >= 1 && strcmp(p->agents, p->agents_shown) != 0) {
    clear_bar(p);
    fprintf(stderr, "psurvey: %s: %s\n", p->name, p->agents);
    snprintf(p->agents_shown, sizeof p->agents_shown, "%s", p->agents);
  }
  if (p->tty && p->verbose >= 1) {
    if (p->verbose >= 2 && p->hosts[0] && due(now, p->last_hosts_us, SLOW_US)) {
      clear_bar(p);
      fprintf(stderr, "psurvey: %s: hosts: %s\n", p->name, p->hosts);
      p->last_hosts_us = now;
    }
    draw_bar(p, c, h);
    return;
  }
  int64_t every = p->verbose >= 2 ? FAST_US : p->verbose == 1 ? SLOW_US : 0;
  if (due(now, p->last_line_us, every)) {
    char text[200], band[100];
    status_text(p, c, h, text, sizeof text, band, sizeof band);
    fprintf(stderr, "psurvey: %s: %s\n", p->name, text);
    if (p->verbose >= 2 && p->hosts[0])
      fprintf(stderr, "psurvey: %s: hosts: %s\n", p->name, p->hosts);
    p->last_line_us = now;
  }
}

void ps_progress_event(ps_progress_t *p, const char *fmt, ...) {
  char line[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  clear_bar(p);
  fprintf(stderr, "psurvey: %s: %s\n", p->name, line);
}

void ps_progress_block(ps_progress_t *p, const char *text, size_t len) {
  clear_bar(p);
  const char *q = text, *end = text + len;
  while (q < end) {
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    int n = (int)(nl ? nl - q : end - q);
    fprintf(stderr, "    %.*s\n", n, q);
    q += n + (nl != NULL);
  }
}

void ps_progress_output(ps_progress_t *p, const char *tag, const char *text, size_t len) {
  clear_bar(p);
  const char *q = text, *end = text + len;
  while (q < end) {
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    int n = (int)(nl ? nl - q : end - q);
    fprintf(stderr, "%s%.*s\n", tag, n, q);
    q += n + (nl != NULL);
  }
}

int ps_progress_failure(ps_progress_t *p, const char *pset, const char *msg, size_t len,
                        const char *tb, size_t tb_len, const char *logpath) {
  if (!p->logpath[0] && logpath) snprintf(p->logpath, sizeof p->logpath, "%s", logpath);
  if (p->verbose < 1) return 0;
  if (p->verbose < 3 && p->failures_shown >= SHOW_FAILURES) {
    if (p->failures_shown++ == SHOW_FAILURES)
      ps_progress_event(p, "more failures: see %s or the database (results.missing)", logpath);
    return 0;
  }
  const char *nl = memchr(msg, '\n', len);
  int n = (int)(nl ? (size_t)(nl - msg) : len);
  if (n > FAILURE_LINE_BYTES) n = FAILURE_LINE_BYTES;
  /* The first says where tracebacks are; verbose 2 shows each one here. */
  if (p->failures_shown++ == 0 && p->verbose < 2)
    ps_progress_event(p, "pset %s failed: %.*s (its traceback is in %s)", pset, n, msg, logpath);
  else
    ps_progress_event(p, "pset %s failed: %.*s", pset, n, msg);
  if (p->verbose >= 2) ps_progress_block(p, tb, tb_len);
  return 1;
}

void ps_progress_end(ps_progress_t *p, const ps_counts_t *c, const ps_hist_t *h, const char *how,
                     const char *failures) {
  clear_bar(p);
  double secs = (double)(ps_mono_us() - p->start_us) / 1e6;
  if (p->verbose >= 1) {
    char ok[32], failed[32], took[32];
    grouped(ok, sizeof ok, c->ok);
    grouped(failed, sizeof failed, c->failed);
    ps_format_seconds(took, sizeof took, secs);
    char extra[96] = "";
    if (c->resumed || c->retried) {
      char a[32], b[32];
      grouped(a, sizeof a, c->resumed);
      grouped(b, sizeof b, c->retried);
      snprintf(extra, sizeof extra, " (%s%s%s%s%s)", c->resumed ? a : "",
               c->resumed ? " from an earlier run" : "", c->resumed && c->retried ? ", " : "",
               c->retried ? b : "", c->retried ? " retried" : "");
    }
    fprintf(stderr, "psurvey: %s: %s: %s ok, %s failed%s in %s\n", p->name, how, ok, failed, extra,
            took);
  }
  /* What failed, at every verbosity: the one line a quiet run shows. */
  if (failures && failures[0])
    fprintf(stderr, "psurvey: %s: %s (tracebacks: %s, results.missing)\n", p->name, failures,
            p->logpath[0] ? p->logpath : "the hidden log");
  if (p->vstats >= 1 && h->count) {
    char s[300];
    ps_format_stats(s, sizeof s, h);
    fprintf(stderr, "psurvey: %s: %s\n", p->name, s);
  }
}

void ps_progress_timers(ps_progress_t *p, const ps_timers_t *s) {
  if (p->vstats < 1) return;
  for (int k = 0; k < s->n; k++) {
    if (s->v[k]->t.hist.count == 0) continue;
    char line[400];
    ps_format_timer(line, sizeof line, s->v[k]);
    fprintf(stderr, "psurvey: %s: %s\n", p->name, line);
  }
}
