/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
 * SC11; Random123's philox4x32 with 10 rounds), for the dropout masks of the training engine.
 *
 * One round maps the counter (c0, c1, c2, c3) with the key (k0, k1) to
 * (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)), with the 64-bit products
 * M0 c0 and M1 c2 split in their high and low 32 bits; the key is bumped by the Weyl
 * constants (W0, W1) before every round but the first. Checked against Random123's
 * known-answer vectors (tests/test_cengine.py).
 *
 * Included once by train.c; everything here is static.
 */
#include <stdint.h>

#define CR_PHILOX_M0 0xD2511F53u
#define CR_PHILOX_M1 0xCD9E8D57u
#define CR_PHILOX_W0 0x9E3779B9u
#define CR_PHILOX_W1 0xBB67AE85u

/* The lanes of cr_philox_blocks: enough independent counters that the rounds vectorise
 * (32 x 32 -> 64-bit products are one instruction per 4/8 lanes with AVX2/AVX-512). */
enum { CR_PHILOX_LANES = 16 };

static inline void cr_philox4x32_10_one(const uint32_t ctr[4], const uint32_t key[2],
                                        uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; ++r) {
        if (r) {
            k0 += CR_PHILOX_W0;
            k1 += CR_PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)CR_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)CR_PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* words[4 u + w] = word w of Philox4x32-10 at counter (first + u, c1, c2, 0), key (k0, k1),
 * for u < CR_PHILOX_LANES: the same numbers as cr_philox4x32_10_one, lane by lane. */
static inline void cr_philox_blocks(uint32_t first, uint32_t c1, uint32_t c2, uint32_t k0,
                                    uint32_t k1, uint32_t *words)
{
    uint32_t x0[CR_PHILOX_LANES], x1[CR_PHILOX_LANES], x2[CR_PHILOX_LANES],
        x3[CR_PHILOX_LANES];
    for (int u = 0; u < CR_PHILOX_LANES; ++u) {
        x0[u] = first + (uint32_t)u;
        x1[u] = c1;
        x2[u] = c2;
        x3[u] = 0;
    }
    for (int r = 0; r < 10; ++r) {
        if (r) {
            k0 += CR_PHILOX_W0;
            k1 += CR_PHILOX_W1;
        }
        for (int u = 0; u < CR_PHILOX_LANES; ++u) {
            uint64_t p0 = (uint64_t)CR_PHILOX_M0 * x0[u];
            uint64_t p1 = (uint64_t)CR_PHILOX_M1 * x2[u];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ x1[u] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ x3[u] ^ k1;
            x1[u] = (uint32_t)p1;
            x3[u] = (uint32_t)p0;
            x0[u] = n0;
            x2[u] = n2;
        }
    }
    for (int u = 0; u < CR_PHILOX_LANES; ++u) {
        words[4 * u] = x0[u];
        words[4 * u + 1] = x1[u];
        words[4 * u + 2] = x2[u];
        words[4 * u + 3] = x3[u];
    }
}

/* Whether the mask keeps a unit: u = (word >> 8) 2^-24 (exact in float and double) below
 * the keep probability, compared in double (keep_prob as given, not rounded to float). */
static inline int cr_philox_keep(uint32_t word, double keep_prob)
{
    return (double)(word >> 8) * 0x1p-24 < keep_prob;
}
