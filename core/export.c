/* export.c: CSV and JSON Lines output of a stage (export.h). */
#include "export.h"

#include <errno.h>
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

/* Writes one cell: as CSV text (csv) or as a JSON value. Floats, strings
   and tables follow ps_json_write's lenient conventions in both (NaN,
   Infinity, -Infinity; {"$base64": ...} for a string that is not UTF-8);
   a CSV cell holds the text of a UTF-8 string and the JSON of the rest. */
static int put_cell(ps_buf_t *b, const ps_item_t *it, int csv, ps_buf_t *tmp) {
  switch (it->type) {
    case PS_V_NIL:
      if (!csv) ps_buf_puts(b, "null");
      return 0;
    case PS_V_BOOL: ps_buf_puts(b, it->i ? "true" : "false"); return 0;
    case PS_V_INT: ps_buf_printf(b, "%lld", (long long)it->i); return 0;
    case PS_V_FLOAT: ps_number_text(b, it->d); return 0;
    case PS_V_STR:
      if (csv && ps_utf8_valid(it->s, it->len)) {
        csv_field(b, it->s, it->len);
        return 0;
      }
      if (!csv) {
        ps_json_bytes(b, it->s, it->len);
        return 0;
      }
      tmp->len = 0;
      ps_json_bytes(tmp, it->s, it->len);
      break;
    default: {
      ps_reader_t r;
      ps_reader_init(&r, it->s, it->len);
      tmp->len = 0;
      if (ps_json_write(&r, csv ? tmp : b, 0) != 0) return PS_EPROTO;
      if (!csv) return 0;
    }
  }
  if (tmp->failed) return PS_ENOMEM;
  csv_field(b, tmp->data ? tmp->data : "", tmp->len);
  return 0;
}

/* Writes what b holds to out and empties it; an error names the failed
   write (a full disk, a closed pipe). */
static int drain(ps_buf_t *b, FILE *out, ps_err_t *err) {
  if (b->failed) return ps_err_set(err, PS_ENOMEM, "out of memory");
  errno = 0;
  if (b->len > 0 && fwrite(b->data, 1, b->len, out) != b->len) {
    int e = errno ? errno : EIO;
    return ps_err_set(err, -e, "cannot write the export: %s", strerror(e));
  }
  b->len = 0;
  return 0;
}

int ps_export(ps_store_t *s, const char *table, const ps_query_t *q, int format, FILE *out,
              ps_err_t *err) {
  ps_cursor_t *c;
  int rc = ps_cursor_open(s, table, PS_VIEW_ALL, q, &c, err);
  if (rc != 0) return rc;
  int n = ps_cursor_ncols(c);
  ps_buf_t b, tmp;
  ps_buf_init(&b);
  ps_buf_init(&tmp);
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
      } else if (it.type != PS_V_NIL) {
        if (!first) ps_buf_putc(&b, ',');
        first = 0;
        const char *name = ps_cursor_colname(c, k);
        ps_json_string(&b, name, strlen(name));
        ps_buf_putc(&b, ':');
      } else {
        continue;
      }
      if ((rc = put_cell(&b, &it, format == PS_EXPORT_CSV, &tmp)) != 0) {
        if (rc == PS_ENOMEM)
          rc = ps_err_set(err, rc, "out of memory");
        else
          rc = ps_err_set(err, rc, "malformed value in column '%s'", ps_cursor_colname(c, k));
        goto done;
      }
    }
    ps_buf_puts(&b, format == PS_EXPORT_CSV ? "\r\n" : "}\n");
    if (b.len > 65536 && (rc = drain(&b, out, err)) != 0) goto done;
  }
  if (rc == 0 && (rc = drain(&b, out, err)) == 0 && (errno = 0, fflush(out)) != 0) {
    int e = errno ? errno : EIO;
    rc = ps_err_set(err, -e, "cannot write the export: %s", strerror(e));
  }
done:
  ps_buf_free(&b);
  ps_buf_free(&tmp);
  ps_cursor_close(c);
  return rc < 0 ? rc : 0;
}
