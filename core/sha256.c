/* sha256.c: SHA-256 and HMAC-SHA-256 (sha256.h). */
#include "sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void compress(ps_sha256_t *s, const unsigned char *p) {
  uint32_t w[64];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 |
           (uint32_t)p[4 * t + 3];
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
  uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int t = 0; t < 64; t++) {
    uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  s->h[0] += a;
  s->h[1] += b;
  s->h[2] += c;
  s->h[3] += d;
  s->h[4] += e;
  s->h[5] += f;
  s->h[6] += g;
  s->h[7] += h;
}

void ps_sha256_init(ps_sha256_t *s) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, h0, sizeof h0);
  s->bytes = 0;
  s->used = 0;
}

void ps_sha256_add(ps_sha256_t *s, const void *data, size_t n) {
  const unsigned char *p = data;
  s->bytes += n;
  while (n > 0) {
    size_t take = 64 - s->used < n ? 64 - s->used : n;
    memcpy(s->block + s->used, p, take);
    s->used += take;
    p += take;
    n -= take;
    if (s->used == 64) {
      compress(s, s->block);
      s->used = 0;
    }
  }
}

void ps_sha256_end(ps_sha256_t *s, unsigned char out[PS_SHA256_LEN]) {
  uint64_t bits = s->bytes * 8;
  unsigned char pad = 0x80;
  ps_sha256_add(s, &pad, 1);
  pad = 0;
  while (s->used != 56) ps_sha256_add(s, &pad, 1);
  unsigned char len[8];
  for (int k = 0; k < 8; k++) len[k] = (unsigned char)(bits >> (56 - 8 * k));
  ps_sha256_add(s, len, 8);
  for (int k = 0; k < 8; k++)
    for (int j = 0; j < 4; j++) out[4 * k + j] = (unsigned char)(s->h[k] >> (24 - 8 * j));
}

void ps_hmac_sha256(const void *key, size_t keylen, const void *const *parts, const size_t *lens,
                    int n, unsigned char out[PS_SHA256_LEN]) {
  unsigned char k0[64] = {0}, pad[64], inner[PS_SHA256_LEN];
  ps_sha256_t s;
  if (keylen > 64) {
    ps_sha256_init(&s);
    ps_sha256_add(&s, key, keylen);
    ps_sha256_end(&s, k0);
  } else if (keylen > 0) {
    memcpy(k0, key, keylen);
  }
  for (int k = 0; k < 64; k++) pad[k] = k0[k] ^ 0x36;
  ps_sha256_init(&s);
  ps_sha256_add(&s, pad, 64);
  for (int k = 0; k < n; k++) ps_sha256_add(&s, parts[k], lens[k]);
  ps_sha256_end(&s, inner);
  for (int k = 0; k < 64; k++) pad[k] = k0[k] ^ 0x5c;
  ps_sha256_init(&s);
  ps_sha256_add(&s, pad, 64);
  ps_sha256_add(&s, inner, sizeof inner);
  ps_sha256_end(&s, out);
}

int ps_same_bytes(const unsigned char *a, const unsigned char *b, size_t n) {
  unsigned char d = 0;
  for (size_t k = 0; k < n; k++) d |= (unsigned char)(a[k] ^ b[k]);
  return d == 0;
}
