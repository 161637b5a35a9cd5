/* log.c: the hidden log file of log.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "ps.h"

/* Runs started in one second in one directory, each with its own file. */
#define LOG_SAME_SECOND_MAX 1000
#define LOG_DIR ".psurvey/logs"

void ps_log_open(ps_log_t *log) {
  time_t t = time(NULL);
  struct tm tm;
  char stamp[32];
  localtime_r(&t, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  /* In .psurvey/logs of the working directory, whatever database the run
     writes: made when missing (a directory that cannot be made leaves the
     run without a log, not without results). */
  if ((mkdir(".psurvey", 0777) != 0 && errno != EEXIST) ||
      (mkdir(LOG_DIR, 0777) != 0 && errno != EEXIST)) {
    log->fd = -1;
    snprintf(log->path, sizeof log->path, "%s (cannot be made)", LOG_DIR);
    return;
  }
  /* Each run its own file: O_EXCL, so two runs that start in the same
     second never write into one (the second gets -2, then -3...). */
  for (int k = 1; k <= LOG_SAME_SECOND_MAX; k++) {
    if (k == 1)
      snprintf(log->path, sizeof log->path, LOG_DIR "/%s.log", stamp);
    else
      snprintf(log->path, sizeof log->path, LOG_DIR "/%s-%d.log", stamp, k);
    log->fd = open(log->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    /* Held while the run writes it: `psurvey gc` leaves a locked log alone,
       whatever database its run uses. */
    if (log->fd >= 0) flock(log->fd, LOCK_SH | LOCK_NB);
    if (log->fd >= 0 || errno != EEXIST) return;
  }
}

void ps_log_close(ps_log_t *log) {
  if (log->fd >= 0) close(log->fd);
  log->fd = -1;
}

static void stamp(ps_buf_t *b) {
  int64_t us = ps_now_us();
  time_t t = (time_t)(us / 1000000);
  struct tm tm;
  char s[32];
  localtime_r(&t, &tm);
  strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S", &tm);
  ps_buf_printf(b, "%s.%03d ", s, (int)(us / 1000 % 1000));
}

static void write_buf(ps_log_t *log, ps_buf_t *b) {
  if (!b->failed && log->fd >= 0) {
    ssize_t k = write(log->fd, b->data, b->len);
    (void)k;
  }
  ps_buf_free(b);
}

void ps_log_printf(ps_log_t *log, const char *fmt, ...) {
  if (log->fd < 0) return;
  ps_buf_t b;
  ps_buf_init(&b);
  stamp(&b);
  char small[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  ps_buf_puts(&b, small);
  ps_buf_putc(&b, '\n');
  write_buf(log, &b);
}

void ps_log_block(ps_log_t *log, const char *prefix, const char *text, size_t len) {
  if (log->fd < 0 || len == 0) return;
  ps_buf_t b;
  ps_buf_init(&b);
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    ps_buf_puts(&b, prefix);
    ps_buf_put(&b, p, n);
    ps_buf_putc(&b, '\n');
    p += n + (nl != NULL);
  }
  write_buf(log, &b);
}
