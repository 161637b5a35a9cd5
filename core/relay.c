/* relay.c: the agent protocol, the driver's end (relay.h). */
#include "relay.h"

#include <stdio.h>
#include <string.h>

#include "msg.h"

/* Sends what b holds, unless building it ran out of memory. */
static int send_built(ps_relay_t *r, ps_buf_t *b) {
  if (!b->failed) return ps_link_send(r->link, b);
  ps_buf_free(b);
  return PS_ENOMEM;
}

static ps_worker_t *find_worker(ps_relay_t *r, uint64_t id) {
  ps_pool_t *p = r->node->pool;
  for (int k = 0; k < p->n; k++) {
    ps_worker_t *w = p->workers[k];
    if (w->node == r->node && (uint64_t)w->id == id && !w->closing) return w;
  }
  return NULL;
}

/* The agent's hello: the node is up, with the slots it has. */
static int on_hello(ps_relay_t *r, const char *p, size_t len, char *why, size_t whysz) {
  ps_node_t *n = r->node;
  ps_msg_agent_t m;
  /* The protocol first: another version's hello may be laid out otherwise. */
  ps_reader_t head;
  uint64_t protocol, skip;
  ps_reader_init(&head, p, len);
  if (ps_read_varint(&head, &protocol) == 0 && protocol != PS_PROTOCOL) {
    /* Every version so far begins with protocol, host, cores, memory
       and version: the version is named when it can be read. */
    const char *host, *version = "?";
    size_t hostlen, vlen = 1;
    if (ps_read_bytes(&head, &host, &hostlen) != 0 || ps_read_varint(&head, &skip) != 0 ||
        ps_read_varint(&head, &skip) != 0 || ps_read_bytes(&head, &version, &vlen) != 0) {
      version = "?";
      vlen = 1;
    }
    snprintf(why, whysz,
             "psurvey there is version %.*s (protocol %llu), this one is %s (protocol %d): install "
             "the same version on both",
             (int)(vlen < 40 ? vlen : 40), version, (unsigned long long)protocol, PSURVEY_VERSION,
             PS_PROTOCOL);
    return PS_EPROTO;
  }
  if (ps_msg_get_agent(p, len, &m) != 0) {
    snprintf(why, whysz, "its agent sent a malformed hello");
    return PS_EPROTO;
  }
  ps_text(n->host, sizeof n->host, m.host.p, m.host.n);
  ps_text(n->job, sizeof n->job, m.job.p, m.job.n);
  n->ends = (int64_t)m.ends;
  /* The GPUs the agent was given (a Slurm step's), unless configured. */
  if (n->ngpus == 0 && m.gpus.n > 0 && m.gpus.n < sizeof n->gpus) {
    char ids[PS_GPUS_TEXT];
    ps_err_t err;
    ps_text(ids, sizeof ids, m.gpus.p, m.gpus.n);
    if (ps_node_set_gpus(n, ids, &err) != 0) {
      snprintf(why, whysz, "its agent's GPUs '%s': %s", ids, err.msg);
      return PS_EPROTO;
    }
  }
  n->cores = (int)m.cores;
  n->mem_mb = (int64_t)m.memory_mb;
  /* The driver runs elsewhere: every CPU the agent may use there (its
     affinity and cgroup quota, cpus.h) takes a worker. */
  n->slots = r->given_slots > 0 ? r->given_slots : (m.cores > 0 ? (int)m.cores : 1);
  ps_pool_node_up(n);
  return 0;
}

int ps_relay_frame(ps_relay_t *r, int kind, const char *p, size_t len, char *why, size_t whysz) {
  ps_msg_relay_t m;
  r->last_heard = ps_mono_us();
  switch (kind) {
    case PS_MSG_AGENT: return on_hello(r, p, len, why, whysz);
    case PS_MSG_PONG:
      if (ps_msg_get_empty(p, len) != 0) break;
      return 0;
    case PS_MSG_FROM: {
      if (ps_msg_get_relay(kind, p, len, &m) != 0) break;
      ps_worker_t *w = find_worker(r, m.worker);
      if (w == NULL) return 0; /* killed meanwhile */
      if (m.kind == PS_MSG_HELLO) {
        ps_msg_hello_t h;
        if (ps_msg_get_hello(m.bytes.p, m.bytes.n, &h) == 0) w->pid = (int)h.pid;
        w->hello = 1;
      }
      r->node->pool->cb.on_frame(w, m.kind, m.bytes.p, m.bytes.n);
      return 0;
    }
    case PS_MSG_GONE: {
      if (ps_msg_get_relay(kind, p, len, &m) != 0) break;
      ps_worker_t *w = find_worker(r, m.worker);
      if (w == NULL) return 0;
      w->exited = w->eof = 1;
      w->exit_status = (int64_t)m.arg1;
      w->term_signal = (int)m.arg2;
      if (m.bytes.n && !w->why[0]) ps_text(w->why, sizeof w->why, m.bytes.p, m.bytes.n);
      ps__worker_bury(w);
      return 0;
    }
    default: break;
  }
  snprintf(why, whysz, "its agent sent a malformed frame");
  return PS_EPROTO;
}

int ps_relay_spawn(ps_relay_t *r, ps_worker_t *w) {
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_spawn(&b, (uint64_t)w->id, w->gpus, strlen(w->gpus));
  return send_built(r, &b);
}

int ps_relay_send(ps_relay_t *r, ps_worker_t *w, ps_buf_t *b) {
  /* TO: the worker's id, then its frames as they are. */
  ps_buf_t env;
  ps_buf_init(&env);
  ps_msg_put_to(&env, (uint64_t)w->id, b->data, b->len);
  ps_buf_free(b);
  return send_built(r, &env);
}

void ps_relay_kill(ps_relay_t *r, ps_worker_t *w, int sig) {
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_kill(&b, (uint64_t)w->id, (uint64_t)sig);
  send_built(r, &b);
}

static void send_empty(ps_relay_t *r, int kind) {
  ps_buf_t b;
  ps_buf_init(&b);
  ps_msg_put_empty(&b, kind);
  send_built(r, &b);
}

void ps_relay_ping(ps_relay_t *r) { send_empty(r, PS_MSG_PING); }

void ps_relay_bye(ps_relay_t *r) { send_empty(r, PS_MSG_BYE); }

/* Agents are pinged four times per heartbeat, and at least once a second,
   so a silent one is told from a quiet one well before its heartbeat runs
   out. */
#define PINGS_PER_HEARTBEAT 4
#define MAX_PING_US 1000000

int ps_relay_watch(ps_relay_t *r, int64_t now, int64_t heartbeat_us, char *why, size_t whysz) {
  if (now - r->last_heard > heartbeat_us) {
    snprintf(why, whysz, "no word from it for %g s (heartbeat)", (double)heartbeat_us / 1e6);
    return 1;
  }
  int64_t every = heartbeat_us / PINGS_PER_HEARTBEAT;
  if (every > MAX_PING_US) every = MAX_PING_US;
  if (r->node->state == PS_NODE_UP && now - r->last_ping >= every) {
    r->last_ping = now;
    ps_relay_ping(r);
  }
  return 0;
}
