/*
 * sha256.h: SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for the
 * token by which an agent that connects back proves it belongs to this
 * run (auth.h). Small and portable, so that psurvey stays one program
 * without a crypto library; checked against the FIPS and RFC 4231 test
 * vectors (core/test/test_sha256.c).
 */
#ifndef PS_SHA256_H
#define PS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define PS_SHA256_LEN 32

typedef struct ps_sha256_s {
  uint32_t h[8];
  uint64_t bytes;
  unsigned char block[64];
  size_t used;
} ps_sha256_t;

void ps_sha256_init(ps_sha256_t *s);
void ps_sha256_add(ps_sha256_t *s, const void *p, size_t n);
void ps_sha256_end(ps_sha256_t *s, unsigned char out[PS_SHA256_LEN]);

/* HMAC-SHA-256 of the n parts (parts[k], lens[k]) under key. */
void ps_hmac_sha256(const void *key, size_t keylen, const void *const *parts, const size_t *lens,
                    int n, unsigned char out[PS_SHA256_LEN]);

/* Whether a and b (n bytes) are equal, in a time that does not depend on
   where they differ. */
int ps_same_bytes(const unsigned char *a, const unsigned char *b, size_t n);

#endif
