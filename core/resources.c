/* resources.c: per-pset limits (resources.h). */
#include "resources.h"

#include <stdlib.h>
#include <string.h>

#include "ps.h"

void ps_limits_unset(ps_limits_t *l) {
  l->timeout = -1;
  l->memory = -1;
  l->ncores = 0;
  l->retries = -1;
  l->gpus = -1;
  l->name = NULL;
}

int ps_limits_merge(ps_limits_t *l, const ps_limits_t *over) {
  if (over == NULL) return 0;
  if (over->timeout >= 0) l->timeout = over->timeout;
  if (over->memory >= 0) l->memory = over->memory;
  if (over->ncores > 0) l->ncores = over->ncores;
  if (over->retries >= 0) l->retries = over->retries;
  if (over->gpus >= 0) l->gpus = over->gpus;
  if (over->name) {
    char *name = strdup(over->name);
    if (name == NULL) return PS_ENOMEM;
    free(l->name);
    l->name = name;
  }
  return 0;
}

void ps_limits_free(ps_limits_t *l) {
  free(l->name);
  l->name = NULL;
}
