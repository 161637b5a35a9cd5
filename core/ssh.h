/*
 * ssh.h: the ssh backend: each host a node, reached through one `ssh -T -e
 * none HOST psurvey agent` process whose stdin and stdout are the link the
 * agent protocol runs over (relay.h). A host that falls silent for
 * `heartbeat` seconds, whose ssh exits or whose agent dies is lost: its
 * workers are buried with w->lost set, and it is connected again later,
 * with backoff, when reconnect is on. psurvey runs the system ssh client,
 * so the user's ssh configuration (keys, agent, ProxyJump) applies.
 */
#ifndef PS_SSH_H
#define PS_SSH_H

#include "pool.h"

typedef struct ps_ssh_spec_s {
  const char *target;  /* [user@]host, as ssh takes it */
  int port;            /* 0: ssh's own default */
  int slots;           /* 0: the CPUs the host's agent may use */
  const char *psurvey; /* the program on that host; NULL: "psurvey" */
  const char *gpus;    /* its GPU ids, comma-separated; NULL: none */
} ps_ssh_spec_t;

typedef struct ps_ssh_opts_s {
  const char *ssh;             /* the ssh program; NULL: "ssh" */
  const char *const *ssh_args; /* extra arguments to ssh, before psurvey's own */
  int nssh_args;
  double heartbeat; /* seconds of silence before a host counts as lost */
  int reconnect;    /* connect lost hosts again */
} ps_ssh_opts_t;

/* Adds the hosts to the pool as nodes and starts connecting to all of
   them. The strings are copied. */
int ps_ssh_setup(ps_pool_t *p, const ps_ssh_spec_t *specs, int n, const ps_ssh_opts_t *o,
                 ps_err_t *err);

#endif
