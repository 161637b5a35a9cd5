/*
 * brief.h: a pset in one short line for people reading a terminal:
 * "r=3.6, x0=0.5, name=abc", keys in the encoding's order (sorted by
 * name for a product), psurvey's own _psurvey table left out. Numbers as
 * in JSON exports (the shortest text that reads back), strings as they are
 * when short and printable, else quoted and cut; a table is {...}. The
 * line is cut to a width, ending in "...". It never fails: a pset that
 * cannot be read shows as "?".
 */
#ifndef PS_BRIEF_H
#define PS_BRIEF_H

#include <stddef.h>

#include "buf.h"

/* Appends the brief form of the pset encoded in (pset, n) to out, at most
   width bytes (and whole UTF-8 characters). */
void ps_brief_pset(const char *pset, size_t n, size_t width, ps_buf_t *out);

#endif
