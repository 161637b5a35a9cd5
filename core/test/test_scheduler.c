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
#define MAX_WORKERS 64
#define MAX_PSETS 5000

typedef struct world_s {
  ps_node_t nodes[MAX_NODES];
  ps_node_t *list[MAX_NODES];
  int nnodes;
  ps_slot_t slots[MAX_WORKERS];
  int nworkers;
  ps_sched_t s;
  int ncores[MAX_PSETS]; /* per pset, 0: 1 */
  int runs[MAX_PSETS];   /* times handed out */
  int done[MAX_PSETS];   /* times finished */
  int64_t total, finished, batches, largest_batch;
} world_t;

static int ncores_of(void *ud, const ps_task_t *t) {
  world_t *w = ud;
  return w->ncores[t->index] > 0 ? w->ncores[t->index] : 1;
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
                       .ud = w};
  ps_sched_init(&w->s, &o);
}

static void world_free(world_t *w) {
  for (int k = 0; k < w->nworkers; k++) ps_slot_free(&w->slots[k]);
  ps_sched_free(&w->s);
}

/* Starts workers where the scheduler places them. */
static void place(world_t *w) {
  ps_node_t *n;
  while ((n = ps_sched_place(&w->s, w->list, w->nnodes, w->total - w->finished)) != NULL) {
    if (w->nworkers == MAX_WORKERS) abort();
    ps_slot_t *slot = &w->slots[w->nworkers++];
    ps_slot_init(slot, n, w);
    if (ps_sched_add(&w->s, slot) != 0) abort();
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
      if (got == PS_TAKE_TOO_WIDE) {
        w->done[t.index]++; /* fails here */
        w->finished++;
        continue;
      }
      w->runs[t.index]++;
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
      if (slot->len > 0) finish_head(w, slot, duration_us);
      dispatch(w, slot, PS_SCHED_DEPTH);
    }
    dispatch_all(w);
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

static const tc_case_t cases[] = {
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
};
int main(int argc, char **argv) {
  return tc_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
