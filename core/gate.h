/*
 * gate.h: where agents that connect back come in (`psurvey agent
 * --connect`, dial.c), for backends whose agents someone else starts
 * (Slurm's srun). The driver listens on one address it chooses, checks
 * each connection's token (auth.h), and makes an agent that proves it a
 * node of the pool, its workers behind the agent (relay.h). A refused
 * connection is said in the log with its address and why. A node whose
 * connection ends, or that falls silent for `heartbeat` seconds, is lost
 * for good: an agent does not come back, though another one may, as a
 * new node.
 */
#ifndef PS_GATE_H
#define PS_GATE_H

#include "pool.h"

typedef struct ps_gate_s ps_gate_t;

typedef struct ps_gate_opts_s {
  const char *address;     /* the IP address to listen on (never a wildcard unless given one) */
  int port;                /* 0: one the kernel picks */
  const char *token;       /* the run's token (copied) */
  double heartbeat;        /* seconds of silence before an agent is lost; 0: 30 */
  const char *name, *noun; /* what its nodes are: "slurm", "Slurm node" (static strings) */
  /* When set, a node of a Slurm job whose agent was lost without being
     told to end (its connection ended, or it fell silent) is not lost at
     once: it is PS_NODE_LOSING, and judge, asked why, sets n->loss and
     ends it with ps_pool_node_lost (Slurm says whether the job was
     preempted a moment after the agent is gone). NULL: lost at once. */
  void (*judge)(void *data, ps_node_t *n);
  void *judge_data;
} ps_gate_opts_t;

/* Starts listening; the gate closes with the pool. */
int ps_gate_open(ps_pool_t *p, const ps_gate_opts_t *o, ps_gate_t **out, ps_err_t *err);
/* The address this host's name resolves to (where agents reach the
   driver unless told otherwise), as text. */
int ps_gate_own_address(char *out, size_t size, ps_err_t *err);
/* The address a host name (or an address) resolves to, as text: of its
   addresses, IPv4 before IPv6, loopback last. */
int ps_gate_address_of(const char *name, char *out, size_t size, ps_err_t *err);
/* Whether an address (as text) is a loopback one. */
int ps_gate_is_loopback(const char *address);
/* The port it listens on. */
int ps_gate_port(const ps_gate_t *g);
/* Agents in the middle of the token exchange or of their hello, up, and
   lost. */
void ps_gate_counts(const ps_gate_t *g, int *connecting, int *up, int *lost);

#endif
