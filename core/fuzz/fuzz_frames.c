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
 * frame is decoded as frame.h lays it out, with the reader calls that
 * core/run.c (on_frame, on_results) and core/lua/lworker.c (on_code,
 * on_tasks) make, and every value in it is read as they read it
 * (fz_read_value; fuzz_value checks values in depth). The frames read are
 * written again with ps_frame_begin/ps_frame_end and must give back the
 * bytes they came from.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "frame.h"
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

/* ps_read_varint, checked against the reference. */
static int get_varint(ps_reader_t *r, uint64_t *v) {
  const unsigned char *before = r->p;
  uint64_t want = 0;
  size_t used = 0;
  int ref = varint_reference(r->p, ps_reader_left(r), &want, &used);
  int rc = ps_read_varint(r, v);
  FZ_ASSERT((rc == 0) == (ref == 0));
  if (rc == 0) FZ_ASSERT(*v == want && (size_t)(r->p - before) == used);
  return rc;
}

/* ps_read_bytes, checked to stay inside the reader. */
static int get_bytes(ps_reader_t *r, const char **s, size_t *len) {
  const unsigned char *end = r->end;
  int rc = ps_read_bytes(r, s, len);
  if (rc == 0) FZ_ASSERT((const unsigned char *)*s + *len == r->p && r->p <= end);
  return rc;
}

/* HELLO: varint protocol, varint pid, bytes host, varint cores, bytes version. */
static void decode_hello(ps_reader_t *r) {
  uint64_t proto, pid, cores;
  const char *s;
  size_t len;
  if (get_varint(r, &proto) != 0 || get_varint(r, &pid) != 0 || get_bytes(r, &s, &len) != 0 ||
      get_varint(r, &cores) != 0)
    return;
  get_bytes(r, &s, &len);
}

/* CODE: varint id, varint flags, bytes stage, bytes function, bytes user
   value, varint sandbox profile, varint seed. The function is shipped Lua
   (lship.c) that only the bindings read; the user value is a value. */
static void decode_code(ps_reader_t *r) {
  uint64_t id, flags, sandbox, seed;
  const char *stage, *fn, *user;
  size_t stagelen, fnlen, userlen;
  if (get_varint(r, &id) != 0 || get_varint(r, &flags) != 0 || get_bytes(r, &stage, &stagelen) != 0 ||
      get_bytes(r, &fn, &fnlen) != 0 || get_bytes(r, &user, &userlen) != 0)
    return;
  fz_read_value(user, userlen);
  if (get_varint(r, &sandbox) != 0) return;
  get_varint(r, &seed);
}

/* CODE_OK: varint ok, bytes message. */
static void decode_code_ok(ps_reader_t *r) {
  uint64_t ok;
  const char *msg;
  size_t len;
  if (get_varint(r, &ok) == 0) get_bytes(r, &msg, &len);
}

/* TASKS: varint n, then n times: varint index, varint attempt, varint
   timeout, varint memory limit, bytes pset value. */
static void decode_tasks(ps_reader_t *r) {
  uint64_t count;
  if (get_varint(r, &count) != 0) return;
  for (uint64_t k = 0; k < count; k++) {
    uint64_t index, attempt, timeout_ms, mem_limit;
    const char *pset;
    size_t psetlen;
    if (get_varint(r, &index) != 0 || get_varint(r, &attempt) != 0 || get_varint(r, &timeout_ms) != 0 ||
        get_varint(r, &mem_limit) != 0 || get_bytes(r, &pset, &psetlen) != 0)
      return;
    fz_read_value(pset, psetlen);
  }
}

/* RESULTS: varint n, then n times: varint index, start, duration, CPU time,
   peak heap, byte status; for ok: bytes result (a table, or empty for
   none); otherwise: bytes message, bytes traceback. */
static void decode_results(ps_reader_t *r) {
  uint64_t count;
  if (get_varint(r, &count) != 0) return;
  for (uint64_t k = 0; k < count; k++) {
    uint64_t index, start, dur, cpu, peak;
    int status;
    const char *a, *b;
    size_t alen, blen;
    if (get_varint(r, &index) != 0 || get_varint(r, &start) != 0 || get_varint(r, &dur) != 0 ||
        get_varint(r, &cpu) != 0 || get_varint(r, &peak) != 0 || ps_read_byte(r, &status) != 0 ||
        get_bytes(r, &a, &alen) != 0)
      return;
    FZ_ASSERT(status >= 0 && status <= 255);
    if (status > PS_STATUS_TIMEOUT) return;
    if (status != PS_STATUS_OK) {
      if (get_bytes(r, &b, &blen) != 0) return;
      continue;
    }
    if (alen == 0) continue;
    if (!fz_read_value(a, alen)) return;
    ps_reader_t v;
    ps_item_t it;
    ps_reader_init(&v, a, alen);
    if (ps_read_item(&v, &it) != 0 || it.type != PS_V_TABLE) return;
  }
}

