/*
 * test_sha256.c: SHA-256 against FIPS 180-4's examples and HMAC-SHA-256
 * against RFC 4231's test cases (sha256.h). Its cases run as specs from
 * spec/core/sha256_spec.lua (cases.h).
 */
#include <stdio.h>
#include <string.h>

#include "cases.h"
#include "sha256.h"

static void hex(const unsigned char *p, size_t n, char *out) {
  for (size_t k = 0; k < n; k++) sprintf(out + 2 * k, "%02x", p[k]);
}

static int sha_is(const void *msg, size_t n, const char *want) {
  ps_sha256_t s;
  unsigned char d[PS_SHA256_LEN];
  char text[2 * PS_SHA256_LEN + 1];
  ps_sha256_init(&s);
  ps_sha256_add(&s, msg, n);
  ps_sha256_end(&s, d);
  hex(d, sizeof d, text);
  return strcmp(text, want) == 0;
}

static int hmac_is(const void *key, size_t keylen, const void *msg, size_t n, const char *want) {
  unsigned char d[PS_SHA256_LEN];
  char text[2 * PS_SHA256_LEN + 1];
  const void *parts[] = {msg};
  size_t lens[] = {n};
  ps_hmac_sha256(key, keylen, parts, lens, 1, d);
  hex(d, sizeof d, text);
  return strncmp(text, want, strlen(want)) == 0;
}

static void hashes_the_fips_examples(void) {
  CHECK(sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  CHECK(sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(
      sha_is(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

static void hashes_a_million_a_in_pieces(void) {
  ps_sha256_t s;
  unsigned char d[PS_SHA256_LEN];
  char text[2 * PS_SHA256_LEN + 1], a[1000];
  memset(a, 'a', sizeof a);
  ps_sha256_init(&s);
  for (int k = 0; k < 2000; k++) ps_sha256_add(&s, a, k % 2 ? 300 : 700);
  ps_sha256_end(&s, d);
  hex(d, sizeof d, text);
  CHECK(strcmp(text, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
}

static void signs_the_rfc_4231_cases(void) {
  unsigned char key[131];
  memset(key, 0x0b, 20);
  CHECK(hmac_is(key, 20, "Hi There", 8,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
  CHECK(hmac_is("Jefe", 4, "what do ya want for nothing?", 28,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
  unsigned char data[50];
  memset(key, 0xaa, 20);
  memset(data, 0xdd, sizeof data);
  CHECK(hmac_is(key, 20, data, sizeof data,
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"));
  /* A key longer than a block is hashed first. */
  memset(key, 0xaa, sizeof key);
  const char *big = "Test Using Larger Than Block-Size Key - Hash Key First";
  CHECK(hmac_is(key, sizeof key, big, strlen(big),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
}

static void signs_parts_as_their_concatenation(void) {
  unsigned char one[PS_SHA256_LEN], three[PS_SHA256_LEN];
  const void *whole[] = {"what do ya want for nothing?"};
  size_t wlen[] = {28};
  const void *parts[] = {"what do", " ya want", " for nothing?"};
  size_t plen[] = {7, 8, 13};
  ps_hmac_sha256("Jefe", 4, whole, wlen, 1, one);
  ps_hmac_sha256("Jefe", 4, parts, plen, 3, three);
  CHECK(ps_same_bytes(one, three, sizeof one));
  three[31] ^= 1;
  CHECK(!ps_same_bytes(one, three, sizeof one));
}

static const tc_case_t cases[] = {
    {"hashes FIPS 180-4's examples", hashes_the_fips_examples},
    {"hashes a million 'a' given in pieces", hashes_a_million_a_in_pieces},
    {"signs RFC 4231's test cases", signs_the_rfc_4231_cases},
    {"signs parts as their concatenation", signs_parts_as_their_concatenation},
};

int main(int argc, char **argv) {
  return tc_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
