/* errand.c: short programs run in the background (errand.h). */
#include "errand.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "census.h"

/* Freed once both pipes are closed and the child has been waited for
   (or forgotten). */
static void release(ps_errand_t *e) {
  if (e->open > 0 || !e->ended) return;
  ps_buf_free(&e->obuf);
  ps_buf_free(&e->ebuf);
  free(e);
}

static void closed(uv_handle_t *h) {
  ps_errand_t *e = h->data;
  ps_census_add(PS_CENSUS_HANDLES, -1);
  e->open--;
  release(e);
}

/* Once it has exited and both pipes are read: the callback. */
static void finish(ps_errand_t *e) {
  if (!e->ended || e->eofs < 2 || e->reported) return;
  e->reported = 1;
  if (e->done) e->done(e, e->exited, e->code, e->signal, &e->obuf, &e->ebuf);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char chunk[4096]; /* copied out at once */
  (void)h, (void)hint;
  buf->base = chunk;
  buf->len = sizeof chunk;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ps_errand_t *e = s->data;
  if (nread > 0) {
    ps_buf_put(s == (uv_stream_t *)&e->out ? &e->obuf : &e->ebuf, buf->base, (size_t)nread);
    return;
  }
  if (nread < 0) {
    uv_read_stop(s);
    uv_close((uv_handle_t *)s, closed);
    e->eofs++;
    finish(e);
  }
}

static void on_exit_cb(ps_child_t *c, int64_t status, int sig) {
  ps_errand_t *e = c->data;
  e->child = NULL;
  e->ended = 1;
  e->exited = sig == 0;
  e->code = (int)status;
  e->signal = sig;
  finish(e);
  release(e);
}

int ps_errand_start(uv_loop_t *loop, ps_reaper_t *r, char *const argv[], ps_errand_cb done,
                    void *data, ps_errand_t **out, ps_err_t *err) {
  ps_errand_t *e = calloc(1, sizeof *e);
  if (e == NULL) return ps_err_set(err, PS_ENOMEM, "out of memory");
  e->data = data;
  e->done = done;
  ps_buf_init(&e->obuf);
  ps_buf_init(&e->ebuf);
  int to, from, from_err;
  if (ps_spawn(r, argv[0], argv, on_exit_cb, e, &e->child, &to, &from, &from_err, err) != 0) {
    free(e);
    return err ? err->code : PS_EWORKER;
  }
  close(to);
  uv_pipe_init(loop, &e->out, 0);
  uv_pipe_init(loop, &e->err, 0);
  ps_census_add(PS_CENSUS_HANDLES, 2);
  e->open = 2;
  e->out.data = e->err.data = e;
  uv_pipe_open(&e->out, from);
  uv_pipe_open(&e->err, from_err);
  uv_read_start((uv_stream_t *)&e->out, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&e->err, on_alloc, on_read);
  *out = e;
  return 0;
}

void ps_errand_drop(ps_errand_t *e) {
  e->done = NULL;
  if (e->child) {
    kill(-e->child->pid, SIGKILL);
    ps_child_forget(e->child);
    e->child = NULL;
  }
  e->ended = 1;
  if (!uv_is_closing((uv_handle_t *)&e->out)) uv_close((uv_handle_t *)&e->out, closed);
  if (!uv_is_closing((uv_handle_t *)&e->err)) uv_close((uv_handle_t *)&e->err, closed);
}
