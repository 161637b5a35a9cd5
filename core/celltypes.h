/*
 * celltypes.h: the _types column of a stage's table, which says, row by
 * row, what the SQLite value of a cell alone does not.
 *
 * A stored value keeps its own SQLite storage class wherever one fits, so
 * that the sqlite3 shell, pandas, R or DuckDB read it as it is:
 *   nil            NULL
 *   integer        INTEGER
 *   float          REAL (infinities too)
 *   UTF-8 string   TEXT
 *   other string   BLOB
 * Three kinds of value have no storage class of their own. They are stored
 * the way other programs expect, and noted in _types:
 *   b  a boolean, stored INTEGER 0 or 1
 *   j  a table, stored as TEXT JSON (json.h: exact for what JSON holds)
 *   v  a table JSON cannot hold exactly (binary strings, NaN, mixed keys),
 *      stored as a BLOB of the value encoding (value.h)
 *   n  NaN, stored NULL (SQLite has no NaN: aggregates skip it)
 * A column is made for the role its key had in the first row that had it,
 * a pset key or a result key; a cell whose key has the other role in its
 * row is noted too:
 *   p  a pset key in a column made for a result key
 *   r  a result key in a column made for a pset key
 *
 * The text is a list of entries separated by ',', each the cell's column
 * position (_psurvey_columns.position, decimal) followed by one or two
 * letters: "2b,5jp". A row with nothing to note has NULL, which is most
 * rows. The reader trusts nothing: a malformed text is an error, never a
 * wrong value.
 */
#ifndef PS_CELLTYPES_H
#define PS_CELLTYPES_H

#include <stddef.h>

#include "buf.h"

/* What a note says of a cell's value (0: nothing). */
enum { PS_CELL_BOOL = 'b', PS_CELL_JSON = 'j', PS_CELL_CODEC = 'v', PS_CELL_NAN = 'n' };
/* ... and of its key's role (0: the column's own). */
enum { PS_CELL_PSET = 'p', PS_CELL_RESULT = 'r' };

typedef struct ps_cellnote_s {
  int col;  /* position of the column */
  int type; /* PS_CELL_BOOL .. PS_CELL_NAN, or 0 */
  int role; /* PS_CELL_PSET, PS_CELL_RESULT, or 0 */
} ps_cellnote_t;

/* Appends the note of one cell to b (nothing when type and role are 0). */
void ps_cellnote_put(ps_buf_t *b, int col, int type, int role);

/* Reads the next note of text[*pos..n) into note, for a table of ncols
   columns. 1 with a note, 0 at the end, PS_EPROTO when malformed. */
int ps_cellnote_next(const char *text, size_t n, size_t *pos, int ncols, ps_cellnote_t *note);

#endif
