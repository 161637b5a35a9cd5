/*
 * slurm.h: the Slurm backend, inside an allocation (SLURM_JOB_ID set: an
 * sbatch script or salloc). One `srun` step starts an agent on each node
 * of the allocation; each connects back to the driver (gate.h) and proves
 * the run's token, which srun hands it in the environment; each agent is
 * a node, with the CPUs the step gives it. The allocation itself is one
 * more node, never up: it stands for the agents still expected, so a
 * survey waits for them, and it is gone when srun has ended (with what
 * srun said, when no agent ever came).
 */
#ifndef PS_SLURM_H
#define PS_SLURM_H

#include "pool.h"

typedef struct ps_slurm_opts_s {
  const char *listen; /* the driver's address for the agents; NULL: this host's */
  int port;           /* 0: any */
  const char *srun;   /* the srun program; NULL: "srun" */
  double heartbeat;   /* seconds of silence before an agent is lost */
} ps_slurm_opts_t;

/* Starts the agents of the allocation this process runs in. Errors say
   what is missing (no allocation, an address that cannot be listened on,
   srun not found). */
int ps_slurm_setup(ps_pool_t *p, const ps_slurm_opts_t *o, ps_err_t *err);

#endif
