/*
 * sbatch.h: the Slurm backend from a login node: allocations on demand,
 * as HyperQueue's automatic allocation. psurvey submits agent jobs with
 * sbatch (one node each) and keeps up to `jobs` of them queued or running
 * (within the site's MaxJobCount and a cap of submissions a minute); it
 * watches them all with one squeue call per interval, and cancels what is
 * left when the survey ends. Each job's agent connects back (gate.h) and
 * becomes a node; a job that ends (its time, scancel, preemption, a node
 * failure) is replaced by a new submission. An agent lost without being
 * told to end waits for the next squeue to say why (preempted, its
 * walltime, or neither), for its psets' attempts. Every submission,
 * start, end and cancel is said in the log with its job id. The allocator is one
 * more node, never up: it stands for the agents to come, and is gone when
 * sbatch has failed three times in a row (its error is the node's why).
 */
#ifndef PS_SBATCH_H
#define PS_SBATCH_H

#include "pool.h"

typedef struct ps_sbatch_opts_s {
  const char *listen;      /* the driver's address for the agents; NULL: this host's */
  int port;                /* 0: any */
  double heartbeat;        /* seconds of silence before an agent is lost */
  int jobs;                /* agent jobs to keep queued or running */
  int per_minute;          /* submissions a minute, at most */
  double poll;             /* seconds between two squeue calls */
  const char *const *args; /* sbatch options (--time=..., --partition=...), in order */
  int nargs;
  const char *sbatch, *squeue, *scancel, *scontrol; /* the programs; NULL: on PATH */
  const char *log_dir; /* where the agents' output goes, agent-JOBID.log */
} ps_sbatch_opts_t;

/* Starts listening, reads the site's limits and starts submitting. */
int ps_sbatch_setup(ps_pool_t *p, const ps_sbatch_opts_t *o, ps_err_t *err);

#endif
