/* brief.c: a pset in one short line (brief.h). */
#include "brief.h"

#include <string.h>

#include "json.h"
#include "value.h"

/* A string value longer than this is cut, whatever the width left. */
#define STRING_BYTES 40

/* Whether s can be shown bare: printable ASCII or UTF-8 without spaces,
   commas, quotes or '=' (which would make the line ambiguous). */
static int bare(const char *s, size_t n) {
  if (n == 0 || !ps_utf8_valid(s, n)) return 0;
  for (size_t k = 0; k < n; k++) {
    unsigned char c = (unsigned char)s[k];
    if (c < 0x21 || c == 0x7f || c == ',' || c == '=' || c == '"' || c == '\'') return 0;
  }
  return 1;
}

/* One value at r; 0, or PS_EPROTO. */
static int put_value(ps_reader_t *r, ps_buf_t *out) {
  ps_item_t it;
  if (ps_read_item(r, &it) != 0) return PS_EPROTO;
  switch (it.type) {
    case PS_V_NIL: ps_buf_puts(out, "nil"); break;
    case PS_V_BOOL: ps_buf_puts(out, it.i ? "true" : "false"); break;
    case PS_V_INT: ps_buf_printf(out, "%lld", (long long)it.i); break;
    case PS_V_FLOAT: ps_number_text(out, it.d); break;
    case PS_V_STR:
      if (it.len <= STRING_BYTES && bare(it.s, it.len)) {
        ps_buf_put(out, it.s, it.len);
      } else {
        size_t n = it.len < STRING_BYTES ? it.len : STRING_BYTES;
        ps_buf_putc(out, '\'');
        for (size_t k = 0; k < n; k++) {
          unsigned char c = (unsigned char)it.s[k];
          if (c < 0x20 || c == 0x7f)
            ps_buf_putc(out, '?');
          else
            ps_buf_putc(out, (char)c);
        }
        ps_buf_puts(out, n < it.len ? "...'" : "'");
      }
      break;
    case PS_V_TABLE: {
      ps_buf_puts(out, "{...}");
      /* Its contents follow the header: skip them. */
      for (uint64_t k = 0; k < it.narr + 2 * it.nhash; k++)
        if (ps_skip_value(r, 1) != 0) return PS_EPROTO;
      break;
    }
    default: return PS_EPROTO;
  }
  return 0;
}

/* Cuts out back to at most width bytes from start, on a character
   boundary, ending in "...". */
static void cut(ps_buf_t *out, size_t start, size_t width) {
  if (out->failed || out->len - start <= width) return;
  size_t keep = width > 3 ? width - 3 : 0;
  size_t end = start + keep;
  while (end > start && ((unsigned char)out->data[end] & 0xC0) == 0x80) end--;
  out->len = end;
  ps_buf_puts(out, "...");
}

void ps_brief_pset(const char *pset, size_t n, size_t width, ps_buf_t *out) {
  size_t start = out->len;
  ps_reader_t r;
  ps_item_t it;
  ps_reader_init(&r, pset, n);
  if (ps_read_item(&r, &it) != 0 || it.type != PS_V_TABLE) {
    ps_buf_putc(out, '?');
    return;
  }
  int shown = 0;
  for (uint64_t k = 0; k < it.narr; k++) {
    if (shown++) ps_buf_puts(out, ", ");
    ps_buf_printf(out, "[%llu]=", (unsigned long long)k + 1);
    if (put_value(&r, out) != 0) goto bad;
    if (out->len - start > width) break;
  }
  for (uint64_t k = 0; k < it.nhash && out->len - start <= width; k++) {
    ps_item_t key;
    if (ps_read_item(&r, &key) != 0) goto bad;
    if (key.type == PS_V_STR && key.len == 8 && memcmp(key.s, "_psurvey", 8) == 0) {
      if (ps_skip_value(&r, 0) != 0) goto bad;
      continue;
    }
    if (key.type != PS_V_STR) goto bad; /* pset keys are strings */
    if (shown++) ps_buf_puts(out, ", ");
    ps_buf_put(out, key.s, key.len);
    ps_buf_putc(out, '=');
    if (put_value(&r, out) != 0) goto bad;
  }
  cut(out, start, width);
  return;
bad:
  out->len = start;
  ps_buf_putc(out, '?');
}
