/*
 * test_scheduler.c: the scheduling policy (scheduler.h) over nodes of a
 * fake backend: no processes, no loop, no frames. A small world plays the
 * workers: it starts one where the scheduler places it, hands out batches
 * as the scheduler makes them, and finishes or kills what is in flight.
 * Its cases run as specs from spec/core/scheduler_spec.lua (cases.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "scheduler.h"

/* The fake backend: the scheduler never calls its functions. */
static const ps_backend_ops_t fake_ops = {.name = "fake", .noun = "fake node"};

#define MAX_NODES 4
#define MAX_WORKERS 600
#define MAX_PSETS 5000

typedef struct world_s {
  ps_node_t nodes[MAX_NODES];
  ps_node_t *list[MAX_NODES];
  int nnodes;
  ps_slot_t slots[MAX_WORKERS];
  int nworkers;
  ps_sched_t s;
  int ncores[MAX_PSETS];     /* per pset, 0: 1 */
  int gpus[MAX_PSETS];       /* per pset */
  int64_t memory[MAX_PSETS]; /* MiB reserved, per pset */
  int runs[MAX_PSETS];       /* times handed out */
  int done[MAX_PSETS];       /* times finished */
  int64_t total, finished, batches, largest_batch;
  int64_t refused;       /* psets failed for wanting more GPUs than any node has */
  int64_t retired;       /* workers retired to make way */
  int64_t mismatch;      /* psets sent to a worker not bound to as many GPUs as they want */
  int64_t shared;        /* times two live workers of a node held the same GPU */
  int most_running_gpus; /* the most GPU psets in flight at once */
  int gpu_rounds;        /* rounds a pset on a worker with GPUs takes (0: 1) */
  int64_t overcommitted; /* times a node's psets held more memory than it has */
} world_t;

static int ncores_of(void *ud, const ps_task_t *t) {
  world_t *w = ud;
  return w->ncores[t->index] > 0 ? w->ncores[t->index] : 1;
}

static int gpus_of(void *ud, const ps_task_t *t) {
  world_t *w = ud;
  return w->gpus[t->index];
}

static int64_t memory_of(void *ud, const ps_task_t *t) {
  world_t *w = ud;
  return w->memory[t->index];
}

static void world_init(world_t *w, int64_t total, const int *slots, int nnodes,
                       int64_t group_size) {
  memset(w, 0, sizeof *w);
  for (int k = 0; k < nnodes; k++) {
    ps_node_t *n = &w->nodes[k];
    n->ops = &fake_ops;
    snprintf(n->name, sizeof n->name, "n%d", k + 1);
    n->state = PS_NODE_UP;
    n->ever_up = 1;
    n->slots = slots[k];
    w->list[k] = n;
  }
  w->nnodes = nnodes;
  w->total = total;
  ps_sched_opts_t o = {.total = total,
                       .group_size = group_size,
                       .ncores = ncores_of,
                       .psets_set_ncores = 1,
                       .gpus = gpus_of,
                       .psets_set_gpus = 1,
                       .memory = memory_of,
                       .psets_set_memory = 1,
                       .ud = w};
  ps_sched_init(&w->s, &o);
}

static void world_free(world_t *w) {
  for (int k = 0; k < w->nworkers; k++) ps_slot_free(&w->slots[k]);
  ps_sched_free(&w->s);
}

/* Gives the nodes GPUs: gpus[k] for node k. */
static void world_gpus(world_t *w, const int *gpus) {
  for (int k = 0; k < w->nnodes; k++) w->nodes[k].ngpus = gpus[k];
  w->s.o.most_gpus = ps_sched_most_gpus(w->list, w->nnodes);
}

/* Gives the nodes memory: mb[k] MiB for node k. */
static void world_memory(world_t *w, const int64_t *mb) {
  for (int k = 0; k < w->nnodes; k++) w->nodes[k].mem_mb = mb[k];
  w->s.most_mb = ps_sched_most_memory(w->list, w->nnodes);
}

/* Retires the workers the scheduler names (an idle worker goes at once)
   and starts workers where it places them, bound as it says. */
