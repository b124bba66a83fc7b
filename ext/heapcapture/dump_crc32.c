/* CRC-32 (gzip's, see dump_crc32.h) by folding with carry-less multiplication.
 *
 * The CRC is the remainder of the message polynomial modulo P(x) = 0x104C11DB7, in gzip's
 * bit-reflected order. Folding: a 128-bit block that lies D bits before later data is congruent,
 * modulo P, to its two 64-bit halves multiplied by x^(D+32) mod P and x^(D-32) mod P (the +-32
 * because each half is a 64-bit value and the remainder is 32 bits), so it can be multiplied
 * forward and xored into the later block without changing the remainder. Four blocks are carried
 * at a time (D = 512: four independent multiply chains keep the multiplier busy), folded into one
 * at the end (D = 128), and the last 128 bits are reduced to 64, then 32, then to the remainder by
 * Barrett reduction. The constants are those powers of x, bit-reflected and shifted left by one as
 * the reflected multiply needs; the unit test checks the result against zlib's crc32 for every
 * length and alignment that reaches each step. */
#include "dump_crc32.h"

#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HC_CRC32_CLMUL 1
#include <immintrin.h>
#endif

#ifdef HC_CRC32_CLMUL

#define HC_K_FOLD4_LOW  0x154442bd4ULL /* x^(512+32) mod P */
#define HC_K_FOLD4_HIGH 0x1c6e41596ULL /* x^(512-32) mod P */
#define HC_K_FOLD1_LOW  0x1751997d0ULL /* x^(128+32) mod P */
#define HC_K_FOLD1_HIGH 0x0ccaa009eULL /* x^(128-32) mod P */
#define HC_K_64         0x163cd6124ULL /* x^64 mod P */
#define HC_K_POLY       0x1db710641ULL /* P itself */
#define HC_K_MU         0x1f7011641ULL /* x^64 / P, Barrett's quotient */

#define HC_CLMUL __attribute__((target("pclmul,sse2")))

HC_CLMUL static inline __m128i hc_load(const unsigned char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* x carried forward over the distance k was made for, and added to the block found there. */
HC_CLMUL static inline __m128i hc_fold(__m128i x, __m128i k, __m128i there)
{
    __m128i low = _mm_clmulepi64_si128(x, k, 0x00);  /* x's low half  * k's low constant  */
    __m128i high = _mm_clmulepi64_si128(x, k, 0x11); /* x's high half * k's high constant */
    return _mm_xor_si128(_mm_xor_si128(low, high), there);
}

/* The CRC register (not inverted) after len bytes at p; len is at least 64 and a multiple of 16. */
HC_CLMUL static uint32_t hc_crc32_clmul(uint32_t reg, const unsigned char *p, size_t len)
{
    __m128i x0 = _mm_xor_si128(hc_load(p), _mm_cvtsi32_si128((int)reg));
    __m128i x1 = hc_load(p + 16), x2 = hc_load(p + 32), x3 = hc_load(p + 48);
    p += 64;
    len -= 64;

    const __m128i k4 = _mm_set_epi64x((long long)HC_K_FOLD4_HIGH, (long long)HC_K_FOLD4_LOW);
    for (; len >= 64; p += 64, len -= 64) {
        x0 = hc_fold(x0, k4, hc_load(p));
        x1 = hc_fold(x1, k4, hc_load(p + 16));
        x2 = hc_fold(x2, k4, hc_load(p + 32));
        x3 = hc_fold(x3, k4, hc_load(p + 48));
    }

    const __m128i k1 = _mm_set_epi64x((long long)HC_K_FOLD1_HIGH, (long long)HC_K_FOLD1_LOW);
    __m128i x = hc_fold(x0, k1, x1);
    x = hc_fold(x, k1, x2);
    x = hc_fold(x, k1, x3);
    for (; len >= 16; p += 16, len -= 16) x = hc_fold(x, k1, hc_load(p));

    /* 128 -> 64 bits: the low half carried over the 64 bits of the high half. */
    x = _mm_xor_si128(_mm_clmulepi64_si128(x, k1, 0x10), _mm_srli_si128(x, 8));
    /* 64 -> 32 bits, past the 32 zero bits a CRC appends. */
    const __m128i low32 = _mm_set_epi32(0, 0, 0, -1);
    const __m128i k64 = _mm_set_epi64x(0, (long long)HC_K_64);
    x = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x, low32), k64, 0x00), _mm_srli_si128(x, 4));
    /* Barrett: the quotient estimate q = low32(x) * mu; x - q * P leaves the remainder in bits 32..63. */
    const __m128i poly_mu = _mm_set_epi64x((long long)HC_K_MU, (long long)HC_K_POLY);
    __m128i q = _mm_clmulepi64_si128(_mm_and_si128(x, low32), poly_mu, 0x10);
    q = _mm_clmulepi64_si128(_mm_and_si128(q, low32), poly_mu, 0x00);
    x = _mm_xor_si128(x, q);
    return (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(x, 4));
}

int hc_crc32_accelerated(void)
{
    /* A load from libgcc's CPU table, filled before main(): cheap enough to ask on every call,
     * and no cached flag for threads to race on. */
    return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse2");
}

#else

int hc_crc32_accelerated(void)
{
    return 0;
}

#endif

uint32_t hc_crc32(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (len == 0) return crc; /* zlib's crc32 answers 0 for a NULL buffer */
#ifdef HC_CRC32_CLMUL
    if (len >= 64 && hc_crc32_accelerated()) {
        size_t bulk = len & ~(size_t)15;
        crc = ~hc_crc32_clmul(~crc, p, bulk);
        p += bulk;
        len -= bulk;
    }
#endif
    return (uint32_t)crc32_z(crc, p, len); /* the last 0-15 bytes, or all of them */
}
