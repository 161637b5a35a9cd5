/*
 * local.h: the backend of this machine: one node whose workers are
 * `psurvey worker` processes started here, on socket pairs, each in a
 * session of its own so that killing its group reaches what it started.
 * Its slots follow each map's ncores.
 */
#ifndef PS_LOCAL_H
#define PS_LOCAL_H

#include "pool.h"

/* Adds this machine to the pool as a node (once; up from the start). */
int ps_local_setup(ps_pool_t *p, ps_node_t **out, ps_err_t *err);

#endif
