/* link.c: a framed byte stream to a peer (link.h). */
#include "link.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "census.h"

/* Bytes asked of the loop for each read. */
#define READ_CHUNK 65536

typedef struct write_req_s {
  uv_write_t req;
  char *data;
} write_req_t;

static void on_handle_closed(uv_handle_t *h) {
  ps_link_t *l = h->data;
  assert(l->open_handles > 0);
  ps_census_add(PS_CENSUS_HANDLES, -1);
  if (--l->open_handles == 0) {
    ps_framer_free(&l->framer);
    free(l);
  }
}

static uv_stream_t *out_stream(ps_link_t *l) { return (uv_stream_t *)(l->two ? &l->out : &l->in); }

/* The input is over: said once, unless the owner closed the link. */
static void end_input(ps_link_t *l, const char *why) {
  if (l->ended) return;
  l->ended = 1;
  if (!uv_is_closing((uv_handle_t *)&l->in)) uv_read_stop((uv_stream_t *)&l->in);
  if (!l->closed && l->cb.on_end) l->cb.on_end(l, why);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  ps_link_t *l = h->data;
  char *p;
  size_t n;
  (void)hint;
  /* None when out of memory: libuv reports it as a read error. */
  if (ps_framer_space(&l->framer, READ_CHUNK, &p, &n) != 0) p = NULL, n = 0;
  *buf = uv_buf_init(p, (unsigned)n);
}

/* Skips what comes before the magic, handing it to on_chatter. 1 once the
   frames begin. */
static int find_magic(ps_link_t *l) {
  ps_framer_t *f = &l->framer;
  const char *data = f->in.data + f->pos;
  size_t avail = f->in.len - f->pos;
  for (size_t k = 0; k + l->magiclen <= avail; k++) {
    if (memcmp(data + k, l->magic, l->magiclen) == 0) {
      if (k && l->cb.on_chatter) l->cb.on_chatter(l, data, k);
      f->pos += k + l->magiclen;
      l->synced = 1;
      return 1;
    }
  }
  /* Keep what could be the start of the magic; the rest is chatter. */
  size_t drop = avail >= l->magiclen ? avail - (l->magiclen - 1) : 0;
  if (drop && l->cb.on_chatter) l->cb.on_chatter(l, data, drop);
  f->pos += drop;
  return 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ps_link_t *l = s->data;
  if (nread < 0 || (nread == 0 && buf->base == NULL)) {
    end_input(l, nread == UV_EOF || nread == 0 ? NULL : uv_strerror((int)nread));
    return;
  }
  l->framer.in.len += (size_t)nread;
  if (!l->synced && (l->closed || !find_magic(l))) return;
  int kind, rc;
  const char *payload;
  size_t len;
  ps_err_t err;
  /* The owner may close the link from a callback: nothing more then. */
  while (!l->closed && !l->ended &&
         (rc = ps_framer_next(&l->framer, &kind, &payload, &len, &err)) == 1)
    l->cb.on_frame(l, kind, payload, len);
  if (!l->closed && !l->ended && rc < 0) {
    char why[sizeof err.msg + 32];
    snprintf(why, sizeof why, "a malformed frame: %s", err.msg);
    end_input(l, why);
  }
}

int ps_link_open(uv_loop_t *loop, int rfd, int wfd, const char *magic, size_t magiclen,
                 const ps_link_cb_t *cb, void *data, ps_link_t **out, ps_err_t *err) {
  ps_link_t *l = calloc(1, sizeof *l);
  if (l == NULL) {
    close(rfd);
    if (wfd >= 0 && wfd != rfd) close(wfd);
    return ps_err_set(err, PS_ENOMEM, "out of memory");
  }
  l->loop = loop;
  l->cb = *cb;
  l->data = data;
  l->magic = magic;
  l->magiclen = magic ? magiclen : 0;
  l->synced = magic == NULL || magiclen == 0;
  ps_framer_init(&l->framer, PS_FRAME_MAX);
  uv_pipe_init(loop, &l->in, 0);
  ps_census_add(PS_CENSUS_HANDLES, 1);
  l->in.data = l;
  l->open_handles = 1;
  int rc = uv_pipe_open(&l->in, rfd);
  if (rc == 0 && wfd >= 0 && wfd != rfd) {
    l->two = 1;
    uv_pipe_init(loop, &l->out, 0);
    ps_census_add(PS_CENSUS_HANDLES, 1);
    l->out.data = l;
    l->open_handles = 2;
    rc = uv_pipe_open(&l->out, wfd);
  }
  l->out_open = wfd >= 0;
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&l->in, on_alloc, on_read);
  if (rc != 0) {
    ps_link_close(l);
    return ps_err_set(err, PS_EWORKER, "cannot read from a peer: %s", uv_strerror(rc));
  }
  *out = l;
  return 0;
}

static void on_written(uv_write_t *req, int status) {
  write_req_t *wr = (write_req_t *)req;
  (void)status; /* a failed write shows up as the end of the peer's input */
  free(wr->data);
  free(wr);
}

int ps_link_send(ps_link_t *l, ps_buf_t *b) {
  size_t len;
  char *data = ps_buf_steal(b, &len);
  uv_stream_t *s = l ? out_stream(l) : NULL;
  if (l == NULL || l->closed || !l->out_open || uv_is_closing((uv_handle_t *)s)) {
    free(data);
    return PS_EWORKER;
  }
  /* Most frames fit in the socket at once. */
  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  int n = uv_try_write(s, &buf, 1);
  if (n == (int)len) {
    free(data);
    return 0;
  }
  if (n < 0) n = 0;
  write_req_t *wr = malloc(sizeof *wr);
  if (wr == NULL) {
    free(data);
    return PS_ENOMEM;
  }
  wr->data = data;
  buf = uv_buf_init(data + n, (unsigned)(len - (size_t)n));
  if (uv_write(&wr->req, s, &buf, 1, on_written) != 0) {
    free(data);
    free(wr);
    return PS_EWORKER;
  }
  return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

void ps_link_shutdown(ps_link_t *l) {
  if (l == NULL || l->closed || !l->out_open) return;
  l->out_open = 0;
  if (l->two) {
    if (!uv_is_closing((uv_handle_t *)&l->out)) uv_close((uv_handle_t *)&l->out, on_handle_closed);
    return;
  }
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req && uv_shutdown(req, (uv_stream_t *)&l->in, on_shutdown) != 0) free(req);
}

void ps_link_close(ps_link_t *l) {
  if (l == NULL || l->closed) return;
  l->closed = 1;
  l->out_open = 0;
  if (!uv_is_closing((uv_handle_t *)&l->in)) uv_close((uv_handle_t *)&l->in, on_handle_closed);
  if (l->two && !uv_is_closing((uv_handle_t *)&l->out))
    uv_close((uv_handle_t *)&l->out, on_handle_closed);
}
