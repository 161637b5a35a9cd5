/* scheduler.c: the scheduling policy of a stage (scheduler.h). */
#include "scheduler.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ps.h"

/* Moves the next pset of the source past those an earlier run finished. */
static void skip_done(ps_sched_t *s) {
  if (s->o.skip)
    while (s->next < s->o.total && s->o.skip[s->next]) s->next++;
}

void ps_sched_init(ps_sched_t *s, const ps_sched_opts_t *o) {
  memset(s, 0, sizeof *s);
  s->o = *o;
  assert(s->o.ncores != NULL);
  skip_done(s);
}

void ps_sched_free(ps_sched_t *s) {
  free(s->requeue);
  free(s->slots);
  memset(s, 0, sizeof *s);
}

void ps_slot_init(ps_slot_t *slot, const ps_node_t *node, void *owner) {
  memset(slot, 0, sizeof *slot);
  slot->node = node;
  slot->owner = owner;
  slot->weight = 1;
}

void ps_slot_bind(ps_slot_t *slot, uint64_t mask) {
  slot->gpus = mask;
  slot->ngpus = __builtin_popcountll(mask);
}

void ps_slot_reset(ps_slot_t *slot) {
  slot->head = slot->len = 0;
  slot->nbatches = 0;
  slot->alone = 0;
  slot->weight = 1;
  slot->reserved_mb = 0;
  slot->wide = slot->taken = 0;
}

void ps_slot_free(ps_slot_t *slot) {
  free(slot->fifo);
  slot->fifo = NULL;
  slot->head = slot->len = slot->cap = 0;
}

int ps_sched_add(ps_sched_t *s, ps_slot_t *slot) {
  if (s->nslots == s->capslots) {
    int cap = s->capslots ? s->capslots * 2 : 8;
    ps_slot_t **list = realloc(s->slots, sizeof *list * (size_t)cap);
    if (list == NULL) return PS_ENOMEM;
    s->slots = list;
    s->capslots = cap;
  }
  s->slots[s->nslots++] = slot;
  return 0;
}

void ps_sched_remove(ps_sched_t *s, ps_slot_t *slot) {
  for (int k = 0; k < s->nslots; k++) {
    if (s->slots[k] != slot) continue;
    memmove(s->slots + k, s->slots + k + 1, sizeof *s->slots * (size_t)(s->nslots - k - 1));
    s->nslots--;
    return;
  }
}

int ps_sched_work_left(const ps_sched_t *s) { return s->next < s->o.total || s->nreq > 0; }

int ps_sched_requeue(ps_sched_t *s, ps_task_t t, int first) {
  t.eoff = -1; /* it leaves its worker's encodings behind */
  if (s->nreq == s->capreq) {
    size_t cap = s->capreq ? s->capreq * 2 : 16;
    ps_task_t *q = realloc(s->requeue, sizeof *q * cap);
    if (q == NULL) return PS_ENOMEM;
    s->requeue = q;
    s->capreq = cap;
  }
  if (first) memmove(s->requeue + 1, s->requeue, sizeof *s->requeue * s->nreq);
  s->requeue[first ? 0 : s->nreq] = t;
  s->nreq++;
  return 0;
}

static ps_task_t requeue_pop(ps_sched_t *s) {
  assert(s->nreq > 0);
  ps_task_t t = s->requeue[0];
  memmove(s->requeue, s->requeue + 1, sizeof *s->requeue * --s->nreq);
  return t;
}

void ps_sched_ran(ps_sched_t *s, int64_t duration_us) {
  double d = (double)duration_us;
  s->est_us = s->have_est ? (1 - PS_SCHED_EST_WEIGHT) * s->est_us + PS_SCHED_EST_WEIGHT * d : d;
  s->have_est = 1;
  s->sum_us += d;
  s->count++;
}

int ps_sched_in_time(const ps_sched_t *s, const ps_node_t *n, int64_t want, int64_t now_us) {
  if (n->ends <= 0) return 1;
  double left_us = (double)n->ends * 1e6 - (double)now_us;
  /* Twice the batch's expected time, and a second for the frames. */
  double mean = s->count ? s->sum_us / (double)s->count : 0;
  double est = s->have_est && s->est_us > mean ? s->est_us : mean;
  return left_us > 2.0 * est * (double)(want > 0 ? want : 1) + 1e6;
}

