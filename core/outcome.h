/*
 * outcome.h: how one attempt at a pset ended, as the scheduler hands it on
 * to be stored, retried or counted (one struct, where finish and its kin
 * took a dozen loose parameters). Its kind is a row's _status and an
 * attempt's kind, by the names below.
 */
#ifndef PS_OUTCOME_H
#define PS_OUTCOME_H

#include <stdint.h>

#include "msg.h"

typedef enum ps_outcome_kind_e {
  PS_OUTCOME_OK,        /* it returned */
  PS_OUTCOME_ERROR,     /* it raised an error, or could not be run or stored */
  PS_OUTCOME_MEMORY,    /* over its memory limit */
  PS_OUTCOME_TIMEOUT,   /* over its timeout */
  PS_OUTCOME_SIGNAL,    /* its worker was killed by a signal */
  PS_OUTCOME_EXIT,      /* its worker exited */
  PS_OUTCOME_HOST_LOST, /* its host was lost: no fault of the pset */
  PS_OUTCOME_PREEMPTED, /* its host's Slurm job was preempted: no fault either */
  PS_OUTCOME_WALLTIME,  /* its host's Slurm job reached its time limit: nor */
  PS_OUTCOME_KINDS
} ps_outcome_kind_t;

typedef struct ps_outcome_s {
  int64_t index, attempt;
  ps_outcome_kind_t kind;
  int64_t start_us; /* since the epoch */
  int64_t duration_us, cpu_us;
  int64_t peak_bytes; /* Lua heap above the pset's start */
  ps_bytes_t result;  /* ok: the result's encoding, empty for none */
  ps_bytes_t message, traceback;
  ps_bytes_t out, err; /* what it wrote to stdout and stderr, as the worker kept it */
} ps_outcome_t;

/* "ok", "error", "memory", "timeout", "signal", "exit", "host_lost",
   "preempted", "walltime". */
const char *ps_outcome_name(ps_outcome_kind_t kind);
/* The kind of a RESULTS status (PS_STATUS_*): PS_OUTCOME_KINDS for none. */
ps_outcome_kind_t ps_outcome_of_status(int status);
/* Whether the numeric retries apply: the pset may not be at fault
   (a timeout, a crash of its worker). */
int ps_outcome_retryable(ps_outcome_kind_t kind);

#endif
