/*
 * fuzz_value.c: libFuzzer target for the value codec (value.h) and the JSON
 * writer and reader (json.h). The input is taken twice: as the encoding of
 * one value, as a pset, a result or a stored cell would carry it, and as
 * JSON text, as resume reads it back from the database. check.c says what
 * must hold; a broken promise, a sanitizer report or a leak is a finding.
 */
#include <stddef.h>
#include <stdint.h>

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_check_value((const char *)data, size);
  fz_check_json((const char *)data, size);
  return 0;
}
