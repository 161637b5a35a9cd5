/*
 * agent.h: `psurvey agent` (agent.c), what the driver runs on each ssh host
 * or Slurm node.
 */
#ifndef PS_AGENT_H
#define PS_AGENT_H

/* Runs the agent until the driver is done, over conn (a connection back
   to the driver, dial.h), or stdin and stdout when conn is -1; exe is the
   psurvey program, started as `exe worker` for each worker. It offers
   `slots` workers at once, or one per CPU it may use when slots is 0. */
int ps_agent_main(const char *exe, int conn, int slots);

#endif
