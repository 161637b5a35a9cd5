/*
 * memstage.h: a stage kept in memory, for `db = false`: stage.h's
 * operations without SQLite's cost per row (an insert is a few appends
 * here), the other kind of stage beside sqlstage.c; its failed attempts,
 * few, go where the store says. A row is its record in
 * one growing buffer, reached by pset index; values stay in the wire
 * encoding, so every Lua type comes back exactly. The rows outlive their
 * writer: the store keeps them, and reads them back here, until it
 * closes. Only the store's files use this one.
 */
#ifndef PS_MEMSTAGE_H
#define PS_MEMSTAGE_H

#include "stage.h"
#include "value.h"

typedef struct ps_memstage_s ps_memstage_t;
typedef struct ps_memcursor_s ps_memcursor_t;

ps_memstage_t *ps_memstage_new(const char *name, int64_t total);
void ps_memstage_free(ps_memstage_t *m);
const char *ps_memstage_name(const ps_memstage_t *m);
int64_t ps_memstage_count(const ps_memstage_t *m, int view);
/* Where the writer of a stage in memory sends each failed attempt: to the
   store that owns the stage, which keeps attempts with its own small
   tables. 0, or a negative code with err filled. */
typedef int (*ps_attempt_sink_t)(ps_stage_t *st, const ps_attempt_t *a, ps_err_t *err);
/* And where it sends what psets wrote (ps_output_t), likewise. */
typedef int (*ps_output_sink_t)(ps_stage_t *st, const ps_output_t *o, ps_err_t *err);
/* A writer of m's rows: stage.h's operations. Freeing it keeps the rows
   (m's owner frees them). NULL when out of memory. */
ps_stage_t *ps_memstage_writer(ps_memstage_t *m, ps_attempt_sink_t attempts,
                               ps_output_sink_t outputs);

/* The same reading interface as a SQLite cursor (store.h); views are
   PS_VIEW_* and roles PS_ROLE_* (stage.h). */
int ps_memcursor_open(ps_memstage_t *m, int view, int64_t only, ps_memcursor_t **out,
                      ps_err_t *err);
int ps_memcursor_ncols(const ps_memcursor_t *c);
const char *ps_memcursor_colname(const ps_memcursor_t *c, int i);
int ps_memcursor_step(ps_memcursor_t *c);
int ps_memcursor_cell(ps_memcursor_t *c, int i, ps_item_t *it);
int ps_memcursor_role(const ps_memcursor_t *c, int i);
void ps_memcursor_close(ps_memcursor_t *c);

#endif
