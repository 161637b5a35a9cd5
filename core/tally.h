/*
 * tally.h: a stage's failures grouped by what went wrong, for the one line
 * that ends a map with failures: "11 failed: 6 x timeout, 3 x "bad
 * parameter r", 2 x exit 3". A failure's group is its kind, and for an
 * error its message (first line, without the "file:line: " where it was
 * raised, cut short), for an exit its status, for a signal its name. The
 * first PS_TALLY_GROUPS groups are kept; later ones count as "other".
 */
#ifndef PS_TALLY_H
#define PS_TALLY_H

#include <stddef.h>
#include <stdint.h>

#define PS_TALLY_GROUPS 8
#define PS_TALLY_KEY 72

typedef struct ps_tally_s {
  struct {
    char key[PS_TALLY_KEY];
    int64_t n;
  } group[PS_TALLY_GROUPS];
  int ngroups;
  int64_t other, total;
} ps_tally_t;

void ps_tally_init(ps_tally_t *t);
/* Counts one failure of kind (an outcome's name) with its message. */
void ps_tally_add(ps_tally_t *t, const char *kind, const char *msg, size_t len);
/* "11 failed: 6 x timeout, 3 x "bad parameter r", 2 x exit 3", largest
   groups first; "" when nothing failed. */
void ps_tally_text(const ps_tally_t *t, char *out, size_t n);

#endif
