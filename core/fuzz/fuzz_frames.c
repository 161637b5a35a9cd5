/*
 * fuzz_frames.c: libFuzzer target for the frame splitter (frame.h) and the
 * payload readers (value.h), fed the way a driver or a worker is fed: an
 * untrusted byte stream that arrives in pieces of any size.
 *
 * The input is one control byte, then the stream. The control byte's low
 * three bits pick the framer's size limit (0: 1 MiB), its high five bits
 * seed the sizes of the pieces (0: each read fills all the room the framer
 * offers, as a fast pipe does). Driver and worker use PS_FRAME_MAX (256
 * MiB), but the framer treats every limit alike, and a five-byte header
 * that makes it reserve hundreds of MiB costs ASan milliseconds of shadow
 * memory: with that limit the target ran ten times slower. Every
 * frame is decoded by the reader of its kind in core/msg.c, the one the
 * driver, the agent and the worker call, and what a reader accepts is
 * written again by the writer of its kind and must give back the same
 * bytes (RESULTS with its timers, through a set of them, ps_timers_t);
 * every value in it is read as they read it (fz_read_value; fuzz_value
 * checks values in depth). The frames read are written again with
 * ps_frame_begin/ps_frame_end and must give back the bytes they came from.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "frame.h"
#include "msg.h"
#include "value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reader of a varint written apart from ps_read_varint: LEB128 of at
   most 64 bits, so ten bytes at most and the tenth 0 or 1. */
static int varint_reference(const unsigned char *p, size_t n, uint64_t *v, size_t *used) {
  uint64_t x = 0;
  for (size_t k = 0; k < n && k < 10; k++) {
    if (k == 9 && p[k] > 1) return -1;
    x |= (uint64_t)(p[k] & 0x7f) << (7 * k);
    if (!(p[k] & 0x80)) {
      *v = x;
      *used = k + 1;
      return 0;
    }
  }
  return -1;
}

/* ps_read_varint, checked against the reference, at the start of a
   payload: every message begins with a varint but the empty ones. */
static void check_varint(const char *p, size_t n) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  uint64_t want = 0, v = 0;
  size_t used = 0;
  int ref = varint_reference(r.p, n, &want, &used);
  int rc = ps_read_varint(&r, &v);
  FZ_ASSERT((rc == 0) == (ref == 0));
  if (rc == 0) FZ_ASSERT(v == want && (size_t)(r.p - (const unsigned char *)p) == used);
}

/* Borrowed bytes lie inside the payload they came from. */
static void inside(ps_bytes_t b, const char *p, size_t n) {
  FZ_ASSERT(b.p == NULL || (b.p >= p && b.p + b.n <= p + n) || b.n == 0);
}

/* What a reader accepted, written again by the writer of its kind, gives
   back the payload: every reader and writer of msg.h agree. */
static void same_frame(int kind, ps_buf_t *b, const char *p, size_t n) {
  if (b->failed) return;
  FZ_ASSERT(b->len == PS_FRAME_HEADER + n && b->data[4] == (char)kind);
  FZ_ASSERT(memcmp(b->data + PS_FRAME_HEADER, p, n) == 0);
}

static void decode_frame(int kind, const char *p, size_t n, int depth);

/* TO: one whole frame for a worker, split by a framer of its own, as the
   worker splits its input. FROM: a worker's payload, read as its kind. */
static void decode_inner(const ps_msg_relay_t *m, int kind, int depth) {
  if (depth >= 2) return;
  if (kind == PS_MSG_FROM) {
    decode_frame(m->kind, m->bytes.p, m->bytes.n, depth + 1);
    return;
  }
  ps_framer_t f;
  ps_framer_init(&f, 1u << 20);
  char *room;
  size_t cap;
  if (ps_framer_space(&f, m->bytes.n, &room, &cap) == 0) {
    memcpy(room, m->bytes.p, m->bytes.n);
    f.in.len += m->bytes.n;
    int k;
    const char *payload;
    size_t len;
    ps_err_t err;
    while (ps_framer_next(&f, &k, &payload, &len, &err) == 1)
      decode_frame(k, payload, len, depth + 1);
  }
  ps_framer_free(&f);
}

/* Every frame through the reader of its kind (msg.h), the one driver,
   agent and worker call; what it accepts is written again and must give
   the same bytes. */
