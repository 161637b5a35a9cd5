/*
 * msg.h: the messages between driver, agents and workers: one struct per
 * kind, one writer and one reader each, over the frames of frame.h (which
 * documents the layouts on the wire). The driver, the agent, the worker
 * and the fuzzers read and write frames only through these.
 *
 * A writer appends one whole frame to a buffer (its failure flag is
 * sticky, buf.h). A reader fills its struct from a frame's payload, with
 * strings and values pointing into it (borrowed: valid as long as the
 * payload is), and returns 0, or PS_EPROTO for a malformed payload: every
 * length is checked, a number not in its shortest form and bytes left
 * over are malformed too, so that a message has one encoding only. The batched
 * kinds, TASKS and RESULTS, are written a record at a time and read with
 * an iterator, so that the hot path copies nothing. RESULTS ends with the
 * batch's timer samples when there are any: a worker that never records
 * one sends the bytes it always did.
 */
#ifndef PS_MSG_H
#define PS_MSG_H

#include "buf.h"
#include "frame.h"
#include "stats.h"
#include "value.h"

/* Borrowed bytes. */
typedef struct ps_bytes_s {
  const char *p;
  size_t n;
} ps_bytes_t;

/* HELLO, worker -> driver. */
typedef struct ps_msg_hello_s {
  uint64_t protocol, pid, cores;
  ps_bytes_t host, version;
} ps_msg_hello_t;
void ps_msg_put_hello(ps_buf_t *b, const ps_msg_hello_t *m);
int ps_msg_get_hello(const char *p, size_t n, ps_msg_hello_t *m);

/* CODE, driver -> worker. */
typedef struct ps_msg_code_s {
  uint64_t worker, flags, sandbox, seed;
  ps_bytes_t stage, function, user;
  ps_bytes_t workdir; /* the base of the psets' own directories; empty: none */
  uint64_t output;    /* PS_OUTPUT_*: what becomes of what psets write */
} ps_msg_code_t;
void ps_msg_put_code(ps_buf_t *b, const ps_msg_code_t *m);
int ps_msg_get_code(const char *p, size_t n, ps_msg_code_t *m);

/* CODE_OK, worker -> driver. */
typedef struct ps_msg_code_ok_s {
  uint64_t ok;
  ps_bytes_t message;
} ps_msg_code_ok_t;
void ps_msg_put_code_ok(ps_buf_t *b, const ps_msg_code_ok_t *m);
int ps_msg_get_code_ok(const char *p, size_t n, ps_msg_code_ok_t *m);

/* One pset of TASKS, driver -> worker. */
typedef struct ps_msg_task_s {
  uint64_t index, attempt, timeout_ms, memory;
  uint64_t threads; /* the pset's ncores, for OMP_NUM_THREADS and the like; 0: unset */
  ps_bytes_t pset;  /* its value encoding */
} ps_msg_task_t;
/* Begins a TASKS frame in b; returns where, for ps_msg_tasks_end. */
size_t ps_msg_tasks_begin(ps_buf_t *b);
void ps_msg_tasks_add(ps_buf_t *b, const ps_msg_task_t *t);
void ps_msg_tasks_end(ps_buf_t *b, size_t start, uint64_t count);

/* One pset's end in RESULTS, worker -> driver. */
typedef struct ps_msg_result_s {
  uint64_t index, start_us, duration_us, cpu_us, peak;
  int status;         /* PS_STATUS_* */
  ps_bytes_t value;   /* ok: the result's encoding, empty for none */
  ps_bytes_t message; /* not ok */
  ps_bytes_t traceback;
  ps_bytes_t out, err; /* what the pset wrote to stdout and stderr, as kept ('' for none) */
} ps_msg_result_t;
/* A worker writes records into a buffer of its own as psets end, then
   frames them together. A record is its head, then either its value
   (given in two pieces, a and b, written as one) or its failure (each of
   message and traceback in two pieces), each returning where the record's
   status byte is; then, only when the pset wrote anything, its output
   (each stream in two pieces: a note of what was cut, and the bytes),
   which flags that status byte. A pset that wrote nothing has the record
   it had before output was kept. */
void ps_msg_result_head(ps_buf_t *recs, uint64_t index, uint64_t start_us, uint64_t duration_us,
                        uint64_t cpu_us, uint64_t peak);
size_t ps_msg_result_value(ps_buf_t *recs, const char *a, size_t an, const char *b, size_t bn);
size_t ps_msg_result_failure(ps_buf_t *recs, int status, const ps_bytes_t message[2],
                             const ps_bytes_t traceback[2]);
