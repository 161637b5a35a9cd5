/* celltypes.c: the notes of the _types column (celltypes.h). */
#include "celltypes.h"

#include "ps.h"

static int is_type(int c) {
  return c == PS_CELL_BOOL || c == PS_CELL_JSON || c == PS_CELL_CODEC || c == PS_CELL_NAN;
}
static int is_role(int c) { return c == PS_CELL_PSET || c == PS_CELL_RESULT; }

void ps_cellnote_put(ps_buf_t *b, int col, int type, int role) {
  if (!type && !role) return;
  if (b->len > 0) ps_buf_putc(b, ',');
  ps_buf_printf(b, "%d", col);
  if (type) ps_buf_putc(b, type);
  if (role) ps_buf_putc(b, role);
}

int ps_cellnote_next(const char *text, size_t n, size_t *pos, int ncols, ps_cellnote_t *note) {
  size_t p = *pos;
  if (p >= n) return 0;
  if (p > 0) {
    if (text[p] != ',') return PS_EPROTO;
    p++;
  }
  long col = 0;
  size_t digits = 0;
  while (p < n && text[p] >= '0' && text[p] <= '9' && digits < 9) {
    col = col * 10 + (text[p++] - '0');
    digits++;
  }
  if (digits == 0 || col >= ncols) return PS_EPROTO;
  note->col = (int)col;
  note->type = note->role = 0;
  if (p < n && is_type((unsigned char)text[p])) note->type = (unsigned char)text[p++];
  if (p < n && is_role((unsigned char)text[p])) note->role = (unsigned char)text[p++];
  if (!note->type && !note->role) return PS_EPROTO;
  if (p < n && text[p] != ',') return PS_EPROTO;
  *pos = p;
  return 1;
}