static void place(world_t *w) {
  ps_node_t *n;
  ps_slot_t *go;
  uint64_t mask;
  while ((go = ps_sched_retire(&w->s, w->total - w->finished)) != NULL) {
    CHECK(go->len == 0 && go->nbatches == 0);
    go->retiring = 1;
    ps_sched_remove(&w->s, go);
    w->retired++;
  }
  while ((n = ps_sched_place(&w->s, w->list, w->nnodes, w->total - w->finished, &mask)) != NULL) {
    if (w->nworkers == MAX_WORKERS) abort();
    ps_slot_t *slot = &w->slots[w->nworkers++];
    ps_slot_init(slot, n, w);
    ps_slot_bind(slot, mask);
    CHECK(n->ngpus >= 64 || mask >> n->ngpus == 0); /* its own GPUs only */
    if (ps_sched_add(&w->s, slot) != 0) abort();
  }
}

/* No two live workers of a node hold the same GPU; counts the GPU psets
   in flight. */
static void check_gpus(world_t *w) {
  int running = 0;
  for (int a = 0; a < w->s.nslots; a++) {
    const ps_slot_t *x = w->s.slots[a];
    running += x->len > 0 && x->ngpus > 0;
    for (int b = a + 1; b < w->s.nslots; b++)
      if (w->s.slots[b]->node == x->node && (w->s.slots[b]->gpus & x->gpus)) w->shared++;
  }
  if (running > w->most_running_gpus) w->most_running_gpus = running;
  for (int k = 0; k < w->nnodes; k++) {
    int64_t held = 0;
    for (int a = 0; a < w->s.nslots; a++)
      if (w->s.slots[a]->node == &w->nodes[k] && w->s.slots[a]->len > 0)
        held += w->memory[w->s.slots[a]->fifo[w->s.slots[a]->head].index];
    w->overcommitted += w->nodes[k].mem_mb > 0 && held > w->nodes[k].mem_mb;
  }
}

/* Gives one worker its batches, as run.c does. */
static void dispatch(world_t *w, ps_slot_t *slot, int depth) {
  const ps_node_t *largest = ps_sched_largest(w->list, w->nnodes);
  int64_t want;
  while (ps_sched_next_batch(&w->s, slot, depth, &want)) {
    int n = 0, taken = 0, got;
    ps_task_t t;
    while (n < want && (got = ps_sched_take(&w->s, slot, largest, &t)) != PS_TAKE_NONE) {
      taken++;
      if (got == PS_TAKE_TOO_WIDE || got == PS_TAKE_TOO_MANY_GPUS ||
          got == PS_TAKE_TOO_MUCH_MEMORY) {
        w->done[t.index]++; /* fails here */
        w->finished++;
        w->refused += got != PS_TAKE_TOO_WIDE;
        continue;
      }
      w->runs[t.index]++;
      w->mismatch += slot->ngpus != w->gpus[t.index];
      if (ps_sched_sent(&w->s, slot, t, 0) != 0) abort();
      n++;
    }
    if (n == 0) {
      if (taken) continue;
      break;
    }
    ps_sched_batch_sent(&w->s, slot, n);
    w->batches++;
    if (n > w->largest_batch) w->largest_batch = n;
  }
}

static void dispatch_all(world_t *w) {
  for (int depth = 1; depth <= PS_SCHED_DEPTH; depth++)
    for (int k = 0; k < w->s.nslots; k++) dispatch(w, w->s.slots[k], depth);
}

/* The first pset in flight on slot finishes after duration_us. */
static ps_task_t finish_head(world_t *w, ps_slot_t *slot, int64_t duration_us) {
  ps_task_t t = ps_sched_finished(&w->s, slot, 0);
  ps_sched_ran(&w->s, duration_us);
  w->done[t.index]++;
  w->finished++;
  return t;
}

/* Runs the world until every pset is finished: each round, each busy
   worker finishes its first pset. */
static void run_all(world_t *w, int64_t duration_us) {
  place(w);
  dispatch_all(w);
  for (int rounds = 0; w->finished < w->total; rounds++) {
    if (rounds > 100000) {
      fprintf(stderr, "the world does not finish: %lld of %lld\n", (long long)w->finished,
              (long long)w->total);
      tc_failures++;
      return;
    }
    for (int k = 0; k < w->s.nslots; k++) {
      ps_slot_t *slot = w->s.slots[k];
      int slow = slot->ngpus > 0 && w->gpu_rounds > 1 && rounds % w->gpu_rounds != 0;
      if (slot->len > 0 && !slow) finish_head(w, slot, duration_us);
      dispatch(w, slot, PS_SCHED_DEPTH);
    }
    /* As run.c does after results when nodes have GPUs. */
    if (w->s.o.most_gpus > 0) place(w);
    dispatch_all(w);
    check_gpus(w);
  }
}

