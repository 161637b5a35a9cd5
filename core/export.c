/* export.c: CSV and JSON Lines output of a stage (export.h). */
#include "export.h"

#include <string.h>

#include "json.h"

static void csv_field(ps_buf_t *b, const char *s, size_t n) {
  int quote = memchr(s, ',', n) || memchr(s, '"', n) || memchr(s, '\n', n) || memchr(s, '\r', n);
  if (!quote) {
    ps_buf_put(b, s, n);
    return;
  }
  ps_buf_putc(b, '"');
  for (size_t k = 0; k < n; k++) {
    if (s[k] == '"') ps_buf_putc(b, '"');
    ps_buf_putc(b, s[k]);
  }
  ps_buf_putc(b, '"');
}

/* Writes one cell: as CSV text (csv) or as a JSON value. */
static void put_cell(ps_buf_t *b, const ps_item_t *it, int csv) {
  ps_buf_t tmp;
  switch (it->type) {
    case PS_V_NIL:
      if (!csv) ps_buf_puts(b, "null");
      break;
    case PS_V_BOOL: ps_buf_puts(b, it->i ? "true" : "false"); break;
    case PS_V_INT: ps_buf_printf(b, "%lld", (long long)it->i); break;
    case PS_V_FLOAT:
      if (!csv && !(it->d == it->d && it->d - it->d == 0))
        ps_buf_puts(b, "null");
      else
        ps_number_text(b, it->d);
      break;
    case PS_V_STR:
      if (csv)
        csv_field(b, it->s, it->len);
      else
        ps_json_string(b, it->s, it->len);
      break;
    default: {
      ps_reader_t r;
      ps_reader_init(&r, it->s, it->len);
      ps_buf_init(&tmp);
      ps_json_write(&r, &tmp, 0);
      if (csv)
        csv_field(b, tmp.data ? tmp.data : "", tmp.len);
      else
        ps_buf_put(b, tmp.data, tmp.len);
      ps_buf_free(&tmp);
    }
  }
}

int ps_export(ps_store_t *s, const char *table, int format, FILE *out, ps_err_t *err) {
  ps_cursor_t *c;
  int rc = ps_cursor_open(s, table, PS_VIEW_ALL, 0, &c, err);
  if (rc != 0) return rc;
  int n = ps_cursor_ncols(c);
  ps_buf_t b;
  ps_buf_init(&b);
  if (format == PS_EXPORT_CSV) {
    for (int k = 0; k < n; k++) {
      if (k) ps_buf_putc(&b, ',');
      const char *name = ps_cursor_colname(c, k);
      csv_field(&b, name, strlen(name));
    }
    ps_buf_puts(&b, "\r\n");
  }
  while ((rc = ps_cursor_step(c, err)) == 1) {
    int first = 1;
    if (format == PS_EXPORT_JSONL) ps_buf_putc(&b, '{');
    for (int k = 0; k < n; k++) {
      ps_item_t it;
      if (ps_cursor_cell(c, k, &it) != 0) {
        rc = ps_err_set(err, PS_EPROTO, "malformed value in column '%s'", ps_cursor_colname(c, k));
        goto done;
      }
      if (format == PS_EXPORT_CSV) {
        if (k) ps_buf_putc(&b, ',');
        put_cell(&b, &it, 1);
      } else if (it.type != PS_V_NIL) {
        if (!first) ps_buf_putc(&b, ',');
        first = 0;
        const char *name = ps_cursor_colname(c, k);
        ps_json_string(&b, name, strlen(name));
        ps_buf_putc(&b, ':');
        put_cell(&b, &it, 0);
      }
    }
    ps_buf_puts(&b, format == PS_EXPORT_CSV ? "\r\n" : "}\n");
    if (b.len > 65536) {
      fwrite(b.data, 1, b.len, out);
      b.len = 0;
    }
  }
done:
  if (!b.failed) fwrite(b.data, 1, b.len, out);
  fflush(out);
  ps_buf_free(&b);
  ps_cursor_close(c);
  return rc < 0 ? rc : 0;
}
