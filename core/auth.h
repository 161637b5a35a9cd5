/*
 * auth.h: how an agent that connects back (`psurvey agent --connect`) and
 * the driver prove to each other that they hold the run's token, before a
 * frame is exchanged. The token is a secret the driver makes per run and
 * hands to the agents it starts (in the environment or a 0600 file, never
 * on a command line); it never crosses the connection. Each side sends a
 * fresh random nonce and answers the other's with an HMAC-SHA-256 under
 * the token (sha256.h), over the protocol version too, so the exchange is
 * also the version check:
 *
 *   agent  -> driver  HELLO:     "PSVAGENT" | protocol (u32, big-endian) | agent nonce (32)
 *   driver -> agent   CHALLENGE: "PSVDRIVR" | protocol (u32) | driver nonce (32)
 *                                | HMAC(token, "driver" | protocol | agent nonce | driver nonce)
 *   agent  -> driver  ANSWER:    HMAC(token, "agent" | protocol | driver nonce | agent nonce)
 *
 * then the agent protocol as over ssh (frame.h: PS_AGENT_MAGIC, the
 * agent's hello...). The agent checks the driver's HMAC before it runs
 * anything; the driver checks the agent's before it sends anything else.
 * A side that sees another protocol version says so and hangs up.
 */
#ifndef PS_AUTH_H
#define PS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define PS_AUTH_NONCE 32
#define PS_AUTH_HELLO_LEN (8 + 4 + PS_AUTH_NONCE)
#define PS_AUTH_CHALLENGE_LEN (8 + 4 + PS_AUTH_NONCE + PS_SHA256_LEN)
#define PS_AUTH_ANSWER_LEN PS_SHA256_LEN
/* The token's length, in hex digits; tokens given to an agent are checked
   for at least PS_AUTH_TOKEN_MIN of them. */
#define PS_AUTH_TOKEN_HEX 64
#define PS_AUTH_TOKEN_MIN 32

/* Fills n bytes with randomness from the kernel. 0, or -1. */
int ps_auth_random(unsigned char *p, size_t n);
/* A new token: PS_AUTH_TOKEN_HEX hex digits and a NUL. 0, or -1. */
int ps_auth_new_token(char out[PS_AUTH_TOKEN_HEX + 1]);

/* The agent's hello, with its nonce (filled here). */
int ps_auth_hello(unsigned char out[PS_AUTH_HELLO_LEN], unsigned char nonce[PS_AUTH_NONCE]);
/* Reads a hello: its protocol and nonce. 0, or -1 when it is not one. */
int ps_auth_read_hello(const unsigned char in[PS_AUTH_HELLO_LEN], uint32_t *protocol,
                       unsigned char nonce[PS_AUTH_NONCE]);
/* The driver's challenge to an agent whose nonce is agent_nonce; its own
   nonce is filled here. */
int ps_auth_challenge(const char *token, const unsigned char agent_nonce[PS_AUTH_NONCE],
                      unsigned char out[PS_AUTH_CHALLENGE_LEN],
                      unsigned char driver_nonce[PS_AUTH_NONCE]);
/* Checks a challenge (agent side): 0 and the driver's nonce; -1 not a
   challenge; -2 another protocol (*protocol says which); -3 a driver that
   does not hold the token. */
int ps_auth_check_challenge(const char *token, const unsigned char agent_nonce[PS_AUTH_NONCE],
                            const unsigned char in[PS_AUTH_CHALLENGE_LEN], uint32_t *protocol,
                            unsigned char driver_nonce[PS_AUTH_NONCE]);
/* The agent's answer, and the driver's check of it (1 right, 0 wrong). */
void ps_auth_answer(const char *token, const unsigned char driver_nonce[PS_AUTH_NONCE],
                    const unsigned char agent_nonce[PS_AUTH_NONCE],
                    unsigned char out[PS_AUTH_ANSWER_LEN]);
int ps_auth_check_answer(const char *token, const unsigned char driver_nonce[PS_AUTH_NONCE],
                         const unsigned char agent_nonce[PS_AUTH_NONCE],
                         const unsigned char in[PS_AUTH_ANSWER_LEN]);

#endif
