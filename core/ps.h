/*
 * ps.h: what every engine file shares: error codes, the error record,
 * limits and the protocol version. The engine (the .c files of core/) never includes
 * lua.h; core/lua/ holds the bindings.
 */
#ifndef PS_H
#define PS_H

#include <stddef.h>
#include <stdint.h>

#ifndef PSURVEY_VERSION
#define PSURVEY_VERSION "0.0.0"
#endif

/* Bumped whenever a frame layout changes; driver and worker must agree. */
#define PS_PROTOCOL 6

/* Deepest nesting of tables a decoder accepts. */
#define PS_MAX_DEPTH 100

/* Largest frame payload accepted from a peer (256 MiB). */
#define PS_FRAME_MAX (256u << 20)

/* A batch of psets, or of results, is sent once it holds this much; one
   pset or one result may take PS_VALUE_MAX encoded, so that with what
   came before it in its batch it still fits in a frame. */
#define PS_BATCH_BYTES (8u << 20)
#define PS_VALUE_MAX (PS_FRAME_MAX - 2 * PS_BATCH_BYTES)

/* Engine error codes: negative, apart from libuv's UV_E* range. */
enum {
  PS_OK = 0,
  PS_ENOMEM = -30001,  /* out of memory */
  PS_EPROTO = -30002,  /* malformed bytes from a peer or a file */
  PS_EDB = -30003,     /* SQLite failed */
  PS_EVALUE = -30004,  /* a value cannot be stored or sent */
  PS_EINTR = -30005,   /* interrupted by a signal */
  PS_EWORKER = -30006, /* workers cannot be started or cannot load the code */
  PS_EBUSY = -30007,   /* the database is locked by another program: nothing was lost, try again */
  PS_EHOSTS = -30008,  /* every host of the survey is lost or unreachable */
  PS_EHALT = -30010,   /* the stage stopped early: its halt option tripped */
  PS_EACCES = -30009,  /* the database cannot be written here (read-only file or directory) */
};

/* An error with its message, filled by the function that failed. */
typedef struct ps_err_s {
  int code;
  char msg[512];
} ps_err_t;

/* Fills err (when not NULL) and returns code, so callers can write
   `return ps_err_set(err, PS_EPROTO, "...")`. */
int ps_err_set(ps_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Text into a fixed field of `size` bytes (give it sizeof the field): the
   n bytes at p (ps_text), or formatted (ps_textf), cut to fit at a whole
   UTF-8 character and always ended with a NUL. They return dst. One place
   decides how text is cut, so no caller counts bytes by hand. */
char *ps_text(char *dst, size_t size, const char *p, size_t n);
char *ps_textf(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Wall clock in microseconds since the epoch. */
int64_t ps_now_us(void);

/* Monotonic clock in microseconds. */
int64_t ps_mono_us(void);

#endif
