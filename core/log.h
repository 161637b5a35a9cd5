/*
 * log.h: the hidden log file .psurvey/logs/YYYYMMDD-HHMMSS.log in the working
 * directory, one per run (-2, -3... for runs started in the same second). It always records the
 * run's options, every exception with its traceback, worker deaths and stage summaries, whatever
 * the verbosity, so a failure can be studied after the fact. The run holds a shared lock (flock)
 * on its log while it writes it, which `psurvey gc` tests (core.in_use).
 */
#ifndef PS_LOG_H
#define PS_LOG_H

typedef struct ps_log_s {
  int fd;
  char path[64];
} ps_log_t;

/* Creates the file; on failure fd is -1 and logging is a no-op. */
void ps_log_open(ps_log_t *log);
void ps_log_close(ps_log_t *log);
void ps_log_printf(ps_log_t *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes text as is, each line prefixed for readability. */
void ps_log_block(ps_log_t *log, const char *prefix, const char *text, size_t len);

#endif
