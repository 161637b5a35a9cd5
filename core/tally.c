/* tally.c: failures grouped by what went wrong (tally.h). */
#include "tally.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An error's message shown in its group at most this long. */
#define MESSAGE_BYTES 48

void ps_tally_init(ps_tally_t *t) { memset(t, 0, sizeof *t); }

/* The length of a "chunk:line: " prefix at the start of msg, or 0. */
static size_t where_len(const char *msg, size_t len) {
  for (size_t k = 0; k < len && msg[k] != '\n'; k++) {
    if (msg[k] != ':' || k + 1 >= len || msg[k + 1] < '0' || msg[k + 1] > '9') continue;
    size_t e = k + 1;
    while (e < len && msg[e] >= '0' && msg[e] <= '9') e++;
    if (e + 1 < len && msg[e] == ':' && msg[e + 1] == ' ') return e + 2;
    return 0;
  }
  return 0;
}

/* The number after `word` in msg ("status 3"), or -1. */
static long long number_after(const char *msg, size_t len, const char *word) {
  size_t w = strlen(word);
  for (size_t k = 0; k + w < len; k++) {
    if (memcmp(msg + k, word, w) != 0) continue;
    long long v = 0;
    size_t e = k + w;
    if (e >= len || msg[e] < '0' || msg[e] > '9') return -1;
    while (e < len && msg[e] >= '0' && msg[e] <= '9' && v < 1000000) v = v * 10 + (msg[e++] - '0');
    return v;
  }
  return -1;
}

/* The length of a "worker 3 (pid 123) " prefix at the start of msg, or 0:
   which worker failed is not what went wrong. */
static size_t worker_len(const char *msg, size_t len) {
  size_t k = 0;
  if (len < 7 || memcmp(msg, "worker ", 7) != 0) return 0;
  k = 7;
  while (k < len && msg[k] >= '0' && msg[k] <= '9') k++;
  if (k + 6 > len || memcmp(msg + k, " (pid ", 6) != 0) return 0;
  k += 6;
  while (k < len && msg[k] >= '0' && msg[k] <= '9') k++;
  if (k + 2 > len || msg[k] != ')' || msg[k + 1] != ' ') return 0;
  return k + 2;
}

static void key_of(const char *kind, const char *msg, size_t len, char *key) {
  size_t who = worker_len(msg, len);
  msg += who;
  len -= who;
  if (strcmp(kind, "error") == 0) {
    size_t skip = where_len(msg, len);
    const char *m = msg + skip;
    size_t n = len - skip;
    const char *nl = memchr(m, '\n', n);
    if (nl) n = (size_t)(nl - m);
    int cut = n > MESSAGE_BYTES;
    if (cut) {
      n = MESSAGE_BYTES;
      while (n > 0 && ((unsigned char)m[n] & 0xC0) == 0x80) n--; /* a whole character */
    }
    snprintf(key, PS_TALLY_KEY, "\"%.*s%s\"", (int)n, m, cut ? "..." : "");
  } else if (strcmp(kind, "exit") == 0 && number_after(msg, len, "status ") >= 0) {
    snprintf(key, PS_TALLY_KEY, "exit %lld", number_after(msg, len, "status "));
  } else if (strcmp(kind, "signal") == 0 && number_after(msg, len, "signal ") >= 0) {
    /* "... killed by signal 9 (SIGKILL)": the name in the last parentheses. */
    const char *name = NULL;
    for (size_t k = 0; k < len; k++)
      if (msg[k] == '(') name = msg + k;
    const char *end = name ? memchr(name, ')', len - (size_t)(name - msg)) : NULL;
    if (name && end && end - name < 16)
      snprintf(key, PS_TALLY_KEY, "signal %.*s", (int)(end - name - 1), name + 1);
    else
      snprintf(key, PS_TALLY_KEY, "signal %lld", number_after(msg, len, "signal "));
  } else if (strcmp(kind, "host_lost") == 0) {
    snprintf(key, PS_TALLY_KEY, "host lost");
  } else {
    snprintf(key, PS_TALLY_KEY, "%s", kind);
  }
}

void ps_tally_add(ps_tally_t *t, const char *kind, const char *msg, size_t len) {
  char key[PS_TALLY_KEY];
  key_of(kind, msg ? msg : "", msg ? len : 0, key);
  t->total++;
  for (int k = 0; k < t->ngroups; k++) {
    if (strcmp(t->group[k].key, key) == 0) {
      t->group[k].n++;
      return;
    }
  }
  if (t->ngroups == PS_TALLY_GROUPS) {
    t->other++;
    return;
  }
  memcpy(t->group[t->ngroups].key, key, sizeof key);
  t->group[t->ngroups++].n = 1;
}

void ps_tally_text(const ps_tally_t *t, char *out, size_t n) {
  if (n == 0) return;
  out[0] = '\0';
  if (t->total == 0) return;
  int order[PS_TALLY_GROUPS];
  for (int k = 0; k < t->ngroups; k++) order[k] = k;
  /* Largest first; equal counts keep the order they first failed in. */
  for (int a = 1; a < t->ngroups; a++)
    for (int b = a; b > 0 && t->group[order[b]].n > t->group[order[b - 1]].n; b--) {
      int x = order[b];
      order[b] = order[b - 1];
      order[b - 1] = x;
    }
  size_t o = (size_t)snprintf(out, n, "%lld failed:", (long long)t->total);
  for (int k = 0; k < t->ngroups && o < n; k++)
    o += (size_t)snprintf(out + o, n - o, "%s %lld x %s", k ? "," : "",
                          (long long)t->group[order[k]].n, t->group[order[k]].key);
  if (t->other && o < n) snprintf(out + o, n - o, ", %lld x other", (long long)t->other);
}
