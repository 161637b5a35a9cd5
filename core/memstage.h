/*
 * memstage.h: the rows of a stage kept in memory, for `db = false`: what
 * store.c does with SQLite, without SQLite's cost per row (an insert is a
 * few appends here). A row is its record in one growing buffer, reached by
 * pset index; values stay in the wire encoding, so every Lua type comes
 * back exactly. Only store.c uses this file.
 */
#ifndef PS_MEMSTAGE_H
#define PS_MEMSTAGE_H

#include "store.h"

typedef struct ps_memstage_s ps_memstage_t;
typedef struct ps_memcursor_s ps_memcursor_t;

ps_memstage_t *ps_memstage_new(const char *name, int64_t total);
void ps_memstage_free(ps_memstage_t *m);
const char *ps_memstage_name(const ps_memstage_t *m);
int ps_memstage_add(ps_memstage_t *m, const ps_row_t *row, ps_err_t *err);
int64_t ps_memstage_count(const ps_memstage_t *m, int view);

/* The same reading interface as a SQLite cursor (store.h). */
int ps_memcursor_open(ps_memstage_t *m, int view, int64_t only, ps_memcursor_t **out, ps_err_t *err);
int ps_memcursor_ncols(const ps_memcursor_t *c);
const char *ps_memcursor_colname(const ps_memcursor_t *c, int i);
int ps_memcursor_step(ps_memcursor_t *c);
int ps_memcursor_cell(ps_memcursor_t *c, int i, ps_item_t *it);
int ps_memcursor_role(const ps_memcursor_t *c, int i);
void ps_memcursor_close(ps_memcursor_t *c);

#endif
