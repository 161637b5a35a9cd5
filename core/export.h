/*
 * export.h: a stage as CSV or JSON Lines, every column (the user's and
 * psurvey's), rows in pset order. Every value is kept: integers as
 * integers, floats in the fewest digits that read back to the same double,
 * NaN and the infinities as NaN, Infinity and -Infinity, a string that is
 * not UTF-8 as {"$base64": "..."}, tables as JSON by the same conventions
 * (json.h), in JSON Lines and inside CSV cells alike.
 */
#ifndef PS_EXPORT_H
#define PS_EXPORT_H

#include <stdio.h>

#include "store.h"

enum { PS_EXPORT_CSV, PS_EXPORT_JSONL };

/* Writes the table to out and flushes it. Every write is checked: a failed
   one is an error naming why ("cannot write the export: No space left on
   device", a negative errno), as is a table that cannot be read. q (may
   be NULL) filters, orders and chooses the rows and columns. */
int ps_export(ps_store_t *s, const char *table, const ps_query_t *q, int format, FILE *out,
              ps_err_t *err);

#endif
