/* carbon.c: a survey's progress sent to Graphite's carbon (carbon.h). */
#include "carbon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "census.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
/* Bytes of points kept while the connection is being made. */
#define PENDING_MAX (64 * 1024)

struct ps_carbon_s {
  uv_loop_t *loop;
  ps_log_t *log;
  char host[256];
  char port_text[16];
  int port, protocol;
  uv_tcp_t tcp;
  uv_timer_t retry;
  uv_getaddrinfo_t gai;
  uv_connect_t conn;
  int tcp_open;  /* tcp is initialised and not closing */
  int busy;      /* resolving or connecting */
  int connected; /* writes may go */
  int down_said; /* the log said it is unreachable; says so again when back */
  int closing;   /* ps_carbon_close was called */
  int handles;   /* handles not closed yet: the timer, and tcp once initialised */
  int64_t backoff_ms;
  int64_t sent, dropped, dropped_at_down;
  /* Points made while not connected, waiting for the connection (at most
     PENDING_MAX bytes), and how many. */
  ps_buf_t pending;
  int64_t npending;
};

typedef struct write_s {
  uv_write_t req;
  ps_carbon_t *c;
  ps_buf_t b;
} write_t;

static void connect_now(ps_carbon_t *c);

static void on_retry(uv_timer_t *t) { connect_now(t->data); }