static int on_node(const world_t *w, int node) {
  int k = 0;
  for (int i = 0; i < w->s.nslots; i++) k += w->s.slots[i]->node == &w->nodes[node];
  return k;
}

/* ---- the cases ---- */

static void every_pset_once(void) {
  world_t w;
  world_init(&w, 3000, (int[]){1, 2, 4}, 3, 0);
  run_all(&w, 1000);
  for (int i = 0; i < 3000; i++) CHECK(w.runs[i] == 1 && w.done[i] == 1);
  CHECK(on_node(&w, 0) == 1 && on_node(&w, 1) == 2 && on_node(&w, 2) == 4);
  CHECK(w.s.nreq == 0 && !ps_sched_work_left(&w.s));
  world_free(&w);
}

static void no_more_workers_than_psets(void) {
  world_t w;
  world_init(&w, 3, (int[]){4, 4}, 2, 0);
  place(&w);
  CHECK(w.nworkers == 3);
  CHECK(on_node(&w, 0) == 3 && on_node(&w, 1) == 0);
  world_free(&w);
}

static void nodes_not_up_get_no_workers(void) {
  world_t w;
  world_init(&w, 100, (int[]){2, 3}, 2, 0);
  w.nodes[0].state = PS_NODE_CONNECTING;
  place(&w);
  CHECK(on_node(&w, 0) == 0 && on_node(&w, 1) == 3);
  w.nodes[0].state = PS_NODE_UP; /* it connects */
  place(&w);
  CHECK(on_node(&w, 0) == 2);
  world_free(&w);
}

static void batches_follow_run_time(void) {
  world_t w;
  world_init(&w, 1000000, (int[]){2}, 1, 0);
  place(&w);
  CHECK(ps_sched_batch_size(&w.s, w.s.slots[0]) == 1); /* nothing measured yet */
  for (int k = 0; k < 100; k++) ps_sched_ran(&w.s, 1000);
  CHECK(ps_sched_batch_size(&w.s, w.s.slots[0]) == 20); /* 20 ms of 1 ms psets */
  for (int k = 0; k < 1000; k++) ps_sched_ran(&w.s, 1);
  /* The mean remembers the long ones: 100 of 1 ms in 1,100 runs. */
  int64_t k = ps_sched_batch_size(&w.s, w.s.slots[0]);
  CHECK(k > 200 && k < 250);
  world_free(&w);
  world_init(&w, 1000000, (int[]){2}, 1, 0);
  place(&w);
  for (int i = 0; i < 100; i++) ps_sched_ran(&w.s, 0);
  CHECK(ps_sched_batch_size(&w.s, w.s.slots[0]) == PS_SCHED_MAX_BATCH);
  world_free(&w);
}

static void nodes_ending_soon_take_no_batch(void) {
  world_t w;
  world_init(&w, 1000, (int[]){2}, 1, 0);
  ps_node_t *n = &w.nodes[0];
  int64_t now = 1000000000LL * 1000000;      /* Unix us */
  CHECK(ps_sched_in_time(&w.s, n, 10, now)); /* no end: always */
  n->ends = 1000000000LL + 10;               /* 10 s left */
  CHECK(ps_sched_in_time(&w.s, n, 1, now));  /* nothing measured: a second to spare is enough */
  for (int k = 0; k < 10; k++) ps_sched_ran(&w.s, 2000000); /* psets of 2 s */
  CHECK(ps_sched_in_time(&w.s, n, 2, now));                 /* 2 x 4 s + 1 s < 10 s */
  CHECK(!ps_sched_in_time(&w.s, n, 3, now));                /* 2 x 6 s + 1 s > 10 s */
  n->ends = 1000000000LL;                                   /* over */
  CHECK(!ps_sched_in_time(&w.s, n, 1, now));
  world_free(&w);
}

static void group_size_fixes_batches(void) {
  world_t w;
  world_init(&w, 100, (int[]){2}, 1, 7);
  run_all(&w, 1);
  CHECK(w.largest_batch == 7);
  for (int i = 0; i < 100; i++) CHECK(w.done[i] == 1);
  world_free(&w);
}