int64_t ps_sched_batch_size(const ps_sched_t *s, const ps_slot_t *slot) {
  int64_t k;
  if (s->o.group_size > 0) {
    k = s->o.group_size;
  } else {
    k = 1;
    if (s->have_est) {
      /* The larger of the recent and the overall mean run time: with a
         heavy tail (most psets tiny, a few long), the recent mean forgets
         the long ones and would pack several into one batch, where they
         keep each other (and the psets queued behind) waiting. */
      double mean = s->count ? s->sum_us / (double)s->count : 0;
      double est = s->est_us > mean ? s->est_us : mean;
      double want = PS_SCHED_BATCH_US / (est > PS_SCHED_EST_FLOOR_US ? est : PS_SCHED_EST_FLOOR_US);
      k = want < 1 ? 1 : want > PS_SCHED_MAX_BATCH ? PS_SCHED_MAX_BATCH : (int64_t)want;
    }
    /* Near the end, smaller batches spread the tail over every worker. */
    int nw = s->nslots > 0 ? s->nslots : 1;
    int64_t share = (s->o.total - s->next) / (2 * nw);
    if (k > share) k = share > 0 ? share : 1;
  }
  int64_t cap = s->o.max_tasks_per_child;
  if (cap > 0 && k > cap - slot->assigned) k = cap - slot->assigned;
  return k;
}

int ps_sched_serving(const ps_sched_t *s, const ps_node_t *n) {
  int k = 0;
  for (int i = 0; i < s->nslots; i++) k += s->slots[i]->node == n && !s->slots[i]->retiring;
  return k;
}

int ps_sched_serving_before(const ps_sched_t *s, const ps_slot_t *slot) {
  int k = 0;
  for (int i = 0; i < s->nslots && s->slots[i] != slot; i++)
    k += s->slots[i]->node == slot->node && !s->slots[i]->retiring;
  return k;
}

int ps_sched_free_slots(const ps_sched_t *s, const ps_node_t *n) {
  int used = 0;
  for (int i = 0; i < s->nslots; i++)
    if (s->slots[i]->node == n && s->slots[i]->len > 0) used += s->slots[i]->weight;
  return n->slots - used;
}

const ps_node_t *ps_sched_largest(ps_node_t *const *nodes, int nnodes) {
  const ps_node_t *m = NULL;
  for (int k = 0; k < nnodes; k++)
    if (nodes[k]->ever_up && (m == NULL || nodes[k]->slots > m->slots)) m = nodes[k];
  return m;
}

int ps_sched_most_gpus(ps_node_t *const *nodes, int nnodes) {
  int most = 0;
  for (int k = 0; k < nnodes; k++)
    if (!ps_node_gone(nodes[k]) && nodes[k]->ngpus > most) most = nodes[k]->ngpus;
  return most;
}

static int gpus_of(const ps_sched_t *s, const ps_task_t *t) {
  return s->o.gpus ? s->o.gpus(s->o.ud, t) : 0;
}

static int64_t memory_of(const ps_sched_t *s, const ps_task_t *t) {
  return s->o.memory ? s->o.memory(s->o.ud, t) : 0;
}

int64_t ps_sched_most_memory(ps_node_t *const *nodes, int nnodes) {
  int64_t most = 0;
  for (int k = 0; k < nnodes; k++) {
    const ps_node_t *n = nodes[k];
    if (!n->ever_up || ps_node_gone(n)) continue;
    if (n->mem_mb <= 0) return 0; /* it does not say: it has room for any */
    if (n->mem_mb > most) most = n->mem_mb;
  }
  return most;
}

int64_t ps_sched_free_memory(const ps_sched_t *s, const ps_node_t *n) {
  if (n->mem_mb <= 0) return INT64_MAX;
  int64_t free_mb = n->mem_mb;
  for (int k = 0; k < s->nslots; k++)
    if (s->slots[k]->node == n && s->slots[k]->len > 0) free_mb -= s->slots[k]->reserved_mb;
  return free_mb;
}

