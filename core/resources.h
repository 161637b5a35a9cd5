/*
 * resources.h: what one pset may use and how often it may be tried: the
 * per-pset options `timeout`, `memory`, `ncores`, `gpus`, `retries` and `name`,
 * given for a whole map() or for one pset (its `_psurvey` table). A field
 * left unset takes the map's value, then the default.
 */
#ifndef PS_RESOURCES_H
#define PS_RESOURCES_H

#include <stdint.h>

typedef struct ps_limits_s {
  double timeout; /* seconds of wall time; 0: none; < 0: unset */
  double memory;  /* MiB of Lua heap above the pset's start; 0: none; < 0: unset */
  int ncores;     /* slots of one node the pset occupies; 0: unset */
  int retries;    /* further attempts after a crash or a timeout; < 0: unset */
  int gpus;       /* GPUs of one node the pset holds; < 0: unset */
  char *name;     /* a label stored with the row; NULL: unset; owned */
} ps_limits_t;

/* Every field unset. */
void ps_limits_unset(ps_limits_t *l);
/* Sets in l every field that is set in over (name is copied). */
int ps_limits_merge(ps_limits_t *l, const ps_limits_t *over);
void ps_limits_free(ps_limits_t *l);

#endif