static void tail_spreads_over_workers(void) {
  world_t w;
  world_init(&w, 40, (int[]){4}, 1, 0);
  place(&w);
  for (int k = 0; k < 10; k++)
    ps_sched_ran(&w.s, 1); /* tiny psets: big batches, but for the tail */
  dispatch_all(&w);
  /* 40 psets on 4 workers: no batch takes more than its share of what is left. */
  CHECK(w.largest_batch <= 5);
  for (int k = 0; k < 4; k++) CHECK(w.s.slots[k]->len > 0);
  world_free(&w);
}

static void max_tasks_per_child_caps_batches(void) {
  world_t w;
  world_init(&w, 100, (int[]){1}, 1, 10);
  w.s.o.max_tasks_per_child = 4;
  place(&w);
  dispatch_all(&w);
  CHECK(w.s.slots[0]->assigned == 4);
  for (int k = 0; k < 4; k++) finish_head(&w, w.s.slots[0], 1);
  dispatch(&w, w.s.slots[0], PS_SCHED_DEPTH);
  CHECK(w.s.slots[0]->len == 0); /* it retires: nothing more */
  w.s.slots[0]->retiring = 1;
  place(&w);
  CHECK(w.nworkers == 2); /* its successor */
  world_free(&w);
}

static void wide_pset_waits_for_free_slots(void) {
  world_t w;
  world_init(&w, 200, (int[]){4}, 1, 1);
  w.ncores[10] = 3;
  place(&w);
  dispatch_all(&w);
  CHECK(w.nworkers == 4);
  int seen = 0;
  for (int rounds = 0; w.finished < w.total && rounds < 10000; rounds++) {
    for (int k = 0; k < w.s.nslots; k++) {
      ps_slot_t *slot = w.s.slots[k];
      if (slot->len > 0 && slot->fifo[slot->head].index == 10) {
        seen = 1;
        CHECK(slot->alone && slot->weight == 3 && slot->len == 1);
        /* It holds 3 of the 4 slots: at most one other worker is busy. */
        CHECK(ps_sched_free_slots(&w.s, &w.nodes[0]) >= 0);
      }
      if (slot->len > 0) finish_head(&w, slot, 1000);
    }
    dispatch_all(&w);
  }
  CHECK(seen);
  for (int i = 0; i < 200; i++) CHECK(w.done[i] == 1);
  world_free(&w);
}

static void too_wide_pset_fails_before_it_runs(void) {
  world_t w;
  world_init(&w, 10, (int[]){2, 4}, 2, 0);
  w.ncores[3] = 5;
  run_all(&w, 10);
  CHECK(w.runs[3] == 0 && w.done[3] == 1);
  for (int i = 0; i < 10; i++) CHECK(w.done[i] == 1);
  world_free(&w);
}

static void deaths_blame_the_head_or_make_suspects(void) {
  world_t w;
  world_init(&w, 100, (int[]){2}, 1, 3);
  place(&w);
  dispatch_all(&w);
  ps_slot_t *a = w.s.slots[0];
  CHECK(a->len == 6 && !ps_sched_blames_head(a)); /* two batches of 3: nobody knows which */
  int64_t first = a->fifo[a->head].index;
  /* It dies: each of its psets becomes a suspect and runs alone. */
  CHECK(ps_sched_suspect(&w.s, a) == 0);
  ps_sched_remove(&w.s, a);
  CHECK(w.s.nreq == 6 && w.s.requeue[0].suspect && w.s.requeue[0].index == first);
  ps_slot_t *b = w.s.slots[0];
  while (b->len) finish_head(&w, b, 1);
  dispatch(&w, b, PS_SCHED_DEPTH);
  CHECK(b->len == 1 && b->alone && b->fifo[b->head].index == first);
  CHECK(ps_sched_blames_head(b)); /* alone: if it dies, this pset did it */
  dispatch(&w, b, PS_SCHED_DEPTH);
  CHECK(b->len == 1); /* nothing joins a suspect */
  world_free(&w);
}

