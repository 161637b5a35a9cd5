/* dial.c: an agent connecting back to its driver (dial.h). */
#include "dial.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

/* Splits "host:port" or "[v6]:port". 0, or -1. */
static int split(const char *hostport, char *host, size_t hostsz, char *port, size_t portsz) {
  const char *colon = strrchr(hostport, ':');
  if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= portsz) return -1;
  const char *h = hostport;
  size_t n = (size_t)(colon - hostport);
  if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
    h++;
    n -= 2;
  }
  if (n == 0 || n >= hostsz) return -1;
  memcpy(host, h, n);
  host[n] = '\0';
  snprintf(port, portsz, "%s", colon + 1);
  for (const char *c = port; *c; c++)
    if (*c < '0' || *c > '9') return -1;
  return 0;
}

static int exactly(int fd, unsigned char *p, size_t n, int reading) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = reading ? read(fd, p + done, n - done) : write(fd, p + done, n - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    done += (size_t)k;
  }
  return 0;
}

static int connect_once(const struct addrinfo *ai) {
  for (; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    close(fd);
  }
  return -1;
}

int ps_dial_driver(const char *hostport, const char *token, int patience_ms, int *out,
                   ps_err_t *err) {
  char host[256], port[16];
  if (split(hostport, host, sizeof host, port, sizeof port) != 0)
    return ps_err_set(err, PS_EVALUE, "--connect %s: give HOST:PORT", hostport);
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0) return ps_err_set(err, PS_EVALUE, "--connect %s: %s", hostport, gai_strerror(gai));
  int fd = -1, why = 0;
  for (int waited = 0;; waited += 200) {
    fd = connect_once(ai);
    if (fd >= 0 || waited >= patience_ms) break;
    why = errno;
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
  }
  freeaddrinfo(ai);
  if (fd < 0)
    return ps_err_set(err, PS_EWORKER, "cannot connect to the driver at %s: %s", hostport,
                      strerror(why ? why : errno));
  unsigned char hello[PS_AUTH_HELLO_LEN], mine[PS_AUTH_NONCE], theirs[PS_AUTH_NONCE];
  unsigned char challenge[PS_AUTH_CHALLENGE_LEN], answer[PS_AUTH_ANSWER_LEN];
  uint32_t protocol = 0;
  int rc;
  if (ps_auth_hello(hello, mine) != 0 || exactly(fd, hello, sizeof hello, 0) != 0 ||
      exactly(fd, challenge, sizeof challenge, 1) != 0) {
    rc = ps_err_set(err, PS_EWORKER,
                    "the driver at %s hung up before its challenge (a wrong token, or not a "
                    "psurvey driver)",
                    hostport);
  } else if ((rc = ps_auth_check_challenge(token, mine, challenge, &protocol, theirs)) != 0) {
    /* Answered all the same, so that the driver's log names a wrong token
       rather than a hang-up. */
    if (rc == -3) {
      ps_auth_answer(token, theirs, mine, answer);
      if (exactly(fd, answer, sizeof answer, 0) != 0) rc = -3;
    }
    rc = rc == -1   ? ps_err_set(err, PS_EPROTO, "%s is not a psurvey driver", hostport)
         : rc == -2 ? ps_err_set(err, PS_EPROTO,
                                 "the driver at %s speaks protocol %u, this agent %d: install the "
                                 "same psurvey on both",
                                 hostport, (unsigned)protocol, PS_PROTOCOL)
                    : ps_err_set(err, PS_EPROTO,
                                 "the driver at %s does not hold this agent's token: refusing it",
                                 hostport);
  } else {
    ps_auth_answer(token, theirs, mine, answer);
    rc = exactly(fd, answer, sizeof answer, 0) == 0
             ? 0
             : ps_err_set(err, PS_EWORKER, "the driver at %s hung up", hostport);
  }
  if (rc != 0) {
    close(fd);
    return rc;
  }
  *out = fd;
  return 0;
}
