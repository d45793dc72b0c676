/* ledger_int.h — shared by ledger.c (writing) and ledger_verify.c (checking); never installed. */
#ifndef NONO_LEDGER_INT_H
#define NONO_LEDGER_INT_H

#include "internal.h"

#include <jansson.h>

/* SHA-256 of the record dumped canonically (compact, keys sorted, ASCII). */
NONO_HIDDEN int ledger_record_hash(json_t *rec, uint8_t out[32]);
/* Merkle root over record hashes: leaf SHA-256(0x00 || h), node SHA-256(0x01 || l || r). */
NONO_HIDDEN int ledger_merkle(uint8_t (*h)[32], size_t n, uint8_t root[32]);
/* Is `text` one JSON object exactly as json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENSURE_ASCII) would print it? False also for some that are (ledger_canon.c says which). */
NONO_HIDDEN bool ledger_is_canonical_object(const char *text);

#endif