static void retries_go_first_and_others_last(void) {
  world_t w;
  world_init(&w, 100, (int[]){1}, 1, 1);
  place(&w);
  ps_task_t t = {.index = 42, .attempt = 2, .ov = -1, .eoff = 7};
  ps_task_t u = {.index = 43, .attempt = 1, .ov = -1};
  ps_task_t v = {.index = 44, .attempt = 3, .ov = -1};
  CHECK(ps_sched_requeue(&w.s, u, 0) == 0 && ps_sched_requeue(&w.s, t, 1) == 0 &&
        ps_sched_requeue(&w.s, v, 1) == 0);
  const ps_node_t *largest = ps_sched_largest(w.list, w.nnodes);
  ps_task_t got;
  int64_t want;
  CHECK(ps_sched_next_batch(&w.s, w.s.slots[0], 2, &want));
  CHECK(ps_sched_take(&w.s, w.s.slots[0], largest, &got) == PS_TAKE_TASK && got.index == 44);
  CHECK(ps_sched_take(&w.s, w.s.slots[0], largest, &got) == PS_TAKE_TASK && got.index == 42 &&
        got.attempt == 2);
  CHECK(got.eoff == -1); /* it left its worker's encodings behind */
  CHECK(ps_sched_take(&w.s, w.s.slots[0], largest, &got) == PS_TAKE_TASK && got.index == 43);
  CHECK(ps_sched_take(&w.s, w.s.slots[0], largest, &got) == PS_TAKE_TASK && got.index == 0);
  world_free(&w);
}

static void resume_skips_finished_psets(void) {
  static uint8_t skip[50];
  for (int i = 0; i < 50; i++) skip[i] = i % 3 != 1; /* 1, 4, 7 ... are left */
  world_t w;
  world_init(&w, 50, (int[]){2}, 1, 0);
  w.s.o.skip = skip;
  w.s.next = 0;
  ps_sched_opts_t o = w.s.o;
  ps_sched_free(&w.s);
  ps_sched_init(&w.s, &o);
  w.finished = 50 - 16; /* what an earlier run finished */
  run_all(&w, 10);
  for (int i = 0; i < 50; i++) CHECK(w.runs[i] == (i % 3 == 1));
  world_free(&w);
}

static void lost_workers_psets_run_elsewhere(void) {
  world_t w;
  world_init(&w, 500, (int[]){2, 2}, 2, 5);
  place(&w);
  dispatch_all(&w);
  /* The first node is lost with its two workers: their psets go back as
     they were (not suspects) and the other node runs everything. */
  w.nodes[0].state = PS_NODE_DOWN;
  for (int k = w.s.nslots - 1; k >= 0; k--) {
    ps_slot_t *slot = w.s.slots[k];
    if (slot->node != &w.nodes[0]) continue;
    CHECK(ps_sched_requeue_from(&w.s, slot, 0) == 0);
    for (size_t i = 0; i < slot->len; i++) w.runs[slot->fifo[slot->head + i].index]--;
    ps_sched_remove(&w.s, slot);
  }
  CHECK(w.s.nreq == 20 && !w.s.requeue[0].suspect);
  run_all(&w, 10);
  for (int i = 0; i < 500; i++) CHECK(w.done[i] == 1 && w.runs[i] == 1);
  CHECK(on_node(&w, 0) == 0);
  world_free(&w);
}

static void gpu_psets_run_on_workers_bound_to_as_many(void) {
  world_t w;
  world_init(&w, 600, (int[]){4}, 1, 0);
  world_gpus(&w, (int[]){4});
  w.gpu_rounds = 3; /* GPU psets take longer: more workers get bound meanwhile */
  /* Runs of 20 psets that want 1 GPU, 2 GPUs, none. */
  for (int i = 0; i < 600; i++) w.gpus[i] = (i / 20) % 3 == 0 ? 1 : (i / 20) % 3 == 1 ? 2 : 0;
  run_all(&w, 1000);
  for (int i = 0; i < 600; i++) CHECK(w.runs[i] == 1 && w.done[i] == 1);
  CHECK(w.mismatch == 0);
  CHECK(w.shared == 0);
  CHECK(w.refused == 0);
  CHECK(w.most_running_gpus == 4); /* four of 1 GPU side by side, never more */
  CHECK(w.retired > 0);            /* bindings changed as the psets did */
  world_free(&w);
}

