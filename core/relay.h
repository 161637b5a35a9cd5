/*
 * relay.h: the driver's end of the agent protocol, for one node whose
 * workers run behind an agent (`psurvey agent`, agent.c) that relays their
 * frames: the agent's hello brings the node up (after the protocol check),
 * SPAWN, TO and KILL go to it, FROM and GONE come back for its workers,
 * PING and PONG keep time (frame.h has the layouts, msg.h the readers and
 * writers). The link is any link: ssh's pipes (ssh.c), a socket later.
 * Not here: how the connection is made, kept or lost.
 */
#ifndef PS_RELAY_H
#define PS_RELAY_H

#include "link.h"
#include "pool.h"

typedef struct ps_relay_s {
  ps_node_t *node;
  ps_link_t *link;    /* the current connection's, or NULL */
  int given_slots;    /* 0: the CPUs the agent may use there */
  int64_t last_heard; /* monotonic us of the last frame */
  int64_t last_ping;  /* monotonic us of the last PING sent */
} ps_relay_t;

/* A frame from the agent. 0, or PS_EPROTO with why filled: the caller
   ends the connection (a malformed frame, another protocol version). */
int ps_relay_frame(ps_relay_t *r, int kind, const char *p, size_t n, char *why, size_t whysz);
/* SPAWN for w; TO with its frames (takes b); KILL; PING; BYE. */
int ps_relay_spawn(ps_relay_t *r, ps_worker_t *w);
int ps_relay_send(ps_relay_t *r, ps_worker_t *w, ps_buf_t *b);
void ps_relay_kill(ps_relay_t *r, ps_worker_t *w, int sig);
void ps_relay_ping(ps_relay_t *r);
/* Looks after the connection at `now` (monotonic us), from its owner's
   timer: 1, with why filled, when nothing came for heartbeat_us (the owner
   ends the connection); else 0, after a PING if one is due (four per
   heartbeat, at least one a second) and the node is up. */
int ps_relay_watch(ps_relay_t *r, int64_t now, int64_t heartbeat_us, char *why, size_t whysz);
void ps_relay_bye(ps_relay_t *r);

#endif
