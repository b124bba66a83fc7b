/* CRC-32 for gzip's trailer (the same function as zlib's crc32()), computed with the CPU's
 * carry-less multiply (PCLMULQDQ) where the CPU has it: zlib's table-driven crc32 was a good part
 * of the gzip thread's work (doc/figures.md). Elsewhere (no x86-64, an old CPU) it is zlib's crc32.
 * Pure C: no Ruby. */
#ifndef HC_DUMP_CRC32_H
#define HC_DUMP_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* zlib's convention: crc is 0 at the start, or what the previous call returned. */
uint32_t hc_crc32(uint32_t crc, const void *buf, size_t len);

/* 1 when hc_crc32 uses the carry-less multiply on this CPU, 0 when it falls back to zlib. */
int hc_crc32_accelerated(void);

#endif
