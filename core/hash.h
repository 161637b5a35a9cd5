/*
 * hash.h: a 64-bit hash of byte strings, for identities that must not
 * depend on order or position: a pset's canonical encoding (resume matches
 * psets by it) and the worker's code (resume refuses to mix two workers).
 * Not cryptographic; stable across runs, machines and versions, because it
 * is stored in databases.
 */
#ifndef PS_HASH_H
#define PS_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t ps_hash(const void *data, size_t len, uint64_t seed);

/* A well-mixed 64-bit value from x (the splitmix64 finaliser). */
uint64_t ps_mix64(uint64_t x);

/* The seed a pset gets: from the survey's seed and the pset's hash, so it
   does not depend on which worker runs it or when. Non-negative. */
int64_t ps_pset_seed(uint64_t survey_seed, uint64_t pset_hash);

#endif
