/*
 * link.h: one framed byte stream to a peer: frames in, frames out
 * (frame.h). A worker's socket pairs, an ssh connection's pipes, the
 * agent's standard input; a TCP socket is one descriptor for both ways.
 * What the frames mean is the owner's business; how the peer was started
 * is not the link's.
 *
 * A link never calls back from inside one of its own functions: frames
 * and the end of input arrive from the loop's read callbacks. Sending
 * takes the buffer's memory. Closing is idempotent; the memory is freed
 * once libuv has closed the handles, after which nothing is called back.
 */
#ifndef PS_LINK_H
#define PS_LINK_H

#include <uv.h>

#include "buf.h"
#include "frame.h"
#include "ps.h"

typedef struct ps_link_s ps_link_t;

typedef struct ps_link_cb_s {
  /* A whole frame arrived; payload is valid until the callback returns. */
  void (*on_frame)(ps_link_t *l, int kind, const char *payload, size_t len);
  /* The input ended, once: why is NULL at the end of the stream, else what
     was wrong (a read error, a malformed frame). Nothing is read after. */
  void (*on_end)(ps_link_t *l, const char *why);
  /* With a magic: the bytes before it (a login script's chatter). May be
     NULL. */
  void (*on_chatter)(ps_link_t *l, const char *p, size_t n);
} ps_link_cb_t;

struct ps_link_s {
  void *data; /* the owner's */
  /* The rest is the link's own. */
  uv_loop_t *loop;
  ps_link_cb_t cb;
  uv_pipe_t in, out; /* out unused when one descriptor serves both ways */
  int two, open_handles, closed, ended, out_open;
  ps_framer_t framer;
  const char *magic; /* frames start after it; NULL: at once */
  size_t magiclen;
  int synced;
};

/* Opens a link reading rfd and writing wfd (the same descriptor for a
   socket; wfd -1: reading only). The link owns the descriptors from now
   on, also on failure. With magic (a static string), what comes before
   its first appearance goes to on_chatter. */
int ps_link_open(uv_loop_t *loop, int rfd, int wfd, const char *magic, size_t magiclen,
                 const ps_link_cb_t *cb, void *data, ps_link_t **out, ps_err_t *err);
/* Sends the frames in b, at once when the descriptor takes them, else
   queued; takes b's memory. PS_EWORKER when the link is closed (or NULL)
   or its output was shut. */
int ps_link_send(ps_link_t *l, ps_buf_t *b);
/* Ends the output: the peer reads the end of its input. */
void ps_link_shutdown(ps_link_t *l);
/* Stops reading and writing; no callback comes after this returns. */
void ps_link_close(ps_link_t *l);

#endif
