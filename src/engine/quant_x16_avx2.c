/* quant_x16_avx2 — the packed matrices' kernels for AVX2 (the layout: quant_x16.c), for CPUs
 * without AVX-512. Only this file is compiled for AVX2; quant_x16.c calls in only after
 * herd_simd_enabled() has checked the CPU.
 *
 * Each 64-byte line of a group holds 4 element bytes of its 16 rows: its two 32-byte halves are
 * two registers of 8 rows, one row per int32 lane. VPMADDUBSW (unsigned x signed bytes, pairs
 * summed to int16) then VPMADDWD by 1 (pairs of those to int32) add the 4 products of each row
 * at once. Q8_0 weights are signed: they are multiplied as |w| x (x with w's sign), which stays
 * within int16 (the activations are within +-127). Q4_0's nibbles u = w + 8 are unsigned and
 * small: a block's 8 products per row add up in int16 before one widening, and the sum starts
 * at -8 x sum(x).
 *
 * As in the AVX-512 kernels, every token goes through the same instructions in the same order,
 * one token or many, so a prompt's logits are bit-identical to generating its tokens one by one. */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <string.h>

#include "quant_simd.h"
#include "quant_x16.h"

INLINE __m256i bcast4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

void herd_x16_prepare(const struct block_q8_0 *x, int64_t nb, int off, struct herd_x16_xblock *o)
{
	for (int64_t i = 0; i < nb; i++) {
		int32_t sum = 0;
		if (off) {
			__m256i v = dot_u8i8(_mm256_set1_epi8(1),
					     _mm256_loadu_si256((const __m256i *)x[i].qs));
			__m128i h = _mm_add_epi32(_mm256_castsi256_si128(v),
						  _mm256_extracti128_si256(v, 1));
			h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
			h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
			sum = _mm_cvtsi128_si32(h);
		}
		o->start[i] = -off * sum;
		o->d[i] = h2f(x[i].d);
	}
}

/* Integer dot products of block i: ns registers of 8 rows (register j: rows 8 (j % 2).. of the
 * group at q + (j / 2) gb, q already at block i) against nt tokens' blocks x[t], into
 * s[j nt + t]. Each weight register is loaded and unpacked once for all tokens, each activation
 * broadcast once for all registers. Q8_0: 8 lines of 4 elements; Q4_0: 4 lines, elements 4k..
 * in the low nibbles and 16+4k.. in the high ones. The loop over lines stays a loop: unrolled,
 * GCC reassociates the integer sums into a tree whose partial sums spill to the stack (a third
 * slower here). */
INLINE void dots_q8_0(const uint8_t *q, size_t gb, int ns, const int8_t *const *x, int nt,
		      __m256i *s)
{
#pragma GCC unroll 8
	for (int j = 0; j < ns * nt; j++)
		s[j] = _mm256_setzero_si256();
#pragma GCC unroll 1
	for (int k = 0; k < 8; k++) {
		__m256i b[X16_TT];
#pragma GCC unroll 8
		for (int t = 0; t < nt; t++)
			b[t] = bcast4(x[t] + 4 * k);
#pragma GCC unroll 8
		for (int j = 0; j < ns; j++) {
			const __m256i w = _mm256_load_si256(
			    (const __m256i *)(q + (size_t)(j / 2) * gb + 64 * k + 32 * (j % 2)));
			const __m256i u = _mm256_abs_epi8(w);
#pragma GCC unroll 8
			for (int t = 0; t < nt; t++)
				s[j * nt + t] = _mm256_add_epi32(
				    s[j * nt + t], dot_u8i8(u, _mm256_sign_epi8(b[t], w)));
		}
	}
}

INLINE void dots_q4_0(const uint8_t *q, size_t gb, int ns, const int8_t *const *x, int nt,
		      __m256i *s)
{
	const __m256i m = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 8
	for (int j = 0; j < ns * nt; j++)
		s[j] = _mm256_setzero_si256();
#pragma GCC unroll 1
	for (int k = 0; k < 4; k++) {
		__m256i lo[X16_TT], hi[X16_TT];
#pragma GCC unroll 8
		for (int t = 0; t < nt; t++) {
			lo[t] = bcast4(x[t] + 4 * k);
			hi[t] = bcast4(x[t] + 16 + 4 * k);
		}
#pragma GCC unroll 8
		for (int j = 0; j < ns; j++) {
			const __m256i w = _mm256_load_si256(
			    (const __m256i *)(q + (size_t)(j / 2) * gb + 64 * k + 32 * (j % 2)));
			const __m256i wl = _mm256_and_si256(w, m),
				      wh = _mm256_and_si256(_mm256_srli_epi16(w, 4), m);
#pragma GCC unroll 8
			for (int t = 0; t < nt; t++) /* at most 8 x 3810 in int16 */
				s[j * nt + t] = _mm256_add_epi16(
				    s[j * nt + t],
				    _mm256_add_epi16(_mm256_maddubs_epi16(wl, lo[t]),
						     _mm256_maddubs_epi16(wh, hi[t])));
		}
	}
#pragma GCC unroll 8
	for (int j = 0; j < ns * nt; j++)
		s[j] = widen(s[j]);
}

