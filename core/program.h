/*
 * program.h: run a program to its end, without a shell, and keep what it
 * writes: a worker's system.run. The program is started from an argv
 * array (searched on PATH as execvp does), with the given bytes on its
 * standard input, variables added to the environment and a working
 * directory; its standard output and error are read as they come, both at
 * once, so a program that writes much to both never blocks on a full pipe
 * (and neither does one that reads its input slowly).
 *
 * It stays in the caller's process group: the driver's kill of a worker
 * that overran its timeout reaches the program too. It is waited for, so
 * its CPU time counts among the worker's children.
 */
#ifndef PS_PROGRAM_H
#define PS_PROGRAM_H

#include <stddef.h>

#include "buf.h"
#include "ps.h"

typedef struct ps_program_s {
  const char *const *argv; /* argv[0] is the program; NULL-terminated */
  const char *input;       /* standard input, or NULL for none (/dev/null) */
  size_t input_len;
  const char *const *env; /* "NAME=value" added to (or replacing in) the environment, or NULL */
  const char *cwd;        /* working directory, or NULL for the caller's */
} ps_program_t;

typedef struct ps_program_out_s {
  int exited;   /* 1: it exited, with code; 0: a signal ended it */
  int code;     /* its exit status */
  int signal;   /* the signal that ended it */
  ps_buf_t out; /* its standard output */
  ps_buf_t err; /* its standard error */
} ps_program_out_t;

/* Runs p to its end. 0 with *o filled (the caller frees o->out and
   o->err, initialised here), or an error when it could not be started
   (PS_EWORKER with why: no such program, a bad directory) or read
   (PS_ENOMEM). */
int ps_program_run(const ps_program_t *p, ps_program_out_t *o, ps_err_t *err);

#endif
