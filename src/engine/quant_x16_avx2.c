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

#define G X16_G

INLINE __m256i bcast4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* int16 pairs to int32 */
INLINE __m256i widen(__m256i p)
{
	return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static void prepare_q8_0(const struct block_q8_0 *x, int64_t nb, struct x16_xblock *o)
{
	for (int64_t i = 0; i < nb; i++) {
		o->start[i] = 0;
		o->d[i] = h2f(x[i].d);
	}
}

static void prepare_q4_0(const struct block_q8_0 *x, int64_t nb, struct x16_xblock *o)
{
	for (int64_t i = 0; i < nb; i++) {
		__m256i s = widen(_mm256_maddubs_epi16(
		    _mm256_set1_epi8(1), _mm256_loadu_si256((const __m256i *)x[i].qs)));
		__m128i h =
		    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
		h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
		h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
		o->start[i] = -8 * _mm_cvtsi128_si32(h);
		o->d[i] = h2f(x[i].d);
	}
}

/* Integer dot products of block i for ns registers of 8 rows (register j: rows 8 (j % 2).. of
 * the group at q + (j / 2) gb, q already at block i) against one token's block x, into s[j].
 * Q8_0: 8 lines of 4 elements; Q4_0: 4 lines, elements 4k.. in the low nibbles and 16+4k.. in
 * the high ones. The loop over lines stays a loop: unrolled, GCC reassociates the integer sums
 * into a tree whose partial sums spill to the stack (a third slower here). */
INLINE void sums_q8_0(const uint8_t *q, size_t gb, int ns, const int8_t *x, __m256i *s)
{
#pragma GCC unroll 8
	for (int j = 0; j < ns; j++)
		s[j] = _mm256_setzero_si256();
#pragma GCC unroll 1
	for (int k = 0; k < 8; k++) {
		const __m256i b = bcast4(x + 4 * k);
#pragma GCC unroll 8
		for (int j = 0; j < ns; j++) {
			const __m256i w = _mm256_load_si256(
			    (const __m256i *)(q + (size_t)(j / 2) * gb + 64 * k + 32 * (j % 2)));
			s[j] = _mm256_add_epi32(
			    s[j], widen(_mm256_maddubs_epi16(_mm256_abs_epi8(w),
							     _mm256_sign_epi8(b, w))));
		}
	}
}

INLINE void sums_q4_0(const uint8_t *q, size_t gb, int ns, const int8_t *x, __m256i *s)
{
	const __m256i m = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 8
	for (int j = 0; j < ns; j++)
		s[j] = _mm256_setzero_si256();
#pragma GCC unroll 1
	for (int k = 0; k < 4; k++) {
		const __m256i lo = bcast4(x + 4 * k), hi = bcast4(x + 16 + 4 * k);
#pragma GCC unroll 8
		for (int j = 0; j < ns; j++) {
			const __m256i w = _mm256_load_si256(
			    (const __m256i *)(q + (size_t)(j / 2) * gb + 64 * k + 32 * (j % 2)));
			const __m256i a = _mm256_maddubs_epi16(_mm256_and_si256(w, m), lo),
				      b = _mm256_maddubs_epi16(
					  _mm256_and_si256(_mm256_srli_epi16(w, 4), m), hi);
			s[j] = _mm256_add_epi16(s[j], _mm256_add_epi16(a, b)); /* <= 8 x 3810 */
		}
	}
#pragma GCC unroll 8
	for (int j = 0; j < ns; j++)
		s[j] = widen(s[j]);
}

/* The same for one register of 8 rows (q at block i, plus 32 for the second half) against nt
 * tokens' blocks x[t], into s[t]: each weight register is loaded and unpacked once. */
INLINE void tsums_q8_0(const uint8_t *q, int nt, const int8_t *const *x, __m256i *s)
{
#pragma GCC unroll 8
	for (int t = 0; t < nt; t++)
		s[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
	for (int k = 0; k < 8; k++) {
		const __m256i w = _mm256_load_si256((const __m256i *)(q + 64 * k)),
			      u = _mm256_abs_epi8(w);
#pragma GCC unroll 8
		for (int t = 0; t < nt; t++)
			s[t] = _mm256_add_epi32(s[t],
						widen(_mm256_maddubs_epi16(
						    u, _mm256_sign_epi8(bcast4(x[t] + 4 * k), w))));
	}
}

INLINE void tsums_q4_0(const uint8_t *q, int nt, const int8_t *const *x, __m256i *s)
{
	const __m256i m = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 8
	for (int t = 0; t < nt; t++)
		s[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
	for (int k = 0; k < 4; k++) {
		const __m256i w = _mm256_load_si256((const __m256i *)(q + 64 * k)),
			      lo = _mm256_and_si256(w, m),
			      hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), m);
#pragma GCC unroll 8
		for (int t = 0; t < nt; t++)
			s[t] = _mm256_add_epi16(
			    s[t],
			    _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(x[t] + 4 * k)),
					     _mm256_maddubs_epi16(hi, bcast4(x[t] + 16 + 4 * k))));
	}
