/* util.c: the error record, text in fixed fields and the clocks of ps.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ps.h"

int ps_err_set(ps_err_t *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

/* The length of s[0..len) without its last character when that one is cut
   short: its lead byte asks for more bytes than are left. */
static size_t whole_chars(const char *s, size_t len) {
  size_t lead = len;
  while (lead > 0 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80) lead--;
  if (lead == 0) return len; /* no lead byte: not UTF-8, left as it is */
  unsigned char b = (unsigned char)s[lead - 1];
  size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
  return len - (lead - 1) < need ? lead - 1 : len;
}

char *ps_text(char *dst, size_t size, const char *p, size_t n) {
  if (size == 0) return dst;
  size_t len = n < size - 1 ? n : size - 1;
  memcpy(dst, p, len);
  /* Cut inside a character only when the next byte continues one. */
  if (len < n && ((unsigned char)p[len] & 0xC0) == 0x80) len = whole_chars(dst, len);
  dst[len] = '\0';
  return dst;
}

char *ps_textf(char *dst, size_t size, const char *fmt, ...) {
  if (size == 0) return dst;
  va_list ap;
  va_start(ap, fmt);
  int want = vsnprintf(dst, size, fmt, ap);
  va_end(ap);
  if (want < 0)
    dst[0] = '\0';
  else if ((size_t)want >= size)
    dst[whole_chars(dst, size - 1)] = '\0';
  return dst;
}

int64_t ps_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ps_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