/* Whether task t wants more memory than any node up has. */
static int too_much_memory(const ps_sched_t *s, const ps_task_t *t) {
  return s->most_mb > 0 && memory_of(s, t) > s->most_mb;
}

/* The GPUs the next pset wants: the first to run again, else the next of
   the source. */
static int head_gpus(const ps_sched_t *s) {
  if (s->o.gpus == NULL) return 0;
  if (s->nreq > 0) return gpus_of(s, &s->requeue[0]);
  if (s->next >= s->o.total || !s->o.psets_set_gpus) return 0;
  ps_task_t t = {.index = s->next, .attempt = 1, .ov = -1, .eoff = -1};
  return gpus_of(s, &t);
}

static int idle(const ps_slot_t *slot) {
  return !slot->retiring && slot->len == 0 && slot->nbatches == 0;
}

/* Whether an idle worker is bound to exactly g GPUs: it takes the next
   pset that wants g. While those bound to g are busy, more are started
   where GPUs are free. */
static int idle_bound_to(const ps_sched_t *s, int g) {
  for (int k = 0; k < s->nslots; k++)
    if (idle(s->slots[k]) && s->slots[k]->ngpus == g) return 1;
  return 0;
}

/* n's GPUs that no live worker is bound to (one retiring still holds its
   own until it is gone). */
static uint64_t free_gpus(const ps_sched_t *s, const ps_node_t *n) {
  uint64_t all = n->ngpus >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n->ngpus) - 1;
  for (int k = 0; k < s->nslots; k++)
    if (s->slots[k]->node == n) all &= ~s->slots[k]->gpus;
  return all;
}

ps_node_t *ps_sched_place(const ps_sched_t *s, ps_node_t *const *nodes, int nnodes, int64_t left,
                          uint64_t *gpus) {
  *gpus = 0;
  if (!ps_sched_work_left(s)) return NULL;
  int g = head_gpus(s);
  if (g > 0 && g <= s->o.most_gpus && !idle_bound_to(s, g)) {
    for (int k = 0; k < nnodes; k++) {
      ps_node_t *n = nodes[k];
      if (n->state != PS_NODE_UP || n->ngpus < g || ps_sched_serving(s, n) >= n->slots) continue;
      uint64_t free = free_gpus(s, n);
      if (__builtin_popcountll(free) < g) continue;
      for (int b = 0, got = 0; got < g; b++)
        if (free >> b & 1) *gpus |= (uint64_t)1 << b, got++;
      return n;
    }
  }
  int64_t busy = 0;
  for (int k = 0; k < s->nslots; k++) busy += !s->slots[k]->retiring;
  if (busy >= left) return NULL;
  for (int k = 0; k < nnodes; k++)
    if (nodes[k]->state == PS_NODE_UP && ps_sched_serving(s, nodes[k]) < nodes[k]->slots)
      return nodes[k];
  return NULL;
}

ps_slot_t *ps_sched_retire(const ps_sched_t *s, int64_t left) {
  if (s->o.most_gpus == 0 || !ps_sched_work_left(s)) return NULL;
  int g = head_gpus(s);
  if (g > s->o.most_gpus) return NULL; /* it fails, wherever */
  if (g == 0) {
    /* Idle workers bound to GPUs are of no use to the psets to come; they
       go when their node is full and more workers could serve. */
    int64_t unbound = 0;
    for (int k = 0; k < s->nslots; k++)
      unbound += !s->slots[k]->retiring && s->slots[k]->ngpus == 0;
    if (unbound >= left) return NULL;
    for (int k = 0; k < s->nslots; k++) {
      ps_slot_t *slot = s->slots[k];
      if (idle(slot) && slot->ngpus > 0 && ps_sched_serving(s, slot->node) >= slot->node->slots)
        return slot;
    }
    return NULL;
  }
  if (idle_bound_to(s, g)) return NULL; /* that worker takes it */
  for (int k = 0; k < s->nslots; k++) {
    const ps_slot_t *slot = s->slots[k];
    const ps_node_t *n = slot->node;
    if (n->ngpus < g) continue;
    /* One on its way out frees what is needed: wait for it. */
    if (slot->retiring) return NULL;
    /* A node with room and the GPUs: ps_sched_place starts the worker. */
    if (n->state == PS_NODE_UP && ps_sched_serving(s, n) < n->slots &&
        __builtin_popcountll(free_gpus(s, n)) >= g)
      return NULL;
  }
  /* First an idle worker bound to another count, which frees GPUs; else
     an idle unbound one where GPUs are free but room is not. */
  for (int k = 0; k < s->nslots; k++)
    if (idle(s->slots[k]) && s->slots[k]->ngpus > 0 && s->slots[k]->node->ngpus >= g)
      return s->slots[k];
  for (int k = 0; k < s->nslots; k++)
    if (idle(s->slots[k]) && s->slots[k]->ngpus == 0 && s->slots[k]->node->ngpus >= g &&
        __builtin_popcountll(free_gpus(s, s->slots[k]->node)) >= g)
      return s->slots[k];
  return NULL;
}

