/*
 * scheduler.h: the scheduling policy of one stage, apart from processes,
 * frames and the store: which psets a worker gets and when, how many
 * workers each node gets, and what becomes of the psets of a worker that
 * dies. run.c carries out what it decides; a test drives it over nodes of
 * a fake backend (core/test/test_scheduler.c).
 *
 * Scheduling is pull-based: each worker holds at most PS_SCHED_DEPTH
 * batches (the one it runs and the next, so it never waits for the
 * driver). Batches adapt to the measured run time of psets (about
 * PS_SCHED_BATCH_US of work each, 1 to PS_SCHED_MAX_BATCH psets, smaller
 * near the end so the tail spreads over all workers); group_size fixes
 * them. A node gets one worker per slot, and no more workers serve than
 * psets are left.
 *
 * Some psets run alone on their worker: one that needs several slots
 * (ncores) waits for an idle worker on a node with that many free slots,
 * and holds them while it runs; one whose worker died with others in
 * flight (a suspect: nobody knows which one killed it) runs alone, so the
 * one that kills its worker alone is known. Psets to run again (retries,
 * suspects, those of a lost host) go before the next pset of the source.
 *
 * GPUs are slots with names: a worker is bound to some of its node's GPUs
 * when it starts (CUDA_VISIBLE_DEVICES, which a library reads once) and
 * holds them until it is gone, so no two live workers share one. A pset
 * that wants g GPUs runs alone, like a wide one, on an idle worker bound
 * to exactly g; when there is none, ps_sched_place starts one bound to g
 * free GPUs of a node that has room (so psets of one GPU each keep every
 * GPU busy), and when no node has, ps_sched_retire
 * names an idle worker to go first (one bound to another count, which
 * frees GPUs, else an unbound one, which frees room). Workers bound to
 * GPUs take no other psets; idle, they go when psets without GPUs need
 * their room. A pset that wants more GPUs than any node has fails.
 *
 * Memory is reserved by the psets that set their own (`_psurvey.memory`,
 * in MiB, or a retry's raise of it; the map's `memory` only limits each
 * heap): such a pset runs alone, like a wide one, on a node whose memory
 * not reserved by the psets running there is enough, and holds it while
 * it runs. A node that does not say its memory (0) has room for any. A
 * pset that wants more memory than any node up has fails.
 */
#ifndef PS_SCHEDULER_H
#define PS_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"

/* Batches a worker holds at once: the one it runs and the next. */
#define PS_SCHED_DEPTH 2
/* Automatic batches aim at this much work (us), within [1, MAX_BATCH]. */
#define PS_SCHED_BATCH_US 20000.0
#define PS_SCHED_MAX_BATCH 1024
/* The weight of the newest run time in the moving estimate. */
#define PS_SCHED_EST_WEIGHT 0.2
/* Run times below this (us) are taken as this, so a batch stays bounded. */
#define PS_SCHED_EST_FLOOR_US 0.5

typedef struct ps_task_s {
  int64_t index, attempt;
  int suspect; /* its worker died with others in flight: it runs alone */
  /* The caller's, carried along: */
  int ov;       /* its entry among retried psets' limits, or -1 */
  int64_t eoff; /* where its encoding is kept while in flight, or -1 */
  size_t elen;
} ps_task_t;

/* The scheduler's view of one worker. */
typedef struct ps_slot_s {
  const ps_node_t *node;
  void *owner;     /* the caller's worker */
  ps_task_t *fifo; /* in flight, in the order sent */
  size_t head, len, cap;
  int batch[PS_SCHED_DEPTH + 1]; /* psets left in each batch sent, oldest first */
  int nbatches;
  int64_t assigned;   /* psets given in its life, for max_tasks_per_child */
  int retiring;       /* it takes no more work (the caller said goodbye) */
  int alone;          /* running a suspect or a multi-slot pset alone */
  int weight;         /* slots it occupies while busy: 1, or a pset's ncores */
  int64_t head_since; /* when the first pset in flight started, at the latest (mono us) */
  int wide;      /* the batch being made: one pset alone over this many slots (0: a shared batch) */
  int taken;     /* psets taken for the batch being made */
  uint64_t gpus; /* the node's GPUs it is bound to for life (bit k: its k-th) */
  int ngpus;     /* how many */
  int64_t reserved_mb; /* memory the pset it runs alone holds (MiB), or 0 */
} ps_slot_t;

