/*
 * capture.h: what a process and the programs it starts write to standard
 * output and error, caught in two files in memory (memfd) put in place of
 * descriptors 1 and 2, and taken a piece at a time: a worker takes what
 * each pset wrote when it ends. Children inherit the two files and share
 * their offsets, so what they write lands there too, in order. Not here:
 * what becomes of the bytes taken (the worker sends them with the pset's
 * result, msg.h), nor Lua.
 *
 * stdout is line buffered, as on a terminal: the lines of a process and
 * of the programs it starts are in the order they were written (a partial
 * line waits for its end, or for the take). The files hold what a piece
 * writes until it is taken: memory (or swap) grows with it, whatever is
 * kept of it.
 */
#ifndef PS_CAPTURE_H
#define PS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct ps_capture_s {
  int on;  /* descriptors 1 and 2 are the files */
  int err; /* the process's standard error as it was (close-on-exec), or -1 */
  /* The last take: each stream as a note of what was cut ("" when none)
     and the bytes kept, in `kept` (stdout's first). */
  ps_buf_t kept;
  size_t len[2];
  char note[2][64];
} ps_capture_t;

/* Puts the two files in place of descriptors 1 and 2, after flushing
   stdio. 0, or a negative code (nothing changed but c->err, kept). */
int ps_capture_start(ps_capture_t *c);
/* Flushes stdio and takes what was written since the last take, and
   empties the files: 0 when nothing was (two system calls, the usual
   case), else 1, with each stream's last `limit` bytes at most in c->kept
   (a note says how many bytes before them were cut, or lost when memory
   to keep them was lacking). */
int ps_capture_take(ps_capture_t *c, size_t limit);
/* The bytes of stream k (0 stdout, 1 stderr) of the last take. */
const char *ps_capture_bytes(const ps_capture_t *c, int k);
/* Flushes stdio and writes what was written since the last take to the
   standard error as it was, each line after `tag`, stdout's lines then
   stderr's; empties the files. */
void ps_capture_pass(ps_capture_t *c, const char *tag);
/* Writes text to the standard error as it was (the process's own
   messages, which must not be caught). */
void ps_capture_say(const ps_capture_t *c, const char *text);
void ps_capture_free(ps_capture_t *c);

#endif
