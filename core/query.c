/*
 * query.c: what the user's SQL may do to a results database (store.h):
 * an expression that filters a table's rows (--where, results:where),
 * and the reading statements psurvey writes for its summaries and
 * reports. Both are read-only: a filter is checked as text (it stays one
 * parenthesised expression: no ';', no comment, no unbalanced ')') and as
 * SQL (an authorizer lets it read the table it filters and call functions,
 * nothing else); a statement must be one SELECT that SQLite calls
 * read-only.
 */
#include <string.h>
#include <strings.h>

#include "store_private.h"

int ps__where_check(const char *expr, ps_err_t *err) {
  int depth = 0, blank = 1;
  for (const char *p = expr; *p; p++) {
    char c = *p;
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      /* A string or a quoted name: skipped to its end ('' and "" are an
         escaped quote, read as the end and the start of the next). */
      char end = c == '[' ? ']' : c;
      const char *q = strchr(p + 1, end);
      if (q == NULL) return ps_err_set(err, PS_EVALUE, "an unterminated %c in the expression", c);
      p = q;
      blank = 0;
      continue;
    }
    if (c == ';') return ps_err_set(err, PS_EVALUE, "one expression, without ';'");
    if ((c == '-' && p[1] == '-') || (c == '/' && p[1] == '*'))
      return ps_err_set(err, PS_EVALUE, "an expression without comments");
    if (c == '(') depth++;
    if (c == ')' && --depth < 0) return ps_err_set(err, PS_EVALUE, "a ')' without its '('");
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') blank = 0;
  }
  if (depth > 0) return ps_err_set(err, PS_EVALUE, "a '(' without its ')'");
  if (blank) return ps_err_set(err, PS_EVALUE, "an empty expression");
  return 0;
}

/* The authorizer of a filter: it reads the table it filters (any of its
   columns) and calls functions; anything else is denied, which fails the
   statement's preparation. */
static int filter_authorizer(void *table, int action, const char *a, const char *b, const char *db,
                             const char *trigger) {
  (void)db, (void)trigger;
  switch (action) {
    case SQLITE_SELECT: return SQLITE_OK;
    case SQLITE_FUNCTION:
      /* Functions compute; those that reach outside the database do not. */
      return b && (strcmp(b, "load_extension") == 0 || strcmp(b, "fts3_tokenizer") == 0 ||
                   strcmp(b, "readfile") == 0 || strcmp(b, "writefile") == 0 ||
                   strcmp(b, "edit") == 0)
                 ? SQLITE_DENY
                 : SQLITE_OK;
    case SQLITE_READ:
      return a && ps__same_name(a, strlen(a), table, strlen(table)) ? SQLITE_OK : SQLITE_DENY;
    default: return SQLITE_DENY;
  }
}

int ps__prepare_filtered(ps_store_t *s, const char *sql, const char *table, sqlite3_stmt **st) {
  sqlite3_set_authorizer(s->db, filter_authorizer, (void *)table);
  int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
  sqlite3_set_authorizer(s->db, NULL, NULL);
  if (rc == SQLITE_OK && !sqlite3_stmt_readonly(*st)) {
    sqlite3_finalize(*st);
    *st = NULL;
    return SQLITE_AUTH;
  }
  return rc;
}

int ps_store_query(ps_store_t *s, const char *sql, const ps_item_t *params, int nparams,
                   ps_cursor_t **out, ps_err_t *err) {
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, &tail) != SQLITE_OK)
    return ps__db_fail(s->db, err, "reading");
  /* sqlite3_stmt_readonly is also true of BEGIN, ATTACH and EXPLAIN:
     only a query will do. */
  const char *head = sql + strspn(sql, " \t\r\n(");
  int query = strncasecmp(head, "SELECT", 6) == 0 || strncasecmp(head, "WITH", 4) == 0;
  if (st == NULL || !query || sqlite3_stmt_isexplain(st) || !sqlite3_stmt_readonly(st) ||
      tail[strspn(tail, " \t\r\n")] != '\0') {
    sqlite3_finalize(st);
    return ps_err_set(err, PS_EVALUE, "a query must be one statement that only reads");
  }
  for (int k = 0; k < nparams; k++) {
    const ps_item_t *it = &params[k];
    int rc = it->type == PS_V_INT     ? sqlite3_bind_int64(st, k + 1, it->i)
             : it->type == PS_V_BOOL  ? sqlite3_bind_int(st, k + 1, it->i != 0)
             : it->type == PS_V_FLOAT ? sqlite3_bind_double(st, k + 1, it->d)
             : it->type == PS_V_STR
                 ? sqlite3_bind_text(st, k + 1, it->s, (int)it->len, SQLITE_TRANSIENT)
                 : sqlite3_bind_null(st, k + 1);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(st);
      return ps_err_set(err, PS_EVALUE, "cannot bind parameter %d of the query", k + 1);
    }
  }
  return ps__cursor_of(st, out, err);
}