static void gpu_psets_go_to_nodes_with_gpus(void) {
  world_t w;
  world_init(&w, 40, (int[]){3, 2}, 2, 0);
  world_gpus(&w, (int[]){0, 2});
  for (int i = 0; i < 40; i++) w.gpus[i] = 1;
  run_all(&w, 1000);
  for (int i = 0; i < 40; i++) CHECK(w.runs[i] == 1 && w.done[i] == 1);
  CHECK(w.mismatch == 0 && w.shared == 0);
  CHECK(w.most_running_gpus == 2); /* both GPUs of n2 busy at once, never more */
  for (int k = 0; k < w.s.nslots; k++)
    CHECK(w.s.slots[k]->ngpus == 0 || w.s.slots[k]->node == &w.nodes[1]);
  world_free(&w);
}

static void too_many_gpus_fails_before_it_runs(void) {
  world_t w;
  world_init(&w, 10, (int[]){2, 2}, 2, 0);
  world_gpus(&w, (int[]){2, 4});
  w.gpus[3] = 5;
  w.gpus[4] = 4;
  w.gpus[6] = 5;
  run_all(&w, 1000);
  CHECK(w.refused == 2);
  CHECK(w.runs[3] == 0 && w.done[3] == 1 && w.runs[6] == 0 && w.done[6] == 1);
  CHECK(w.runs[4] == 1 && w.done[4] == 1); /* n2 has 4 */
  CHECK(w.mismatch == 0 && w.shared == 0);
  world_free(&w);
  /* Without GPUs anywhere, a pset that wants one fails too. */
  world_init(&w, 3, (int[]){2}, 1, 0);
  w.gpus[1] = 1;
  run_all(&w, 1000);
  CHECK(w.refused == 1 && w.runs[1] == 0 && w.done[1] == 1 && w.done[0] == 1 && w.done[2] == 1);
  world_free(&w);
}

static void requeued_gpu_pset_keeps_its_binding(void) {
  world_t w;
  world_init(&w, 4, (int[]){2}, 1, 0);
  world_gpus(&w, (int[]){2});
  for (int i = 0; i < 4; i++) w.gpus[i] = 2;
  place(&w);
  dispatch_all(&w);
  ps_slot_t *slot = w.s.slots[0];
  CHECK(slot->ngpus == 2 && slot->len == 1);
  /* Its worker dies: the pset runs again, on a worker bound to two. */
  ps_sched_remove(&w.s, slot);
  CHECK(ps_sched_requeue_from(&w.s, slot, 0) == 0);
  slot->len = 0;
  run_all(&w, 1000);
  CHECK(w.runs[0] == 2 && w.done[0] == 1);
  CHECK(w.mismatch == 0 && w.shared == 0 && w.most_running_gpus == 1);
  world_free(&w);
}

static void bound_workers_make_way_for_psets_without_gpus(void) {
  world_t w;
  world_init(&w, 200, (int[]){2}, 1, 0);
  world_gpus(&w, (int[]){2});
  for (int i = 0; i < 10; i++) w.gpus[i] = 2;
  run_all(&w, 1000);
  for (int i = 0; i < 200; i++) CHECK(w.runs[i] == 1 && w.done[i] == 1);
  CHECK(w.mismatch == 0 && w.shared == 0);
  CHECK(w.retired >= 1);
  int unbound = 0;
  for (int k = 0; k < w.s.nslots; k++) unbound += w.s.slots[k]->ngpus == 0;
  CHECK(unbound == 2); /* the psets without GPUs had both slots */
  world_free(&w);
}

static void memory_psets_go_where_there_is_room(void) {
  world_t w;
  world_init(&w, 60, (int[]){2, 2}, 2, 0);
  world_memory(&w, (int64_t[]){1000, 4000});
  /* Every third pset holds 1500 MiB: only n2 has room, for two at once. */
  for (int i = 0; i < 60; i += 3) w.memory[i] = 1500;
  int on_n2 = 0;
  place(&w);
  dispatch_all(&w);
  for (int rounds = 0; w.finished < w.total && rounds < 10000; rounds++) {
    for (int k = 0; k < w.s.nslots; k++) {
      ps_slot_t *slot = w.s.slots[k];
      if (slot->len > 0 && w.memory[slot->fifo[slot->head].index] > 0) {
        CHECK(slot->alone && slot->len == 1 && slot->reserved_mb == 1500);
        on_n2 += slot->node == &w.nodes[1];
        CHECK(slot->node == &w.nodes[1]);
      }
      if (slot->len > 0) finish_head(&w, slot, 1000);
    }
    dispatch_all(&w);
    check_gpus(&w);
  }
  CHECK(on_n2 == 20 && w.overcommitted == 0);
  for (int i = 0; i < 60; i++) CHECK(w.done[i] == 1 && w.runs[i] == 1);
  CHECK(ps_sched_free_memory(&w.s, &w.nodes[1]) == 4000); /* all given back */
  world_free(&w);
}