void ps_msg_result_output(ps_buf_t *recs, size_t status_at, const ps_bytes_t out[2],
                          const ps_bytes_t err[2]);
/* The RESULTS frame: count records, then the samples of the timers
   (system.record) that have any, in name order. timers may be NULL; a
   batch without samples is written exactly as before timers existed. */
void ps_msg_put_results(ps_buf_t *b, uint64_t count, const char *recs, size_t len,
                        const ps_timers_t *timers);

/* 1 when a timer may have that name: 1 to PS_TIMER_NAME_MAX bytes of
   UTF-8 without control characters. */
int ps_msg_timer_name_valid(const char *p, size_t n);

/* One timer of RESULTS: its name (borrowed) and its samples. */
typedef struct ps_msg_timer_s {
  ps_bytes_t name;
  ps_timing_t t;
} ps_msg_timer_t;

/* Reading TASKS or RESULTS: an iterator over the payload. */
typedef struct ps_msg_batch_s {
  ps_reader_t r;
  uint64_t left;
  int timers;      /* RESULTS: the timers section is open */
  ps_bytes_t last; /* the last timer's name */
} ps_msg_batch_t;
int ps_msg_batch_open(ps_msg_batch_t *it, const char *p, size_t n);
/* 1 with the next item, 0 at the end (bytes left over are PS_EPROTO),
   PS_EPROTO when malformed. */
int ps_msg_next_task(ps_msg_batch_t *it, ps_msg_task_t *t);
/* 1 with the next record, 0 after the last (what follows is read by
   ps_msg_next_timer, which says whether the payload ends well),
   PS_EPROTO when malformed. */
int ps_msg_next_result(ps_msg_batch_t *it, ps_msg_result_t *r);
/* After the last record: 1 with the next timer, 0 at the end (bytes left
   over are PS_EPROTO), PS_EPROTO when malformed. */
int ps_msg_next_timer(ps_msg_batch_t *it, ps_msg_timer_t *t);

/* STARTED, worker -> driver. */
typedef struct ps_msg_started_s {
  uint64_t index, start_us;
} ps_msg_started_t;
void ps_msg_put_started(ps_buf_t *b, const ps_msg_started_t *m);
int ps_msg_get_started(const char *p, size_t n, ps_msg_started_t *m);

/* FATAL, worker -> driver. */
void ps_msg_put_fatal(ps_buf_t *b, const char *message, size_t n);
int ps_msg_get_fatal(const char *p, size_t n, ps_bytes_t *message);

/* AGENT, agent -> driver. */
typedef struct ps_msg_agent_s {
  uint64_t protocol, cores, memory_mb;
  ps_bytes_t host, version;
  ps_bytes_t gpus; /* the GPU ids its workers may use, comma-separated, or empty */
  ps_bytes_t job;  /* the Slurm job it runs in, or empty */
  uint64_t ends;   /* when that job's time runs out (Unix seconds), or 0: unknown */
} ps_msg_agent_t;
void ps_msg_put_agent(ps_buf_t *b, const ps_msg_agent_t *m);
int ps_msg_get_agent(const char *p, size_t n, ps_msg_agent_t *m);

/* The relay's frames: SPAWN (id, GPU ids), KILL (id, signal), TO (id and a whole
   frame for that worker), FROM (id, kind and a payload from it), GONE (id,
   exit status, signal, why). */
typedef struct ps_msg_relay_s {
  uint64_t worker, arg1, arg2; /* KILL: arg1 the signal; GONE: status, signal */
  int kind;                    /* FROM: the worker's frame kind */
  ps_bytes_t bytes;            /* SPAWN: GPU ids; TO: the frame; FROM: the payload; GONE: why */
} ps_msg_relay_t;
void ps_msg_put_spawn(ps_buf_t *b, uint64_t worker, const char *gpus, size_t n);
void ps_msg_put_kill(ps_buf_t *b, uint64_t worker, uint64_t sig);
/* TO: the frame for the worker is copied in (frame: one whole frame). */
void ps_msg_put_to(ps_buf_t *b, uint64_t worker, const char *frame, size_t n);
void ps_msg_put_from(ps_buf_t *b, uint64_t worker, int kind, const char *payload, size_t n);
void ps_msg_put_gone(ps_buf_t *b, uint64_t worker, uint64_t status, uint64_t sig, const char *why,
                     size_t n);
int ps_msg_get_relay(int kind, const char *p, size_t n, ps_msg_relay_t *m);

/* A frame with no payload: BYE, PING, PONG. */
void ps_msg_put_empty(ps_buf_t *b, int kind);
int ps_msg_get_empty(const char *p, size_t n);

#endif