static void maybe_free(ps_carbon_t *c) {
  if (c->closing && c->handles == 0 && !c->busy) {
    ps_buf_free(&c->pending);
    free(c);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  ps_carbon_t *c = h->data;
  c->handles--;
  ps_census_add(PS_CENSUS_HANDLES, -1);
  maybe_free(c);
}

static void close_tcp(ps_carbon_t *c) {
  if (!c->tcp_open) return;
  c->tcp_open = 0;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Says once that carbon is unreachable, and why. */
static void went_down(ps_carbon_t *c, const char *why) {
  if (c->down_said || c->log == NULL) return;
  c->down_said = 1;
  c->dropped_at_down = c->dropped;
  ps_log_printf(c->log, "carbon %s:%d: %s; progress points are dropped until it is back", c->host,
                c->port, why);
}

/* Drops the connection and tries again after the backoff. */
static void lost(ps_carbon_t *c, const char *why) {
  c->connected = 0;
  went_down(c, why);
  close_tcp(c);
  if (c->closing) return;
  uv_timer_start(&c->retry, on_retry, (uint64_t)c->backoff_ms, 0);
  c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char sink[256]; /* carbon says nothing: what it sends is dropped */
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(sink, sizeof sink);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  /* Called only while tcp is open: a read never outlives the handle. */
  ps_carbon_t *c = s->data;
  (void)buf;
  if (n < 0) lost(c, n == UV_EOF ? "it closed the connection" : uv_strerror((int)n));
}

static void write_bytes(ps_carbon_t *c, const char *p, size_t len, int64_t npoints);

/* What waited for the connection goes now. */
static void flush_pending(ps_carbon_t *c) {
  if (c->pending.len == 0) return;
  write_bytes(c, c->pending.data, c->pending.len, c->npending);
  c->pending.len = 0;
  c->npending = 0;
}

static void on_connect(uv_connect_t *req, int status) {
  ps_carbon_t *c = req->data;
  c->busy = 0;
  if (c->closing) {
    maybe_free(c);
    return;
  }
  if (status != 0) {
    lost(c, uv_strerror(status));
    return;
  }
  c->connected = 1;
  c->backoff_ms = BACKOFF_FIRST_MS;
  if (c->down_said && c->log)
    ps_log_printf(c->log, "carbon %s:%d: connected again; %lld progress points were dropped",
                  c->host, c->port, (long long)(c->dropped - c->dropped_at_down));
  c->down_said = 0;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  flush_pending(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  ps_carbon_t *c = req->data;
  c->busy = 0;
  if (c->closing) {
    if (res) uv_freeaddrinfo(res);
    maybe_free(c);
    return;
  }
  if (status != 0 || res == NULL) {
    if (res) uv_freeaddrinfo(res);
    lost(c, uv_strerror(status ? status : UV_EAI_NONAME));
    return;
  }
  uv_tcp_init(c->loop, &c->tcp);
  c->tcp.data = c;
  c->tcp_open = 1;
  c->handles++;
  ps_census_add(PS_CENSUS_HANDLES, 1);
  uv_tcp_nodelay(&c->tcp, 1);
  c->conn.data = c;
  int rc = uv_tcp_connect(&c->conn, &c->tcp, res->ai_addr, on_connect);
  uv_freeaddrinfo(res);
  if (rc != 0) {
    lost(c, uv_strerror(rc));
    return;
  }
  c->busy = 1;
}

static void connect_now(ps_carbon_t *c) {
  /* The last tcp handle must be closed before the struct is used again. */
  if (c->closing || c->busy || c->connected || c->handles > 1) {
    if (!c->closing && !c->busy && !c->connected) uv_timer_start(&c->retry, on_retry, 100, 0);
    return;
  }
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  c->gai.data = c;
  int rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, c->port_text, &hints);
  if (rc != 0) {
    lost(c, uv_strerror(rc));
    return;
  }
  c->busy = 1;
}

ps_carbon_t *ps_carbon_new(uv_loop_t *loop, const char *host, int port, int protocol, ps_log_t *log,
                           ps_err_t *err) {
  if (strlen(host) >= sizeof((ps_carbon_t *)0)->host || port < 1 || port > 65535) {
    ps_err_set(err, PS_EVALUE, "carbon: a bad address %s:%d", host, port);
    return NULL;
  }
  ps_carbon_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    ps_err_set(err, PS_ENOMEM, "out of memory");
    return NULL;
  }
  c->loop = loop;
  c->log = log;
  snprintf(c->host, sizeof c->host, "%s", host);
  snprintf(c->port_text, sizeof c->port_text, "%d", port);
  c->port = port;
  c->protocol = protocol;
  c->backoff_ms = BACKOFF_FIRST_MS;
  ps_buf_init(&c->pending);
  uv_timer_init(loop, &c->retry);
  ps_census_add(PS_CENSUS_HANDLES, 1);
  c->retry.data = c;
  uv_unref((uv_handle_t *)&c->retry); /* a retry never keeps the loop alive */
  c->handles = 1;                     /* the timer */
  connect_now(c);
  return c;
}

int ps_carbon_same(const ps_carbon_t *c, const char *host, int port, int protocol) {
  return strcmp(c->host, host) == 0 && c->port == port && c->protocol == protocol;
}

static void on_written(uv_write_t *req, int status) {
  write_t *w = req->data;
  ps_carbon_t *c = w->c;
  ps_buf_free(&w->b);
  free(w);
  if (status != 0 && status != UV_ECANCELED && !c->closing) lost(c, uv_strerror(status));
}

/* Writes the bytes of npoints points (copied), or drops them. */
static void write_bytes(ps_carbon_t *c, const char *p, size_t len, int64_t npoints) {
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > PS_CARBON_QUEUE_MAX) {
    c->dropped += npoints;
    went_down(c, "it does not read what it is sent (a slow server)");
    return;
  }
  write_t *w = malloc(sizeof *w);
  if (w == NULL) {
    c->dropped += npoints;
    return;
  }
  w->c = c;
  w->req.data = w;
  ps_buf_init(&w->b);
  ps_buf_put(&w->b, p, len);
  if (w->b.failed) {
    ps_buf_free(&w->b);
    free(w);
    c->dropped += npoints;
    return;
  }
  uv_buf_t buf = uv_buf_init(w->b.data, (unsigned)w->b.len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written);
  if (rc != 0) {
    ps_buf_free(&w->b);
    free(w);
    c->dropped += npoints;
    lost(c, uv_strerror(rc));
    return;
  }
  c->sent += npoints;
}

void ps_carbon_send(ps_carbon_t *c, const ps_metric_t *m, size_t n, int64_t time) {
  if (c == NULL || c->closing || n == 0) return;
  ps_buf_t b;
  ps_buf_init(&b);
  ps_carbon_encode(&b, c->protocol, m, n, time);
  if (b.failed) {
    c->dropped += (int64_t)n;
  } else if (c->connected) {
    write_bytes(c, b.data, b.len, (int64_t)n);
  } else if (c->pending.len + b.len <= PENDING_MAX) {
    /* Kept for the connection being made (or made again). */
    ps_buf_put(&c->pending, b.data, b.len);
    c->npending += (int64_t)n;
  } else {
    c->dropped += (int64_t)n;
    went_down(c, c->busy ? "not connected yet" : "unreachable");
  }
  ps_buf_free(&b);
}