static void memory_is_never_overcommitted(void) {
  world_t w;
  world_init(&w, 40, (int[]){4}, 1, 0);
  world_memory(&w, (int64_t[]){3000});
  /* 4 slots, but room for one 2000-MiB pset at a time beside 1000-MiB ones. */
  for (int i = 0; i < 40; i++) w.memory[i] = i % 2 ? 2000 : 1000;
  run_all(&w, 1000);
  CHECK(w.overcommitted == 0);
  for (int i = 0; i < 40; i++) CHECK(w.done[i] == 1);
  world_free(&w);
}

static void too_much_memory_fails_before_it_runs(void) {
  world_t w;
  world_init(&w, 10, (int[]){2, 2}, 2, 0);
  world_memory(&w, (int64_t[]){1000, 4000});
  w.memory[3] = 5000;
  w.memory[4] = 4000;
  run_all(&w, 1000);
  CHECK(w.refused == 1 && w.runs[3] == 0 && w.done[3] == 1);
  CHECK(w.runs[4] == 1 && w.done[4] == 1); /* n2 has 4000 */
  for (int i = 0; i < 10; i++) CHECK(w.done[i] == 1);
  world_free(&w);
  /* A node that does not say its memory has room for any, beside one that does too. */
  world_init(&w, 4, (int[]){2}, 1, 0);
  w.memory[1] = 1 << 30;
  run_all(&w, 1000);
  CHECK(w.refused == 0 && w.runs[1] == 1);
  world_free(&w);
  world_init(&w, 4, (int[]){2, 2}, 2, 0);
  world_memory(&w, (int64_t[]){0, 4000});
  w.memory[1] = 5000;
  run_all(&w, 1000);
  CHECK(w.refused == 0 && w.runs[1] == 1);
  world_free(&w);
}

static const tc_case_t cases[] = {
    {"psets that reserve memory go to a node with room for them",
     memory_psets_go_where_there_is_room},
    {"never holds more memory on a node than it has", memory_is_never_overcommitted},
    {"a pset that wants more memory than any node has fails before it runs",
     too_much_memory_fails_before_it_runs},
    {"GPU psets run on workers bound to as many GPUs, never sharing one",
     gpu_psets_run_on_workers_bound_to_as_many},
    {"GPU psets go to the nodes that have GPUs", gpu_psets_go_to_nodes_with_gpus},
    {"a pset that wants more GPUs than any node has fails before it runs",
     too_many_gpus_fails_before_it_runs},
    {"a GPU pset run again gets a worker bound to as many", requeued_gpu_pset_keeps_its_binding},
    {"workers bound to GPUs make way for psets without",
     bound_workers_make_way_for_psets_without_gpus},
    {"hands out every pset once, over nodes of 1, 2 and 4 slots, one worker per slot",
     every_pset_once},
    {"starts no more workers than there are psets", no_more_workers_than_psets},
    {"starts workers on a node only once it is up", nodes_not_up_get_no_workers},
    {"sizes batches by the measured run time, remembering long psets", batches_follow_run_time},
    {"keeps batches at group_size when it is set", group_size_fixes_batches},
    {"spreads the tail of a stage over every worker", tail_spreads_over_workers},
    {"gives a worker no more than max_tasks_per_child psets, then places its successor",
     max_tasks_per_child_caps_batches},
    {"runs a pset that needs 3 slots alone, once 3 slots of one node are free",
     wide_pset_waits_for_free_slots},
    {"fails a pset that needs more slots than any node has, without running it",
     too_wide_pset_fails_before_it_runs},
    {"blames the only or lone pset of a dead worker, and runs the others alone as suspects",
     deaths_blame_the_head_or_make_suspects},
    {"runs retries before anything else, and requeued psets before new ones",
     retries_go_first_and_others_last},
    {"skips psets an earlier run finished (resume)", resume_skips_finished_psets},
    {"runs the psets of a lost node's workers elsewhere, as they were",
     lost_workers_psets_run_elsewhere},
    {"gives no batch to a node whose allocation ends before it would",
     nodes_ending_soon_take_no_batch},
};
int main(int argc, char **argv) {
  return tc_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
