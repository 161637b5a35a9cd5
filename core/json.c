/* json.c: the exact JSON writer and reader of json.h. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ps_number_text(ps_buf_t *b, double d) {
  char s[40];
  if (isnan(d)) {
    ps_buf_puts(b, "NaN");
    return;
  }
  if (isinf(d)) {
    ps_buf_puts(b, d > 0 ? "Infinity" : "-Infinity");
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(s, sizeof s, "%.*g", prec, d);
    if (strtod(s, NULL) == d) break;
  }
  ps_buf_puts(b, s);
  if (!strpbrk(s, ".e")) ps_buf_puts(b, ".0");
}

void ps_json_string(ps_buf_t *b, const char *s, size_t n) {
  int valid = ps_utf8_valid(s, n);
  ps_buf_putc(b, '"');
  for (size_t k = 0; k < n; k++) {
    unsigned char c = (unsigned char)s[k];
    switch (c) {
      case '"': ps_buf_puts(b, "\\\""); break;
      case '\\': ps_buf_puts(b, "\\\\"); break;
      case '\n': ps_buf_puts(b, "\\n"); break;
      case '\r': ps_buf_puts(b, "\\r"); break;
      case '\t': ps_buf_puts(b, "\\t"); break;
      default:
        if (c < 0x20 || (!valid && c >= 0x80))
          ps_buf_printf(b, "\\u%04x", c);
        else
          ps_buf_putc(b, c);
    }
  }
  ps_buf_putc(b, '"');
}

void ps_json_bytes(ps_buf_t *b, const char *s, size_t n) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *u = (const unsigned char *)s;
  if (ps_utf8_valid(s, n)) {
    ps_json_string(b, s, n);
    return;
  }
  ps_buf_puts(b, "{\"$base64\":\"");
  for (size_t k = 0; k < n; k += 3) {
    /* Three bytes make four digits; '=' pads the last group. */
    uint32_t v = (uint32_t)u[k] << 16 | (k + 1 < n ? (uint32_t)u[k + 1] << 8 : 0) |
                 (k + 2 < n ? u[k + 2] : 0);
    ps_buf_putc(b, digits[v >> 18]);
    ps_buf_putc(b, digits[(v >> 12) & 63]);
    ps_buf_putc(b, k + 1 < n ? digits[(v >> 6) & 63] : '=');
    ps_buf_putc(b, k + 2 < n ? digits[v & 63] : '=');
  }
  ps_buf_puts(b, "\"}");
}

static int write_value(ps_reader_t *r, ps_buf_t *b, int strict, int depth) {
  ps_item_t it;
  if (depth > PS_MAX_DEPTH || ps_read_item(r, &it) != 0) return PS_EPROTO;
  switch (it.type) {
    case PS_V_NIL: ps_buf_puts(b, "null"); return 0;
    case PS_V_BOOL: ps_buf_puts(b, it.i ? "true" : "false"); return 0;
    case PS_V_INT: ps_buf_printf(b, "%lld", (long long)it.i); return 0;
    case PS_V_FLOAT:
      if (strict && !isfinite(it.d)) return PS_EVALUE;
      ps_number_text(b, it.d);
      return 0;
    case PS_V_STR:
      if (strict && !ps_utf8_valid(it.s, it.len)) return PS_EVALUE;
      ps_json_bytes(b, it.s, it.len);
      return 0;
    default: break;
  }
  int rc;
  if (it.nhash == 0 && it.narr > 0) {
    ps_buf_putc(b, '[');
    for (uint64_t k = 0; k < it.narr; k++) {
      if (k) ps_buf_putc(b, ',');
      if (strict && ps_reader_left(r) && *r->p == PS_TAG_NIL) return PS_EVALUE; /* a hole */
      if ((rc = write_value(r, b, strict, depth + 1)) != 0) return rc;
    }
    ps_buf_putc(b, ']');
    return 0;
  }
  if (strict && it.narr > 0) return PS_EVALUE;
  ps_buf_putc(b, '{');
  uint64_t k = 0;
  for (; k < it.narr; k++) {
    if (k) ps_buf_putc(b, ',');
    ps_buf_printf(b, "\"%llu\":", (unsigned long long)k + 1);
    if ((rc = write_value(r, b, strict, depth + 1)) != 0) return rc;
  }
  for (uint64_t j = 0; j < it.nhash; j++, k++) {
    ps_item_t key;
    if (k) ps_buf_putc(b, ',');
    if (ps_read_item(r, &key) != 0) return PS_EPROTO;
    if (key.type == PS_V_STR) {
      if (strict && !ps_utf8_valid(key.s, key.len)) return PS_EVALUE;
      ps_json_string(b, key.s, key.len);
    } else if (strict) {
      return PS_EVALUE;
    } else if (key.type == PS_V_INT) {
      ps_buf_printf(b, "\"%lld\"", (long long)key.i);
    } else if (key.type == PS_V_FLOAT) {
      ps_buf_putc(b, '"');
      ps_number_text(b, key.d);
      ps_buf_putc(b, '"');
    } else if (key.type == PS_V_BOOL) {
      ps_buf_puts(b, key.i ? "\"true\"" : "\"false\"");
    } else {
      return PS_EPROTO;
    }
    ps_buf_putc(b, ':');
    if ((rc = write_value(r, b, strict, depth + 1)) != 0) return rc;
  }
  ps_buf_putc(b, '}');
  return 0;
}