#pragma GCC unroll 8
	for (int t = 0; t < nt; t++)
		s[t] = widen(s[t]);
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
				       const struct block_q8_0 *x, const struct x16_xblock *xb,    \
				       float *y)                                                   \
	{                                                                                          \
		const size_t qb = x16_block_q(T);                                                  \
		__m256 acc[2 * NG];                                                                \
		_Pragma("GCC unroll 8") for (int j = 0; j < 2 * NG; j++) acc[j] =                  \
		    _mm256_setzero_ps();                                                           \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			_Pragma("GCC unroll 8") for (int g = 0; g < NG; g++)                       \
			    x16_prefetch_ahead(q, gb, nb, qb, NG, g, i);                           \
			__m256i s[2 * NG];                                                         \
			sums_##name(q + (size_t)i * qb, gb, 2 * NG, x[i].qs, s);                   \
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
					 const struct x16_xblock *xb, float *const *y)             \
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
					x16_prefetch(qi + X16_PREFETCH, qb);                       \
				const int8_t *xs[NT];                                              \
				_Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) xs[t] =       \
				    x[t][i].qs;                                                    \
				__m256i s[NT];                                                     \
				tsums_##name(qi + 32 * h, NT, xs, s);                              \
				const __m256 dw = scales(q, nb, qb, i, h);                         \
				_Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] =      \
				    finish(acc[t], s[t], xb[t].start[i], dw, xb[t].d[i]);          \
			}                                                                          \
			_Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)                       \
			    _mm256_storeu_ps(y[t] + 8 * h, acc[t]);                                \
		}                                                                                  \
	}

#define DEF_KERNELS(name, T)                                                                       \
	DEF_ROWS(name, T, 1)                                                                       \
	DEF_ROWS(name, T, 2)                                                                       \
	DEF_TOKENS(name, T, 2)                                                                     \
	DEF_TOKENS(name, T, 3)                                                                     \
	DEF_TOKENS(name, T, 4)                                                                     \
	static const struct x16_kernels kernels_##name = {                                         \
	    2, /* groups a generation pass: 4 registers of rows */                                 \
	    prepare_##name,                                                                        \
	    rows_##name##_1,                                                                       \
	    rows_##name##_2,                                                                       \
	    {NULL, NULL, tokens_##name##_2, tokens_##name##_3, tokens_##name##_4}};

DEF_KERNELS(q8_0, HERD_TYPE_Q8_0)
DEF_KERNELS(q4_0, HERD_TYPE_Q4_0)

const struct x16_kernels *herd_x16_avx2_kernels(enum herd_type t)
{
	return t == HERD_TYPE_Q8_0 ? &kernels_q8_0 : &kernels_q4_0;
}
