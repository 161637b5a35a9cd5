/*
 * frame.h: length-prefixed frames over any byte stream, and the message
 * kinds that driver, agents and workers exchange.
 *
 * A frame is a 4-byte little-endian length N, then N bytes: one kind byte
 * and the payload. Payload layouts (varint = LEB128, bytes = varint length
 * and bytes, value = value.h encoding):
 *   HELLO    worker -> driver: varint protocol, varint pid, bytes host,
 *            varint cores, bytes psurvey version
 *   CODE     driver -> worker: varint worker id, varint flags, bytes stage
 *            name, bytes shipped function (lship.c), bytes user value,
 *            varint sandbox profile (0 default, 1 strict), varint seed,
 *            bytes workdir (the base of each pset's own directory; empty:
 *            psets run in the worker's directory), varint output (PS_OUTPUT_*:
 *            what psets write to stdout and stderr is kept, the last 64 KiB
 *            of each or all of it, or passed through, tagged)
 *   CODE_OK  worker -> driver: varint ok (1/0), bytes message
 *   TASKS    driver -> worker: varint n, then n times: varint index,
 *            varint attempt, varint timeout (ms, 0: none), varint memory
 *            limit (bytes, 0: none), varint threads (the pset's ncores for
 *            OMP_NUM_THREADS and the like; 0: it sets none), bytes pset
 *            value
 *   RESULTS  worker -> driver: varint n, then n times: varint index,
 *            varint start (us since epoch), varint duration (us), varint
 *            CPU time (us, with child processes), varint peak Lua heap
 *            (bytes above the pset's start), byte status (PS_STATUS_*,
 *            with PS_STATUS_OUTPUT set when output follows), then for ok:
 *            bytes result value (empty for none); otherwise: bytes message,
 *            bytes traceback; then, only with PS_STATUS_OUTPUT: bytes
 *            stdout, bytes stderr (what the pset wrote, as kept; not both
 *            empty: a pset that wrote nothing has no flag). Then, only when the batch's
 *            psets recorded timer samples (system.record, in any of their
 *            attempts, failed ones too): varint m (1 to PS_TIMERS_MAX),
 *            then m timers, their names in increasing byte order: bytes
 *            name (PS_TIMER_NAME_MAX bytes at most, UTF-8), varint count
 *            (>= 1), double sum, double min, double max (seconds: 8 bytes,
 *            little endian, finite, >= 0 and not -0), varint nb, then nb
 *            times: varint gap (the first: its bucket; then bucket minus
 *            the last bucket minus 1), varint samples (>= 1) of the
 *            histogram (stats.h) over the samples in nanoseconds; its
 *            first bucket is min's, its last max's, and its samples add up
 *            to count
 *   STARTED  worker -> driver: varint index, varint start (us)
 *   BYE      driver -> worker: no payload; the worker exits
 *   FATAL    worker -> driver: bytes message; the worker exits
 *
 * Between the driver and an agent (`psurvey agent`, one per ssh host),
 * which runs that host's workers and relays their frames:
 *   AGENT    agent -> driver: varint protocol, bytes host, varint cores,
 *            varint memory (MiB), bytes psurvey version, bytes GPU ids
 *            (comma-separated, or empty), bytes Slurm job id (or empty),
 *            varint the job's end (Unix seconds, 0 unknown). A driver reads
 *            the protocol first, to tell another version from garbage
 *   SPAWN    driver -> agent: varint worker id, bytes GPU ids (comma-
 *            separated, empty for none: the worker's CUDA_VISIBLE_DEVICES);
 *            the agent starts a worker
 *   TO       driver -> agent: varint worker id, then one whole frame for it
 *   FROM     agent -> driver: varint worker id, byte kind, the payload of
 *            a frame from that worker
 *   GONE     agent -> driver: varint worker id, varint exit status, varint
 *            signal, bytes why (empty, or the protocol error that ended it)
 *   KILL     driver -> agent: varint worker id, varint signal: kills the
 *            worker's process group
 *   PING     driver -> agent, PONG agent -> driver: no payload; heartbeats
 * BYE to an agent (or the end of its input) stops its workers and it.
 * Before its first frame an agent writes PS_AGENT_MAGIC: whatever a login
 * script on the host prints before it (a motd, a banner) is skipped.
 */
#ifndef PS_FRAME_H
#define PS_FRAME_H

#include "buf.h"
#include "ps.h"

enum {
  PS_MSG_HELLO = 1,
  PS_MSG_CODE = 2,
  PS_MSG_CODE_OK = 3,
  PS_MSG_TASKS = 4,
  PS_MSG_RESULTS = 5,
  PS_MSG_STARTED = 6,
  PS_MSG_BYE = 7,
  PS_MSG_FATAL = 8,
  PS_MSG_AGENT = 9,
  PS_MSG_SPAWN = 10,
  PS_MSG_TO = 11,
  PS_MSG_FROM = 12,
  PS_MSG_GONE = 13,
  PS_MSG_KILL = 14,
  PS_MSG_PING = 15,
  PS_MSG_PONG = 16,
  PS_MSG_LAST = 16
};

/* RESULTS statuses: how a pset ended inside a worker that survived it. */
enum { PS_STATUS_OK = 0, PS_STATUS_ERROR = 1, PS_STATUS_MEMORY = 2, PS_STATUS_TIMEOUT = 3 };
/* A bit of the status byte: the pset's output follows its record. */
#define PS_STATUS_OUTPUT 0x80

/* CODE output modes: the last PS_OUTPUT_TAIL_BYTES of each stream of a
   pset, kept with its row (cut: a note first says how much); all of it
   (up to what a frame may carry, then cut alike); or none kept, passed
   through to the worker's stderr, each line tagged with the pset. */
enum { PS_OUTPUT_TAIL = 0, PS_OUTPUT_FULL = 1, PS_OUTPUT_NONE = 2 };
#define PS_OUTPUT_TAIL_BYTES (64u << 10)

/* CODE flags. */
enum { PS_CODE_REPORT_STARTS = 1 };

#define PS_FRAME_HEADER 5

#define PS_AGENT_MAGIC "\0psurvey-agent\n"
#define PS_AGENT_MAGIC_LEN 15

/* Starts a frame in b and returns where it starts, for ps_frame_end. */
size_t ps_frame_begin(ps_buf_t *b, int kind);
/* Writes the length of the frame that starts at `start`. */
void ps_frame_end(ps_buf_t *b, size_t start);

/*
 * Splits a byte stream into frames. Bytes are appended at data+len (the
 * libuv alloc callback hands out that space); ps_framer_next returns one
 * frame at a time.
 */
typedef struct ps_framer_s {
  ps_buf_t in;
  size_t pos; /* start of the first unread byte */
  uint32_t max;
} ps_framer_t;

void ps_framer_init(ps_framer_t *f, uint32_t max);
void ps_framer_free(ps_framer_t *f);
/* Room for at least `want` more bytes at in.data + in.len. */
int ps_framer_space(ps_framer_t *f, size_t want, char **p, size_t *n);
/* 1 and the frame when one is complete, 0 when more bytes are needed,
   PS_EPROTO (err filled) when the stream is malformed. The payload stays
   valid until the next call. */
int ps_framer_next(ps_framer_t *f, int *kind, const char **payload, size_t *len, ps_err_t *err);

#endif
