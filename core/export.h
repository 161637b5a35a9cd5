/*
 * export.h: a stage as CSV or JSON Lines, every column (the user's and
 * psurvey's), rows in pset order. Numbers are exact: integers as integers,
 * floats in the fewest digits that read back to the same double.
 */
#ifndef PS_EXPORT_H
#define PS_EXPORT_H

#include <stdio.h>

#include "store.h"

enum { PS_EXPORT_CSV, PS_EXPORT_JSONL };

int ps_export(ps_store_t *s, const char *table, int format, FILE *out, ps_err_t *err);

#endif