int ps_json_write(ps_reader_t *r, ps_buf_t *b, int strict) { return write_value(r, b, strict, 0); }

/* Reader. */

typedef struct jp_s {
  const char *p, *end;
} jp_t;

static void skip_ws(jp_t *J) {
  while (J->p < J->end && (*J->p == ' ' || *J->p == '\t' || *J->p == '\n' || *J->p == '\r')) J->p++;
}

static int hex4(jp_t *J, unsigned *v) {
  if (J->end - J->p < 4) return -1;
  *v = 0;
  for (int k = 0; k < 4; k++) {
    char c = *J->p++;
    *v <<= 4;
    if (c >= '0' && c <= '9')
      *v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      *v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      *v |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  return 0;
}

static void put_utf8(ps_buf_t *b, unsigned c) {
  if (c < 0x80)
    ps_buf_putc(b, (int)c);
  else if (c < 0x800)
    ps_buf_putc(b, 0xc0 | (c >> 6)), ps_buf_putc(b, 0x80 | (c & 0x3f));
  else if (c < 0x10000)
    ps_buf_putc(b, 0xe0 | (c >> 12)), ps_buf_putc(b, 0x80 | ((c >> 6) & 0x3f)),
        ps_buf_putc(b, 0x80 | (c & 0x3f));
  else
    ps_buf_putc(b, 0xf0 | (c >> 18)), ps_buf_putc(b, 0x80 | ((c >> 12) & 0x3f)),
        ps_buf_putc(b, 0x80 | ((c >> 6) & 0x3f)), ps_buf_putc(b, 0x80 | (c & 0x3f));
}

static int read_string(jp_t *J, ps_buf_t *s) {
  if (J->p >= J->end || *J->p != '"') return -1;
  J->p++;
  while (J->p < J->end && *J->p != '"') {
    char c = *J->p++;
    if (c != '\\') {
      ps_buf_putc(s, c);
      continue;
    }
    if (J->p >= J->end) return -1;
    c = *J->p++;
    switch (c) {
      case '"':
      case '\\':
      case '/': ps_buf_putc(s, c); break;
      case 'b': ps_buf_putc(s, '\b'); break;
      case 'f': ps_buf_putc(s, '\f'); break;
      case 'n': ps_buf_putc(s, '\n'); break;
      case 'r': ps_buf_putc(s, '\r'); break;
      case 't': ps_buf_putc(s, '\t'); break;
      case 'u': {
        unsigned v, lo;
        if (hex4(J, &v) != 0) return -1;
        if (v >= 0xd800 && v < 0xdc00 && J->end - J->p >= 6 && J->p[0] == '\\' && J->p[1] == 'u') {
          J->p += 2;
          if (hex4(J, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) return -1;
          v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
        }
        put_utf8(s, v);
        break;
      }
      default: return -1;
    }
  }
  if (J->p >= J->end) return -1;
  J->p++;
  return 0;
}

static int read_value(jp_t *J, ps_buf_t *out, int depth) {
  skip_ws(J);
  if (J->p >= J->end || depth > PS_MAX_DEPTH) return -1;
  char c = *J->p;
  if (c == '{' || c == '[') {
    ps_buf_t items;
    ps_buf_init(&items);
    uint64_t n = 0;
    char close = c == '{' ? '}' : ']';
    J->p++;
    skip_ws(J);
    if (J->p < J->end && *J->p == close) {
      J->p++;
    } else {
      for (;;) {
        if (c == '{') {
          ps_buf_t key;
          ps_buf_init(&key);
          skip_ws(J);
          int bad = read_string(J, &key) != 0;
          if (!bad) ps_put_str(&items, key.data ? key.data : "", key.len);
          ps_buf_free(&key);
          skip_ws(J);
          if (bad || J->p >= J->end || *J->p++ != ':') goto fail;
        }
        if (read_value(J, &items, depth + 1) != 0) goto fail;
        n++;
        skip_ws(J);
        if (J->p < J->end && *J->p == ',') {
          J->p++;
          continue;
        }
        if (J->p < J->end && *J->p == close) {
          J->p++;
          break;
        }
        goto fail;
      }
    }
    if (c == '{')
      ps_put_table(out, 0, n);
    else
      ps_put_table(out, n, 0);
    ps_buf_put(out, items.data, items.len);
    ps_buf_free(&items);
    return 0;
  fail:
    ps_buf_free(&items);
    return -1;
  }
  if (c == '"') {
    ps_buf_t s;
    ps_buf_init(&s);
    int rc = read_string(J, &s);
    if (rc == 0) ps_put_str(out, s.data ? s.data : "", s.len);
    ps_buf_free(&s);
    return rc;
  }
  size_t left = (size_t)(J->end - J->p);
  if (left >= 4 && memcmp(J->p, "null", 4) == 0) return J->p += 4, ps_put_nil(out), 0;
  if (left >= 4 && memcmp(J->p, "true", 4) == 0) return J->p += 4, ps_put_bool(out, 1), 0;
  if (left >= 5 && memcmp(J->p, "false", 5) == 0) return J->p += 5, ps_put_bool(out, 0), 0;
  /* What the lenient writer (and Python's json module) writes for NaN and
     the infinities. */
  if (left >= 3 && memcmp(J->p, "NaN", 3) == 0) return J->p += 3, ps_put_float(out, NAN), 0;
  if (left >= 8 && memcmp(J->p, "Infinity", 8) == 0)
    return J->p += 8, ps_put_float(out, INFINITY), 0;
  if (left >= 9 && memcmp(J->p, "-Infinity", 9) == 0)
    return J->p += 9, ps_put_float(out, -INFINITY), 0;
  char num[64];
  size_t k = 0;
  int isfloat = 0;
  while (J->p < J->end && k < sizeof num - 1 && strchr("+-0123456789.eE", *J->p)) {
    if (strchr(".eE", *J->p)) isfloat = 1;
    num[k++] = *J->p++;
  }
  num[k] = '\0';
  if (k == 0) return -1;
  char *end;
  if (!isfloat) {
    errno = 0;
    long long v = strtoll(num, &end, 10);
    if (*end == '\0' && errno == 0) {
      ps_put_int(out, v);
      return 0;
    }
  }
  double d = strtod(num, &end);
  if (*end != '\0') return -1;
  ps_put_float(out, d);
  return 0;
}

int ps_json_read(const char *s, size_t n, ps_buf_t *out) {
  jp_t J = {s, s + n};
  if (read_value(&J, out, 0) != 0) return PS_EPROTO;
  skip_ws(&J);
  return J.p == J.end && !out->failed ? 0 : PS_EPROTO;
}
