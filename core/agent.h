/*
 * agent.h: `psurvey agent` (agent.c), what the driver runs on each ssh host.
 */
#ifndef PS_AGENT_H
#define PS_AGENT_H

/* Runs the agent on stdin/stdout until the driver is done; exe is the
   psurvey program, started as `exe worker` for each worker. */
int ps_agent_main(const char *exe);

#endif
