/* hash.c: the stored 64-bit hash (hash.h). Eight bytes at a time, each
   word mixed by multiplication and rotation, then a final avalanche: fast
   on short keys (psets are tens of bytes) and well spread. */
#include "hash.h"

#include <string.h>

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t load64(const unsigned char *p) {
  /* Little-endian on every machine, so stored hashes travel. */
  uint64_t v = 0;
  for (int k = 7; k >= 0; k--) v = (v << 8) | p[k];
  return v;
}

uint64_t ps_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

uint64_t ps_hash(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = seed ^ ((uint64_t)len * P1);
  while (len >= 8) {
    h ^= rotl(load64(p) * P2, 31) * P1;
    h = rotl(h, 27) * P1 + 0x52DCE729;
    p += 8;
    len -= 8;
  }
  if (len > 0) {
    unsigned char tail[8] = {0};
    memcpy(tail, p, len);
    h ^= rotl(load64(tail) * P2, 31) * P1;
    h = rotl(h, 27) * P1 + 0x52DCE729;
  }
  return ps_mix64(h);
}

int64_t ps_pset_seed(uint64_t survey_seed, uint64_t pset_hash) {
  return (int64_t)(ps_mix64(survey_seed * P1 ^ pset_hash) >> 1);
}
