/* refusals.c: why a pset can run nowhere, in words (run_private.h). */
#include <stdio.h>

#include "run_private.h"

void ps__run_too_wide(ps_run_t *r, const ps_task_t *t, const ps_node_t *most) {
  char msg[200];
  int need = r->sched.o.ncores(r->sched.o.ud, t);
  if (most->ops->slots_per_map)
    snprintf(msg, sizeof msg,
             "the pset needs %d slots (ncores) but this map has %d (option 'ncores')", need,
             most->slots);
  else
    snprintf(msg, sizeof msg, "the pset needs %d slots (ncores) but the largest %s has %d", need,
             most->ops->noun, most->slots);
  ps__run_fail_here(r, t, msg);
}

void ps__run_too_many_gpus(ps_run_t *r, const ps_task_t *t) {
  char msg[sizeof((ps_node_t *)0)->name + 300], asks[64], has[100];
  int most = r->sched.o.most_gpus, want = r->sched.o.gpus(r->sched.o.ud, t);
  ps_pool_t *p = &r->e->pool;
  const ps_node_t *only = p->nnodes == 1 ? p->nodes[0] : NULL;
  snprintf(asks, sizeof asks, "asks for %d GPU%s (gpus)", want, want == 1 ? "" : "s");
  if (most > 0)
    snprintf(has, sizeof has, "%d", most);
  else if (only && only->ops->slots_per_map)
    snprintf(has, sizeof has, "none (option 'gpus', CUDA_VISIBLE_DEVICES or nvidia-smi say which)");
  else
    snprintf(has, sizeof has, "none (option 'gpus'; for hosts, gpus=)");
  if (only && only->ops->slots_per_map)
    snprintf(msg, sizeof msg, "the pset %s but %s has %s", asks, only->ops->noun, has);
  else if (only)
    snprintf(msg, sizeof msg, "the pset %s but %s %s has %s", asks, only->ops->noun, only->name,
             has);
  else
    snprintf(msg, sizeof msg, "the pset %s but the most any host has is %s", asks, has);
  ps__run_fail_here(r, t, msg);
}

void ps__run_too_much_memory(ps_run_t *r, const ps_task_t *t) {
  char msg[sizeof((ps_node_t *)0)->name + 300];
  ps_pool_t *p = &r->e->pool;
  /* The node the scheduler measured against: the one with the most. */
  const ps_node_t *most = NULL;
  for (int k = 0; k < p->nnodes && most == NULL; k++)
    if (p->nodes[k]->ever_up && p->nodes[k]->mem_mb == r->sched.most_mb) most = p->nodes[k];
  long long want = (long long)r->sched.o.memory(r->sched.o.ud, t), has = r->sched.most_mb;
  if (most && most->ops->slots_per_map)
    snprintf(msg, sizeof msg, "the pset asks for %lld MiB (memory) but %s has %lld MiB", want,
             most->ops->noun, has);
  else if (most)
    snprintf(msg, sizeof msg,
             "the pset asks for %lld MiB (memory) but the largest %s, %s, has %lld MiB", want,
             most->ops->noun, most->name, has);
  else
    snprintf(msg, sizeof msg,
             "the pset asks for %lld MiB (memory) but the most any host has is %lld MiB", want,
             has);
  ps__run_fail_here(r, t, msg);
}
