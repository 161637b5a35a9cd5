/*
 * check.h: what the fuzz targets of core/fuzz/ assert about the value codec
 * (value.h) and the JSON writer and reader (json.h), on bytes that came
 * from a peer or a file. It is test code: a broken promise aborts, so that
 * libFuzzer keeps the input. It is not linked into psurvey.
 */
#ifndef PS_FUZZ_CHECK_H
#define PS_FUZZ_CHECK_H

#include <stddef.h>

/* Aborts with a message naming the broken promise when `cond` is false. */
#define FZ_ASSERT(cond) ((cond) ? (void)0 : fz_fail(__FILE__, __LINE__, #cond))
void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* Reads one encoded value the ways the engine does, and checks that they
   agree: ps_skip_value (the driver's check), ps_read_item all the way down
   (the worker's decoding) and ps_json_write, lenient (logs, exports) and
   strict (the store). Returns 1 when the bytes are exactly one valid
   value, 0 otherwise. */
int fz_read_value(const char *p, size_t n);

/* fz_read_value, and more that costs more: the copy through the ps_put_*
   writers reads back the same, is no longer and is its own copy; strict
   JSON reads back (ps_json_read) to the same text; number texts and UTF-8
   checks match independent versions. */
int fz_check_value(const char *p, size_t n);

/* Runs ps_json_read over text, as resume does on stored JSON, and checks
   that whatever it accepts is one valid value. */
void fz_check_json(const char *p, size_t n);

#endif
