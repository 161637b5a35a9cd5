/*
 * space.h: psets drawn from a space instead of enumerated from a grid
 * (psurvey.sample), and the keyed bijection on [0, n) that Latin hypercubes
 * and shuffled views (view.h) share. Like a product, a sample is lazy: pset
 * i is computed from (space, n, method, seed, i) alone, with no table of n
 * anything. Not here: checking what the user wrote (psets.lua does).
 *
 * The math, in three steps for each pset i and key d:
 *
 * 1. Counter-based randomness. h(k, x) = mix(x + mix(k + G)), where mix is
 *    the splitmix64 finaliser (hash.h) and G = 0x9e3779b97f4a7c15. A key
 *    is the seed hashed with what the draw is for and with the key's name
 *    (ps_hash of its bytes), so a key's values depend on the seed, its
 *    name and i only: adding a key to a space leaves the others as they
 *    were (random, lhs). A 64-bit draw becomes a double in [0, 1) from its
 *    top 53 bits, exactly: (x >> 11) * 2^-53. Only integer arithmetic,
 *    so the same seed gives the same draws on any machine.
 *
 * 2. A unit coordinate u in [0, 1) of each key, by method:
 *    - random: u = draw(seed, "random", key, i).
 *    - lhs (Latin hypercube): every key splits [0, 1) into n strata of
 *      width 1/n and gives pset i the stratum p_key(i), p_key a keyed
 *      bijection on [0, n) (below), then a point in it: u = (p_key(i) + v)
 *      / n with v = draw(seed, "jitter", key, i), nudged by ulps until
 *      floor(u * n) is p_key(i) when computed in doubles. Each stratum of
 *      each key holds exactly one pset. n is at most 2^53.
 *    - sobol: the Sobol sequence in Gray-code order (as Joe and Kuo's
 *      generator and scipy's give it), 64-bit direction numbers from the
 *      primitive polynomials and initial numbers m_1..m_s of Joe and Kuo's
 *      new-joe-kuo-6.21201 file, rows d = 2 to PS_SOBOL_DIMS (dimension 1
 *      is van der Corput, m_k = 1): v_k = m_k * 2^(64-k) for k <= s, and
 *      v_k = v_{k-s} ^ (v_{k-s} >> s) ^ XOR_j a_j v_{k-j} beyond. Keys take
 *      dimensions in name order. Seed 0 gives the plain sequence; another
 *      seed XORs each dimension with a random 64-bit shift (a random
 *      digital shift), which keeps every (t, m, s)-net property: the first
 *      2^m points of dimensions 1 and 2 are a (0, m, 2)-net, each of the
 *      2^m strata of each dimension holds one of them.
 *
 * 3. The value from u: {lo, hi}: lo + u*(hi - lo); log: exp(log lo +
 *    u*(log hi - log lo)), through the C library's exp and log, so the last
 *    bit may differ between libraries; both held in [lo, hi). int: lo +
 *    floor(u * (hi - lo + 1)), at most hi. choices: choice floor(u * n)
 *    (0-based). An lhs stratum's point goes through the same map, so with
 *    n equal to the number of integers or choices each comes once.
 *
 * The bijection p on [0, n) (ps_perm_t): a balanced Feistel network of
 * PS_PERM_ROUNDS rounds over 2h bits, the fewest even number of bits that
 * counts to n (so the domain is below 4n), round function h(key_r, right)
 * masked to h bits, with cycle-walking: p(i) applies the network until the
 * value is below n. The network is a bijection on its domain, so walking
 * along i's cycle comes back below n, at a value no other i reaches; less
 * than 4 steps on average. O(1) memory for any n.
 */
#ifndef PS_SPACE_H
#define PS_SPACE_H

#include <stdint.h>

#include "buf.h"
#include "ps.h"
#include "source.h"

/* h(k, x) of the math above, and a draw's double in [0, 1). */
uint64_t ps_space_hash(uint64_t k, uint64_t x);
double ps_space_unit(uint64_t x);

#define PS_PERM_ROUNDS 6

/* A keyed bijection on [0, n), n <= 2^63. */
typedef struct ps_perm_s {
  uint64_t n;
  int half; /* bits in each half of the Feistel network */
  uint64_t keys[PS_PERM_ROUNDS];
} ps_perm_t;

void ps_perm_init(ps_perm_t *p, uint64_t n, uint64_t key);
/* p(i), for i below n. */
uint64_t ps_perm_at(const ps_perm_t *p, uint64_t i);

/* Dimensions of the Sobol sequence: more keys than that is an error. */
#define PS_SOBOL_DIMS 32

/* What a key of a space is. */
enum { PS_DIM_UNIFORM, PS_DIM_LOG, PS_DIM_INT, PS_DIM_CHOICES };
/* How a sample draws. */
enum { PS_SAMPLE_RANDOM, PS_SAMPLE_LHS, PS_SAMPLE_SOBOL };

/* One key of a space. */
typedef struct ps_dim_s {
  char *name;
  size_t namelen;
  int kind;
  double lo, hi;    /* uniform, log: lo < hi, finite; log: lo > 0 */
  int64_t ilo, ihi; /* int: lo <= hi */
  int64_t n;        /* choices: how many, at least 1 */
  ps_buf_t values;  /* choices: their encodings, back to back */
  size_t *offsets;  /* choices: n + 1 offsets into values */
} ps_dim_t;

/*
 * A sample of n psets of ndims keys (ps_dim_t, checked as above) drawn by
 * method with seed. The pset encoding lists keys sorted by name. Takes
 * ownership of the dims' names and buffers, only when it succeeds.
 * Returns NULL with err: a key given twice, more than PS_SOBOL_DIMS keys
 * for sobol, n over 2^53 for lhs, out of memory.
 */
ps_source_t *ps_sample_new(ps_dim_t *dims, int ndims, int64_t n, int method, uint64_t seed,
                           ps_err_t *err);

/* The unit coordinates of pset i of a sample (step 2), one per key in
   name order, into u. For tests. */
void ps_sample_units(ps_source_t *s, int64_t i, double *u);

#endif