static void decode_frame(int kind, const char *p, size_t n, int depth) {
  ps_buf_t b;
  ps_buf_init(&b);
  if (n > 0) check_varint(p, n);
  switch (kind) {
    case PS_MSG_HELLO: {
      ps_msg_hello_t m;
      if (ps_msg_get_hello(p, n, &m) != 0) break;
      inside(m.host, p, n);
      inside(m.version, p, n);
      ps_msg_put_hello(&b, &m);
      same_frame(kind, &b, p, n);
      break;
    }
    case PS_MSG_CODE: {
      ps_msg_code_t m;
      if (ps_msg_get_code(p, n, &m) != 0) break;
      inside(m.function, p, n);
      inside(m.workdir, p, n);
      fz_read_value(m.user.p, m.user.n);
      ps_msg_put_code(&b, &m);
      same_frame(kind, &b, p, n);
      break;
    }
    case PS_MSG_CODE_OK: {
      ps_msg_code_ok_t m;
      if (ps_msg_get_code_ok(p, n, &m) != 0) break;
      ps_msg_put_code_ok(&b, &m);
      same_frame(kind, &b, p, n);
      break;
    }
    case PS_MSG_TASKS: {
      ps_msg_batch_t it;
      ps_msg_task_t t;
      int rc;
      uint64_t count = 0;
      if (ps_msg_batch_open(&it, p, n) != 0) break;
      size_t start = ps_msg_tasks_begin(&b);
      while ((rc = ps_msg_next_task(&it, &t)) == 1) {
        inside(t.pset, p, n);
        fz_read_value(t.pset.p, t.pset.n);
        ps_msg_tasks_add(&b, &t);
        count++;
      }
      ps_msg_tasks_end(&b, start, count);
      if (rc == 0) same_frame(kind, &b, p, n);
      break;
    }
    case PS_MSG_RESULTS: {
      ps_msg_batch_t it;
      ps_msg_result_t m;
      ps_buf_t recs;
      int rc;
      uint64_t count = 0;
      if (ps_msg_batch_open(&it, p, n) != 0) break;
      ps_buf_init(&recs);
      while ((rc = ps_msg_next_result(&it, &m)) == 1) {
        FZ_ASSERT(m.status >= PS_STATUS_OK && m.status <= PS_STATUS_TIMEOUT);
        size_t at;
        ps_msg_result_head(&recs, m.index, m.start_us, m.duration_us, m.cpu_us, m.peak);
        if (m.status == PS_STATUS_OK) {
          inside(m.value, p, n);
          if (m.value.n && fz_read_value(m.value.p, m.value.n)) {
            ps_reader_t v;
            ps_item_t head;
            ps_reader_init(&v, m.value.p, m.value.n);
            ps_read_item(&v, &head);
          }
          at = ps_msg_result_value(&recs, m.value.p, m.value.n, "", 0);
        } else {
          ps_bytes_t msg[2] = {m.message, {"", 0}}, tb[2] = {m.traceback, {"", 0}};
          at = ps_msg_result_failure(&recs, m.status, msg, tb);
        }
        inside(m.out, p, n);
        inside(m.err, p, n);
        ps_bytes_t out[2] = {{"", 0}, m.out}, err[2] = {m.err, {"", 0}};
        ps_msg_result_output(&recs, at, out, err);
        count++;
      }
      /* The timers that may end it: each name once, in order, each
         timer's statistics consistent. */
      ps_timers_t timers;
      ps_timers_init(&timers);
      ps_msg_timer_t t;
      while (rc == 0 && (rc = ps_msg_next_timer(&it, &t)) == 1) {
        inside(t.name, p, n);
        const ps_timing_t *s = &t.t;
        FZ_ASSERT(s->hist.count >= 1 && s->min <= s->max && s->sum >= 0);
        double q = ps_timing_quantile(s, 0.5);
        FZ_ASSERT(q >= s->min && q <= s->max);
        int full;
        ps_timer_t *mine = ps_timers_get(&timers, t.name.p, t.name.n, &full);
        if (mine == NULL) {
          FZ_ASSERT(!full);
          rc = -1; /* out of memory: nothing to compare */
          break;
        }
        FZ_ASSERT(mine->t.hist.count == 0);
        ps_timing_merge(&mine->t, s);
      }
      ps_msg_put_results(&b, count, recs.data, recs.len, &timers);
      if (rc == 0 && !recs.failed) same_frame(kind, &b, p, n);
      ps_timers_free(&timers);
      ps_buf_free(&recs);
      break;
    }
    case PS_MSG_STARTED: {
      ps_msg_started_t m;
      if (ps_msg_get_started(p, n, &m) != 0) break;
      ps_msg_put_started(&b, &m);
      same_frame(kind, &b, p, n);
      break;
    }
    case PS_MSG_FATAL: {
      ps_bytes_t m;
      if (ps_msg_get_fatal(p, n, &m) != 0) break;
      ps_msg_put_fatal(&b, m.p, m.n);
      same_frame(kind, &b, p, n);
      break;
    }
    case PS_MSG_AGENT: {
      ps_msg_agent_t m;
      if (ps_msg_get_agent(p, n, &m) != 0) break;
      ps_msg_put_agent(&b, &m);
      same_frame(kind, &b, p, n);
      break;
    }
    case PS_MSG_SPAWN:
    case PS_MSG_KILL:
    case PS_MSG_TO:
    case PS_MSG_FROM:
    case PS_MSG_GONE: {
      ps_msg_relay_t m;
      if (ps_msg_get_relay(kind, p, n, &m) != 0) break;
      inside(m.bytes, p, n);
      if (kind == PS_MSG_SPAWN) ps_msg_put_spawn(&b, m.worker, m.bytes.p, m.bytes.n);
      if (kind == PS_MSG_KILL) ps_msg_put_kill(&b, m.worker, m.arg1);
      if (kind == PS_MSG_TO) ps_msg_put_to(&b, m.worker, m.bytes.p, m.bytes.n);
      if (kind == PS_MSG_FROM) ps_msg_put_from(&b, m.worker, m.kind, m.bytes.p, m.bytes.n);
      if (kind == PS_MSG_GONE) ps_msg_put_gone(&b, m.worker, m.arg1, m.arg2, m.bytes.p, m.bytes.n);
      same_frame(kind, &b, p, n);
      if (kind == PS_MSG_TO || kind == PS_MSG_FROM) decode_inner(&m, kind, depth);
      break;
    }
    default: /* BYE, PING, PONG */
      if (ps_msg_get_empty(p, n) != 0) break;
      ps_msg_put_empty(&b, kind);
      same_frame(kind, &b, p, n);
  }
  ps_buf_free(&b);
}