typedef struct ps_sched_opts_s {
  int64_t total;               /* psets of the stage */
  const uint8_t *skip;         /* skip[i]: pset i needs no new run (resume), or NULL */
  int64_t group_size;          /* 0: automatic */
  int64_t max_tasks_per_child; /* 0: no limit */
  /* The slots a task needs (its ncores, at least 1). Asked of a pset new
     from the source only when its psets may set their own (psets_set_ncores):
     otherwise it needs 1, and the hot path makes no call. */
  int (*ncores)(void *ud, const ps_task_t *t);
  int psets_set_ncores;
  /* The GPUs a task wants (0: none), asked as ncores is; NULL: none ever. */
  int (*gpus)(void *ud, const ps_task_t *t);
  int psets_set_gpus;
  int most_gpus; /* the most GPUs any node has */
  /* The memory a task reserves (MiB; 0: none), asked as ncores is; NULL:
     none ever. */
  int64_t (*memory)(void *ud, const ps_task_t *t);
  int psets_set_memory;
  void *ud;
} ps_sched_opts_t;

typedef struct ps_sched_s {
  ps_sched_opts_t o;
  int64_t next;       /* the next pset of the source */
  ps_task_t *requeue; /* to run again, before the next of the source */
  size_t nreq, capreq;
  double est_us; /* moving estimate of a pset's run time */
  int have_est;
  double sum_us; /* and their mean: sum and count */
  int64_t count;
  ps_slot_t **slots; /* every worker's, in the order they came */
  int nslots, capslots;
  int64_t most_mb; /* the most memory a node up has (MiB; 0: none says): the caller keeps it */
} ps_sched_t;

void ps_sched_init(ps_sched_t *s, const ps_sched_opts_t *o);
void ps_sched_free(ps_sched_t *s);

/* Slots: a worker's joins when it starts (or when a stage begins, for a
   worker of an earlier stage, after ps_slot_reset, which keeps its GPUs)
   and leaves when it dies. PS_ENOMEM. */
void ps_slot_init(ps_slot_t *slot, const ps_node_t *node, void *owner);
/* The worker of slot is bound to the node's GPUs in mask. */
void ps_slot_bind(ps_slot_t *slot, uint64_t mask);
void ps_slot_reset(ps_slot_t *slot); /* nothing in flight */
void ps_slot_free(ps_slot_t *slot);
int ps_sched_add(ps_sched_t *s, ps_slot_t *slot);
void ps_sched_remove(ps_sched_t *s, ps_slot_t *slot);

/* Whether psets are left to hand out. */
int ps_sched_work_left(const ps_sched_t *s);
/* Queues t to run again: first (a retry), or last. PS_ENOMEM. */
int ps_sched_requeue(ps_sched_t *s, ps_task_t t, int first);
/* A pset ran for duration_us: batches follow. */
void ps_sched_ran(ps_sched_t *s, int64_t duration_us);
/* The psets in the next automatic batch for slot. */
int64_t ps_sched_batch_size(const ps_sched_t *s, const ps_slot_t *slot);
/* Whether a worker on node n can still take a batch of `want` psets at
   now_us (Unix us): not when the node's allocation ends (n->ends) before
   twice the batch's expected run time (the psets' measured run times) and
   a second have passed. A node without an end always can. */
int ps_sched_in_time(const ps_sched_t *s, const ps_node_t *n, int64_t want, int64_t now_us);

