/* quant_avx512 — the matrix-vector product (one token: generation) for Q8_0 and Q4_0 weights
 * with AVX-512 VNNI, on CPUs that have it. Only this file is compiled for those extensions;
 * quant.c calls in only after herd_avx512_enabled() has checked the CPU.
 *
 * The one thing to know: a 512-bit register holds two 32-element blocks, and VPDPBUSD
 * multiplies unsigned by signed bytes, so the weights are made unsigned and the activations'
 * share of the offset is subtracted once per block pair for all rows:
 *   Q8_0: w = (w ^ 0x80) - 128, so sum(w x) = sum((w ^ 0x80) x) - 128 sum(x);
 *   Q4_0: w = u - 8 with u the nibble, so sum(w x) = sum(u x) - 8 sum(x).
 * The offset sums start the accumulation (dpbusd adds into its first operand). Per block pair
 * and row that is two loads, one or two byte ops, one dpbusd, a conversion and two FMAs; the
 * AVX2 kernel needs two sign ops, maddubs and madd per block where this has half a dpbusd.
 * The float side repeats the AVX2 kernel operation for operation (one FMA per block into 8
 * lanes, the same scale products, the same horizontal sum), so both give the same bits and
 * a prompt's logits do not depend on which kernel ran which token (test_forward checks it).
 * Prefetch: a pair is 68 bytes, so each step prefetches two lines RT rows ahead; one line per
 * step missed every 16th line and made the model 15% slower than AVX2 instead of faster.
 * HERD_NO_AVX512=1 turns this file off (the AVX2 kernels run). */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "quant_simd.h"

#define RT 4 /* rows per tile: each activation pair is prepared once for 4 rows (as in AVX2) */

bool herd_avx512_enabled(void)
{
	static int enabled = -1; /* a benign race: every thread computes the same answer */
	if (enabled < 0) {
		const char *e = getenv("HERD_NO_AVX512");
		enabled = !(e && *e && strcmp(e, "0") != 0) && herd_simd_enabled() &&
			  __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
			  __builtin_cpu_supports("avx512vl") &&
			  __builtin_cpu_supports("avx512vnni");
	}
	return enabled;
}

INLINE __m512i join(__m256i lo, __m256i hi)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* The activation side of a block pair, prepared once for the rows of a tile. */
struct xpair {
	__m512i q;    /* the 64 bytes of blocks i and i + 1 */
	__m512i init; /* -off * sum(x) for each int32 lane: where the dot products start */
	float d0, d1; /* the blocks' scales */
};

INLINE struct xpair xpair(const struct block_q8_0 *x, char off)
{
	struct xpair p;
	p.q = join(_mm256_loadu_si256((const __m256i *)x[0].qs),
		   _mm256_loadu_si256((const __m256i *)x[1].qs));
	p.init = _mm512_sub_epi32(
	    _mm512_setzero_si512(),
	    _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(off), p.q));
	p.d0 = h2f(x[0].d);
	p.d1 = h2f(x[1].d);
	return p;
}

/* acc += block pair's products, in the AVX2 kernel's order: one FMA per block, lanes 0..7 of
 * s being block i (int32 lane k = elements 4k..4k+3, as maddubs + madd give them). */
INLINE __m256 accumulate(__m256 acc, __m512i s, float dw0, float dw1, const struct xpair *xp)
{
	__m512 f = _mm512_cvtepi32_ps(s);
	acc = _mm256_fmadd_ps(_mm512_castps512_ps256(f), _mm256_set1_ps(dw0 * xp->d0), acc);
	__m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1));
	return _mm256_fmadd_ps(hi, _mm256_set1_ps(dw1 * xp->d1), acc);
}

/* Unsigned weights of a pair of blocks, elements in order. Q8_0: w ^ 0x80 = w + 128. Q4_0:
 * the 16 bytes of a block hold elements 0..15 in the low nibbles and 16..31 in the high
 * ones; [qs(i) | qs(i + 1) | qs(i) >> 4 | qs(i + 1) >> 4] is put in order by one shuffle. */
INLINE __m512i unsigned_q8_0(const struct block_q8_0 *b)
{
	return _mm512_xor_si512(join(_mm256_loadu_si256((const __m256i *)b[0].qs),
				     _mm256_loadu_si256((const __m256i *)b[1].qs)),
				_mm512_set1_epi8((char)0x80));
}

INLINE __m512i unsigned_q4_0(const struct block_q4_0 *b)
{
	__m256i q = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)b[1].qs),
				     _mm_loadu_si128((const __m128i *)b[0].qs));
	__m512i u = _mm512_and_si512(join(q, _mm256_srli_epi16(q, 4)), _mm512_set1_epi8(0x0F));
	return _mm512_shuffle_i64x2(u, u, _MM_SHUFFLE(3, 1, 2, 0));
}

#define DEF_TILE(name, btype, off)                                                                 \
	INLINE void tile_##name(int rows, int64_t nb, const char *w, size_t ws,                    \
				const struct block_q8_0 *x, float *y)                              \
	{                                                                                          \
		__m256 acc[RT];                                                                    \
		for (int r = 0; r < rows; r++)                                                     \
			acc[r] = _mm256_setzero_ps();                                              \
		for (int64_t i = 0; i + 2 <= nb; i += 2) {                                         \
			struct xpair xp = xpair(x + i, off);                                       \
			for (int r = 0; r < rows; r++) {                                           \
				const struct btype *b = (const struct btype *)(w + r * ws) + i;    \
				_mm_prefetch((const char *)b + RT * ws, _MM_HINT_T0);              \
				_mm_prefetch((const char *)b + RT * ws + 64, _MM_HINT_T0);         \
				__m512i s =                                                        \
				    _mm512_dpbusd_epi32(xp.init, unsigned_##name(b), xp.q);        \
				acc[r] = accumulate(acc[r], s, h2f(b[0].d), h2f(b[1].d), &xp);     \
			}                                                                          \
		}                                                                                  \
		for (int r = 0; r < rows; r++)                                                     \
			y[r] = hsum8(acc[r]);                                                      \
	}

DEF_TILE(q8_0, block_q8_0, (char)0x80)
DEF_TILE(q4_0, block_q4_0, 8)

#define DEF_MATVEC(name)                                                                           \
	static void mv_##name(const char *w, size_t ws, const struct block_q8_0 *x, int64_t nb,    \
			      int64_t r0, int64_t r1, float *y)                                    \
	{                                                                                          \
		int64_t r = r0;                                                                    \
		for (; r + RT <= r1; r += RT)                                                      \
			tile_##name(RT, nb, w + r * ws, ws, x, y + r);                             \
		for (; r < r1; r++)                                                                \
			tile_##name(1, nb, w + r * ws, ws, x, y + r);                              \
	}

DEF_MATVEC(q8_0)
DEF_MATVEC(q4_0)

bool herd_avx512_matvec(enum herd_type wtype, const void *w, size_t w_stride, const void *x,
			int64_t n, int64_t r0, int64_t r1, float *y)
{
	int64_t nb = n / QK;
	if (nb % 2)
		return false; /* block pairs only; every common model width is a multiple of 64 */
	switch (wtype) {
	case HERD_TYPE_Q8_0:
		mv_q8_0(w, w_stride, x, nb, r0, r1, y);
		return true;
	case HERD_TYPE_Q4_0:
		mv_q4_0(w, w_stride, x, nb, r0, r1, y);
		return true;
	default:
		return false;
	}
}