/* STARTED: varint index, varint start. */
static void decode_started(ps_reader_t *r) {
  uint64_t index, start;
  if (get_varint(r, &index) == 0) get_varint(r, &start);
}

/* FATAL: bytes message. */
static void decode_fatal(ps_reader_t *r) {
  const char *msg;
  size_t len;
  get_bytes(r, &msg, &len);
}

/* AGENT: varint protocol, bytes host, varint cores, varint memory, bytes
   version (node.c). */
static void decode_agent(ps_reader_t *r) {
  uint64_t v;
  const char *s;
  size_t len;
  if (get_varint(r, &v) != 0 || get_bytes(r, &s, &len) != 0 || get_varint(r, &v) != 0 || get_varint(r, &v) != 0)
    return;
  get_bytes(r, &s, &len);
}

static void decode_frame(int kind, const char *p, size_t n);

/* FROM: varint worker id, byte kind, a worker's payload (node.c): decoded
   again as that kind, as the driver does. TO: varint worker id, one whole
   frame (agent.c), split by a framer of its own. */
static void decode_relay(ps_reader_t *r, int kind, int depth) {
  uint64_t id;
  if (get_varint(r, &id) != 0) return;
  if (kind == PS_MSG_FROM) {
    int inner;
    if (ps_read_byte(r, &inner) != 0) return;
    if (depth < 2) decode_frame(inner, (const char *)r->p, ps_reader_left(r));
    r->p = r->end;
    return;
  }
  ps_framer_t f;
  ps_framer_init(&f, 1u << 20);
  char *room;
  size_t cap;
  size_t left = ps_reader_left(r);
  if (ps_framer_space(&f, left, &room, &cap) == 0) {
    memcpy(room, r->p, left);
    f.in.len += left;
    int k;
    const char *payload;
    size_t len;
    ps_err_t err;
    while (ps_framer_next(&f, &k, &payload, &len, &err) == 1)
      if (depth < 2) decode_frame(k, payload, len);
  }
  ps_framer_free(&f);
  r->p = r->end;
}

/* GONE: varint id, varint status, varint signal, bytes why; KILL: varint
   id, varint signal; SPAWN: varint id. */
static void decode_worker_event(ps_reader_t *r, int kind) {
  uint64_t v;
  const char *s;
  size_t len;
  if (get_varint(r, &v) != 0) return;
  if (kind == PS_MSG_SPAWN) return;
  if (get_varint(r, &v) != 0 || kind == PS_MSG_KILL) return;
  if (get_varint(r, &v) != 0) return;
  get_bytes(r, &s, &len);
}

static int relay_depth;

static void decode_frame(int kind, const char *p, size_t n) {
  ps_reader_t r;
  ps_reader_init(&r, p, n);
  switch (kind) {
    case PS_MSG_HELLO: decode_hello(&r); break;
    case PS_MSG_CODE: decode_code(&r); break;
    case PS_MSG_CODE_OK: decode_code_ok(&r); break;
    case PS_MSG_TASKS: decode_tasks(&r); break;
    case PS_MSG_RESULTS: decode_results(&r); break;
    case PS_MSG_STARTED: decode_started(&r); break;
    case PS_MSG_BYE: break;
    case PS_MSG_FATAL: decode_fatal(&r); break;
    case PS_MSG_AGENT: decode_agent(&r); break;
    case PS_MSG_TO:
    case PS_MSG_FROM:
      relay_depth++;
      decode_relay(&r, kind, relay_depth);
      relay_depth--;
      break;
    case PS_MSG_SPAWN:
    case PS_MSG_KILL:
    case PS_MSG_GONE: decode_worker_event(&r, kind); break;
    default: break; /* PING, PONG: no payload */
  }
  FZ_ASSERT(r.p >= (const unsigned char *)p && r.p <= r.end);
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
      decode_frame(kind, payload, len);
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