/* The slots a task at the head of the requeue needs to run alone, or 0
   when it can share a batch: one that wants GPUs or memory runs alone
   too. */
static int alone_slots(const ps_sched_t *s, const ps_task_t *t) {
  int k = s->o.ncores(s->o.ud, t);
  if (k > 1) return k;
  return t->suspect || gpus_of(s, t) > 0 || memory_of(s, t) > 0 ? 1 : 0;
}

/* The next pset of the source, when it wants GPUs, goes to the head of the
   requeue, where the worker bound for it finds it (workers bound to GPUs
   never take from the source). */
static void promote_gpu_head(ps_sched_t *s) {
  if (s->nreq > 0 || !s->o.psets_set_gpus || s->o.gpus == NULL || s->next >= s->o.total) return;
  ps_task_t t = {.index = s->next, .attempt = 1, .ov = -1, .eoff = -1};
  if (gpus_of(s, &t) == 0 || ps_sched_requeue(s, t, 1) != 0) return;
  s->next++;
  skip_done(s);
}

int ps_sched_next_batch(ps_sched_t *s, ps_slot_t *slot, int depth, int64_t *want) {
  int64_t cap = s->o.max_tasks_per_child;
  slot->wide = slot->taken = 0;
  if (slot->retiring || slot->alone || slot->nbatches >= depth || !ps_sched_work_left(s)) return 0;
  if (cap > 0 && slot->assigned >= cap) return 0;
  promote_gpu_head(s);
  int k = s->nreq > 0 ? alone_slots(s, &s->requeue[0]) : 0;
  if (k > 0) {
    int g = gpus_of(s, &s->requeue[0]);
    if (g > s->o.most_gpus || too_much_memory(s, &s->requeue[0])) {
      /* It runs nowhere: the first worker to ask fails it (ps_sched_take). */
      slot->wide = 1;
      *want = 1;
      return 1;
    }
    /* It waits for an idle worker bound to as many GPUs as it wants (none,
       most often), enough free slots and enough free memory; meanwhile
       nobody gets more work, so they do free up. */
    if (slot->ngpus != g || slot->nbatches > 0 || ps_sched_free_slots(s, slot->node) < k ||
        ps_sched_free_memory(s, slot->node) < memory_of(s, &s->requeue[0]))
      return 0;
    slot->wide = k;
    *want = 1;
    return 1;
  }
  /* A worker bound to GPUs takes only psets that want them. */
  if (slot->ngpus > 0) return 0;
  if (slot->len == 0 && ps_sched_free_slots(s, slot->node) < 1) return 0;
  *want = ps_sched_batch_size(s, slot);
  return *want > 0;
}

