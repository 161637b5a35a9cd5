/*
 * dial.h: the agent's end of connecting back (`psurvey agent --connect
 * HOST:PORT`): a TCP connection to the driver, tried for a while (the
 * driver may be slower to listen than srun to start agents), and the token
 * exchange of auth.h over it, before the agent runs anything. Blocking: the
 * agent has nothing else to do until it is through.
 */
#ifndef PS_DIAL_H
#define PS_DIAL_H

#include "ps.h"

/* Connects to "host:port" ("[v6addr]:port" too), trying for up to
   patience_ms, and proves the token both ways. *fd is the connection.
   Errors name what failed: the address, a refused connection, a driver of
   another version, a driver that does not hold the token. */
int ps_dial_driver(const char *hostport, const char *token, int patience_ms, int *fd,
                   ps_err_t *err);

#endif
