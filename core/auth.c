/* auth.c: the token exchange of an agent that connects back (auth.h). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ps.h"

int ps_auth_random(unsigned char *p, size_t n) {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t got = 0;
  while (got < n) {
    ssize_t k = read(fd, p + got, n - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(fd);
  return got == n ? 0 : -1;
}

int ps_auth_new_token(char out[PS_AUTH_TOKEN_HEX + 1]) {
  unsigned char raw[PS_AUTH_TOKEN_HEX / 2];
  if (ps_auth_random(raw, sizeof raw) != 0) return -1;
  for (size_t k = 0; k < sizeof raw; k++) snprintf(out + 2 * k, 3, "%02x", raw[k]);
  return 0;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (24 - 8 * k));
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* HMAC(token, who | protocol | first | second). */
static void mac(const char *token, const char *who, const unsigned char first[PS_AUTH_NONCE],
                const unsigned char second[PS_AUTH_NONCE], unsigned char out[PS_SHA256_LEN]) {
  unsigned char protocol[4];
  put_u32(protocol, PS_PROTOCOL);
  const void *parts[] = {who, protocol, first, second};
  size_t lens[] = {strlen(who), 4, PS_AUTH_NONCE, PS_AUTH_NONCE};
  ps_hmac_sha256(token, strlen(token), parts, lens, 4, out);
}

int ps_auth_hello(unsigned char out[PS_AUTH_HELLO_LEN], unsigned char nonce[PS_AUTH_NONCE]) {
  if (ps_auth_random(nonce, PS_AUTH_NONCE) != 0) return -1;
  memcpy(out, "PSVAGENT", 8);
  put_u32(out + 8, PS_PROTOCOL);
  memcpy(out + 12, nonce, PS_AUTH_NONCE);
  return 0;
}

int ps_auth_read_hello(const unsigned char in[PS_AUTH_HELLO_LEN], uint32_t *protocol,
                       unsigned char nonce[PS_AUTH_NONCE]) {
  if (memcmp(in, "PSVAGENT", 8) != 0) return -1;
  *protocol = get_u32(in + 8);
  memcpy(nonce, in + 12, PS_AUTH_NONCE);
  return 0;
}

int ps_auth_challenge(const char *token, const unsigned char agent_nonce[PS_AUTH_NONCE],
                      unsigned char out[PS_AUTH_CHALLENGE_LEN],
                      unsigned char driver_nonce[PS_AUTH_NONCE]) {
  if (ps_auth_random(driver_nonce, PS_AUTH_NONCE) != 0) return -1;
  memcpy(out, "PSVDRIVR", 8);
  put_u32(out + 8, PS_PROTOCOL);
  memcpy(out + 12, driver_nonce, PS_AUTH_NONCE);
  mac(token, "driver", agent_nonce, driver_nonce, out + 12 + PS_AUTH_NONCE);
  return 0;
}

int ps_auth_check_challenge(const char *token, const unsigned char agent_nonce[PS_AUTH_NONCE],
                            const unsigned char in[PS_AUTH_CHALLENGE_LEN], uint32_t *protocol,
                            unsigned char driver_nonce[PS_AUTH_NONCE]) {
  if (memcmp(in, "PSVDRIVR", 8) != 0) return -1;
  *protocol = get_u32(in + 8);
  if (*protocol != PS_PROTOCOL) return -2;
  memcpy(driver_nonce, in + 12, PS_AUTH_NONCE);
  unsigned char want[PS_SHA256_LEN];
  mac(token, "driver", agent_nonce, driver_nonce, want);
  return ps_same_bytes(want, in + 12 + PS_AUTH_NONCE, PS_SHA256_LEN) ? 0 : -3;
}

void ps_auth_answer(const char *token, const unsigned char driver_nonce[PS_AUTH_NONCE],
                    const unsigned char agent_nonce[PS_AUTH_NONCE],
                    unsigned char out[PS_AUTH_ANSWER_LEN]) {
  mac(token, "agent", driver_nonce, agent_nonce, out);
}

int ps_auth_check_answer(const char *token, const unsigned char driver_nonce[PS_AUTH_NONCE],
                         const unsigned char agent_nonce[PS_AUTH_NONCE],
                         const unsigned char in[PS_AUTH_ANSWER_LEN]) {
  unsigned char want[PS_SHA256_LEN];
  mac(token, "agent", driver_nonce, agent_nonce, want);
  return ps_same_bytes(want, in, PS_SHA256_LEN);
}
