/* quant_x16_avx512 — the packed matrices' kernels for AVX-512 VNNI (the layout: quant_x16.c).
 * Only this file is compiled for those extensions; quant_x16.c calls in only after
 * herd_avx512_enabled() has checked the CPU.
 *
 * Each 512-bit register holds the same 4 elements of a group's 16 rows, one row per int32 lane:
 * VPDPBUSD against those 4 activation bytes broadcast adds 16 rows' partial dot products at
 * once, and the 16 rows' block scales convert as one vector. Per 16 rows x 32 elements that is
 * 8 products, one conversion and one FMA. VPDPBUSD multiplies unsigned by signed bytes: Q8_0
 * weights are stored as w + 128, Q4_0's nibbles are w + 8, and the sum starts at
 * -offset x sum(x) so that it ends as sum(w x). Q4_0's register k gives elements 4k..4k+3
 * through "& 0x0F" and 16+4k.. through "& 0xF0" (16 times the nibble: that block sum is
 * shifted back once, cheaper than shifting every byte).
 *
 * Every token goes through the same instructions in the same order, one token or many, so a
 * prompt's logits are bit-identical to generating its tokens one by one. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#include <immintrin.h>
#include <string.h>

#include "quant_simd.h"
#include "quant_x16.h"

#define G X16_G /* rows per group: the int32 lanes of a 512-bit register */

INLINE __m512i bcast4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm512_set1_epi32(v);
}

/* Register pair k (0..3) of block i of a group, as unsigned weights: Q8_0's are two stored
 * registers (elements 8k.. and 8k+4..); Q4_0's one register's low nibbles (elements 4k..) and
 * its high ones, masked but not shifted (16 x the nibble, elements 16+4k..: their sum is
 * shifted back once per block instead). elems[2k], elems[2k+1]: those first elements. */
INLINE void pair_q8_0(const uint8_t *q, int k, __m512i *a, __m512i *b)
{
	*a = _mm512_load_si512(q + 128 * k);
	*b = _mm512_load_si512(q + 128 * k + 64);
}

INLINE void pair_q4_0(const uint8_t *q, int k, __m512i *a, __m512i *b)
{
	const __m512i lo = _mm512_set1_epi8(0x0F), v = _mm512_load_si512(q + 64 * k);
	*a = _mm512_and_si512(v, lo);
	*b = _mm512_andnot_si512(lo, v);
}

static const int q8_0_elems[8] = {0, 4, 8, 12, 16, 20, 24, 28};
static const int q4_0_elems[8] = {0, 16, 4, 20, 8, 24, 12, 28};

/* How every kernel ends a block: the two integer chains (s1 shifted back for Q4_0) to float,
 * times d_w x d_x, into acc. One definition, so that all kernels give the same bits. */
INLINE __m512 finish(__m512 acc, __m512i s0, __m512i s1, int shift, __m512 dw, float dx)
{
	if (shift)
		s1 = _mm512_srai_epi32(s1, shift);
	return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
			       _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc);
}

INLINE __m512 scales(const uint8_t *q, int64_t nb, size_t qb, int64_t i)
{
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(q + (size_t)nb * qb) + i));
}

/* Generation: NG groups (gb bytes apart) against one token, y[0 .. 16 NG). The activation
 * bytes are broadcast once for all NG groups, and NG streams of weights are in flight at once:
 * 4 groups ran 1 GB of Q8_0 at 26-31 GB/s on one thread here, 1 group at 21-24. */
