/* capture.c: standard output and error caught in memory files
   (capture.h). */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ps.h"

/* Pass-through reads a file this much at a time. */
#define CHUNK 65536

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0 && fd >= 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return; /* nobody reads: the bytes are lost, not the process */
    p += k;
    n -= (size_t)k;
  }
}

static ssize_t pread_all(int fd, char *p, size_t n, off_t at) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = pread(fd, p + got, n - got, at + (off_t)got);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    if (k == 0) break;
    got += (size_t)k;
  }
  return (ssize_t)got;
}

/* Empties file fd: its size and its shared offset back to 0 (a memory
   file can always be cut). */
static void empty(int fd) {
  int rc = ftruncate(fd, 0);
  (void)rc;
  lseek(fd, 0, SEEK_SET);
}

int ps_capture_start(ps_capture_t *c) {
  memset(c, 0, sizeof *c);
  ps_buf_init(&c->kept);
  c->err = fcntl(2, F_DUPFD_CLOEXEC, 3);
  int fd[2] = {memfd_create("psurvey-stdout", MFD_CLOEXEC),
               memfd_create("psurvey-stderr", MFD_CLOEXEC)};
  int rc = 0;
  if (fd[0] < 0 || fd[1] < 0) rc = errno ? -errno : -EIO;
  if (rc == 0) {
    fflush(stdout);
    fflush(stderr);
    /* dup2 clears close-on-exec: children inherit 1 and 2. */
    if (dup2(fd[0], 1) != 1 || dup2(fd[1], 2) != 2) rc = errno ? -errno : -EIO;
  }
  for (int k = 0; k < 2; k++)
    if (fd[k] >= 0) close(fd[k]);
  /* Line by line, as on a terminal: a line printed before a program
     starts is before what the program writes. */
  if (rc == 0) setvbuf(stdout, NULL, _IOLBF, 0);
  c->on = rc == 0;
  return rc;
}

int ps_capture_take(ps_capture_t *c, size_t limit) {
  if (!c->on) return 0;
  fflush(stdout);
  fflush(stderr); /* unbuffered, unless a pset changed that (setvbuf) */
  off_t n[2] = {lseek(1, 0, SEEK_CUR), lseek(2, 0, SEEK_CUR)};
  if (n[0] <= 0 && n[1] <= 0) return 0;
  if (c->kept.failed || c->kept.cap > 2 * (size_t)CHUNK) {
    /* Whatever a large take (or a failed one) held goes. */
    ps_buf_free(&c->kept);
    ps_buf_init(&c->kept);
  }
  c->kept.len = 0;
  for (int k = 0; k < 2; k++) {
    c->len[k] = 0;
    c->note[k][0] = '\0';
    if (n[k] <= 0) continue;
    size_t keep = (uint64_t)n[k] > limit ? limit : (size_t)n[k];
    off_t from = n[k] - (off_t)keep;
    if (ps_buf_reserve(&c->kept, keep) != 0) {
      snprintf(c->note[k], sizeof c->note[k], "[... %lld bytes lost: out of memory ...]\n",
               (long long)n[k]);
    } else {
      ssize_t got = pread_all(k + 1, c->kept.data + c->kept.len, keep, from);
      if (got < 0) got = 0, from = n[k];
      if (got > 0) {
        /* The cut starts at a whole UTF-8 character. */
        size_t skip = 0;
        while (from > 0 && skip < 3 && skip < (size_t)got &&
               ((unsigned char)c->kept.data[c->kept.len + skip] & 0xC0) == 0x80)
          skip++;
        memmove(c->kept.data + c->kept.len, c->kept.data + c->kept.len + skip, (size_t)got - skip);
        from += (off_t)skip;
        c->len[k] = (size_t)got - skip;
        c->kept.len += c->len[k];
      }
      if (from > 0)
        snprintf(c->note[k], sizeof c->note[k], "[... %lld bytes cut ...]\n", (long long)from);
    }
    empty(k + 1);
  }
  return 1;
}

const char *ps_capture_bytes(const ps_capture_t *c, int k) {
  return c->kept.data ? c->kept.data + (k == 1 ? c->len[0] : 0) : "";
}

void ps_capture_pass(ps_capture_t *c, const char *tag) {
  if (!c->on) return;
  fflush(stdout);
  fflush(stderr);
  char in[CHUNK];
  ps_buf_t out;
  ps_buf_init(&out);
  size_t taglen = strlen(tag);
  for (int k = 0; k < 2; k++) {
    off_t n = lseek(k + 1, 0, SEEK_CUR);
    if (n <= 0) continue;
    int at_line_start = 1;
    for (off_t at = 0; at < n;) {
      size_t want = n - at < CHUNK ? (size_t)(n - at) : CHUNK;
      ssize_t got = pread_all(k + 1, in, want, at);
      if (got <= 0) break;
      out.len = 0;
      for (ssize_t i = 0; i < got; i++) {
        if (at_line_start) ps_buf_put(&out, tag, taglen);
        ps_buf_putc(&out, in[i]);
        at_line_start = in[i] == '\n';
      }
      if (!out.failed) write_all(c->err, out.data, out.len);
      at += got;
    }
    if (!at_line_start) write_all(c->err, "\n", 1);
    empty(k + 1);
  }
  ps_buf_free(&out);
}

void ps_capture_say(const ps_capture_t *c, const char *text) {
  write_all(c->err >= 0 ? c->err : 2, text, strlen(text));
}

void ps_capture_free(ps_capture_t *c) {
  ps_buf_free(&c->kept);
  if (c->err >= 0) close(c->err);
  c->err = -1;
}