/* The size of the next piece: pseudo-random from the seed, at most room. */
static size_t piece(uint32_t *seed, size_t room) {
  static const size_t sizes[] = {1, 2, 3, 4, 5, 7, 13, 64, 1000, 4096};
  if (*seed == 0) return room;
  *seed ^= *seed << 13;
  *seed ^= *seed >> 17;
  *seed ^= *seed << 5;
  size_t n = *seed % 11 < 10 ? sizes[*seed % 11] : room;
  return n < room ? n : room;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint32_t limits[] = {1u << 20, 0, 1, 5, 64, 255, 4096, 65536};
  if (size < 1) return 0;
  uint32_t seed = data[0] >> 3;
  ps_framer_t f;
  ps_framer_init(&f, limits[data[0] & 7]);
  data++;
  size--;

  ps_buf_t again; /* the frames read, written again */
  ps_buf_init(&again);
  size_t fed = 0;
  for (;;) {
    int kind, rc;
    const char *payload;
    size_t len;
    ps_err_t err;
    while ((rc = ps_framer_next(&f, &kind, &payload, &len, &err)) == 1) {
      FZ_ASSERT(kind >= 1 && kind <= PS_MSG_LAST && len <= f.max);
      FZ_ASSERT(payload >= f.in.data && payload + len <= f.in.data + f.in.len);
      decode_frame(kind, payload, len, 0);
      size_t start = ps_frame_begin(&again, kind);
      ps_buf_put(&again, payload, len);
      ps_frame_end(&again, start);
    }
    if (rc < 0) {
      FZ_ASSERT(rc == PS_EPROTO || rc == PS_ENOMEM);
      FZ_ASSERT(err.code == rc && memchr(err.msg, '\0', sizeof err.msg) != NULL);
      break;
    }
    if (fed == size) break;
    /* What the libuv alloc and read callbacks of core/pool.c do. */
    char *dst;
    size_t room;
    if (ps_framer_space(&f, 65536, &dst, &room) != 0) break;
    FZ_ASSERT(room >= 65536);
    size_t k = piece(&seed, room);
    if (k > size - fed) k = size - fed;
    memcpy(dst, data + fed, k);
    f.in.len += k;
    fed += k;
  }
  if (!again.failed)
    FZ_ASSERT(again.len <= fed && (again.len == 0 || memcmp(again.data, data, again.len) == 0));
  ps_buf_free(&again);
  ps_framer_free(&f);
  return 0;
}