/* Placement. Workers that serve node n (not retiring); those that come
   before slot in the list on its node; n's slots not taken by busy
   workers. */
int ps_sched_serving(const ps_sched_t *s, const ps_node_t *n);
int ps_sched_serving_before(const ps_sched_t *s, const ps_slot_t *slot);
int ps_sched_free_slots(const ps_sched_t *s, const ps_node_t *n);
/* The node of those ever up with the most slots, or NULL. */
const ps_node_t *ps_sched_largest(ps_node_t *const *nodes, int nnodes);
/* The most GPUs a node of those not lost for good has (for
   ps_sched_opts_t.most_gpus). */
int ps_sched_most_gpus(ps_node_t *const *nodes, int nnodes);
/* The most memory a node of those ever up and not lost for good has, MiB
   (for most_mb); 0 when one of them does not say its memory. */
int64_t ps_sched_most_memory(ps_node_t *const *nodes, int nnodes);
/* n's memory not reserved by psets running there (MiB; INT64_MAX when n
   does not say its memory). */
int64_t ps_sched_free_memory(const ps_sched_t *s, const ps_node_t *n);
/* The node that gets the next new worker, or NULL, and in *gpus the GPUs
   it is bound to (0: none). A pset that wants GPUs and has no worker bound
   to that many gets one bound to free GPUs of the first up node with room;
   otherwise: the first up node with fewer workers than slots, while fewer
   workers serve than the `left` psets to finish. */
ps_node_t *ps_sched_place(const ps_sched_t *s, ps_node_t *const *nodes, int nnodes, int64_t left,
                          uint64_t *gpus);
/* An idle worker that should go (the caller says goodbye and marks it
   retiring), so that psets can get the workers they need, or NULL. */
ps_slot_t *ps_sched_retire(const ps_sched_t *s, int64_t left);

/*
 * Handing out work. For each batch: ps_sched_next_batch says whether slot
 * gets one now (holding fewer than depth batches) and at most how many
 * psets; ps_sched_take gives them one by one; ps_sched_sent puts each on
 * the slot once sent (a pset the caller could not send is not), and
 * ps_sched_batch_sent closes the batch of n psets.
 */
int ps_sched_next_batch(ps_sched_t *s, ps_slot_t *slot, int depth, int64_t *want);
enum {
  PS_TAKE_NONE = 0,           /* the batch is made */
  PS_TAKE_TASK = 1,           /* *t is next */
  PS_TAKE_TOO_WIDE = 2,       /* *t needs more slots than `largest` node has: it cannot run */
  PS_TAKE_TOO_MANY_GPUS = 3,  /* *t wants more GPUs than any node has (o.most_gpus) */
  PS_TAKE_TOO_MUCH_MEMORY = 4 /* *t wants more memory than any node up has (most_mb) */
};
int ps_sched_take(ps_sched_t *s, ps_slot_t *slot, const ps_node_t *largest, ps_task_t *t);
int ps_sched_sent(ps_sched_t *s, ps_slot_t *slot, ps_task_t t, int64_t now);
void ps_sched_batch_sent(ps_sched_t *s, ps_slot_t *slot, int n);

/* The first pset in flight on slot finished; the next one started at `now`
   at the latest. */
ps_task_t ps_sched_finished(ps_sched_t *s, ps_slot_t *slot, int64_t now);

/*
 * A worker died with psets in flight. Its first pset is to blame when it
 * ran alone or was the only one; otherwise each becomes a suspect.
 * ps_sched_requeue_from queues the psets from the k-th on again as they
 * were (a death that is not theirs); ps_sched_suspect queues them all as
 * suspects. PS_ENOMEM.
 */
int ps_sched_blames_head(const ps_slot_t *slot);
int ps_sched_requeue_from(ps_sched_t *s, const ps_slot_t *slot, size_t k);
int ps_sched_suspect(ps_sched_t *s, const ps_slot_t *slot);

#endif