int ps_carbon_idle(const ps_carbon_t *c) {
  if (c == NULL) return 1;
  if (c->connected)
    return c->pending.len == 0 && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0;
  return !c->busy || c->pending.len == 0; /* a connection on its way with points for it */
}

void ps_carbon_counts(const ps_carbon_t *c, int64_t *sent, int64_t *dropped) {
  *sent = c ? c->sent : 0;
  *dropped = c ? c->dropped : 0;
}

void ps_carbon_close(ps_carbon_t *c) {
  if (c == NULL || c->closing) return;
  c->closing = 1;
  /* A lookup in flight is cancelled (on_resolved then frees); a connect in
     flight ends with the tcp handle's close (on_connect then frees). */
  if (c->busy && !c->tcp_open) uv_cancel((uv_req_t *)&c->gai);
  uv_close((uv_handle_t *)&c->retry, on_handle_closed);
  close_tcp(c);
  maybe_free(c);
}

/* Pickle protocol 2, the opcodes carbon's receiver reads. */
static void pickle_str(ps_buf_t *b, const char *s) {
  size_t n = strlen(s);
  ps_buf_putc(b, 'X'); /* BINUNICODE: 4-byte little-endian length, UTF-8 */
  for (int k = 0; k < 4; k++) ps_buf_putc(b, (char)((n >> (8 * k)) & 0xff));
  ps_buf_put(b, s, n);
}

static void pickle_int(ps_buf_t *b, int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) {
    ps_buf_putc(b, 'J'); /* BININT: 4-byte little-endian signed */
    uint32_t u = (uint32_t)(int32_t)v;
    for (int k = 0; k < 4; k++) ps_buf_putc(b, (char)((u >> (8 * k)) & 0xff));
    return;
  }
  ps_buf_putc(b, (char)0x8a); /* LONG1: 1-byte length, little-endian two's complement */
  ps_buf_putc(b, 8);
  uint64_t u = (uint64_t)v;
  for (int k = 0; k < 8; k++) ps_buf_putc(b, (char)((u >> (8 * k)) & 0xff));
}

static void pickle_float(ps_buf_t *b, double d) {
  ps_buf_putc(b, 'G'); /* BINFLOAT: 8-byte big-endian IEEE 754 */
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  for (int k = 7; k >= 0; k--) ps_buf_putc(b, (char)((u >> (8 * k)) & 0xff));
}

void ps_carbon_encode(ps_buf_t *b, int protocol, const ps_metric_t *m, size_t n, int64_t time) {
  if (protocol == PS_CARBON_PLAINTEXT) {
    for (size_t k = 0; k < n; k++)
      ps_buf_printf(b, "%s %.17g %lld\n", m[k].path, m[k].value, (long long)time);
    return;
  }
  size_t start = b->len;
  ps_buf_put(b, "\0\0\0\0", 4); /* the length, patched below */
  ps_buf_put(b, "\x80\x02", 2); /* PROTO 2 */
  ps_buf_putc(b, ']');          /* EMPTY_LIST */
  ps_buf_putc(b, '(');          /* MARK */
  for (size_t k = 0; k < n; k++) {
    pickle_str(b, m[k].path);
    pickle_int(b, time);
    pickle_float(b, m[k].value);
    ps_buf_putc(b, (char)0x86); /* TUPLE2: (time, value) */
    ps_buf_putc(b, (char)0x86); /* TUPLE2: (path, (time, value)) */
  }
  ps_buf_putc(b, 'e'); /* APPENDS */
  ps_buf_putc(b, '.'); /* STOP */
  if (b->failed) return;
  size_t len = b->len - start - 4;
  for (int k = 0; k < 4; k++) b->data[start + (size_t)k] = (char)((len >> (8 * (3 - k))) & 0xff);
}

void ps_carbon_component(char *out, size_t n, const char *name) {
  if (n == 0) return;
  size_t k = 0;
  for (; name[k] && k + 1 < n; k++) {
    char ch = name[k];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '-' || ch == '_';
    out[k] = ok ? ch : '_';
  }
  out[k] = '\0';
}
