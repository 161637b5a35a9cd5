/* outcome.c: the kinds of an attempt's outcome (outcome.h). */
#include "outcome.h"

#include <assert.h>

static const char *const names[PS_OUTCOME_KINDS] = {
    "ok", "error", "memory", "timeout", "signal", "exit", "host_lost", "preempted", "walltime"};

const char *ps_outcome_name(ps_outcome_kind_t kind) {
  assert(kind >= 0 && kind < PS_OUTCOME_KINDS);
  return names[kind];
}

ps_outcome_kind_t ps_outcome_of_status(int status) {
  switch (status) {
    case PS_STATUS_OK: return PS_OUTCOME_OK;
    case PS_STATUS_ERROR: return PS_OUTCOME_ERROR;
    case PS_STATUS_MEMORY: return PS_OUTCOME_MEMORY;
    case PS_STATUS_TIMEOUT: return PS_OUTCOME_TIMEOUT;
    default: return PS_OUTCOME_KINDS;
  }
}

int ps_outcome_retryable(ps_outcome_kind_t kind) {
  return kind == PS_OUTCOME_TIMEOUT || kind == PS_OUTCOME_SIGNAL || kind == PS_OUTCOME_EXIT;
}