/* The scales of half h (8 rows) of block i of the group at q. */
INLINE __m256 scales(const uint8_t *q, int64_t nb, size_t qb, int64_t i, int h)
{
	return _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(q + (size_t)nb * qb) + 2 * i + h));
}

/* How every kernel ends a block: the integer sum from its start, to float, times d_w x d_x,
 * into acc. One definition, so that all kernels give the same bits. */
INLINE __m256 finish(__m256 acc, __m256i s, int32_t start, __m256 dw, float dx)
{
	return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s, _mm256_set1_epi32(start))),
			       _mm256_mul_ps(dw, _mm256_set1_ps(dx)), acc);
}

/* Generation: NG groups (gb bytes apart) against one token, y[0 .. 16 NG). */
#define DEF_ROWS(name, T, NG)                                                                      \
	static void rows_##name##_##NG(const uint8_t *q, size_t gb, int64_t nb,                    \
				       const struct block_q8_0 *x,                                 \
				       const struct herd_x16_xblock *xb, float *y)                 \
	{                                                                                          \
		const size_t qb = x16_block_q(T);                                                  \
		__m256 acc[2 * NG];                                                                \
		_Pragma("GCC unroll 8") for (int j = 0; j < 2 * NG; j++) acc[j] =                  \
		    _mm256_setzero_ps();                                                           \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			_Pragma("GCC unroll 8") for (int g = 0; g < NG; g++)                       \
			    x16_prefetch_ahead(q, gb, nb, qb, NG, g, i);                           \
			__m256i s[2 * NG];                                                         \
			const int8_t *xs = x[i].qs;                                                \
			dots_##name(q + (size_t)i * qb, gb, 2 * NG, &xs, 1, s);                    \
			_Pragma("GCC unroll 8") for (int j = 0; j < 2 * NG; j++) acc[j] =          \
			    finish(acc[j], s[j], xb->start[i],                                     \
				   scales(q + (j / 2) * gb, nb, qb, i, j % 2), xb->d[i]);          \
		}                                                                                  \
		_Pragma("GCC unroll 8") for (int j = 0; j < 2 * NG; j++)                           \
		    _mm256_storeu_ps(y + 8 * j, acc[j]);                                           \
	}

/* Prompts: one group against NT tokens, y[t][0..15], half by half. */
#define DEF_TOKENS(name, T, NT)                                                                    \
	static void tokens_##name##_##NT(const uint8_t *q, int64_t nb,                             \
					 const struct block_q8_0 *const *x,                        \
					 const struct herd_x16_xblock *xb, float *const *y)        \
	{                                                                                          \
		const size_t qb = x16_block_q(T);                                                  \
		_Pragma("GCC unroll 8") for (int h = 0; h < 2; h++)                                \
		{                                                                                  \
			__m256 acc[NT];                                                            \
			_Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] =              \
			    _mm256_setzero_ps();                                                   \
			for (int64_t i = 0; i < nb; i++) {                                         \
				const uint8_t *qi = q + (size_t)i * qb;                            \
				if (!h)                                                            \
					x16_prefetch(qi + HERD_PREFETCH_L1_BYTES, qb, false);      \
				const int8_t *xs[NT];                                              \
				_Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) xs[t] =       \
				    x[t][i].qs;                                                    \
				__m256i s[NT];                                                     \
				dots_##name(qi + 32 * h, 0, 1, xs, NT, s);                         \
				const __m256 dw = scales(q, nb, qb, i, h);                         \
				_Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] =      \
				    finish(acc[t], s[t], xb[t].start[i], dw, xb[t].d[i]);          \
			}                                                                          \
			_Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)                       \
			    _mm256_storeu_ps(y[t] + 8 * h, acc[t]);                                \
		}                                                                                  \
	}

#define DEF_KERNELS(name, T, OFF)                                                                  \
	DEF_ROWS(name, T, 1)                                                                       \
	DEF_ROWS(name, T, 2)                                                                       \
	DEF_TOKENS(name, T, 2)                                                                     \
	DEF_TOKENS(name, T, 3)                                                                     \
	DEF_TOKENS(name, T, 4)                                                                     \
	static const struct x16_kernels kernels_##name = {                                         \
	    2, /* groups a generation pass: 4 registers of rows */                                 \
	    OFF,                                                                                   \
	    rows_##name##_1,                                                                       \
	    rows_##name##_2,                                                                       \
	    {NULL, NULL, tokens_##name##_2, tokens_##name##_3, tokens_##name##_4}};

DEF_KERNELS(q8_0, HERD_TYPE_Q8_0, 0)
DEF_KERNELS(q4_0, HERD_TYPE_Q4_0, 8)

const struct x16_kernels *herd_x16_avx2_kernels(enum herd_type t)
{
	return t == HERD_TYPE_Q8_0 ? &kernels_q8_0 : &kernels_q4_0;
}
