/*
 * carbon.h: a survey's progress sent to Graphite's carbon, for the
 * dashboards a lab already runs. Points go out in carbon's pickle protocol
 * (a 4-byte big-endian length, then a pickled list of (path, (time,
 * value)) tuples, protocol 2) or its plaintext one ("path value time\n").
 *
 * A carbon that is down, slow or gone never slows the survey: every call
 * returns at once. The connection is made in the background and made again
 * with backoff (1 s doubling to 60 s) after it fails or drops. Points made
 * while it is not connected wait for it, up to 64 KiB; beyond that, and
 * beyond PS_CARBON_QUEUE_MAX bytes already waiting for a slow server, they
 * are dropped and counted. The log says
 * once that carbon is unreachable, and again when it is back, with how
 * many points were dropped meanwhile.
 */
#ifndef PS_CARBON_H
#define PS_CARBON_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "log.h"
#include "ps.h"

/* The longest metric path made for carbon, with its NUL. */
#define PS_CARBON_PATH_MAX 400
/* Bytes waiting for a slow carbon beyond which new points are dropped. */
#define PS_CARBON_QUEUE_MAX (256 * 1024)

enum { PS_CARBON_PLAINTEXT, PS_CARBON_PICKLE };

typedef struct ps_metric_s {
  const char *path; /* dotted: psurvey.survey.stage1.finished */
  double value;
} ps_metric_t;

typedef struct ps_carbon_s ps_carbon_t;

/* A carbon client; it starts connecting at once. NULL when out of memory
   (err says so) or the address cannot be used. log may be NULL. */
ps_carbon_t *ps_carbon_new(uv_loop_t *loop, const char *host, int port, int protocol, ps_log_t *log,
                           ps_err_t *err);
/* Whether c sends to that address with that protocol. */
int ps_carbon_same(const ps_carbon_t *c, const char *host, int port, int protocol);
/* Sends n points stamped `time` (Unix seconds), or drops them; never waits. */
void ps_carbon_send(ps_carbon_t *c, const ps_metric_t *m, size_t n, int64_t time);
/* Whether nothing waits to be written: the points sent are with the
   kernel, and no connection being made holds points for it. */
int ps_carbon_idle(const ps_carbon_t *c);
/* Points sent and dropped so far. */
void ps_carbon_counts(const ps_carbon_t *c, int64_t *sent, int64_t *dropped);
/* Closes the connection; the memory goes once libuv has closed the
   handles (run the loop). Nothing is called back after this. */
void ps_carbon_close(ps_carbon_t *c);

/* The pickle or plaintext bytes of n points, appended to b (for tests). */
void ps_carbon_encode(ps_buf_t *b, int protocol, const ps_metric_t *m, size_t n, int64_t time);

/* Writes name into out (size n) as one component of a carbon path: every
   byte other than letters, digits, '-' and '_' becomes '_'. */
void ps_carbon_component(char *out, size_t n, const char *name);

#endif