int ps_sched_take(ps_sched_t *s, ps_slot_t *slot, const ps_node_t *largest, ps_task_t *t) {
  if (slot->wide) {
    if (slot->taken > 0 || s->nreq == 0) return PS_TAKE_NONE;
    slot->taken++;
    *t = requeue_pop(s);
    if (gpus_of(s, t) > s->o.most_gpus) return PS_TAKE_TOO_MANY_GPUS;
    return too_much_memory(s, t) ? PS_TAKE_TOO_MUCH_MEMORY : PS_TAKE_TASK;
  }
  if (s->nreq > 0) {
    if (alone_slots(s, &s->requeue[0]) > 0) return PS_TAKE_NONE;
    slot->taken++;
    *t = requeue_pop(s);
    return PS_TAKE_TASK;
  }
  if (s->next >= s->o.total) return PS_TAKE_NONE;
  memset(t, 0, sizeof *t);
  t->index = s->next++;
  t->attempt = 1;
  t->ov = -1;
  t->eoff = -1;
  skip_done(s);
  int k = s->o.psets_set_ncores ? s->o.ncores(s->o.ud, t) : 1;
  int g = s->o.psets_set_gpus ? gpus_of(s, t) : 0;
  int64_t m = s->o.psets_set_memory ? memory_of(s, t) : 0;
  if (g > s->o.most_gpus) return PS_TAKE_TOO_MANY_GPUS;
  if (k > 1 || g > 0 || m > 0) {
    if (largest && k > largest->slots) return PS_TAKE_TOO_WIDE;
    /* It runs alone, next: the batch ends here. */
    if (ps_sched_requeue(s, *t, 1) != 0) return PS_TAKE_NONE;
    return PS_TAKE_NONE;
  }
  slot->taken++;
  return PS_TAKE_TASK;
}

/* Room for one more task in flight on slot. */
static int reserve(ps_slot_t *slot) {
  if (slot->head + slot->len < slot->cap) return 0;
  if (slot->head > 0) {
    memmove(slot->fifo, slot->fifo + slot->head, sizeof *slot->fifo * slot->len);
    slot->head = 0;
    return 0;
  }
  size_t cap = slot->cap ? slot->cap * 2 : 64;
  ps_task_t *f = realloc(slot->fifo, sizeof *f * cap);
  if (f == NULL) return PS_ENOMEM;
  slot->fifo = f;
  slot->cap = cap;
  return 0;
}

int ps_sched_sent(ps_sched_t *s, ps_slot_t *slot, ps_task_t t, int64_t now) {
  if (reserve(slot) != 0) return PS_ENOMEM;
  if (slot->len == 0) slot->head_since = now;
  if (slot->wide) {
    slot->alone = 1;
    slot->weight = slot->wide;
    slot->reserved_mb = memory_of(s, &t);
  }
  slot->fifo[slot->head + slot->len++] = t;
  return 0;
}

void ps_sched_batch_sent(ps_sched_t *s, ps_slot_t *slot, int n) {
  (void)s;
  assert(n > 0 && slot->nbatches < PS_SCHED_DEPTH + 1);
  slot->batch[slot->nbatches++] = n;
  slot->assigned += n;
}

ps_task_t ps_sched_finished(ps_sched_t *s, ps_slot_t *slot, int64_t now) {
  (void)s;
  assert(slot->len > 0 && slot->nbatches > 0);
  ps_task_t t = slot->fifo[slot->head];
  slot->head++;
  slot->len--;
  if (--slot->batch[0] == 0)
    memmove(slot->batch, slot->batch + 1, sizeof(int) * (size_t)--slot->nbatches);
  slot->head_since = now;
  if (slot->len == 0) slot->alone = 0, slot->weight = 1, slot->reserved_mb = 0;
  return t;
}

int ps_sched_blames_head(const ps_slot_t *slot) { return slot->len == 1 || slot->alone; }

int ps_sched_requeue_from(ps_sched_t *s, const ps_slot_t *slot, size_t k) {
  for (; k < slot->len; k++)
    if (ps_sched_requeue(s, slot->fifo[slot->head + k], 0) != 0) return PS_ENOMEM;
  return 0;
}

int ps_sched_suspect(ps_sched_t *s, const ps_slot_t *slot) {
  for (size_t k = 0; k < slot->len; k++) {
    ps_task_t t = slot->fifo[slot->head + k];
    t.suspect = 1;
    if (ps_sched_requeue(s, t, 0) != 0) return PS_ENOMEM;
  }
  return 0;
}