#define DEF_ROWS(name, T, SHIFT, NG)                                                               \
	static void rows_##name##_##NG(const uint8_t *q, size_t gb, int64_t nb,                    \
				       const struct block_q8_0 *x,                                 \
				       const struct herd_x16_xblock *xb, float *y)                 \
	{                                                                                          \
		const size_t qb = x16_block_q(T);                                                  \
		__m512 acc[NG];                                                                    \
		_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++) acc[g] = _mm512_setzero_ps(); \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			const int8_t *qs = x[i].qs;                                                \
			__m512i s0[NG], s1[NG];                                                    \
			_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++)                       \
			{                                                                          \
				x16_prefetch_ahead(q, gb, nb, qb, NG, g, i);                       \
				s0[g] = _mm512_set1_epi32(xb->start[i]);                           \
				s1[g] = _mm512_setzero_si512();                                    \
			}                                                                          \
			_Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                        \
			{                                                                          \
				const __m512i b0 = bcast4(qs + name##_elems[2 * k]),               \
					      b1 = bcast4(qs + name##_elems[2 * k + 1]);           \
				_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++)               \
				{                                                                  \
					__m512i a, b;                                              \
					pair_##name(q + g * gb + (size_t)i * qb, k, &a, &b);       \
					s0[g] = _mm512_dpbusd_epi32(s0[g], a, b0);                 \
					s1[g] = _mm512_dpbusd_epi32(s1[g], b, b1);                 \
				}                                                                  \
			}                                                                          \
			_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++) acc[g] = finish(      \
			    acc[g], s0[g], s1[g], SHIFT, scales(q + g * gb, nb, qb, i), xb->d[i]); \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++)                               \
		    _mm512_storeu_ps(y + G * g, acc[g]);                                           \
	}

/* Prompts: one group against NT tokens, y[t][0..15]: the group's block is loaded once for
 * all NT tokens. One function per NT, so that the accumulators stay in registers. */
#define DEF_TOKENS(name, T, SHIFT, NT)                                                             \
	static void tokens_##name##_##NT(const uint8_t *q, int64_t nb,                             \
					 const struct block_q8_0 *const *x,                        \
					 const struct herd_x16_xblock *xb, float *const *y)        \
	{                                                                                          \
		const size_t qb = x16_block_q(T);                                                  \
		__m512 acc[NT];                                                                    \
		_Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps(); \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			const uint8_t *qi = q + (size_t)i * qb;                                    \
			x16_prefetch(qi + HERD_PREFETCH_L1_BYTES, qb, false);                      \
			__m512i u[8];                                                              \
			_Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                        \
			    pair_##name(qi, k, &u[2 * k], &u[2 * k + 1]);                          \
			const __m512 dw = scales(q, nb, qb, i);                                    \
			_Pragma("GCC unroll 4") for (int t = 0; t < NT; t++)                       \
			{                                                                          \
				const int8_t *qs = x[t][i].qs;                                     \
				__m512i s0 = _mm512_set1_epi32(xb[t].start[i]),                    \
					s1 = _mm512_setzero_si512();                               \
				_Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                \
				{                                                                  \
					s0 = _mm512_dpbusd_epi32(                                  \
					    s0, u[2 * k], bcast4(qs + name##_elems[2 * k]));       \
					s1 = _mm512_dpbusd_epi32(                                  \
					    s1, u[2 * k + 1],                                      \
					    bcast4(qs + name##_elems[2 * k + 1]));                 \
				}                                                                  \
				acc[t] = finish(acc[t], s0, s1, SHIFT, dw, xb[t].d[i]);            \
			}                                                                          \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int t = 0; t < NT; t++)                               \
		    _mm512_storeu_ps(y[t], acc[t]);                                                \
	}

#define DEF_KERNELS(name, T, SHIFT, OFF)                                                           \
	DEF_ROWS(name, T, SHIFT, 1)                                                                \
	DEF_ROWS(name, T, SHIFT, 4)                                                                \
	DEF_TOKENS(name, T, SHIFT, 2)                                                              \
	DEF_TOKENS(name, T, SHIFT, 3)                                                              \
	DEF_TOKENS(name, T, SHIFT, 4)                                                              \
	static const struct x16_kernels kernels_##name = {                                         \
	    4,                                                                                     \
	    OFF,                                                                                   \
	    rows_##name##_1,                                                                       \
	    rows_##name##_4,                                                                       \
	    {NULL, NULL, tokens_##name##_2, tokens_##name##_3, tokens_##name##_4}};

DEF_KERNELS(q8_0, HERD_TYPE_Q8_0, 0, 0x80)
DEF_KERNELS(q4_0, HERD_TYPE_Q4_0, 4, 8)

const struct x16_kernels *herd_x16_avx512_kernels(enum herd_type t)
{
	return t == HERD_TYPE_Q8_0 ? &kernels_q8_0 : &kernels_q4_0;
}
